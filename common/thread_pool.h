// ThreadPool: a fixed set of workers for data-parallel loops (ParallelFor) in the engine and
// elsewhere. Work is split into contiguous index ranges, so a result never depends on the
// number of threads unless the caller's reduction does. Must never be used re-entrantly from
// inside one of its own tasks, nor from two threads at once.
//
// Decode calls ParallelFor a few hundred times per token, each for tens of microseconds of
// work, so waking a sleeping thread (a futex round trip, 10-50 us on a VM) would cost as much
// as the work. Workers therefore spin on an atomic for a short while after each job
// (kSpinMicros) before they sleep; the caller spins for completion.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace v4agent {

class ThreadPool {
 public:
  // How long an idle worker keeps polling for the next job before it sleeps.
  static constexpr int kSpinMicros = 2000;

  // num_threads <= 0 means std::thread::hardware_concurrency().
  explicit ThreadPool(int num_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls fn(begin, end) over [0, n) split into contiguous ranges of at least `min_chunk`
  // items, up to kRangesPerThread per thread, largest first, which threads claim as they
  // finish the last one (a thread slowed by the VM or a late wake-up takes fewer); the
  // calling thread takes part. Returns when all are done. With each range a quarter of what
  // is left (two threads), 16 per thread let a 1000-item loop end on ranges of one item; at 8
  // the LM head's decode GEMV (1010 groups) ended on a range of 12, which the caller waited
  // for on every token.
  static constexpr int kRangesPerThread = 16;
  void ParallelFor(size_t n, size_t min_chunk,
                   const std::function<void(size_t begin, size_t end)>& fn);

  // What the caller's thread spent in parallel regions since the last ResetStats(): a
  // benchmark subtracts it from its wall time to see how long the other threads sat idle
  // while one thread worked alone (decode's serial steps between matrix products). Only
  // calls that split their work count, not those run whole on the caller; three clock reads
  // each.
  struct Stats {
    uint64_t regions = 0;
    double region_seconds = 0;  // from the wake-up to the last range's end
    // Of region_seconds, the caller's wait from the end of its own last range to the end of
    // the last range any thread ran: what an uneven split or a stalled worker costs.
    double wait_seconds = 0;
  };
  Stats stats() const { return stats_; }
  void ResetStats() { stats_ = Stats{}; }

 private:
  void WorkerLoop();
  // Claims and runs ranges of generation `gen` until none is left (or a newer job exists).
  void RunRanges(uint64_t gen);

  std::vector<std::thread> workers_;
  // The current job, written by the caller before it publishes `next_`.
  const std::function<void(size_t, size_t)>* job_ = nullptr;
  std::vector<std::pair<size_t, size_t>> ranges_;  // num_threads() entries, never reallocated
  // (generation << 32) | (ranges in the job << 16) | index of the next unclaimed range: a
  // worker late for an old job cannot claim a range of a new one, and decides whether any
  // range is left without reading ranges_.
  std::atomic<uint64_t> next_{0};
  std::atomic<uint64_t> generation_{0};
  std::atomic<size_t> pending_{0};  // ranges of the current job not yet finished
  std::atomic<int> sleepers_{0};
  std::atomic<bool> stop_{false};
  Stats stats_;  // the caller's thread only
  std::mutex mu_;
  std::condition_variable cv_;
};

}  // namespace v4agent
