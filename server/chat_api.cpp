#include "server/chat_api.h"

#include <set>

#include "common/strings.h"

namespace v4agent::server {
namespace {

ApiError Bad(std::string message, std::string param = "", std::string code = "") {
  ApiError e;
  e.message = std::move(message);
  e.param = std::move(param);
  e.code = std::move(code);
  return e;
}

// Message content: a string, null, or text parts ([{"type": "text", "text": ...}]).
std::optional<std::string> ContentText(const Json& c) {
  if (c.is_null()) return std::string();
  if (c.is_string()) return c.get<std::string>();
  if (!c.is_array()) return std::nullopt;
  std::string out;
  for (const Json& part : c) {
    if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") ||
        !part["text"].is_string()) {
      return std::nullopt;
    }
    out += part["text"].get<std::string>();
  }
  return out;
}

}  // namespace

Json ApiError::ToJson() const {
  return Json{{"error",
               {{"message", message},
                {"type", type},
                {"param", param.empty() ? Json() : Json(param)},
                {"code", code.empty() ? Json() : Json(code)}}}};
}

std::string AssistantKey(const OrderedJson& m) {
  OrderedJson k = OrderedJson::object();
  k["reasoning_content"] = m.value("reasoning_content", std::string());
  k["content"] = m.contains("content") && m["content"].is_string() ? m["content"] : OrderedJson("");
  OrderedJson calls = OrderedJson::array();
  if (m.contains("tool_calls") && m["tool_calls"].is_array()) {
    for (const auto& c : m["tool_calls"]) {
      if (!c.is_object() || !c.contains("function")) continue;
      calls.push_back(OrderedJson::array({c["function"].value("name", std::string()),
                                          c["function"].value("arguments", std::string())}));
    }
  }
  k["calls"] = calls;
  return DumpJson(k);
}

// The fields both routes share, checked; the error names the field.
std::optional<ApiError> ParseGeneration(const Json& body, GenerationParams* p) {
  if (!body.contains("model") || !body["model"].is_string()) {
    return Bad("you must provide a model parameter", "model");
  }
  p->model = body["model"].get<std::string>();
  auto number = [&](const char* key, double lo, double hi, double* out) -> std::optional<ApiError> {
    if (!body.contains(key) || body[key].is_null()) return std::nullopt;
    if (!body[key].is_number() || body[key].get<double>() < lo || body[key].get<double>() > hi) {
      return Bad(StrCat(key, " must be a number between ", lo, " and ", hi), key);
    }
    *out = body[key].get<double>();
    return std::nullopt;
  };
  if (auto e = number("temperature", 0, 2, &p->temperature)) return e;
  if (auto e = number("top_p", 0, 1, &p->top_p)) return e;
  if (p->top_p == 0) return Bad("top_p must be above 0", "top_p");
  for (const char* key : {"max_tokens", "max_completion_tokens"}) {
    if (!body.contains(key) || body[key].is_null()) continue;
    if (!body[key].is_number_integer() || body[key].get<int64_t>() < 1) {
      return Bad(StrCat(key, " must be a positive integer"), key);
    }
    p->max_tokens = body[key].get<int64_t>();
  }
  if (body.contains("n") && !body["n"].is_null() && body["n"] != 1) {
    return Bad("only n = 1 is supported", "n");
  }
  if (body.contains("logprobs") && body["logprobs"] == true) {
    return Bad("logprobs are not supported", "logprobs");
  }
  if (body.contains("seed") && !body["seed"].is_null()) {
    if (!body["seed"].is_number_integer()) return Bad("seed must be an integer", "seed");
    p->seed = static_cast<uint64_t>(body["seed"].get<int64_t>());
  }
  if (body.contains("stop") && !body["stop"].is_null()) {
    const Json& s = body["stop"];
    if (s.is_string()) {
      p->stop.push_back(s.get<std::string>());
    } else if (s.is_array() && s.size() <= 4) {
      for (const Json& x : s) {
        if (!x.is_string() || x.get<std::string>().empty()) {
          return Bad("stop must be a string or up to 4 non-empty strings", "stop");
        }
        p->stop.push_back(x.get<std::string>());
      }
    } else {
      return Bad("stop must be a string or up to 4 non-empty strings", "stop");
    }
  }
  if (body.contains("stream") && !body["stream"].is_null()) {
    if (!body["stream"].is_boolean()) return Bad("stream must be a boolean", "stream");
    p->stream = body["stream"].get<bool>();
  }
  if (body.contains("stream_options") && body["stream_options"].is_object()) {
    p->include_usage = body["stream_options"].value("include_usage", false);
  }
  return std::nullopt;
}

std::variant<ChatRequest, ApiError> ParseChatRequest(const Json& body, const RawLookup& raw_for) {
  if (!body.is_object()) return Bad("the request body must be a JSON object");
  static const std::set<std::string> kSupported = {
      "model", "messages", "tools", "tool_choice", "thinking", "reasoning_effort", "temperature",
      "top_p", "max_tokens", "max_completion_tokens", "stop", "seed", "n", "stream",
      "stream_options", "chat_template_kwargs",
      // Accepted and without effect here.
      "user", "metadata", "store", "parallel_tool_calls", "frequency_penalty", "presence_penalty",
      "service_tier", "logprobs"};
  for (const auto& [k, v] : body.items()) {
    if (!kSupported.count(k)) {
      return Bad(StrCat("Unrecognized request argument supplied: ", k), k, "unrecognized_argument");
    }
  }
  ChatRequest r;
  if (auto e = ParseGeneration(body, &r)) return *e;
  // DeepSeek's fields: thinking {"type": "enabled"|"disabled"}, reasoning_effort.
  if (body.contains("thinking") && !body["thinking"].is_null()) {
    const Json& t = body["thinking"];
    const std::string type = t.is_object() ? t.value("type", "") : "";
    if (type != "enabled" && type != "disabled") {
      return Bad("thinking must be {\"type\": \"enabled\"} or {\"type\": \"disabled\"}",
                 "thinking");
    }
    r.thinking = type == "enabled";
  }
  // vLLM's and SGLang's spelling of the same switch, which their clients send.
  if (body.contains("chat_template_kwargs") && !body["chat_template_kwargs"].is_null()) {
    const Json& k = body["chat_template_kwargs"];
    if (!k.is_object())
      return Bad("chat_template_kwargs must be an object", "chat_template_kwargs");
    if (k.contains("thinking")) {
      if (!k["thinking"].is_boolean()) {
        return Bad("chat_template_kwargs.thinking must be a boolean", "chat_template_kwargs");
      }
      r.thinking = k["thinking"].get<bool>();
    }
  }
  std::string effort = "high";
  if (body.contains("reasoning_effort") && !body["reasoning_effort"].is_null()) {
    if (!body["reasoning_effort"].is_string()) {
      return Bad("reasoning_effort must be a string", "reasoning_effort");
    }
    effort = body["reasoning_effort"].get<std::string>();
    // OpenAI's lower levels map onto V4's lowest one with reasoning.
    if (effort == "low" || effort == "medium" || effort == "minimal") effort = "high";
    if (effort != "high" && effort != "max") {
      return Bad("reasoning_effort must be low, medium, high or max", "reasoning_effort");
    }
  }
  // Tools.
  if (body.contains("tools") && !body["tools"].is_null()) {
    if (!body["tools"].is_array()) return Bad("tools must be an array", "tools");
    std::set<std::string> names;
    for (size_t i = 0; i < body["tools"].size(); ++i) {
      const Json& t = body["tools"][i];
      const std::string where = StrCat("tools[", i, "]");
      if (!t.is_object() || t.value("type", "") != "function" || !t.contains("function") ||
          !t["function"].is_object()) {
        return Bad(StrCat(where, " must be {\"type\": \"function\", \"function\": {...}}"), where);
      }
      const Json& f = t["function"];
      if (!f.contains("name") || !f["name"].is_string() || f["name"].get<std::string>().empty()) {
        return Bad(StrCat(where, ".function.name is required"), where + ".function.name");
      }
      const std::string name = f["name"].get<std::string>();
      if (!names.insert(name).second)
        return Bad(StrCat("tool \"", name, "\" is given twice"), where);
      if (f.contains("parameters") &&
          (!f["parameters"].is_object() || f["parameters"].value("type", "object") != "object")) {
        return Bad(StrCat(where, ".function.parameters must be a JSON Schema object"),
                   where + ".function.parameters");
      }
      r.tools.push_back(OrderedJson::parse(DumpJson(t)));
    }
  }
  if (body.contains("tool_choice") && !body["tool_choice"].is_null()) {
    const Json& c = body["tool_choice"];
    if (c == "none") {
      r.tools = OrderedJson::array();
    } else if (c != "auto") {
      return Bad("tool_choice supports \"auto\" and \"none\"", "tool_choice");
    }
  }
  // Messages.
  if (!body.contains("messages") || !body["messages"].is_array() || body["messages"].empty()) {
    return Bad("messages must be a non-empty array", "messages");
  }
  dsml::Conversation& conv = r.conversation;
  conv.thinking_mode = r.thinking ? dsml::ThinkingMode::kThinking : dsml::ThinkingMode::kChat;
  conv.reasoning_effort = effort == "max" ? "max" : "";
  conv.drop_thinking = true;
  bool tools_placed = r.tools.empty();
  const Json& msgs = body["messages"];
  if (!tools_placed && msgs[0].value("role", "") != "system") {
    conv.messages.push_back(OrderedJson{{"role", "system"}, {"content", ""}, {"tools", r.tools}});
    tools_placed = true;
  }
  for (size_t i = 0; i < msgs.size(); ++i) {
    const Json& m = msgs[i];
    const std::string where = StrCat("messages[", i, "]");
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string()) {
      return Bad(StrCat(where, " must be an object with a role"), where);
    }
    std::string role = m["role"].get<std::string>();
    if (role == "developer") role = "system";
    if (role != "system" && role != "user" && role != "assistant" && role != "tool") {
      return Bad(StrCat(where, ".role \"", role, "\" is not system, user, assistant or tool"),
                 where + ".role");
    }
    auto content = ContentText(m.contains("content") ? m["content"] : Json());
    if (!content) {
      return Bad(StrCat(where, ".content must be a string or text parts"), where + ".content");
    }
    OrderedJson out{{"role", role}, {"content", *content}};
    if (role == "system" && !tools_placed) {
      out["tools"] = r.tools;
      tools_placed = true;
    }
    if (role == "assistant") {
      if (m.contains("reasoning_content") && m["reasoning_content"].is_string()) {
        out["reasoning_content"] = m["reasoning_content"];
      }
      if (m.contains("tool_calls") && !m["tool_calls"].is_null()) {
        if (!m["tool_calls"].is_array()) {
          return Bad(StrCat(where, ".tool_calls must be an array"), where + ".tool_calls");
        }
        out["tool_calls"] = OrderedJson::array();
        for (const Json& c : m["tool_calls"]) {
          if (!c.is_object() || !c.contains("function") || !c["function"].is_object() ||
              !c["function"].contains("name") || !c["function"]["name"].is_string()) {
            return Bad(StrCat(where, ".tool_calls entries need function.name"),
                       where + ".tool_calls");
          }
          const Json& f = c["function"];
          std::string args = "{}";
          if (f.contains("arguments")) {
            args = f["arguments"].is_string() ? f["arguments"].get<std::string>()
                                              : DumpJson(f["arguments"]);
          }
          out["tool_calls"].push_back(OrderedJson{
              {"id", c.value("id", std::string())},
              {"type", "function"},
              {"function", {{"name", f["name"].get<std::string>()}, {"arguments", args}}}});
        }
      }
      if (raw_for) {
        if (std::string raw = raw_for(out); !raw.empty()) out["raw"] = raw;
      }
    }
    if (role == "tool") {
      if (!m.contains("tool_call_id") || !m["tool_call_id"].is_string()) {
        return Bad(StrCat(where, ".tool_call_id is required for tool messages"),
                   where + ".tool_call_id");
      }
      out["tool_call_id"] = m["tool_call_id"];
    }
    conv.messages.push_back(std::move(out));
  }
  if (Status s = dsml::ValidateConversation(conv, "messages"); !s.ok()) {
    return Bad(std::string(s.message()), "messages");
  }
  return r;
}

std::variant<TextRequest, ApiError> ParseTextRequest(const Json& body, int64_t vocab_size) {
  if (!body.is_object()) return Bad("the request body must be a JSON object");
  static const std::set<std::string> kSupported = {
      "model", "prompt", "max_tokens", "temperature", "top_p", "stop", "seed", "n", "stream",
      "stream_options", "echo",
      // Accepted and without effect here.
      "user", "frequency_penalty", "presence_penalty", "best_of", "logprobs", "suffix"};
  for (const auto& [k, v] : body.items()) {
    if (!kSupported.count(k)) {
      return Bad(StrCat("Unrecognized request argument supplied: ", k), k, "unrecognized_argument");
    }
  }
  TextRequest r;
  r.max_tokens = 16;  // OpenAI's default for this route
  if (auto e = ParseGeneration(body, &r)) return *e;
  for (const char* key : {"logprobs", "suffix"}) {
    if (body.contains(key) && !body[key].is_null()) {
      return Bad(StrCat(key, " is not supported"), key);
    }
  }
  if (body.contains("best_of") && !body["best_of"].is_null() && body["best_of"] != 1) {
    return Bad("only best_of = 1 is supported", "best_of");
  }
  if (body.contains("echo") && !body["echo"].is_null()) {
    if (!body["echo"].is_boolean()) return Bad("echo must be a boolean", "echo");
    r.echo = body["echo"].get<bool>();
  }
  if (!body.contains("prompt") || body["prompt"].is_null()) {
    return Bad("you must provide a prompt", "prompt");
  }
  Json prompt = body["prompt"];
  // One prompt: a string, a list of token ids, or a list holding exactly one of either.
  if (prompt.is_array() && prompt.size() == 1 && (prompt[0].is_string() || prompt[0].is_array())) {
    prompt = Json(prompt[0]);
  }
  if (prompt.is_string()) {
    r.text = prompt.get<std::string>();
    if (r.text.empty()) return Bad("the prompt is empty", "prompt");
    return r;
  }
  if (!prompt.is_array() || prompt.empty()) {
    return Bad("prompt must be a string or a non-empty list of token ids (one prompt per request)",
               "prompt");
  }
  for (size_t i = 0; i < prompt.size(); ++i) {
    const Json& t = prompt[i];
    if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() >= vocab_size) {
      return Bad(StrCat("prompt[", i, "] is not a token id in [0, ", vocab_size,
                        ") (one prompt per request: a string or a list of token ids)"),
                 "prompt");
    }
    r.ids.push_back(static_cast<int32_t>(t.get<int64_t>()));
  }
  return r;
}

}  // namespace v4agent::server
