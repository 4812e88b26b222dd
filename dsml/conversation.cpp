#include "dsml/conversation.h"

#include "common/strings.h"

namespace v4agent::dsml {
namespace {

bool IsStringOrNull(const OrderedJson& j) { return j.is_string() || j.is_null(); }

Status CheckContent(const OrderedJson& m, const std::string& where, bool allow_parts) {
  auto it = m.find("content");
  if (it == m.end() || IsStringOrNull(*it)) return Status::Ok();
  if (allow_parts && it->is_array()) {
    for (size_t i = 0; i < it->size(); ++i) {
      const auto& part = (*it)[i];
      if (!part.is_object() || !part.contains("type") || !part["type"].is_string()) {
        return InvalidArgumentError(
            StrCat(where, ".content[", i, "]: a content part needs a string \"type\""));
      }
      if (part["type"] == "text" && (!part.contains("text") || !part["text"].is_string())) {
        return InvalidArgumentError(
            StrCat(where, ".content[", i, "]: a text part needs a string \"text\""));
      }
    }
    return Status::Ok();
  }
  return InvalidArgumentError(StrCat(where, ".content: must be a string",
                                     allow_parts ? ", null or a list of parts" : " or null"));
}

Status CheckTools(const OrderedJson& m, const std::string& where) {
  auto it = m.find("tools");
  if (it == m.end() || it->is_null()) return Status::Ok();
  if (!it->is_array()) return InvalidArgumentError(StrCat(where, ".tools: must be a list"));
  for (size_t i = 0; i < it->size(); ++i) {
    const auto& t = (*it)[i];
    const OrderedJson* f = &t;
    if (t.is_object() && t.contains("function")) f = &t["function"];
    if (!f->is_object() || !f->contains("name") || !(*f)["name"].is_string()) {
      return InvalidArgumentError(
          StrCat(where, ".tools[", i, "]: needs a \"function\" object with a string \"name\""));
    }
  }
  return Status::Ok();
}

Status CheckToolCalls(const OrderedJson& m, const std::string& where) {
  auto it = m.find("tool_calls");
  if (it == m.end() || it->is_null()) return Status::Ok();
  if (!it->is_array()) return InvalidArgumentError(StrCat(where, ".tool_calls: must be a list"));
  for (size_t i = 0; i < it->size(); ++i) {
    const auto& tc = (*it)[i];
    const std::string at = StrCat(where, ".tool_calls[", i, "]");
    if (!tc.is_object()) return InvalidArgumentError(StrCat(at, ": must be an object"));
    const OrderedJson* f = tc.contains("function") ? &tc["function"] : &tc;
    if (!f->is_object()) return InvalidArgumentError(StrCat(at, ".function: must be an object"));
    if (!f->contains("name") || !(*f)["name"].is_string()) {
      return InvalidArgumentError(StrCat(at, ".function.name: must be a string"));
    }
    if (auto a = f->find("arguments"); a != f->end() && !a->is_string() && !a->is_object()) {
      return InvalidArgumentError(
          StrCat(at, ".function.arguments: must be a JSON string (or an object)"));
    }
    if (auto id = tc.find("id"); id != tc.end() && !IsStringOrNull(*id)) {
      return InvalidArgumentError(StrCat(at, ".id: must be a string"));
    }
  }
  return Status::Ok();
}

}  // namespace

const char* ThinkingModeName(ThinkingMode mode) {
  return mode == ThinkingMode::kChat ? "chat" : "thinking";
}

Result<ThinkingMode> ParseThinkingMode(std::string_view text) {
  if (text == "chat") return ThinkingMode::kChat;
  if (text == "thinking") return ThinkingMode::kThinking;
  return InvalidArgumentError(
      StrCat("thinking mode must be \"thinking\" or \"chat\", not \"", std::string(text), "\""));
}

Status ValidateConversation(const Conversation& c, std::string_view source) {
  const std::string src(source);
  if (!c.messages.is_array()) return InvalidArgumentError(src + ": \"messages\" must be a list");
  for (size_t i = 0; i < c.messages.size(); ++i) {
    const auto& m = c.messages[i];
    const std::string where = StrCat(src, ": messages[", i, "]");
    if (!m.is_object()) return InvalidArgumentError(where + ": must be an object");
    if (!m.contains("role") || !m["role"].is_string()) {
      return InvalidArgumentError(where + ".role: must be a string");
    }
    const std::string role = m["role"].get<std::string>();
    if (role == "system" || role == "developer") {
      V4_RETURN_IF_ERROR(CheckContent(m, where, false));
      V4_RETURN_IF_ERROR(CheckTools(m, where));
      if (role == "developer" &&
          (!m.contains("content") || !m["content"].is_string() || m["content"].empty())) {
        return InvalidArgumentError(where + ".content: a developer message needs text");
      }
    } else if (role == "user") {
      auto it = m.find("content");
      if (it == m.end() || !it->is_string()) {
        return InvalidArgumentError(where + ".content: a user message needs a string");
      }
    } else if (role == "tool") {
      V4_RETURN_IF_ERROR(CheckContent(m, where, true));
      if (auto id = m.find("tool_call_id"); id != m.end() && !IsStringOrNull(*id)) {
        return InvalidArgumentError(where + ".tool_call_id: must be a string");
      }
    } else if (role == "assistant") {
      V4_RETURN_IF_ERROR(CheckContent(m, where, false));
      V4_RETURN_IF_ERROR(CheckToolCalls(m, where));
      for (const char* key : {"reasoning_content", "raw"}) {
        if (auto it = m.find(key); it != m.end() && !IsStringOrNull(*it)) {
          return InvalidArgumentError(StrCat(where, ".", key, ": must be a string"));
        }
      }
    } else if (role == "latest_reminder") {
      V4_RETURN_IF_ERROR(CheckContent(m, where, false));
    } else {
      return InvalidArgumentError(StrCat(where, ".role: unknown role \"", role,
                                         "\" (system, developer, user, assistant, tool, "
                                         "latest_reminder)"));
    }
    if (auto t = m.find("task"); t != m.end() && !t->is_null()) {
      if (!t->is_string()) return InvalidArgumentError(where + ".task: must be a string");
      const std::string task = t->get<std::string>();
      if (task != "action" && task != "query" && task != "authority" && task != "domain" &&
          task != "title" && task != "read_url") {
        return InvalidArgumentError(StrCat(where, ".task: unknown task \"", task, "\""));
      }
    }
    if (auto w = m.find("wo_eos"); w != m.end() && !w->is_boolean() && !w->is_null()) {
      return InvalidArgumentError(where + ".wo_eos: must be a boolean");
    }
  }
  return Status::Ok();
}

Result<Conversation> ConversationFromJson(const OrderedJson& request, std::string_view source) {
  const std::string src(source);
  if (!request.is_object()) return InvalidArgumentError(src + ": must be a JSON object");
  Conversation c;
  auto msgs = request.find("messages");
  if (msgs == request.end()) return InvalidArgumentError(src + ": missing \"messages\"");
  c.messages = *msgs;
  if (auto it = request.find("thinking_mode"); it != request.end() && !it->is_null()) {
    if (!it->is_string()) return InvalidArgumentError(src + ": \"thinking_mode\" must be a string");
    auto mode = ParseThinkingMode(it->get<std::string>());
    if (!mode.ok()) return mode.status().WithContext(src);
    c.thinking_mode = *mode;
  }
  if (auto it = request.find("reasoning_effort"); it != request.end() && !it->is_null()) {
    if (!it->is_string()) {
      return InvalidArgumentError(src + ": \"reasoning_effort\" must be a string or null");
    }
    c.reasoning_effort = it->get<std::string>();
  }
  if (auto it = request.find("effort_table"); it != request.end() && !it->is_null()) {
    if (*it == "preview") {
      c.effort_table = EffortTable::kPreview;
    } else if (*it == "0731") {
      c.effort_table = EffortTable::k0731;
    } else {
      return InvalidArgumentError(src + ": \"effort_table\" must be \"preview\" or \"0731\"");
    }
  }
  for (auto [key, field] :
       {std::pair{"drop_thinking", &c.drop_thinking}, std::pair{"add_bos", &c.add_bos}}) {
    if (auto it = request.find(key); it != request.end() && !it->is_null()) {
      if (!it->is_boolean())
        return InvalidArgumentError(StrCat(src, ": \"", key, "\" must be a boolean"));
      *field = it->get<bool>();
    }
  }
  V4_RETURN_IF_ERROR(ValidateConversation(c, src));
  return c;
}

}  // namespace v4agent::dsml
