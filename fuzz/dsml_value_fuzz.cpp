// libFuzzer target: decoding any parameter value never crashes; a value that decodes as JSON
// yields JSON text that parses back to the same value, and a failure reports an offset inside
// the input. Text that is not UTF-8 comes back with U+FFFD for its bad bytes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "dsml/python_json.h"
#include "dsml/value_decoder.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace v4agent;
  const std::string_view raw(reinterpret_cast<const char*>(data), size);
  for (bool is_string : {true, false}) {
    dsml::DecodedValue d = dsml::DecodeValue(raw, is_string);
    auto back = ParseOrderedJson(d.json_text, "fuzz");
    if (!back.ok()) std::abort();  // json_text is always valid JSON (errors fall back to text)
    // Text that is not UTF-8 comes back with U+FFFD in place of its bad bytes.
    const bool exact = !d.value.is_string() || dsml::IsValidUtf8(d.value.get<std::string>());
    if (d.ok && exact && *back != d.value &&
        !(d.value.is_number_float() && back->is_number_float())) {
      std::abort();
    }
    if (!d.ok && d.error.find("byte ") == std::string::npos) std::abort();
  }
  return 0;
}
