#include "agent/dsml_renderer.h"

#include "agent/constrained_decoding.h"
#include "common/strings.h"
#include "dsml/markers.h"
#include "dsml/prompt_encoder.h"
#include "dsml/stream_parser.h"

namespace v4agent::agent {

Result<dsml::Conversation> DsmlRenderer::ToConversation(const std::vector<ChatMessage>& messages,
                                                        const std::vector<ToolSpec>& tools,
                                                        bool thinking) const {
  dsml::Conversation c;
  c.thinking_mode = thinking ? dsml::ThinkingMode::kThinking : dsml::ThinkingMode::kChat;
  c.reasoning_effort = options_.effort == "high" || options_.effort == "max" ? options_.effort : "";
  c.effort_table = options_.effort_table;
  c.drop_thinking = options_.drop_thinking;
  const OrderedJson tool_list = ToolsToOpenAI(tools);
  bool tools_placed = tool_list.empty();
  // The reference puts the tools on the first system message (one is made when missing).
  if (!tools_placed && (messages.empty() || messages.front().role != "system")) {
    c.messages.push_back(OrderedJson{{"role", "system"}, {"content", ""}, {"tools", tool_list}});
    tools_placed = true;
  }
  for (const ChatMessage& m : messages) {
    OrderedJson j;
    j["role"] = m.role;
    j["content"] = m.content;
    if (m.role == "system" && !tools_placed) {
      j["tools"] = tool_list;
      tools_placed = true;
    }
    if (m.role == "assistant") {
      if (!m.reasoning_content.empty()) j["reasoning_content"] = m.reasoning_content;
      if (!m.raw.empty()) j["raw"] = m.raw;
      if (!m.tool_calls.empty()) {
        j["tool_calls"] = OrderedJson::array();
        for (const ToolCall& tc : m.tool_calls) {
          j["tool_calls"].push_back(
              OrderedJson{{"id", tc.id},
                          {"type", "function"},
                          {"function", {{"name", tc.name}, {"arguments", tc.arguments}}}});
        }
      }
    }
    if (m.role == "tool") j["tool_call_id"] = m.tool_call_id;
    c.messages.push_back(std::move(j));
  }
  V4_RETURN_IF_ERROR(dsml::ValidateConversation(c, "agent conversation"));
  return c;
}

Result<std::string> DsmlRenderer::Render(const std::vector<ChatMessage>& messages,
                                         const std::vector<ToolSpec>& tools, bool thinking) const {
  V4_ASSIGN_OR_RETURN(dsml::Conversation c, ToConversation(messages, tools, thinking));
  last_tools_ = ToolsToOpenAI(tools);
  last_thinking_ = thinking;
  return dsml::RenderPrompt(c);
}

size_t DsmlRenderer::SharedPrefixLength(const std::vector<ChatMessage>& messages,
                                        const std::vector<ToolSpec>& tools, bool thinking) const {
  std::vector<ChatMessage> system;
  for (const ChatMessage& m : messages) {
    if (m.role != "system") break;
    system.push_back(m);
  }
  if (system.size() == messages.size()) return 0;
  auto full = ToConversation(messages, tools, thinking);
  auto head = ToConversation(system, tools, thinking);
  if (!full.ok() || !head.ok()) return 0;
  auto full_text = dsml::RenderPrompt(*full);
  auto head_text = dsml::RenderPrompt(*head);
  if (!full_text.ok() || !head_text.ok()) return 0;
  const std::string& a = *full_text;
  const std::string& b = *head_text;
  size_t common = 0;
  while (common < a.size() && common < b.size() && a[common] == b[common]) ++common;
  // The split sits on the first user marker, so both pieces start on a special token and
  // encoding them apart gives the ids encoding them together would.
  const size_t at = a.rfind(dsml::kUser, common);
  return at == std::string::npos ? 0 : at;
}

Completion DsmlRenderer::Parse(const std::string& raw) const {
  const OrderedJson* tools =
      last_tools_.is_array() && !last_tools_.empty() ? &last_tools_ : nullptr;
  dsml::ParsedMessage m = dsml::ParseCompletion(
      raw, last_thinking_ ? dsml::ThinkingMode::kThinking : dsml::ThinkingMode::kChat, tools);
  Completion c;
  c.content = m.content;
  c.reasoning_content = m.reasoning_content;
  for (size_t i = 0; i < m.tool_calls.size(); ++i) {
    c.tool_calls.push_back(
        ToolCall{StrCat("call_", i), m.tool_calls[i].name, m.tool_calls[i].arguments});
  }
  c.finish_reason = m.finish_reason == "stop" ? "stop" : "length";
  if (!m.errors.empty()) {
    c.format_error = StrJoin(m.errors, "\n");
    c.tool_calls.clear();  // a flawed turn runs nothing; the model is asked again
  }
  if (m.incomplete_calls > 0 && c.format_error.empty()) {
    c.format_error = "The output ended inside a tool call; it was not run.";
  }
  return c;
}

}  // namespace v4agent::agent
