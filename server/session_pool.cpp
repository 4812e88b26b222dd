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

SessionPool::~SessionPool() {
  if (!store_) return;
  for (const auto& c : live_) {
    if (!c->busy) (void)store_->Put(*c->session);  // best effort: the server is going
  }
}

Status SessionPool::set_store_dir(const std::string& dir, uint64_t budget_bytes) {
  engine::PrefixStoreOptions o;
  if (budget_bytes > 0) o.budget_bytes = budget_bytes;
  V4_ASSIGN_OR_RETURN(store_, engine::PrefixStore::Open(dir, model_, o));
  return Status::Ok();
}

size_t SessionPool::stored() const {
  if (!store_) return 0;
  size_t n = 0;
  for (const auto& e : store_->entries()) n += e.usable;
  return n;
}

Conversation* SessionPool::FromStore(const std::string& prompt, const Encode& encode,
                                     int64_t live_tokens) {
  if (!store_) return nullptr;
  const std::vector<int32_t> ids = encode(prompt);
  if (store_->Longest(ids).length <= live_tokens) return nullptr;
  auto taken = store_->Take(model_, ids, options_);
  if (!taken.ok() || taken->session == nullptr) return nullptr;
  auto c = std::make_unique<Conversation>();
  const int64_t n = taken->session->length();
  size_t end = 0;
  for (int64_t i = 0; i < n; ++i) c->token_end.push_back(end += token_bytes_(ids[i]));
  // The stored tokens spell the prompt's first bytes (byte-level BPE); a tokenizer that
  // decoded otherwise would make the text and the cache disagree.
  if (end > prompt.size()) return nullptr;
  c->text = prompt.substr(0, end);
  c->session = std::move(taken->session);
  tokens_from_store_ += n;
  live_.push_back(std::move(c));
  return live_.back().get();
}

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
  int64_t keep_tokens = 0;
  if (best != nullptr) {
    const auto cut = std::upper_bound(best->token_end.begin(), best->token_end.end(), best_common);
    keep_tokens = cut - best->token_end.begin();
  }
  Conversation* stored =
      best_common < prompt.size() ? FromStore(prompt, encode, keep_tokens) : nullptr;
  if (stored != nullptr) {
    best = stored;  // taken for this request alone: extended in place
    best_common = stored->text.size();
    keep_tokens = static_cast<int64_t>(stored->token_end.size());
  }
  V4_ASSIGN_OR_RETURN(
      Conversation * use,
      Place(best, keep_tokens, best != nullptr && best_common == best->text.size()));
  p.conversation = use;
  p.cached_tokens = use->session->length();
  // The new text in pieces split before each marker: special tokens are atomic, so the ids
  // are the same as for the whole, and each piece's end leaves a snapshot.
  const std::string_view rest = std::string_view(prompt).substr(use->text.size());
  std::vector<size_t> cuts = {0};
  for (const auto& m : split_before_) {
    for (size_t at = rest.find(m, 1); at != std::string_view::npos; at = rest.find(m, at + 1)) {
      cuts.push_back(at);
    }
  }
  std::sort(cuts.begin(), cuts.end());
  cuts.push_back(rest.size());
  for (size_t i = 0; i + 1 < cuts.size(); ++i) {
    if (cuts[i + 1] <= cuts[i]) continue;
    Prepared::Piece piece;
    piece.text = std::string(rest.substr(cuts[i], cuts[i + 1] - cuts[i]));
    piece.ids = encode(piece.text);
    p.pending.push_back(std::move(piece));
  }
  Evict();
  return p;
}

Result<Prepared> SessionPool::PrepareIds(std::span<const int32_t> ids,
                                         const std::function<std::string(int32_t)>& token_text) {
  Conversation* best = nullptr;
  size_t best_common = 0;
  for (const auto& c : live_) {
    const auto& tokens = c->session->tokens();
    const size_t limit = std::min(c->token_end.size(), ids.size());
    size_t common = 0;
    while (common < limit && tokens[common] == ids[common]) ++common;
    if (common > best_common) {
      best = c.get();
      best_common = common;
    }
  }
  Prepared p;
  V4_ASSIGN_OR_RETURN(Conversation * use,
                      Place(best, static_cast<int64_t>(best_common),
                            best != nullptr && best_common == best->token_end.size()));
  p.conversation = use;
  p.cached_tokens = use->session->length();
  Prepared::Piece piece;
  piece.ids.assign(ids.begin() + p.cached_tokens, ids.end());
  for (int32_t id : piece.ids) piece.text += token_text(id);
  if (!piece.ids.empty()) p.pending.push_back(std::move(piece));
  Evict();
  return p;
}

Result<Conversation*> SessionPool::Place(Conversation* best, int64_t keep_tokens, bool whole) {
  Conversation* use = nullptr;
  if (best != nullptr && whole && !best->busy &&
      best->session->length() == static_cast<int64_t>(best->token_end.size())) {
    use = best;  // a pure extension of an idle conversation: append in place
  } else if (best != nullptr && keep_tokens > 0) {
    // Diverges inside it, or another request is using it: keep it for its own client and
    // continue a fork from the last whole token within the shared part.
    auto fork = std::make_unique<Conversation>();
    fork->session = best->session->Fork();
    V4_RETURN_IF_ERROR(fork->session->Rewind(keep_tokens));
    fork->token_end.assign(best->token_end.begin(), best->token_end.begin() + keep_tokens);
    fork->text = best->text.substr(0, fork->token_end.back());
    live_.push_back(std::move(fork));
    use = live_.back().get();
  } else {
    auto fresh = std::make_unique<Conversation>();
    fresh->session = std::make_unique<engine::Session>(model_, options_);
    live_.push_back(std::move(fresh));
    use = live_.back().get();
  }
  use->last_used = ++clock_;
  use->busy = true;
  return use;
}

Status SessionPool::Advance(Prepared& p, int64_t max_tokens) {
  Conversation* c = p.conversation;
  while (!p.ready() && max_tokens > 0) {
    const Prepared::Piece& piece = p.pending[p.piece];
    const size_t n = std::min(piece.ids.size() - p.piece_done, static_cast<size_t>(max_tokens));
    const bool whole = p.piece_done + n == piece.ids.size();
    if (n > 0) {
      V4_RETURN_IF_ERROR(
          c->session->Append(std::span<const int32_t>(piece.ids).subspan(p.piece_done, n), whole));
    }
    p.piece_done += n;
    p.prefilled_tokens += static_cast<int64_t>(n);
    max_tokens -= static_cast<int64_t>(n);
    if (whole) {
      size_t end = c->text.size();
      for (int32_t id : piece.ids) c->token_end.push_back(end += token_bytes_(id));
      c->text += piece.text;
      ++p.piece;
      p.piece_done = 0;
    }
  }
  return Status::Ok();
}

void SessionPool::Finish(Conversation* c, const std::vector<int32_t>& generated,
                         const std::string& text) {
  size_t end = c->text.size();
  for (int32_t id : generated) c->token_end.push_back(end += token_bytes_(id));
  c->text += text;
  c->session->Checkpoint();
  c->busy = false;
  c->last_used = ++clock_;
  Evict();
}

void SessionPool::Release(Conversation* c) {
  const int64_t committed = static_cast<int64_t>(c->token_end.size());
  if (c->session->length() != committed && !c->session->Rewind(committed).ok()) {
    // Cannot happen (every length down to 0 has a snapshot at or before it); if it did, the
    // conversation would no longer match its text: drop it.
    c->text.clear();
    c->token_end.clear();
    c->session = std::make_unique<engine::Session>(model_, options_);
  }
  c->busy = false;
  Evict();
}

void SessionPool::Evict() {
  while (static_cast<int>(live_.size()) > max_sessions_ ||
         (max_bytes_ > 0 && live_.size() > 1 && cached_bytes() > max_bytes_)) {
    auto victim = live_.end();
    for (auto it = live_.begin(); it != live_.end(); ++it) {
      if ((*it)->busy) continue;
      if (victim == live_.end() || (*it)->last_used < (*victim)->last_used) victim = it;
    }
    if (victim == live_.end()) return;  // every one is in use: over the limit until they end
    // Saved for later requests; a store that cannot take it (a full disk) loses only reuse.
    if (store_) (void)store_->Put(*(*victim)->session);
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
