#include "common/thread_pool.h"

#include <algorithm>
#include <chrono>

namespace v4agent {
namespace {

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

}  // namespace

ThreadPool::ThreadPool(int num_threads) {
  if (num_threads <= 0) num_threads = static_cast<int>(std::thread::hardware_concurrency());
  if (num_threads <= 0) num_threads = 1;
  // Range counts live in 16 bits of next_.
  num_threads = std::min(num_threads, 0xFFFF / kRangesPerThread);
  ranges_.resize(static_cast<size_t>(num_threads * kRangesPerThread));
  for (int i = 1; i < num_threads; ++i) workers_.emplace_back([this] { WorkerLoop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true);
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::RunRanges(uint64_t gen) {
  uint64_t v = next_.load(std::memory_order_acquire);
  while (true) {
    if ((v >> 32) != (gen & 0xFFFFFFFFu)) return;  // a newer job: not ours to run
    const size_t count = static_cast<size_t>((v >> 16) & 0xFFFF);
    const size_t index = static_cast<size_t>(v & 0xFFFF);
    if (index >= count) return;  // decided from `v` alone: ranges_ may be a newer job's now
    if (!next_.compare_exchange_weak(v, v + 1, std::memory_order_acq_rel)) continue;
    // The claim holds the job open (pending_ > 0), so job_ and ranges_ stay this job's.
    const auto r = ranges_[index];
    (*job_)(r.first, r.second);
    pending_.fetch_sub(1, std::memory_order_acq_rel);
    v = next_.load(std::memory_order_acquire);
  }
}

void ThreadPool::ParallelFor(size_t n, size_t min_chunk,
                             const std::function<void(size_t, size_t)>& fn) {
  if (n == 0) return;
  min_chunk = std::max<size_t>(min_chunk, 1);
  if ((n + min_chunk - 1) / min_chunk <= 1) {
    fn(0, n);
    return;
  }
  // Guided sizes: each range a 1/(2 x threads) share of what is left (at least min_chunk), so
  // the last ranges are small and a thread that finishes early never waits long for the
  // others; the last range takes whatever the cap leaves.
  const size_t share = 2 * static_cast<size_t>(num_threads());
  size_t parts = 0, begin = 0;
  while (begin < n) {
    const size_t left = n - begin;
    size_t len =
        parts + 1 == ranges_.size() ? left : std::max(min_chunk, (left + share - 1) / share);
    len = std::min(len, left);
    ranges_[parts++] = {begin, begin + len};
    begin += len;
  }
  const auto start = std::chrono::steady_clock::now();
  job_ = &fn;
  pending_.store(parts, std::memory_order_relaxed);
  const uint64_t gen = generation_.load(std::memory_order_relaxed) + 1;
  next_.store(((gen & 0xFFFFFFFFu) << 32) | (uint64_t{parts} << 16), std::memory_order_release);
  // seq_cst pairs with the worker's sleepers_ increment: either it sees the new generation
  // before sleeping, or this sees it asleep and wakes it.
  generation_.store(gen, std::memory_order_seq_cst);
  if (sleepers_.load(std::memory_order_seq_cst) > 0) {
    std::lock_guard<std::mutex> lock(mu_);
    cv_.notify_all();
  }
  RunRanges(gen);
  const auto mine_done = std::chrono::steady_clock::now();
  for (int spins = 0; pending_.load(std::memory_order_acquire) != 0; ++spins) {
    // A worker descheduled mid-range: let it run rather than burn its core.
    if (spins > 4096) {
      std::this_thread::yield();
    } else {
      CpuRelax();
    }
  }
  const auto end = std::chrono::steady_clock::now();
  ++stats_.regions;
  stats_.region_seconds += std::chrono::duration<double>(end - start).count();
  stats_.wait_seconds += std::chrono::duration<double>(end - mine_done).count();
}

void ThreadPool::WorkerLoop() {
  uint64_t seen = 0;
  while (true) {
    uint64_t gen = generation_.load(std::memory_order_acquire);
    if (gen == seen && !stop_.load(std::memory_order_relaxed)) {
      const auto deadline =
          std::chrono::steady_clock::now() + std::chrono::microseconds(kSpinMicros);
      for (int i = 0; gen == seen && !stop_.load(std::memory_order_relaxed); ++i) {
        CpuRelax();
        gen = generation_.load(std::memory_order_acquire);
        if (i % 256 == 255 && std::chrono::steady_clock::now() > deadline) break;
      }
    }
    if (gen == seen && !stop_.load()) {
      std::unique_lock<std::mutex> lock(mu_);
      sleepers_.fetch_add(1, std::memory_order_seq_cst);
      cv_.wait(lock,
               [&] { return stop_.load() || generation_.load(std::memory_order_seq_cst) != seen; });
      sleepers_.fetch_sub(1, std::memory_order_seq_cst);
      gen = generation_.load(std::memory_order_acquire);
    }
    if (stop_.load()) return;
    seen = gen;
    RunRanges(gen);
  }
}

}  // namespace v4agent
