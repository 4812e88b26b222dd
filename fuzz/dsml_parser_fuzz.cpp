// libFuzzer target: the DSML stream parser on any bytes, in both thinking modes, never
// crashes, always ends with message_end, and gives the same events fed whole or split in two
// at a point taken from the input.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "dsml/stream_parser.h"

namespace {

using namespace v4agent;
using namespace v4agent::dsml;

std::string Events(std::string_view text, size_t cut, ThinkingMode mode, const OrderedJson* tools) {
  StreamParser p(mode, tools);
  std::vector<Event> events;
  p.Feed(text.substr(0, cut), &events);
  p.Feed(text.substr(cut), &events);
  p.Finish(&events);
  if (events.empty() || events.back().kind != EventKind::kMessageEnd) std::abort();
  std::string out;
  EventKind last = EventKind::kMessageEnd;
  for (const Event& e : events) {
    const bool delta = e.kind == EventKind::kReasoningDelta || e.kind == EventKind::kContentDelta ||
                       e.kind == EventKind::kValueDelta;
    if (delta && e.kind == last) {
      out += e.text;  // adjacent deltas of one kind join
    } else {
      out += "\n" + DumpJson(EventToJson(e));
    }
    last = e.kind;
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const OrderedJson tools = OrderedJson::parse(
      R"([{"type": "function", "function": {"name": "f", "parameters": {"type": "object",
          "properties": {"a": {"type": "string"}, "n": {"type": "integer"}}, "required": ["a"]}}}])");
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const size_t cut = size == 0 ? 0 : data[0] % (size + 1);
  for (ThinkingMode mode : {ThinkingMode::kThinking, ThinkingMode::kChat}) {
    if (Events(text, cut, mode, &tools) != Events(text, size, mode, &tools)) std::abort();
  }
  return 0;
}
