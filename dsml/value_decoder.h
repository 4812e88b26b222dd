// Decoding one DSML parameter value and checking a finished call against its tool's JSON
// schema. string="true" values are raw text; string="false" values are JSON, and a JSON error
// reports its byte offset. Problems become short messages written for the model, so the agent
// loop can hand them back and ask for a corrected call.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/json.h"

namespace v4agent::dsml {

struct DecodedValue {
  bool ok = true;
  OrderedJson value;      // the string itself for string="true"
  std::string json_text;  // the value as it goes into the arguments JSON text
  std::string error;      // when !ok: "not valid JSON at byte 3: ..."
};

// `raw` is the text between the parameter tag and its closing tag.
DecodedValue DecodeValue(std::string_view raw, bool is_string);

struct ParsedParameter {
  std::string name;
  bool is_string = true;
  std::string raw;  // exact bytes of the value
  DecodedValue decoded;
};

// Finds a tool by name in an OpenAI tools array (entries with or without "function").
const OrderedJson* FindTool(const OrderedJson& tools, std::string_view name);

// Checks the call and builds its arguments JSON text ({"k": v, ...}, Python spacing; string
// values quoted, JSON values as the model wrote them). Returns the problems found; empty when
// the call is valid. `tools` null skips the schema checks (JSON errors still count). May coerce
// a string="true" value to the schema's scalar type when the text is a valid literal of it.
std::vector<std::string> CheckCall(const OrderedJson* tools, std::string_view tool_name,
                                   std::vector<ParsedParameter>& params, std::string* arguments);

}  // namespace v4agent::dsml
