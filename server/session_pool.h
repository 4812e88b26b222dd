// The live conversations of `v4agent serve`, kept between requests and found again by the
// prompt text they hold: a request whose rendered prompt extends a kept conversation appends
// only the new text; one that shares a prefix with it forks that conversation (the history is
// shared copy-on-write) and rewinds the fork to the last whole token inside the shared part. Least
// recently used conversations go when there are more than `max_sessions`. Not thread-safe: the
// caller holds the engine for the whole request.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "engine/model/model.h"
#include "engine/session/session.h"

namespace v4agent::server {

struct Conversation {
  std::unique_ptr<engine::Session> session;
  std::string text;  // whose tokens are exactly session->tokens()
  // Where each token's bytes end in `text` (byte-level BPE: the tokens' bytes, joined, are
  // the text), so a conversation can be cut at the last whole token inside a shared prefix.
  std::vector<size_t> token_end;
  uint64_t last_used = 0;
};

struct Prepared {
  Conversation* conversation = nullptr;
  int64_t cached_tokens = 0;     // already in the cache, not prefilled
  int64_t prefilled_tokens = 0;  // appended for this request
};

class SessionPool {
 public:
  using Encode = std::function<std::vector<int32_t>(std::string_view)>;
  using TokenBytes = std::function<size_t(int32_t)>;  // the byte length of one token
  // `split_before`: markers (the chat template's role tokens) before which new text is
  // appended as a separate piece, so the session keeps a snapshot there and a later fork
  // that diverges after a marker rewinds without replaying the message before it.
  SessionPool(engine::Model* model, engine::SessionOptions options, int max_sessions,
              TokenBytes token_bytes, std::vector<std::string> split_before = {});
  // Also evict (least recently used first) while the kept caches hold more than this many
  // bytes (0: no limit). History shared by forks counts once per conversation holding it.
  void set_max_bytes(int64_t bytes) { max_bytes_ = bytes; }

  // The conversation to generate from, holding exactly `prompt` in its cache.
  Result<Prepared> Prepare(const std::string& prompt, const Encode& encode);
  // Records what was generated (appended by Generate) so a follow-up finds it.
  void Finish(Conversation* c, const std::vector<int32_t>& generated, const std::string& text);

  size_t size() const { return live_.size(); }
  int64_t cached_bytes() const;

 private:
  void Evict(const Conversation* keep);
  engine::Model* model_;
  engine::SessionOptions options_;
  int max_sessions_;
  TokenBytes token_bytes_;
  std::vector<std::string> split_before_;
  int64_t max_bytes_ = 0;
  uint64_t clock_ = 0;
  std::vector<std::unique_ptr<Conversation>> live_;
};

}  // namespace v4agent::server
