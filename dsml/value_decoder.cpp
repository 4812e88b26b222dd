#include "dsml/value_decoder.h"

#include <set>

#include "common/strings.h"
#include "dsml/python_json.h"

namespace v4agent::dsml {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() &&
         (s.front() == ' ' || s.front() == '\n' || s.front() == '\r' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\n' || s.back() == '\r' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

const char* JsonTypeName(const OrderedJson& v) {
  switch (v.type()) {
    case OrderedJson::value_t::null:
      return "null";
    case OrderedJson::value_t::boolean:
      return "boolean";
    case OrderedJson::value_t::number_integer:
    case OrderedJson::value_t::number_unsigned:
      return "integer";
    case OrderedJson::value_t::number_float:
      return "number";
    case OrderedJson::value_t::string:
      return "string";
    case OrderedJson::value_t::array:
      return "array";
    case OrderedJson::value_t::object:
      return "object";
    default:
      return "value";
  }
}

bool MatchesType(const OrderedJson& v, const std::string& type) {
  if (type == "string") return v.is_string();
  if (type == "integer") return v.is_number_integer();
  if (type == "number") return v.is_number();
  if (type == "boolean") return v.is_boolean();
  if (type == "array") return v.is_array();
  if (type == "object") return v.is_object();
  if (type == "null") return v.is_null();
  return true;  // a type this checker does not know: accept
}

// The schema's allowed types, empty when it names none (anything goes).
std::vector<std::string> SchemaTypes(const OrderedJson& schema) {
  std::vector<std::string> types;
  auto t = schema.find("type");
  if (t == schema.end()) return types;
  if (t->is_string()) types.push_back(t->get<std::string>());
  if (t->is_array()) {
    for (const auto& x : *t) {
      if (x.is_string()) types.push_back(x.get<std::string>());
    }
  }
  return types;
}

}  // namespace

DecodedValue DecodeValue(std::string_view raw, bool is_string) {
  DecodedValue d;
  if (is_string) {
    d.value = std::string(raw);
    d.json_text = PythonJsonDumps(d.value);
    return d;
  }
  std::string_view text = Trim(raw);
  try {
    d.value = OrderedJson::parse(text.begin(), text.end());
    d.json_text = std::string(text);
  } catch (const OrderedJson::exception& e) {
    d.ok = false;
    // A parse error's byte is 1-based over the trimmed text; report the offset within the raw
    // value. Other errors (a number too large for a double) point at the value's start.
    const size_t lead = static_cast<size_t>(text.data() - raw.data());
    size_t at = lead;
    if (const auto* pe = dynamic_cast<const OrderedJson::parse_error*>(&e); pe && pe->byte > 0) {
      at = lead + static_cast<size_t>(pe->byte) - 1;
    }
    d.error = StrCat("not valid JSON at byte ", at,
                     " (string=\"false\" values must be JSON; use string=\"true\" for text)");
    d.value = std::string(raw);
    d.json_text = PythonJsonDumps(d.value);
  }
  return d;
}

const OrderedJson* FindTool(const OrderedJson& tools, std::string_view name) {
  if (!tools.is_array()) return nullptr;
  for (const auto& t : tools) {
    const OrderedJson& f = t.contains("function") ? t["function"] : t;
    if (f.is_object() && f.contains("name") && f["name"].is_string() &&
        f["name"].get_ref<const std::string&>() == name) {
      return &f;
    }
  }
  return nullptr;
}

std::vector<std::string> CheckCall(const OrderedJson* tools, std::string_view tool_name,
                                   std::vector<ParsedParameter>& params, std::string* arguments) {
  std::vector<std::string> problems;
  const std::string tool(tool_name);
  const OrderedJson* fn = nullptr;
  if (tools) {
    fn = FindTool(*tools, tool_name);
    if (!fn) {
      std::vector<std::string> names;
      for (const auto& t : *tools) {
        const OrderedJson& f = t.contains("function") ? t["function"] : t;
        if (f.contains("name") && f["name"].is_string()) names.push_back(f["name"]);
      }
      problems.push_back(
          StrCat("unknown tool \"", tool, "\"; the tools are: ", StrJoin(names, ", ")));
    }
  }
  const OrderedJson* props = nullptr;
  bool extra_allowed = true;
  std::vector<std::string> required;
  if (fn) {
    auto p = fn->find("parameters");
    if (p != fn->end() && p->is_object()) {
      if (auto pr = p->find("properties"); pr != p->end() && pr->is_object()) {
        props = &*pr;
        extra_allowed = false;
      }
      if (auto ap = p->find("additionalProperties"); ap != p->end() && ap->is_boolean()) {
        extra_allowed = ap->get<bool>();
      }
      if (auto rq = p->find("required"); rq != p->end() && rq->is_array()) {
        for (const auto& r : *rq) {
          if (r.is_string()) required.push_back(r.get<std::string>());
        }
      }
    }
  }
  std::set<std::string> seen;
  for (ParsedParameter& param : params) {
    const std::string at = StrCat(tool, ": parameter \"", param.name, "\" ");
    if (!seen.insert(param.name).second) {
      problems.push_back(at + "is given twice");
      continue;
    }
    if (!param.decoded.ok) {
      problems.push_back(at + param.decoded.error);
      continue;
    }
    if (!props) continue;
    auto schema = props->find(param.name);
    if (schema == props->end()) {
      if (!extra_allowed) {
        std::vector<std::string> names;
        for (const auto& [k, v] : props->items()) names.push_back(k);
        problems.push_back(StrCat(at, "is not a parameter of ", tool, "; its parameters are: ",
                                  names.empty() ? std::string("(none)") : StrJoin(names, ", ")));
      }
      continue;
    }
    if (!schema->is_object()) continue;
    const std::vector<std::string> types = SchemaTypes(*schema);
    if (types.empty()) continue;
    bool match = false;
    for (const auto& t : types) match = match || MatchesType(param.decoded.value, t);
    if (!match && param.is_string) {
      // A scalar written as text: accept it when it is a valid literal of the schema's type.
      DecodedValue as_json = DecodeValue(param.raw, false);
      if (as_json.ok && !as_json.value.is_string()) {
        for (const auto& t : types) {
          if (MatchesType(as_json.value, t)) {
            param.decoded = as_json;
            match = true;
            break;
          }
        }
      }
    }
    if (!match) {
      problems.push_back(StrCat(
          at, "must be ", StrJoin(types, " or "), ", not ", JsonTypeName(param.decoded.value),
          types.size() == 1 && types[0] != "string" ? " (write it as JSON with string=\"false\")"
                                                    : ""));
    }
  }
  for (const auto& r : required) {
    if (!seen.count(r))
      problems.push_back(StrCat(tool, ": missing required parameter \"", r, "\""));
  }
  std::string args = "{";
  bool first = true;
  std::set<std::string> written;
  for (const ParsedParameter& param : params) {
    if (!written.insert(param.name).second) continue;
    if (!first) args += ", ";
    first = false;
    args += PythonJsonDumps(OrderedJson(param.name));
    args += ": ";
    args += param.decoded.json_text;
  }
  args += "}";
  *arguments = std::move(args);
  return problems;
}

}  // namespace v4agent::dsml
