// The conversation the V4 encoder renders: OpenAI-style messages (with the reference's extra
// fields: tools and response_format on system/developer messages, reasoning_content, task,
// wo_eos) plus the render settings. Validates shape and types up front so rendering never
// meets a bad value; errors name the field ("messages[3].tool_calls[0].function.name").
// An assistant message may carry "raw": the exact text the model generated after the
// assistant prefix; the encoder puts it back verbatim so a live KV cache is only extended.
#pragma once

#include <string>
#include <string_view>

#include "common/json.h"
#include "common/status.h"

namespace v4agent::dsml {

enum class ThinkingMode { kChat, kThinking };

// Which checkpoint's effort paragraphs to use (spec §6.2).
enum class EffortTable {
  kPreview,  // V4 Flash/Pro preview: "max" -> TEXT_A, "high" adds nothing
  k0731,     // V4-Flash-0731 and the official recipe: "high" -> TEXT_A, "max" -> TEXT_B
};

struct Conversation {
  OrderedJson messages = OrderedJson::array();
  ThinkingMode thinking_mode = ThinkingMode::kThinking;
  std::string reasoning_effort;  // "" / "none" / "low" / "high" / "max"
  EffortTable effort_table = EffortTable::kPreview;
  bool drop_thinking = true;
  bool add_bos = true;
};

// Reads {"messages": [...], "thinking_mode": "thinking"|"chat", "reasoning_effort":
// null|"high"|"max"|..., "drop_thinking": bool, "effort_table": "preview"|"0731",
// "add_bos": bool} and checks every message. `source` prefixes error messages.
Result<Conversation> ConversationFromJson(const OrderedJson& request, std::string_view source);
// Checks the messages of `c` (ConversationFromJson calls this; call it after editing).
Status ValidateConversation(const Conversation& c, std::string_view source);

const char* ThinkingModeName(ThinkingMode mode);
Result<ThinkingMode> ParseThinkingMode(std::string_view text);

}  // namespace v4agent::dsml
