// Kernel-enforced process and memory limits for one sandboxed run through cgroups: a child
// group per run under our own group, created before the command starts, the sandbox's init
// moved into it before it execs anything, removed at teardown, and what the kernel counted
// (OOM kills, fork refusals, peak memory) read back into the report.
//
// Both hierarchies are supported because hosts differ: cgroup v2 when our group on the unified
// hierarchy delegates the memory and pids controllers, otherwise cgroup v1 when the `pids` and
// `memory` hierarchies are mounted and writable for us (typical of CI runners and container
// hosts that run us as root). Never touches a group it did not create.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "sandbox/profile.h"
#include "sandbox/report.h"

namespace v4agent::sandbox {

// Where each controller can be used, and why not where it cannot.
struct CgroupSupport {
  std::string v2_dir;   // our cgroup2 directory with memory+pids delegated, or ""
  std::string v1_pids;  // our writable group in the v1 pids hierarchy, or ""
  std::string v1_memory;
  std::vector<std::string> reasons;  // why a hierarchy is not usable
};
CgroupSupport ProbeCgroups();

// Compatibility for callers that only ask about cgroup v2.
Result<std::string> FindWritableCgroup();

class CgroupScope {
 public:
  // Creates the groups and sets the limits that can be enforced. Limits that cannot be are
  // listed in unavailable(); Create fails only when nothing was possible at all.
  static Result<std::unique_ptr<CgroupScope>> Create(const CgroupLimits& limits);
  ~CgroupScope();
  CgroupScope(const CgroupScope&) = delete;
  CgroupScope& operator=(const CgroupScope&) = delete;

  Status AddProcess(int pid);
  // Adds what the kernel counted to the report: OOM kills, refused forks, peak memory.
  void Collect(RunReport* report) const;
  const std::vector<std::string>& applied() const { return applied_; }
  const std::vector<std::string>& unavailable() const { return unavailable_; }
  bool limits_memory() const { return limits_memory_; }
  bool limits_pids() const { return limits_pids_; }
  bool limits_cpu() const { return limits_cpu_; }

 private:
  CgroupScope() = default;
  std::vector<std::string> dirs_;  // every group we made, removed in reverse order
  std::string memory_dir_, pids_dir_;
  bool v2_ = false;
  bool limits_memory_ = false, limits_pids_ = false, limits_cpu_ = false;
  std::vector<std::string> applied_, unavailable_;
};

}  // namespace v4agent::sandbox
