// The live progress of `batch` and `evaluate`: on a terminal one line rewritten in place
// (done/total, counts by status, elapsed, ETA, the last instance); elsewhere one plain log line
// per finished instance. The ETA counts only instances finished in this run (those taken
// from an earlier run cost nothing and would make it optimistic).
#pragma once

#include <chrono>
#include <cstdio>
#include <map>
#include <string>

namespace v4agent::apps {

class ProgressLine {
 public:
  ProgressLine(std::FILE* out, bool tty);
  void Update(int done, int total, const std::string& instance_id, const std::string& status,
              const std::string& detail, bool reused);
  // "1m05s" style, for tests and summaries.
  static std::string Duration(double seconds);

 private:
  std::FILE* out_;
  bool tty_;
  std::chrono::steady_clock::time_point start_;
  std::map<std::string, int> by_status_;
  int fresh_ = 0;
};

}  // namespace v4agent::apps
