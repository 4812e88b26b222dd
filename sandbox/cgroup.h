// cgroup v2 limits for one sandboxed run: a child cgroup under ours with memory.max,
// pids.max and cpu.max, removed afterwards. Only when a writable cgroup2 hierarchy with those
// controllers exists; otherwise Create() says why and the caller reports it as unavailable.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "sandbox/profile.h"
#include "sandbox/report.h"

namespace v4agent::sandbox {

// Our own cgroup's directory when it is on a writable cgroup2 mount with the memory and pids
// controllers available to children; otherwise an error saying what is missing.
Result<std::string> FindWritableCgroup();

class CgroupScope {
 public:
  static Result<std::unique_ptr<CgroupScope>> Create(const CgroupLimits& limits);
  ~CgroupScope();
  Status AddProcess(int pid);
  // Adds what the kernel counted (memory.peak, OOM kills) to the report.
  void Collect(RunReport* report) const;
  const std::vector<std::string>& applied() const { return applied_; }

 private:
  std::string dir_;
  std::vector<std::string> applied_;
};

}  // namespace v4agent::sandbox
