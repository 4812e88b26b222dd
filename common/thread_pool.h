// ThreadPool: a fixed set of workers for data-parallel loops (ParallelFor) in the engine and
// elsewhere. Work is split into contiguous index ranges, so a result never depends on the
// number of threads unless the caller's reduction does. Must never be used re-entrantly from
// inside one of its own tasks.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace v4agent {

class ThreadPool {
 public:
  // num_threads <= 0 means std::thread::hardware_concurrency().
  explicit ThreadPool(int num_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls fn(begin, end) over [0, n) split into at most num_threads() contiguous ranges of
  // at least `min_chunk` items; the calling thread takes part. Returns when all are done.
  void ParallelFor(size_t n, size_t min_chunk,
                   const std::function<void(size_t begin, size_t end)>& fn);

 private:
  void WorkerLoop(int index);

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable done_cv_;
  const std::function<void(size_t, size_t)>* job_ = nullptr;
  std::vector<std::pair<size_t, size_t>> ranges_;
  size_t next_range_ = 0;
  size_t pending_ = 0;
  uint64_t generation_ = 0;
  bool stop_ = false;
};

}  // namespace v4agent
