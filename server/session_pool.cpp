#include "server/session_pool.h"

#include <algorithm>

namespace v4agent::server {

SessionPool::SessionPool(engine::Model* model, engine::SessionOptions options, int max_sessions,
                         TokenBytes token_bytes, std::vector<std::string> split_before)
    : model_(model),
      options_(std::move(options)),
      max_sessions_(std::max(1, max_sessions)),
      token_bytes_(std::move(token_bytes)),
      split_before_(std::move(split_before)) {}

Result<Prepared> SessionPool::Prepare(const std::string& prompt, const Encode& encode) {
  // The kept conversation sharing the longest prefix with the prompt.
  Conversation* best = nullptr;
  size_t best_common = 0;
  for (const auto& c : live_) {
    const size_t limit = std::min(c->text.size(), prompt.size());
    size_t common = 0;
    while (common < limit && c->text[common] == prompt[common]) ++common;
    if (common > best_common) {
      best = c.get();
      best_common = common;
    }
  }
  Prepared p;
  Conversation* use = nullptr;
  if (best != nullptr && best_common == best->text.size()) {
    use = best;  // a pure extension: append in place
  } else if (best != nullptr) {
    // Diverges inside it: keep it for its own client and continue a fork from the last whole
    // token within the shared part.
    const auto cut = std::upper_bound(best->token_end.begin(), best->token_end.end(), best_common);
    const int64_t keep_tokens = cut - best->token_end.begin();
    if (keep_tokens > 0) {
      auto fork = std::make_unique<Conversation>();
      fork->session = best->session->Fork();
      V4_RETURN_IF_ERROR(fork->session->Rewind(keep_tokens));
      fork->token_end.assign(best->token_end.begin(), best->token_end.begin() + keep_tokens);
      fork->text = best->text.substr(0, fork->token_end.back());
      live_.push_back(std::move(fork));
      use = live_.back().get();
    }
  }
  if (use == nullptr) {
    auto fresh = std::make_unique<Conversation>();
    fresh->session = std::make_unique<engine::Session>(model_, options_);
    live_.push_back(std::move(fresh));
    use = live_.back().get();
  }
  use->last_used = ++clock_;
  p.conversation = use;
  p.cached_tokens = use->session->length();
  // The new text in pieces split before each marker: special tokens are atomic, so the ids
  // are the same as for the whole, and each piece's Append leaves a snapshot.
  const std::string_view rest = std::string_view(prompt).substr(use->text.size());
  std::vector<size_t> cuts = {0};
  for (const auto& m : split_before_) {
    for (size_t at = rest.find(m, 1); at != std::string_view::npos; at = rest.find(m, at + 1)) {
      cuts.push_back(at);
    }
  }
  std::sort(cuts.begin(), cuts.end());
  cuts.push_back(rest.size());
  size_t end = use->text.size();
  for (size_t i = 0; i + 1 < cuts.size(); ++i) {
    if (cuts[i + 1] <= cuts[i]) continue;
    const std::vector<int32_t> ids = encode(rest.substr(cuts[i], cuts[i + 1] - cuts[i]));
    if (ids.empty()) continue;
    V4_RETURN_IF_ERROR(use->session->Append(ids));
    p.prefilled_tokens += static_cast<int64_t>(ids.size());
    for (int32_t id : ids) use->token_end.push_back(end += token_bytes_(id));
  }
  use->text = prompt;
  Evict(use);
  return p;
}

void SessionPool::Finish(Conversation* c, const std::vector<int32_t>& generated,
                         const std::string& text) {
  size_t end = c->text.size();
  for (int32_t id : generated) c->token_end.push_back(end += token_bytes_(id));
  c->text += text;
}

void SessionPool::Evict(const Conversation* keep) {
  while (static_cast<int>(live_.size()) > max_sessions_ ||
         (max_bytes_ > 0 && live_.size() > 1 && cached_bytes() > max_bytes_)) {
    auto victim = live_.end();
    for (auto it = live_.begin(); it != live_.end(); ++it) {
      if (it->get() == keep) continue;
      if (victim == live_.end() || (*it)->last_used < (*victim)->last_used) victim = it;
    }
    if (victim == live_.end()) return;
    live_.erase(victim);
  }
}

int64_t SessionPool::cached_bytes() const {
  int64_t total = 0;
  for (const auto& c : live_) {
    total += static_cast<int64_t>(c->session->Stats().cache_bytes.total());
  }
  return total;
}

}  // namespace v4agent::server
