// The one thread that runs the engine for `v4agent serve`: requests (jobs) from any number of
// connections are queued here, matched against the live conversations (session_pool.h), and
// run together. Each turn of the loop prefills one slice of one waiting prompt, then advances
// every generating request by one token in one batched forward pass (continuous batching:
// Session::AppendEach, a GEMM over the batch's rows, not one GEMV per request). Batching
// changes no bit: every request samples from the logits it would get alone. A request leaves
// the batch when it samples a stop id, reaches its budget, or its callback says stop (a
// client that went away), and the next one joins at the following step.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "engine/model/model.h"
#include "engine/sampler/sampler.h"
#include "engine/tokenizer/tokenizer.h"
#include "server/session_pool.h"

namespace v4agent::server {

struct SchedulerOptions {
  int max_sessions = 16;
  int64_t cache_bytes = 0;       // kept caches beyond this are evicted (0: count limit only)
  std::string cache_dir;         // a prefix store for evicted conversations (empty: dropped)
  uint64_t cache_dir_bytes = 0;  // its budget (0: the store's default)
  int64_t max_batch = 16;        // requests decoded together at most
  int64_t prefill_slice = 64;    // prompt tokens per turn while others generate
  int64_t prefill_alone = 512;   // ... and while nothing generates
};

// One request. The submitter fills the first part and waits (Run); the callbacks run on the
// scheduler's thread and must not block (a streaming response queues its bytes).
struct Job {
  std::string prompt;
  std::vector<int32_t> prompt_ids;  // instead of `prompt` when not empty (matched by tokens)
  engine::SamplerOptions sampling;
  int64_t max_tokens = 1;  // the budget, already capped by the context
  std::vector<int32_t> stop_ids;
  // Each sampled token, after it entered the cache; false: stop after it.
  std::function<bool(int32_t)> on_token;

  // Results.
  Status status;
  int64_t prompt_tokens = 0, cached_tokens = 0, prefilled_tokens = 0;
  std::vector<int32_t> tokens;
  bool stopped_by_token = false;
  bool finished = false;  // set by the scheduler, under its lock, when the results are final
};

struct SchedulerStats {
  int64_t queued = 0;  // waiting for the engine or prefilling
  int64_t generating = 0;
  int64_t sessions = 0;  // in memory
  int64_t stored = 0;    // sessions in the cache directory's prefix store
  int64_t tokens_from_store = 0;
  int64_t cache_bytes = 0;
  int64_t decode_steps = 0;  // batched forward passes
  int64_t decode_rows = 0;   // tokens they produced
  int64_t max_batch = 0;     // the largest batch so far
};

class Scheduler {
 public:
  Scheduler(engine::Model* model, const engine::Tokenizer* tokenizer, SchedulerOptions options);
  // Whether the options could be applied (a cache directory that cannot be made is an error;
  // the scheduler then runs without one).
  const Status& setup_status() const { return setup_status_; }
  ~Scheduler();  // finishes every queued and running job, then stops the thread
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Runs `job` to its end (blocks the caller).
  void Run(Job& job);
  SchedulerStats Stats() const;

 private:
  struct Active;
  void Loop();
  void Admit(std::unique_ptr<Active> a);
  void PrefillTurn(bool others_generating);
  void DecodeTurn();
  void Complete(Active& a, Status status);

  engine::Model* model_;
  const engine::Tokenizer* tokenizer_;
  SchedulerOptions options_;
  SessionPool pool_;  // the scheduler thread's only
  Status setup_status_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job*> incoming_;
  bool stopping_ = false;
  SchedulerStats stats_;  // under mu_

  std::vector<std::unique_ptr<Active>> prefilling_, generating_;  // the thread's only
  std::thread thread_;
};

}  // namespace v4agent::server
