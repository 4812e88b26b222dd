#include "dsml/stream_parser.h"

#include <algorithm>

#include "common/strings.h"
#include "dsml/markers.h"

namespace v4agent::dsml {
namespace {

bool IsWs(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

// Length of the longest suffix of s[from:] that is a proper prefix of one of the markers: the
// bytes that must wait for more input before they can be called text.
size_t PartialSuffix(std::string_view s, size_t from, std::initializer_list<std::string_view> ms) {
  size_t best = 0;
  for (std::string_view m : ms) {
    const size_t max_len = std::min(m.size() - 1, s.size() - from);
    for (size_t len = max_len; len > best; --len) {
      if (s.substr(s.size() - len) == m.substr(0, len)) {
        best = len;
        break;
      }
    }
  }
  return best;
}

bool StartsWith(std::string_view s, size_t at, std::string_view prefix) {
  return s.size() - at >= prefix.size() && s.compare(at, prefix.size(), prefix) == 0;
}

// True when s[at:] could still grow into `prefix` (it is a prefix of it).
bool CouldStartWith(std::string_view s, size_t at, std::string_view prefix) {
  const size_t n = std::min(prefix.size(), s.size() - at);
  return s.compare(at, n, prefix.substr(0, n)) == 0;
}

// Parses ` name="X"` style attributes; false when malformed.
bool ParseAttr(std::string_view& s, std::string_view key, std::string* value) {
  size_t i = 0;
  while (i < s.size() && IsWs(s[i])) ++i;
  if (s.substr(i, key.size()) != key) return false;
  i += key.size();
  if (s.substr(i, 2) != "=\"") return false;
  i += 2;
  const size_t end = s.find('"', i);
  if (end == std::string_view::npos) return false;
  *value = std::string(s.substr(i, end - i));
  s.remove_prefix(end + 1);
  return true;
}

bool OnlyWs(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return IsWs(c); });
}

}  // namespace

const char* EventKindName(EventKind kind) {
  switch (kind) {
    case EventKind::kReasoningDelta:
      return "reasoning_delta";
    case EventKind::kContentDelta:
      return "content_delta";
    case EventKind::kToolCallBegin:
      return "tool_call_begin";
    case EventKind::kParameterBegin:
      return "parameter_begin";
    case EventKind::kValueDelta:
      return "value_delta";
    case EventKind::kParameterEnd:
      return "parameter_end";
    case EventKind::kToolCallEnd:
      return "tool_call_end";
    case EventKind::kError:
      return "error";
    case EventKind::kMessageEnd:
      return "message_end";
  }
  return "unknown";
}

Json EventToJson(const Event& e) {
  Json j{{"event", EventKindName(e.kind)}};
  switch (e.kind) {
    case EventKind::kReasoningDelta:
    case EventKind::kContentDelta:
    case EventKind::kValueDelta:
      j["text"] = e.text;
      break;
    case EventKind::kToolCallBegin:
      j["index"] = e.call_index;
      j["name"] = e.text;
      break;
    case EventKind::kParameterBegin:
      j["index"] = e.call_index;
      j["name"] = e.text;
      j["string"] = e.is_string;
      break;
    case EventKind::kParameterEnd:
      j["index"] = e.call_index;
      break;
    case EventKind::kToolCallEnd:
      j["index"] = e.call_index;
      j["name"] = e.text;
      j["arguments"] = e.arguments;
      j["raw"] = e.raw;
      j["valid"] = e.valid;
      break;
    case EventKind::kError:
      j["message"] = e.text;
      break;
    case EventKind::kMessageEnd:
      j["finish_reason"] = e.text;
      break;
  }
  return j;
}

StreamParser::StreamParser(ThinkingMode mode, const OrderedJson* tools)
    : tools_(tools),
      state_(mode == ThinkingMode::kThinking ? State::kReasoning : State::kContent) {}

void StreamParser::Feed(std::string_view chunk, std::vector<Event>* events) {
  if (finished_) return;
  buf_.append(chunk);
  Run(events);
}

void StreamParser::Finish(std::vector<Event>* events) {
  if (finished_) return;
  finished_ = true;
  Run(events);
  switch (state_) {
    case State::kBlock:
    case State::kInvoke:
    case State::kValue:
      if (!call_name_.empty()) {
        Error(StrCat("the output ended inside the call to \"", call_name_,
                     "\"; it was not run. Write the whole call, ending with </｜DSML｜invoke>"),
              events);
      } else if (state_ != State::kBlock) {
        Error("the output ended inside a tool call; it was not run", events);
      }
      break;
    default:
      break;
  }
  if (state_ != State::kDone) finish_reason_ = "length";
  state_ = State::kDone;
  events->push_back(Event{EventKind::kMessageEnd, finish_reason_});
}

void StreamParser::Error(std::string message, std::vector<Event>* events) {
  events->push_back(Event{EventKind::kError, std::move(message)});
}

void StreamParser::Run(std::vector<Event>* events) {
  bool progress = true;
  while (progress && state_ != State::kDone) {
    switch (state_) {
      case State::kReasoning:
      case State::kContent:
        progress = StepText(events);
        break;
      case State::kBlock:
        progress = StepBlock(events);
        break;
      case State::kInvoke:
        progress = StepInvoke(events);
        break;
      case State::kValue:
        progress = StepValue(events);
        break;
      case State::kAfterBlock:
        progress = StepAfterBlock(events);
        break;
      case State::kDone:
        progress = false;
        break;
    }
  }
  if (state_ == State::kDone) {
    buf_.clear();  // whatever follows EOS is not part of the message
    pos_ = 0;
  } else if (pos_ > 4096 && pos_ * 2 > buf_.size() && call_name_.empty()) {
    buf_.erase(0, pos_);  // keep memory bounded on long outputs
    pos_ = 0;
  }
}

bool StreamParser::StepText(std::vector<Event>* events) {
  const bool reasoning = state_ == State::kReasoning;
  const EventKind kind = reasoning ? EventKind::kReasoningDelta : EventKind::kContentDelta;
  std::initializer_list<std::string_view> markers = {kThinkEnd, kToolCallsOpen, kEos, kThinkStart};
  size_t best = std::string::npos;
  std::string_view which;
  for (std::string_view m : markers) {
    const size_t p = buf_.find(m, pos_);
    if (p < best) {
      best = p;
      which = m;
    }
  }
  auto emit = [&](std::string_view text) {
    if (text.empty()) return;
    if (!reasoning && !OnlyWs(text)) any_content_ = true;
    if (!events->empty() && events->back().kind == kind) {
      events->back().text += text;
    } else {
      events->push_back(Event{kind, std::string(text)});
    }
  };
  if (best == std::string::npos) {
    size_t end = buf_.size();
    if (!finished_) {
      end -= PartialSuffix(buf_, pos_, markers);
      // Whitespace right before a tool block is the block's separator, not text: hold it.
      while (end > pos_ && IsWs(buf_[end - 1])) --end;
    }
    emit(std::string_view(buf_).substr(pos_, end - pos_));
    pos_ = end;
    return false;
  }
  std::string_view text = std::string_view(buf_).substr(pos_, best - pos_);
  if (which == kToolCallsOpen) {
    while (!text.empty() && IsWs(text.back())) text.remove_suffix(1);
  }
  emit(text);
  pos_ = best + which.size();
  if (which == kThinkEnd) {
    // Reasoning ends; a stray </think> inside content is dropped.
    state_ = State::kContent;
  } else if (which == kThinkStart) {
    // A chat-mode answer that opens with <think> is reasoning; later ones are stray.
    if (!reasoning && !any_content_) state_ = State::kReasoning;
  } else if (which == kToolCallsOpen) {
    state_ = State::kBlock;
  } else {
    finish_reason_ = "stop";
    state_ = State::kDone;
  }
  return true;
}

bool StreamParser::SkipJunk(std::string_view where, std::vector<Event>* events) {
  // Text where only tags may stand: report once, skip to the next DSML tag (or EOS).
  size_t next = std::string::npos;
  for (std::string_view m : {kDsmlOpenTag, kDsmlCloseTag, kEos}) {
    next = std::min(next, buf_.find(m, pos_ + 1));
  }
  if (StartsWith(buf_, pos_, kParameterClose)) {
    next = pos_ + kParameterClose.size();  // a closing tag with nothing open
  }
  if (next == std::string::npos && !finished_) return false;
  if (!junk_reported_) {
    std::string junk = buf_.substr(pos_, std::min<size_t>(40, next - pos_));
    Error(StrCat("unexpected text ", DumpJson(Json(junk)), " ", where,
                 "; only DSML tags may appear there"),
          events);
    junk_reported_ = true;
  }
  pos_ = next == std::string::npos ? buf_.size() : next;
  return next != std::string::npos;
}

bool StreamParser::StepBlock(std::vector<Event>* events) {
  while (pos_ < buf_.size() && IsWs(buf_[pos_])) ++pos_;
  if (pos_ == buf_.size()) return false;
  if (StartsWith(buf_, pos_, kToolCallsClose)) {
    pos_ += kToolCallsClose.size();
    state_ = State::kAfterBlock;
    return true;
  }
  if (StartsWith(buf_, pos_, kEos)) {
    pos_ += kEos.size();
    finish_reason_ = "stop";
    state_ = State::kDone;
    return true;
  }
  if (StartsWith(buf_, pos_, kInvokeOpen)) {
    const size_t close = buf_.find('>', pos_ + kInvokeOpen.size());
    if (close == std::string::npos) return false;
    std::string_view header =
        std::string_view(buf_).substr(pos_ + kInvokeOpen.size(), close - pos_ - kInvokeOpen.size());
    std::string name;
    if (!ParseAttr(header, "name", &name) || !OnlyWs(header) || name.empty()) {
      // Skip the whole invoke (its body cannot be attributed to a tool); decide only once its
      // end is in the buffer so every chunking reports the same thing.
      const size_t end = buf_.find(kInvokeClose, close + 1);
      if (end == std::string::npos && !finished_) return false;
      Error(StrCat("malformed invoke tag ", DumpJson(Json(buf_.substr(pos_, close + 1 - pos_))),
                   "; write <｜DSML｜invoke name=\"TOOL\">"),
            events);
      call_name_.clear();
      pos_ = end == std::string::npos ? buf_.size() : end + kInvokeClose.size();
      return end != std::string::npos;
    }
    call_start_ = pos_;
    call_name_ = name;
    params_.clear();
    junk_reported_ = false;
    events->push_back(Event{EventKind::kToolCallBegin, name, calls_});
    pos_ = close + 1;
    state_ = State::kInvoke;
    return true;
  }
  if (!finished_ &&
      (CouldStartWith(buf_, pos_, kInvokeOpen) || CouldStartWith(buf_, pos_, kToolCallsClose) ||
       CouldStartWith(buf_, pos_, kEos))) {
    return false;
  }
  return SkipJunk("inside <｜DSML｜tool_calls>", events);
}

bool StreamParser::StepInvoke(std::vector<Event>* events) {
  while (pos_ < buf_.size() && IsWs(buf_[pos_])) ++pos_;
  if (pos_ == buf_.size()) return false;
  if (StartsWith(buf_, pos_, kInvokeClose)) {
    pos_ += kInvokeClose.size();
    EndCall(events);
    state_ = State::kBlock;
    return true;
  }
  if (StartsWith(buf_, pos_, kToolCallsClose) || StartsWith(buf_, pos_, kInvokeOpen)) {
    Error(StrCat("the call to \"", call_name_, "\" is missing </｜DSML｜invoke>"), events);
    EndCall(events);
    state_ = State::kBlock;
    return true;
  }
  if (StartsWith(buf_, pos_, kEos)) {
    state_ = State::kBlock;  // Finish/EOS handling reports the unfinished call
    Error(
        StrCat("the call to \"", call_name_, "\" ended without </｜DSML｜invoke>; it was not run"),
        events);
    call_name_.clear();
    return true;
  }
  if (StartsWith(buf_, pos_, kParameterOpen)) {
    const size_t close = buf_.find('>', pos_ + kParameterOpen.size());
    if (close == std::string::npos) return false;
    std::string_view header = std::string_view(buf_).substr(pos_ + kParameterOpen.size(),
                                                            close - pos_ - kParameterOpen.size());
    std::string name, flag;
    if (!ParseAttr(header, "name", &name) || !ParseAttr(header, "string", &flag) ||
        !OnlyWs(header) || (flag != "true" && flag != "false")) {
      const size_t end = buf_.find(kDsmlCloseTag, close + 1);
      if (!finished_ && (end == std::string::npos || buf_.size() - end < kParameterClose.size())) {
        return false;  // decide once the value's end (and its closing tag) is in the buffer
      }
      Error(StrCat("malformed parameter tag ", DumpJson(Json(buf_.substr(pos_, close + 1 - pos_))),
                   "; write <｜DSML｜parameter name=\"NAME\" string=\"true|false\">"),
            events);
      if (end == std::string::npos) {
        pos_ = buf_.size();
        return false;
      }
      pos_ = end;
      if (StartsWith(buf_, pos_, kParameterClose)) pos_ += kParameterClose.size();
      params_.push_back(
          ParsedParameter{"", true, "", DecodedValue{false, {}, "\"\"", "malformed"}});
      return true;
    }
    ParsedParameter p;
    p.name = name;
    p.is_string = flag == "true";
    params_.push_back(std::move(p));
    events->push_back(Event{EventKind::kParameterBegin, name, calls_, flag == "true"});
    pos_ = close + 1;
    state_ = State::kValue;
    return true;
  }
  if (!finished_ &&
      (CouldStartWith(buf_, pos_, kParameterOpen) || CouldStartWith(buf_, pos_, kInvokeClose) ||
       CouldStartWith(buf_, pos_, kToolCallsClose) || CouldStartWith(buf_, pos_, kEos))) {
    return false;
  }
  return SkipJunk(StrCat("inside the call to \"", call_name_, "\""), events);
}

bool StreamParser::StepValue(std::vector<Event>* events) {
  ParsedParameter& p = params_.back();
  const size_t close = buf_.find(kDsmlCloseTag, pos_);
  const size_t eos = buf_.find(kEos, pos_);
  const size_t end = std::min(close, eos);
  auto stream = [&](size_t upto) {
    if (upto <= pos_) return;
    std::string_view piece = std::string_view(buf_).substr(pos_, upto - pos_);
    p.raw.append(piece);
    if (p.is_string) {
      if (!events->empty() && events->back().kind == EventKind::kValueDelta) {
        events->back().text += piece;
      } else {
        events->push_back(Event{EventKind::kValueDelta, std::string(piece), calls_});
      }
    }
    pos_ = upto;
  };
  if (end == std::string::npos) {
    if (finished_) {
      stream(buf_.size());
    } else {
      stream(buf_.size() - PartialSuffix(buf_, pos_, {kDsmlCloseTag, kEos}));
    }
    return false;
  }
  stream(end);
  if (end == eos && eos < close) {
    Error(StrCat("the output ended inside parameter \"", p.name, "\" of \"", call_name_,
                 "\"; the call was not run"),
          events);
    call_name_.clear();
    pos_ += kEos.size();
    finish_reason_ = "stop";
    state_ = State::kDone;
    return true;
  }
  p.decoded = DecodeValue(p.raw, p.is_string);
  if (!p.is_string && p.decoded.ok) {
    events->push_back(Event{EventKind::kValueDelta, p.decoded.json_text, calls_});
  }
  events->push_back(Event{EventKind::kParameterEnd, "", calls_});
  if (StartsWith(buf_, pos_, kParameterClose)) {
    pos_ += kParameterClose.size();
  } else if (!finished_ && CouldStartWith(buf_, pos_, kParameterClose)) {
    // Wait for the whole closing tag (the value itself is complete either way).
    events->pop_back();
    if (!p.is_string && p.decoded.ok) events->pop_back();
    return false;
  } else {
    Error(StrCat("parameter \"", p.name, "\" of \"", call_name_,
                 "\" is missing </｜DSML｜parameter>"),
          events);
  }
  state_ = State::kInvoke;
  return true;
}

void StreamParser::EndCall(std::vector<Event>* events) {
  Event e{EventKind::kToolCallEnd, call_name_, calls_};
  e.raw = buf_.substr(call_start_, pos_ - call_start_);
  std::vector<std::string> problems = CheckCall(tools_, call_name_, params_, &e.arguments);
  e.valid = problems.empty();
  for (auto& m : problems) Error(std::move(m), events);
  events->push_back(std::move(e));
  ++calls_;
  call_name_.clear();
  params_.clear();
}

bool StreamParser::StepAfterBlock(std::vector<Event>* events) {
  (void)events;
  const size_t eos = buf_.find(kEos, pos_);
  if (eos == std::string::npos) {
    // Text after the block is dropped (DeepSeek's recipe does the same); keep only what could
    // still be the start of EOS.
    pos_ = finished_ ? buf_.size() : buf_.size() - PartialSuffix(buf_, pos_, {kEos});
    return false;
  }
  pos_ = eos + kEos.size();
  finish_reason_ = "stop";
  state_ = State::kDone;
  return true;
}

ParsedMessage ParseCompletion(std::string_view text, ThinkingMode mode, const OrderedJson* tools) {
  StreamParser parser(mode, tools);
  std::vector<Event> events;
  parser.Feed(text, &events);
  parser.Finish(&events);
  ParsedMessage m;
  std::string call_name;
  for (const Event& e : events) {
    switch (e.kind) {
      case EventKind::kReasoningDelta:
        m.reasoning_content += e.text;
        break;
      case EventKind::kContentDelta:
        m.content += e.text;
        break;
      case EventKind::kToolCallBegin:
        call_name = e.text;
        break;
      case EventKind::kToolCallEnd:
        call_name.clear();
        if (e.valid) m.tool_calls.push_back(ParsedCall{e.text, e.arguments, e.raw});
        break;
      case EventKind::kError:
        m.errors.push_back(e.text);
        break;
      case EventKind::kMessageEnd:
        m.finish_reason = e.text;
        if (!call_name.empty()) ++m.incomplete_calls;
        break;
      default:
        break;
    }
  }
  return m;
}

OrderedJson ParsedMessageToJson(const ParsedMessage& message) {
  OrderedJson j;
  j["role"] = "assistant";
  j["reasoning_content"] = message.reasoning_content;
  j["content"] = message.content;
  j["tool_calls"] = OrderedJson::array();
  for (size_t i = 0; i < message.tool_calls.size(); ++i) {
    const ParsedCall& c = message.tool_calls[i];
    OrderedJson call;
    call["id"] = StrCat("call_", i);
    call["type"] = "function";
    call["function"] = OrderedJson{{"name", c.name}, {"arguments", c.arguments}};
    j["tool_calls"].push_back(std::move(call));
  }
  j["finish_reason"] = message.finish_reason;
  j["errors"] = message.errors;
  if (message.incomplete_calls > 0) j["incomplete_calls"] = message.incomplete_calls;
  return j;
}

}  // namespace v4agent::dsml
