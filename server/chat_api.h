// The OpenAI chat-completions wire format of `v4agent serve`: a request body checked and
// turned into a V4 conversation (messages with reasoning_content, tool calls and results,
// tools on the system message as the reference encoder wants them, thinking and effort as
// DeepSeek's API names them) plus sampling settings; errors as OpenAI shapes them. Pure
// JSON in and out: nothing here runs the model or touches the network.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "dsml/conversation.h"

namespace v4agent::server {

// {"error": {"message", "type", "param", "code"}} with its HTTP status.
struct ApiError {
  int http_status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string param;
  std::string code;
  Json ToJson() const;
};

// What both completion routes take besides the prompt.
struct GenerationParams {
  std::string model;
  int64_t max_tokens = 0;  // 0: up to the context
  double temperature = 1.0;
  double top_p = 1.0;
  std::optional<uint64_t> seed;
  std::vector<std::string> stop;
  bool stream = false;
  bool include_usage = false;
};

struct ChatRequest : GenerationParams {
  dsml::Conversation conversation;
  OrderedJson tools = OrderedJson::array();
  bool thinking = true;
};

// POST /v1/completions: a raw prompt, as text (special tokens such as the chat template's are
// read as such) or as token ids, continued without any template.
struct TextRequest : GenerationParams {
  std::string text;
  std::vector<int32_t> ids;  // used when non-empty
  bool echo = false;         // the prompt's text before the completion
};
std::variant<TextRequest, ApiError> ParseTextRequest(const Json& body, int64_t vocab_size);

// `raw_for`: the raw bytes a kept assistant turn was generated as, found by the message's
// reasoning, content and tool calls (so a client that sends a turn back unchanged gets the
// same prompt text as the cache holds); empty when unknown.
using RawLookup = std::function<std::string(const OrderedJson& assistant_message)>;

std::variant<ChatRequest, ApiError> ParseChatRequest(const Json& body, const RawLookup& raw_for);

// The key a kept assistant turn is found by: its reasoning, content and tool calls.
std::string AssistantKey(const OrderedJson& message);

}  // namespace v4agent::server
