// PrefixStore: saved sessions keyed by their token ids, so a new sequence starts from the
// longest stored prefix instead of prefilling it (docs/sessions.md). Files live in one
// directory (`<hash>.v4s`, written atomically) under a size budget with least-recently-used
// eviction (a use touches the file's mtime, so the order survives the process); an in-memory
// TokenRadix over the ids of the files this model can load answers lookups. Files of other
// models share the directory and its budget but never match. Several processes may share a
// directory: a file evicted under a reader is a miss, never an error.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"
#include "engine/model/model.h"
#include "engine/session/session.h"
#include "engine/session/token_radix.h"

namespace v4agent::engine {

struct PrefixStoreOptions {
  uint64_t budget_bytes = 16ull << 30;
  int64_t min_tokens = 16;  // shorter prefixes are cheaper to prefill than to load
};

struct PrefixEntry {
  std::string path;
  std::vector<int32_t> tokens;  // empty for files of other models
  uint64_t bytes = 0;
  int64_t last_used_ns = 0;
  bool usable = false;  // written by this model with its numerics and layout
  std::string why_not;  // when not usable
};

class PrefixStore {
 public:
  // Creates `dir` if needed and indexes the files in it (headers and ids only).
  static Result<std::unique_ptr<PrefixStore>> Open(const std::string& dir, const Model* model,
                                                   const PrefixStoreOptions& options = {});

  // The longest prefix of `ids` a stored session holds, without loading anything.
  TokenRadix::Match Longest(std::span<const int32_t> ids) const { return radix_.Longest(ids); }

  // A session holding the longest stored prefix of `ids` (loaded from its file, rewound to
  // the shared length when the stored sequence goes on differently): `from_store` tokens
  // came from the file, `replayed` were run again from its nearest snapshot. No session when
  // nothing useful is stored; an unreadable file is dropped from the store and is a miss.
  struct Taken {
    std::unique_ptr<Session> session;
    int64_t from_store = 0;
    int64_t replayed = 0;
  };
  Result<Taken> Take(Model* model, std::span<const int32_t> ids, const SessionOptions& options);

  // Stores `session` unless a stored file already holds exactly its tokens; then evicts the
  // least recently used files until the directory fits the budget.
  Status Put(const Session& session);

  const std::vector<PrefixEntry>& entries() const { return entries_; }
  uint64_t total_bytes() const;
  const std::string& dir() const { return dir_; }

 private:
  PrefixStore(std::string dir, const Model* model, PrefixStoreOptions options)
      : dir_(std::move(dir)), model_(model), options_(options) {}
  void Rebuild();
  void Evict(const std::string& keep);

  std::string dir_;
  const Model* model_;
  PrefixStoreOptions options_;
  std::vector<PrefixEntry> entries_;
  TokenRadix radix_;
};

// The files of a store directory as `v4agent session list` shows them (no model needed).
Result<std::vector<PrefixEntry>> ListSessionDir(const std::string& dir);

}  // namespace v4agent::engine
