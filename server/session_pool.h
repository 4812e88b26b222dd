// The live conversations of `v4agent serve`, kept between requests and found again by the
// prompt text they hold: a request whose rendered prompt extends a kept conversation appends
// only the new text; one that shares a prefix with it forks that conversation (the history is
// shared copy-on-write) and rewinds the fork to the last whole token inside the shared part.
// A conversation a request is using (busy) is never extended in place or evicted by another:
// a second request on the same history forks it. The new text is appended in slices
// (Advance), so a scheduler can interleave a long prompt with the decode steps of others.
// Least recently used idle conversations go when there are more than `max_sessions` or their
// caches hold more than `max_bytes`: dropped, or saved to a prefix store that later
// requests (and later server processes) start from. Not thread-safe: one thread (the scheduler)
// owns it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"
#include "engine/model/model.h"
#include "engine/session/prefix_store.h"
#include "engine/session/session.h"

namespace v4agent::server {

struct Conversation {
  std::unique_ptr<engine::Session> session;
  // The text of the first token_end.size() tokens of session->tokens() (a request's prompt
  // while it is being prefilled or generated from is only committed when a piece or the
  // generation is whole).
  std::string text;
  // Where each token's bytes end in `text` (byte-level BPE: the tokens' bytes, joined, are
  // the text), so a conversation can be cut at the last whole token inside a shared prefix.
  std::vector<size_t> token_end;
  uint64_t last_used = 0;
  bool busy = false;  // a request is prefilling or generating on it
};

// A request's place in the pool: the conversation it runs on and what is left to prefill.
struct Prepared {
  Conversation* conversation = nullptr;
  int64_t cached_tokens = 0;     // already in the cache, not prefilled
  int64_t prefilled_tokens = 0;  // appended for this request so far
  struct Piece {
    std::string text;
    std::vector<int32_t> ids;
  };
  std::vector<Piece> pending;  // the prompt's new text, split before role markers
  size_t piece = 0;            // the piece being appended
  size_t piece_done = 0;       // its ids already appended
  bool ready() const { return piece == pending.size(); }
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
  // A prefix store (engine/session/prefix_store.h) in `dir`: evicted conversations are saved
  // there instead of dropped (and the idle ones when the pool goes, so a restarted server
  // finds them), and a prompt whose longest stored prefix is longer than any live match
  // starts from the stored session. The store keeps `budget_bytes` at most (its own LRU).
  Status set_store_dir(const std::string& dir, uint64_t budget_bytes);
  ~SessionPool();

  // Finds or makes the conversation for `prompt` and marks it busy; nothing is prefilled yet.
  Result<Prepared> Prepare(const std::string& prompt, const Encode& encode);
  // The same for a prompt given as token ids (POST /v1/completions), matched by tokens rather
  // than text, so the cache holds exactly these ids. `token_text`: one token's bytes.
  Result<Prepared> PrepareIds(std::span<const int32_t> ids,
                              const std::function<std::string(int32_t)>& token_text);
  // Appends up to `max_tokens` (> 0) of the pending prompt; on an error the request is over
  // (call Release). Snapshots are taken only where a piece ends.
  Status Advance(Prepared& p, int64_t max_tokens);
  // Records what was generated (already in the session) and makes the conversation idle, so a
  // follow-up finds it. `generated`'s bytes are `text`.
  void Finish(Conversation* c, const std::vector<int32_t>& generated, const std::string& text);
  // Makes a conversation idle after a failed request: its uncommitted tokens are dropped.
  void Release(Conversation* c);

  size_t size() const { return live_.size(); }
  size_t stored() const;  // sessions in the prefix store (0 without one)
  int64_t tokens_from_store() const { return tokens_from_store_; }
  int64_t cached_bytes() const;

 private:
  void Evict();
  // A conversation holding the longest stored prefix of `prompt` when that beats
  // `live_tokens`, or null.
  Conversation* FromStore(const std::string& prompt, const Encode& encode, int64_t live_tokens);
  // `best` itself when it can be extended in place (idle, nothing past its text, all of it
  // shared), else a fork of its first `keep_tokens` tokens, else a new conversation; busy.
  Result<Conversation*> Place(Conversation* best, int64_t keep_tokens, bool whole);
  engine::Model* model_;
  engine::SessionOptions options_;
  int max_sessions_;
  TokenBytes token_bytes_;
  std::vector<std::string> split_before_;
  int64_t max_bytes_ = 0;
  uint64_t clock_ = 0;
  std::unique_ptr<engine::PrefixStore> store_;
  int64_t tokens_from_store_ = 0;
  std::vector<std::unique_ptr<Conversation>> live_;
};

}  // namespace v4agent::server
