#include "common/json.h"

#include "common/file_util.h"

namespace v4agent {
namespace {

std::string FieldError(std::string_view source, std::string_view key, std::string_view what) {
  std::string m(source);
  m += ": field '";
  m += key;
  m += "': ";
  m += what;
  return m;
}

template <typename J>
Result<J> ParseImpl(std::string_view text, std::string_view source) {
  try {
    return J::parse(text.begin(), text.end());
  } catch (const nlohmann::json::parse_error& e) {
    std::string m(source);
    m += ": invalid JSON at byte " + std::to_string(e.byte) + ": " + e.what();
    return InvalidArgumentError(std::move(m));
  } catch (const std::exception& e) {
    return InvalidArgumentError(std::string(source) + ": invalid JSON: " + e.what());
  }
}

const Json* Find(const Json& obj, std::string_view key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(std::string(key));
  return it == obj.end() ? nullptr : &*it;
}

}  // namespace

Result<Json> ParseJson(std::string_view text, std::string_view source) {
  return ParseImpl<Json>(text, source);
}

Result<OrderedJson> ParseOrderedJson(std::string_view text, std::string_view source) {
  return ParseImpl<OrderedJson>(text, source);
}

Result<Json> ReadJsonFile(const std::string& path) {
  V4_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  return ParseJson(text, path);
}

Result<int64_t> JsonGetInt(const Json& obj, std::string_view key, std::string_view source) {
  const Json* v = Find(obj, key);
  if (v == nullptr) return NotFoundError(FieldError(source, key, "missing"));
  if (!v->is_number_integer()) {
    if (v->is_number_float()) {
      double d = v->get<double>();
      if (d == static_cast<double>(static_cast<int64_t>(d))) return static_cast<int64_t>(d);
    }
    return InvalidArgumentError(FieldError(source, key, "expected an integer, got " + v->dump()));
  }
  return v->get<int64_t>();
}

Result<double> JsonGetNumber(const Json& obj, std::string_view key, std::string_view source) {
  const Json* v = Find(obj, key);
  if (v == nullptr) return NotFoundError(FieldError(source, key, "missing"));
  if (!v->is_number()) {
    return InvalidArgumentError(FieldError(source, key, "expected a number, got " + v->dump()));
  }
  return v->get<double>();
}

Result<bool> JsonGetBool(const Json& obj, std::string_view key, std::string_view source) {
  const Json* v = Find(obj, key);
  if (v == nullptr) return NotFoundError(FieldError(source, key, "missing"));
  if (!v->is_boolean()) {
    return InvalidArgumentError(FieldError(source, key, "expected a boolean, got " + v->dump()));
  }
  return v->get<bool>();
}

Result<std::string> JsonGetString(const Json& obj, std::string_view key, std::string_view source) {
  const Json* v = Find(obj, key);
  if (v == nullptr) return NotFoundError(FieldError(source, key, "missing"));
  if (!v->is_string()) {
    return InvalidArgumentError(FieldError(source, key, "expected a string, got " + v->dump()));
  }
  return v->get<std::string>();
}

std::string DumpJson(const Json& value, int indent) {
  return value.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string DumpJson(const OrderedJson& value, int indent) {
  return value.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace v4agent
