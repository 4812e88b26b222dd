#include "server/stop_strings.h"

#include <algorithm>

namespace v4agent::server {

std::string StopStrings::Feed(const std::string& piece) {
  if (hit()) return "";
  text_ += piece;
  size_t longest = 0;
  for (const auto& s : stops_) longest = std::max(longest, s.size());
  // A stop string that ends in the new text starts at most longest - 1 bytes before it.
  const size_t from = text_.size() - piece.size();
  const size_t search = from >= longest ? from - longest + 1 : 0;
  for (const auto& s : stops_) {
    const size_t at = text_.find(s, search);
    if (at != std::string::npos) at_ = std::min(at_, at);
  }
  size_t end = text_.size();
  if (hit()) {
    end = at_;
  } else {
    // Hold back the longest tail that a stop string begins with.
    for (const auto& s : stops_) {
      for (size_t n = std::min(s.size() - 1, text_.size()); n > 0; --n) {
        if (text_.compare(text_.size() - n, n, s, 0, n) == 0) {
          end = std::min(end, text_.size() - n);
          break;
        }
      }
    }
  }
  if (end <= released_) return "";
  std::string out = text_.substr(released_, end - released_);
  released_ = end;
  return out;
}

std::string StopStrings::Flush() {
  if (hit() || released_ >= text_.size()) return "";
  std::string out = text_.substr(released_);
  released_ = text_.size();
  return out;
}

}  // namespace v4agent::server
