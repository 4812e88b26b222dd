// The live display of `pipeline run`: on a terminal, the tree of steps seen so far (top-level
// steps listed as pending from the start), each with its state and time, redrawn in place as
// events arrive and twice a second while something runs; elsewhere one plain line per event.
// Thread-safe; knows nothing of how steps run.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace v4agent::apps {

class StepTree {
 public:
  StepTree(std::FILE* out, bool tty, const std::vector<std::string>& top_level_ids);
  ~StepTree();  // stops the ticker and draws the final tree
  void Event(const std::string& path, int depth, const std::string& state, double seconds,
             const std::string& detail);

 private:
  struct Row {
    std::string path;
    int depth = 0;
    std::string state = "pending";
    std::string detail;
    double seconds = 0;
    std::chrono::steady_clock::time_point started;
  };
  void Draw();  // needs mu_
  std::FILE* out_;
  bool tty_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::vector<Row> rows_;
  int drawn_ = 0;  // lines on screen from the last draw
  std::thread ticker_;
};

}  // namespace v4agent::apps
