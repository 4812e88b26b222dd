#include "common/thread_pool.h"

#include <algorithm>

namespace v4agent {

ThreadPool::ThreadPool(int num_threads) {
  if (num_threads <= 0) num_threads = static_cast<int>(std::thread::hardware_concurrency());
  if (num_threads <= 0) num_threads = 1;
  for (int i = 1; i < num_threads; ++i) workers_.emplace_back([this, i] { WorkerLoop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::ParallelFor(size_t n, size_t min_chunk,
                             const std::function<void(size_t, size_t)>& fn) {
  if (n == 0) return;
  min_chunk = std::max<size_t>(min_chunk, 1);
  size_t parts =
      std::min<size_t>(static_cast<size_t>(num_threads()), (n + min_chunk - 1) / min_chunk);
  if (parts <= 1) {
    fn(0, n);
    return;
  }
  std::unique_lock<std::mutex> lock(mu_);
  ranges_.clear();
  size_t base = n / parts, extra = n % parts, begin = 0;
  for (size_t p = 0; p < parts; ++p) {
    size_t len = base + (p < extra ? 1 : 0);
    ranges_.emplace_back(begin, begin + len);
    begin += len;
  }
  job_ = &fn;
  next_range_ = 0;
  pending_ = parts;
  ++generation_;
  cv_.notify_all();
  // The caller works too.
  while (next_range_ < ranges_.size()) {
    auto r = ranges_[next_range_++];
    lock.unlock();
    fn(r.first, r.second);
    lock.lock();
    --pending_;
  }
  done_cv_.wait(lock, [this] { return pending_ == 0; });
  job_ = nullptr;
}

void ThreadPool::WorkerLoop(int) {
  uint64_t seen = 0;
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return stop_ || (generation_ != seen && job_ != nullptr); });
    if (stop_) return;
    seen = generation_;
    while (job_ != nullptr && next_range_ < ranges_.size()) {
      auto r = ranges_[next_range_++];
      const auto* job = job_;
      lock.unlock();
      (*job)(r.first, r.second);
      lock.lock();
      if (--pending_ == 0) done_cv_.notify_all();
    }
  }
}

}  // namespace v4agent
