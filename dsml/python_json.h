// JSON text exactly as Python's json.dumps(value, ensure_ascii=False) writes it (spec §3.4):
// the reference encoder renders tool schemas and non-string arguments this way, so any other
// spacing, escaping or float format changes the prompt bytes. Key order is preserved.
#pragma once

#include <string>

#include "common/json.h"

namespace v4agent::dsml {

std::string PythonJsonDumps(const OrderedJson& value);
// Appends to `out` (no intermediate strings for large schemas).
void AppendPythonJson(const OrderedJson& value, std::string* out);
// Python's repr() of a float: shortest round-trip digits, ".0" or an exponent always present.
std::string PythonFloatRepr(double v);
// Whether `s` is well-formed UTF-8 (strings that are not get U+FFFD for their bad bytes).
bool IsValidUtf8(const std::string& s);

}  // namespace v4agent::dsml
