// ModelClient: the one interface the agent loop uses to get a completion, whatever serves the
// model (in-process engine, an OpenAI-compatible HTTP endpoint, or a scripted test double).
// Owns the chat-level message/tool-call structs; never executes tools or touches the workspace.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/status.h"

namespace v4agent::agent {

struct ToolCall {
  std::string id;
  std::string name;
  std::string arguments;  // JSON object text exactly as the model produced it
};

struct ChatMessage {
  std::string role;  // system | user | assistant | tool
  std::string content;
  std::string reasoning_content;  // assistant thinking, sent back on later turns
  std::vector<ToolCall> tool_calls;
  std::string tool_call_id;  // role == tool
  // Assistant: the model's exact output bytes when known; renderers put these back into the
  // prompt verbatim so the in-process cache is only ever extended.
  std::string raw;
};

struct ToolSpec {
  std::string name;
  std::string description;
  Json parameters = Json::object();  // JSON Schema
  bool read_only = false;            // no side effects: the loop may run several such calls at once
};

struct CompletionRequest {
  std::vector<ChatMessage> messages;
  std::vector<ToolSpec> tools;
  bool thinking = true;
  std::string effort = "high";
  int max_tokens = 4096;
};

struct Completion {
  std::string content;
  std::string reasoning_content;
  std::vector<ToolCall> tool_calls;
  std::string finish_reason;
  // Non-empty when the output could not be parsed into well-formed calls: the parser's
  // model-facing message, sent back so the model can correct itself.
  std::string format_error;
  // The raw model output as it goes back into history (in-process: the decoded bytes).
  std::string raw;
  int64_t tokens_prefilled = 0;   // prompt tokens computed this turn
  int64_t tokens_reused = 0;      // prompt tokens served from a cache
  int64_t tokens_from_store = 0;  // of tokens_reused: loaded from the on-disk prefix store
  int64_t tokens_generated = 0;
  int64_t context_tokens = 0;  // total tokens in context after this turn (0 when unknown)
  double seconds_prefill = 0;
  double seconds_generate = 0;
  // In-process only: where this turn's append started (after any rewind) and the ids it
  // appended, so a resumed run rebuilds the cache once instead of re-rendering history.
  int64_t cache_start_tokens = -1;
  int64_t cache_start_text = -1;
  std::string prompt_delta;
  std::vector<int32_t> prompt_ids;
  std::vector<int32_t> output_ids;
};

// Streaming pieces as they arrive; kind is "content", "reasoning" or "tool_call".
struct CompletionDelta {
  std::string kind;
  std::string text;
};
using DeltaCallback = std::function<void(const CompletionDelta&)>;

class ModelClient {
 public:
  virtual ~ModelClient() = default;
  virtual std::string Name() const = 0;
  // A failure here ends the run with status model_error; implementations retry where it
  // makes sense before returning one.
  virtual Result<Completion> Complete(const CompletionRequest& request,
                                      const DeltaCallback& on_delta) = 0;
};

Json ToolCallToJson(const ToolCall& call);
Result<ToolCall> ToolCallFromJson(const Json& j, std::string_view source);
Json ChatMessageToJson(const ChatMessage& message);
Result<ChatMessage> ChatMessageFromJson(const Json& j, std::string_view source);
Json CompletionToJson(const Completion& completion);
Result<Completion> CompletionFromJson(const Json& j, std::string_view source);

}  // namespace v4agent::agent
