// Session: the facade the rest of v4agent uses to talk to the engine. One live sequence whose
// cache is only ever extended: Append(ids) prefills just those ids on top of the cache (in
// chunks), Generate() streams sampled tokens. Snapshots taken at Append boundaries let it
// Rewind to any earlier position (restore the nearest snapshot, re-run the few tokens after
// it); Fork() gives an independent session sharing the history. Never re-prefills history it
// already holds.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "engine/kv/sequence_cache.h"
#include "engine/model/model.h"
#include "engine/sampler/sampler.h"

namespace v4agent::engine {

struct SessionOptions {
  int64_t chunk_size = 256;    // tokens per forward call during Append
  int64_t max_snapshots = 64;  // kept at Append boundaries, oldest dropped first
};

// What Save writes besides the live state.
struct SessionSaveOptions {
  bool snapshots = true;  // the Append-boundary snapshots, so a restore can Rewind without replay
  Json extra = Json::object();  // stored as is (the agent's own data); Load hands it back
};

struct SessionStats {
  int64_t tokens_prefilled = 0;  // total tokens run through Append
  int64_t tokens_restored = 0;   // tokens taken from a session file instead of prefilled
  int64_t tokens_generated = 0;
  int64_t last_append_tokens = 0;
  int64_t last_append_reused = 0;  // cache length the last Append started from
  int64_t rewinds = 0;
  int64_t tokens_replayed = 0;  // run again by Rewind (from the nearest snapshot to the target)
  double prefill_seconds = 0;
  double decode_seconds = 0;
  CacheBytes cache_bytes;
};

class Session {
 public:
  Session(Model* model, const SessionOptions& options);

  // Prefills `ids` on top of the live cache. Errors (bad id, context too long) leave the
  // session unchanged. `snapshot` false: no snapshot at the end (a caller appending a long
  // text in slices keeps the snapshots for the places it may rewind to).
  Status Append(std::span<const int32_t> ids, bool snapshot = true);

  // Samples up to `max_tokens` tokens. Each sampled token is appended to the cache (so the
  // cache always equals tokens()), then `on_token(id)` is called; returning false stops.
  // Generation also stops after a token in `stop_ids`.
  struct GenerateResult {
    std::vector<int32_t> tokens;
    bool stopped_by_token = false;
    bool stopped_by_callback = false;
  };
  Result<GenerateResult> Generate(Sampler& sampler, int64_t max_tokens,
                                  const std::function<bool(int32_t)>& on_token,
                                  std::span<const int32_t> stop_ids = {});

  // One token appended to each of `sessions` (token i to session i) in one batched forward
  // pass (Model::ForwardBatch): every session ends bit for bit as its own Append of that one
  // token would leave it, only without a snapshot (Checkpoint() takes one). Counted as
  // generated tokens: this is the decode step of several conversations at once. The sessions
  // must be distinct and on one model; on an error none of them changed.
  static Status AppendEach(std::span<Session* const> sessions, std::span<const int32_t> ids);
  // A snapshot at the current length, to Rewind to cheaply (Append and Generate take their
  // own; call it after a run of AppendEach).
  void Checkpoint() { TakeMark(); }

  // Logits after the last token in the cache ([vocab]); empty before the first Append.
  const std::vector<float>& last_logits() const { return last_logits_; }
  const std::vector<int32_t>& tokens() const { return tokens_; }
  int64_t length() const { return static_cast<int64_t>(tokens_.size()); }

  // Shortens the sequence to `length` tokens.
  Status Rewind(int64_t length);
  // An independent session with the same history: the history rows are shared
  // copy-on-write, so a fork costs the state plus pointers, not the history.
  std::unique_ptr<Session> Fork() const;

  // Writes the whole session to `path` atomically (session_file.h). The history rows are
  // written as stored; nothing is recomputed.
  Status Save(const std::string& path, const SessionSaveOptions& save = {}) const;
  // A session continuing exactly where the saved one stopped: same tokens, logits, state and
  // history (mapped from the file, not copied), so every later Append/Generate gives the
  // same bits as the uninterrupted session. Refuses a file of another model, numerics, KV
  // layout or format version, and a truncated or corrupted file. `extra` (optional) receives
  // what Save was given.
  static Result<std::unique_ptr<Session>> Load(Model* model, const std::string& path,
                                               const SessionOptions& options,
                                               Json* extra = nullptr);

  SessionStats Stats() const;
  Model* model() const { return model_; }

 private:
  struct Mark {
    int64_t length;
    SequenceCache::Snapshot snapshot;
    std::vector<float> logits;
  };
  Status Run(std::span<const int32_t> ids);
  void TakeMark();

  Model* model_;
  SessionOptions options_;
  std::unique_ptr<SequenceCache> cache_;
  std::vector<int32_t> tokens_;
  std::vector<float> last_logits_;
  std::vector<Mark> marks_;
  SessionStats stats_;
};

}  // namespace v4agent::engine
