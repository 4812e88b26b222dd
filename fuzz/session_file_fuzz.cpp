// libFuzzer target: Session::Load never crashes, hangs or over-reads on a session file with
// arbitrary metadata and payload. The input is the body (metadata + payload); the fuzzer
// writes a header whose extents and checksums match, and, when the metadata is a JSON object,
// puts the loaded model's own fingerprint and settings in it, so the checks past the
// checksum and the model match (sections, row counts, state sizes, snapshots) are reached.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "common/file_util.h"
#include "common/hash.h"
#include "common/json.h"
#include "engine/model/model.h"
#include "engine/session/session.h"
#include "engine/session/session_file.h"

using namespace v4agent;
using namespace v4agent::engine;

namespace {

Model* TinyModel() {
  static Model* m = [] {
    ModelOptions o;
    o.num_threads = 1;
    auto r = Model::Load(std::string(V4_SOURCE_DIR) + "/tests/goldens/tiny-fast/checkpoint", o);
    return r.ok() ? std::move(r).value().release() : nullptr;
  }();
  return m;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static ScopedTempDir dir;
  Model* model = TinyModel();
  if (model == nullptr || size < 4) return 0;
  uint32_t meta_size = 0;
  std::memcpy(&meta_size, data, 4);
  data += 4;
  size -= 4;
  meta_size = size == 0 ? 0 : meta_size % (static_cast<uint32_t>(size) + 1);
  std::string meta(reinterpret_cast<const char*>(data), meta_size);
  const std::string payload(reinterpret_cast<const char*>(data) + meta_size, size - meta_size);
  if (auto j = ParseJson(meta, "fuzz"); j.ok() && j->is_object()) {
    auto fp = model->Fingerprint();
    if (fp.ok()) {
      (*j)["model"] = {{"config_hash", Hex64(fp->config_hash)},
                       {"tensor_digest", Hex64(fp->tensor_digest)}};
    }
    (*j)["numerics"] = NumericsName(model->options().numerics);
    (*j)["qat_sim"] = model->options().qat_sim;
    (*j)["kv_layout"] = "packed";
    meta = DumpJson(*j);
  }
  const uint64_t payload_offset = (64 + meta.size() + 63) / 64 * 64;
  std::string file(payload_offset + payload.size(), '\0');
  std::memcpy(file.data() + 64, meta.data(), meta.size());
  std::memcpy(file.data() + payload_offset, payload.data(), payload.size());
  uint8_t h[64] = {};
  std::memcpy(h, kSessionMagic, 8);
  const uint32_t version = kSessionVersion, header_size = 64;
  const uint64_t meta_offset = 64, msize = meta.size(), psize = payload.size();
  std::memcpy(h + 8, &version, 4);
  std::memcpy(h + 12, &header_size, 4);
  std::memcpy(h + 16, &meta_offset, 8);
  std::memcpy(h + 24, &msize, 8);
  std::memcpy(h + 32, &payload_offset, 8);
  std::memcpy(h + 40, &psize, 8);
  const uint64_t sum = Hash64(file.data() + 64, file.size() - 64);
  std::memcpy(h + 48, &sum, 8);
  const uint64_t hh = Hash64(h, 56);
  std::memcpy(h + 56, &hh, 8);
  std::memcpy(file.data(), h, 64);
  const std::string path = dir.path() + "/s.v4s";
  if (!WriteFile(path, file).ok()) return 0;
  auto s = Session::Load(model, path, SessionOptions{});
  if (s.ok() && (*s)->length() > 0 && (*s)->length() < model->max_context()) {
    // A file that loads must also run: append one token on top of it.
    const int32_t one[1] = {1};
    (*s)->Append(one).IgnoreError();
  }
  return 0;
}
