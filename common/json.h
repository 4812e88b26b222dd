// JSON helpers around nlohmann::json, which throws: every parse and typed read that can fail
// on user data goes through here and comes back as a Status naming the source and field.
// nlohmann::json is the one JSON value type shared by modules (config.json, tool schemas,
// trajectories); this header is the only place its exceptions are caught.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/status.h"

namespace v4agent {

using Json = nlohmann::json;
using OrderedJson = nlohmann::ordered_json;

// Parses `text`; errors read "<source>: invalid JSON at byte N: ...".
Result<Json> ParseJson(std::string_view text, std::string_view source);
Result<OrderedJson> ParseOrderedJson(std::string_view text, std::string_view source);
Result<Json> ReadJsonFile(const std::string& path);

// Typed field access: errors read "<source>: field 'key': missing" or "...: expected integer".
Result<int64_t> JsonGetInt(const Json& obj, std::string_view key, std::string_view source);
Result<double> JsonGetNumber(const Json& obj, std::string_view key, std::string_view source);
Result<bool> JsonGetBool(const Json& obj, std::string_view key, std::string_view source);
Result<std::string> JsonGetString(const Json& obj, std::string_view key, std::string_view source);

// Serialises without throwing: invalid UTF-8 in strings is replaced by U+FFFD.
std::string DumpJson(const Json& value, int indent = -1);
std::string DumpJson(const OrderedJson& value, int indent = -1);

}  // namespace v4agent
