// Streaming parser for V4 model output: reasoning, content and DSML tool calls, fed in chunks
// of any size (spec §8). The events for a given text are the same however it is chunked (after
// joining adjacent deltas of one kind). Malformed output never crashes and never loses bytes:
// each problem becomes an error event with a message for the model, and every call keeps its
// raw bytes for replay into the next prompt. Lenient where the reference is strict (missing
// </think> before a tool block, no blank line before it, whitespace between tags).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/json.h"
#include "dsml/conversation.h"
#include "dsml/value_decoder.h"

namespace v4agent::dsml {

enum class EventKind {
  kReasoningDelta,  // text
  kContentDelta,    // text
  kToolCallBegin,   // name, call_index
  kParameterBegin,  // name, is_string, call_index
  kValueDelta,      // text (string values stream; JSON values arrive whole at the end)
  kParameterEnd,    // call_index
  kToolCallEnd,     // name, arguments, raw, valid, call_index
  kError,           // text: a message for the model
  kMessageEnd,      // text: finish reason, "stop" (EOS seen) or "length"
};

struct Event {
  EventKind kind;
  std::string text;
  int call_index = -1;
  bool is_string = true;
  std::string arguments;
  std::string raw;
  bool valid = true;
};

const char* EventKindName(EventKind kind);
Json EventToJson(const Event& e);

class StreamParser {
 public:
  // `tools`: the OpenAI tools array the calls are checked against (null: no schema checks);
  // it must outlive the parser.
  StreamParser(ThinkingMode mode, const OrderedJson* tools);

  void Feed(std::string_view chunk, std::vector<Event>* events);
  // End of output: flushes held-back text, reports an unfinished call, emits kMessageEnd.
  void Finish(std::vector<Event>* events);

 private:
  enum class State { kReasoning, kContent, kBlock, kInvoke, kValue, kAfterBlock, kDone };
  void Run(std::vector<Event>* events);
  bool StepText(std::vector<Event>* events);
  bool StepBlock(std::vector<Event>* events);
  bool StepInvoke(std::vector<Event>* events);
  bool StepValue(std::vector<Event>* events);
  bool StepAfterBlock(std::vector<Event>* events);
  bool SkipJunk(std::string_view where, std::vector<Event>* events);
  void EndCall(std::vector<Event>* events);
  void Error(std::string message, std::vector<Event>* events);

  const OrderedJson* tools_;
  State state_;
  std::string buf_;
  size_t pos_ = 0;
  bool finished_ = false;
  bool any_content_ = false;  // non-whitespace content emitted (a later <think> is stray)
  std::string finish_reason_;
  // The call being parsed.
  int calls_ = 0;
  std::string call_name_;
  size_t call_start_ = 0;
  std::vector<ParsedParameter> params_;
  bool junk_reported_ = false;
};

struct ParsedCall {
  std::string name;
  std::string arguments;  // JSON object text
  std::string raw;        // the invoke element's exact bytes
};

// The whole completion at once, in the reference's message shape.
struct ParsedMessage {
  std::string reasoning_content;
  std::string content;
  std::vector<ParsedCall> tool_calls;  // valid calls only
  std::vector<std::string> errors;     // for the model; empty when the output is well formed
  int incomplete_calls = 0;            // calls cut off by the end of output (never executed)
  std::string finish_reason;           // "stop" or "length"
};

ParsedMessage ParseCompletion(std::string_view text, ThinkingMode mode, const OrderedJson* tools);
// {"role": "assistant", "reasoning_content", "content", "tool_calls": [{"id", "type",
// "function": {"name", "arguments"}}]} plus "finish_reason" and "errors".
OrderedJson ParsedMessageToJson(const ParsedMessage& message);

}  // namespace v4agent::dsml
