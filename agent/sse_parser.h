// SseParser: incremental text/event-stream decoder (WHATWG event-stream framing) fed with the
// HTTP body in arbitrary chunk sizes. Owns only framing; never interprets the event payloads.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace v4agent::agent {

struct SseEvent {
  std::string event;  // "message" when the stream names none
  std::string data;   // data: lines joined with '\n'
};

class SseParser {
 public:
  // Appends bytes; returns the events completed by them (a blank line ends an event).
  std::vector<SseEvent> Feed(std::string_view bytes);
  // True when bytes of an unfinished line or event are buffered.
  bool HasPartial() const { return !line_.empty() || has_data_; }

 private:
  void ProcessLine(std::string_view line, std::vector<SseEvent>& out);

  std::string line_;
  std::string event_;
  std::string data_;
  bool has_data_ = false;
  bool last_was_cr_ = false;
};

}  // namespace v4agent::agent
