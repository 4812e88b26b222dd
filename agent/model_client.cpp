#include "agent/model_client.h"

#include "common/strings.h"

namespace v4agent::agent {
namespace {

std::string GetStr(const Json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return "";
  return it->get<std::string>();
}

int64_t GetInt(const Json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number()) return 0;
  return it->get<int64_t>();
}

}  // namespace

Json ToolCallToJson(const ToolCall& call) {
  return Json{{"id", call.id}, {"name", call.name}, {"arguments", call.arguments}};
}

Result<ToolCall> ToolCallFromJson(const Json& j, std::string_view source) {
  if (!j.is_object()) return InvalidArgumentError(StrCat(source, ": tool call is not an object"));
  ToolCall call;
  call.id = GetStr(j, "id");
  V4_ASSIGN_OR_RETURN(call.name, JsonGetString(j, "name", source));
  auto args = j.find("arguments");
  if (args == j.end()) {
    call.arguments = "{}";
  } else if (args->is_string()) {
    call.arguments = args->get<std::string>();
  } else {
    call.arguments = DumpJson(*args);
  }
  return call;
}

Json ChatMessageToJson(const ChatMessage& m) {
  Json j{{"role", m.role}, {"content", m.content}};
  if (!m.reasoning_content.empty()) j["reasoning_content"] = m.reasoning_content;
  if (!m.tool_calls.empty()) {
    j["tool_calls"] = Json::array();
    for (const auto& c : m.tool_calls) j["tool_calls"].push_back(ToolCallToJson(c));
  }
  if (!m.tool_call_id.empty()) j["tool_call_id"] = m.tool_call_id;
  if (!m.raw.empty()) j["raw"] = m.raw;
  return j;
}

Result<ChatMessage> ChatMessageFromJson(const Json& j, std::string_view source) {
  if (!j.is_object()) return InvalidArgumentError(StrCat(source, ": message is not an object"));
  ChatMessage m;
  V4_ASSIGN_OR_RETURN(m.role, JsonGetString(j, "role", source));
  m.content = GetStr(j, "content");
  m.reasoning_content = GetStr(j, "reasoning_content");
  m.tool_call_id = GetStr(j, "tool_call_id");
  m.raw = GetStr(j, "raw");
  if (auto it = j.find("tool_calls"); it != j.end() && it->is_array()) {
    for (const auto& c : *it) {
      V4_ASSIGN_OR_RETURN(auto call, ToolCallFromJson(c, source));
      m.tool_calls.push_back(std::move(call));
    }
  }
  return m;
}

Json CompletionToJson(const Completion& c) {
  Json calls = Json::array();
  for (const auto& call : c.tool_calls) calls.push_back(ToolCallToJson(call));
  return Json{{"content", c.content},
              {"reasoning_content", c.reasoning_content},
              {"tool_calls", calls},
              {"finish_reason", c.finish_reason},
              {"format_error", c.format_error},
              {"raw", c.raw},
              {"tokens_prefilled", c.tokens_prefilled},
              {"tokens_reused", c.tokens_reused},
              {"tokens_from_store", c.tokens_from_store},
              {"tokens_generated", c.tokens_generated},
              {"context_tokens", c.context_tokens},
              {"seconds_prefill", c.seconds_prefill},
              {"seconds_generate", c.seconds_generate},
              {"cache_start_tokens", c.cache_start_tokens},
              {"cache_start_text", c.cache_start_text},
              {"prompt_delta", c.prompt_delta},
              {"prompt_ids", c.prompt_ids},
              {"output_ids", c.output_ids}};
}

Result<Completion> CompletionFromJson(const Json& j, std::string_view source) {
  if (!j.is_object()) {
    return InvalidArgumentError(StrCat(source, ": completion is not a JSON object"));
  }
  Completion c;
  c.content = GetStr(j, "content");
  c.reasoning_content = GetStr(j, "reasoning_content");
  c.finish_reason = GetStr(j, "finish_reason");
  c.raw = GetStr(j, "raw");
  c.format_error = GetStr(j, "format_error");
  if (auto it = j.find("tool_calls"); it != j.end()) {
    if (!it->is_array()) return InvalidArgumentError(StrCat(source, ": tool_calls is not a list"));
    for (const auto& call : *it) {
      V4_ASSIGN_OR_RETURN(auto parsed, ToolCallFromJson(call, source));
      c.tool_calls.push_back(std::move(parsed));
    }
  }
  c.tokens_prefilled = GetInt(j, "tokens_prefilled");
  c.tokens_reused = GetInt(j, "tokens_reused");
  c.tokens_from_store = GetInt(j, "tokens_from_store");
  c.tokens_generated = GetInt(j, "tokens_generated");
  c.context_tokens = GetInt(j, "context_tokens");
  if (auto it = j.find("seconds_prefill"); it != j.end() && it->is_number()) {
    c.seconds_prefill = it->get<double>();
  }
  if (auto it = j.find("seconds_generate"); it != j.end() && it->is_number()) {
    c.seconds_generate = it->get<double>();
  }
  c.cache_start_tokens = j.value("cache_start_tokens", int64_t{-1});
  c.cache_start_text = j.value("cache_start_text", int64_t{-1});
  c.prompt_delta = GetStr(j, "prompt_delta");
  for (const char* key : {"prompt_ids", "output_ids"}) {
    auto it = j.find(key);
    if (it == j.end()) continue;
    if (!it->is_array()) return InvalidArgumentError(StrCat(source, ": ", key, " is not a list"));
    auto& dst = std::string_view(key) == "prompt_ids" ? c.prompt_ids : c.output_ids;
    for (const auto& v : *it) {
      if (!v.is_number_integer()) {
        return InvalidArgumentError(StrCat(source, ": ", key, " holds a non-integer"));
      }
      dst.push_back(v.get<int32_t>());
    }
  }
  return c;
}

}  // namespace v4agent::agent
