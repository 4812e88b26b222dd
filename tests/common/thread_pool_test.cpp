#include "common/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <numeric>
#include <thread>

namespace v4agent {
namespace {

TEST(ThreadPoolTest, CoversEveryIndexOnce) {
  for (int threads : {1, 2, 4}) {
    ThreadPool pool(threads);
    for (size_t n : {0ul, 1ul, 7ul, 1000ul}) {
      std::vector<std::atomic<int>> hits(n);
      pool.ParallelFor(n, 1, [&](size_t b, size_t e) {
        for (size_t i = b; i < e; ++i) hits[i]++;
      });
      for (size_t i = 0; i < n; ++i) EXPECT_EQ(hits[i].load(), 1) << threads << " " << i;
    }
  }
}

// The caller's time in split regions is counted (what benchmarks subtract from their wall
// time to find the serial part); work run whole on the caller is not a region.
TEST(ThreadPoolTest, StatsCountSplitRegionsAndTheirTime) {
  ThreadPool pool(2);
  pool.ParallelFor(1, 1, [](size_t, size_t) {});  // one item: run on the caller, no region
  EXPECT_EQ(pool.stats().regions, 0u);
  for (int round = 0; round < 3; ++round) {
    pool.ParallelFor(2, 1, [](size_t b, size_t) {
      if (b == 1) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    });
  }
  const ThreadPool::Stats s = pool.stats();
  EXPECT_EQ(s.regions, 3u);
  EXPECT_GE(s.region_seconds, 0.06);
  pool.ResetStats();
  EXPECT_EQ(pool.stats().regions, 0u);
  EXPECT_EQ(pool.stats().region_seconds, 0.0);
}

// wait_seconds is the caller's wait for other threads' ranges after its own: a range that is
// slow only on a worker shows there; one that is slow only on the caller does not. (The short
// sleep on the other side lets the worker claim a range before the caller could take both.)
TEST(ThreadPoolTest, StatsCountTheCallersWaitForOtherThreads) {
  ThreadPool pool(2);
  const std::thread::id caller = std::this_thread::get_id();
  for (bool slow_worker : {true, false}) {
    pool.ResetStats();
    for (int round = 0; round < 3; ++round) {
      pool.ParallelFor(2, 1, [&](size_t, size_t) {
        const bool slow = (std::this_thread::get_id() == caller) != slow_worker;
        std::this_thread::sleep_for(std::chrono::milliseconds(slow ? 30 : 2));
      });
    }
    const ThreadPool::Stats s = pool.stats();
    EXPECT_EQ(s.regions, 3u);
    EXPECT_LE(s.wait_seconds, s.region_seconds);
    if (slow_worker) {
      EXPECT_GE(s.wait_seconds, 0.02) << "the caller waited for 30 ms ranges on the worker";
    } else {
      EXPECT_LT(s.wait_seconds, 0.02) << "the slow ranges were the caller's own";
    }
  }
}

TEST(ThreadPoolTest, ManyRoundsInARow) {
  ThreadPool pool(2);
  std::atomic<long> sum{0};
  for (int round = 0; round < 2000; ++round) {
    pool.ParallelFor(10, 1, [&](size_t b, size_t e) {
      for (size_t i = b; i < e; ++i) sum += static_cast<long>(i);
    });
  }
  EXPECT_EQ(sum.load(), 2000L * 45);
}

// Every range of round r must run round r's function: a worker still leaving round r - 1
// must not claim a range of round r with the old function (ranges carry the generation).
TEST(ThreadPoolTest, NoRangeRunsWithAnOlderJobsFunction) {
  for (int threads : {2, 3, 8}) {
    ThreadPool pool(threads);
    std::vector<std::atomic<int>> owner(64);
    for (int round = 1; round <= 20000; ++round) {
      const size_t n = 1 + static_cast<size_t>(round % 64);
      pool.ParallelFor(n, 1, [&, round](size_t b, size_t e) {
        for (size_t i = b; i < e; ++i) owner[i].store(round);
      });
      for (size_t i = 0; i < n; ++i) ASSERT_EQ(owner[i].load(), round) << threads << " threads";
    }
  }
}

// Workers that went to sleep (idle past the spin time) are woken by the next job, and a pool
// destroyed while its workers spin or sleep joins them.
TEST(ThreadPoolTest, WakesSleepingWorkersAndStopsCleanly) {
  ThreadPool pool(2);
  for (int round = 0; round < 5; ++round) {
    std::this_thread::sleep_for(std::chrono::microseconds(ThreadPool::kSpinMicros * 3));
    std::atomic<int> ran{0};
    std::atomic<bool> two_threads{false};
    const auto caller = std::this_thread::get_id();
    pool.ParallelFor(2, 1, [&](size_t, size_t) {
      ++ran;
      if (std::this_thread::get_id() != caller) two_threads = true;
      // Hold this range until the other one has started (or 2 s pass): on a saturated machine
      // a woken worker may take a while to run, and the caller must not take both ranges
      // merely because it was faster.
      const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
      while (ran.load() < 2 && std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
    });
    EXPECT_EQ(ran.load(), 2);
    EXPECT_TRUE(two_threads.load()) << "the sleeping worker took no range in round " << round;
  }
  {
    ThreadPool spinning(3);
    spinning.ParallelFor(3, 1, [](size_t, size_t) {});
  }
  { ThreadPool idle(3); }
}

}  // namespace
}  // namespace v4agent
