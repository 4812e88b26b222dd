// The `stop` strings of a completion request, watched over the text as it is generated: text
// is released for streaming only once no stop string can start inside it, so a client never
// sees a stop string or a piece of one, streamed or not. Knows nothing of tokens or HTTP.
#pragma once

#include <string>
#include <vector>

namespace v4agent::server {

class StopStrings {
 public:
  explicit StopStrings(std::vector<std::string> stops) : stops_(std::move(stops)) {}
  // Adds generated text; returns what may be shown now (nothing past a stop string).
  std::string Feed(const std::string& piece);
  // What was held back, at the end of a generation that hit no stop string.
  std::string Flush();
  bool hit() const { return at_ != std::string::npos; }
  size_t at() const { return at_; }  // where the first stop string starts in the text
  const std::string& text() const { return text_; }

 private:
  std::vector<std::string> stops_;
  std::string text_;
  size_t released_ = 0;
  size_t at_ = std::string::npos;
};

}  // namespace v4agent::server
