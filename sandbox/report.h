// RunReport: what happened to one sandboxed command, for the caller and as JSON.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/json.h"

namespace v4agent::sandbox {

// One output stream as captured: the first and last bytes within the cap, and counts.
struct StreamCapture {
  std::string head;
  std::string tail;
  uint64_t total_bytes = 0;    // everything the command wrote
  uint64_t dropped_bytes = 0;  // between head and tail, not kept
  // head + tail with an explicit marker where bytes were dropped.
  std::string Text() const;
};

struct RunReport {
  int exit_code = -1;  // when exited normally
  int signal = 0;      // when killed by a signal
  bool timed_out = false;
  bool cancelled = false;
  double wall_seconds = 0;
  double cpu_seconds = 0;  // user + system of the whole tree
  int64_t max_rss_kb = 0;
  StreamCapture out, err;
  std::vector<std::string> limits_applied;      // "rlimit_as=536870912", "seccomp=deny-list"
  std::vector<std::string> limits_unavailable;  // "cgroup_memory: no writable cgroup v2 ..."
  // What the kernel counted against the limits (cgroups only).
  bool out_of_memory = false;  // the memory limit killed something
  int64_t memory_peak_bytes = -1;
  int64_t forks_refused = 0;  // fork/clone calls the pids limit refused
  // Protected paths that changed or appeared during the run, found by the host-side check
  // after the command (each names the path and what happened); empty when all held.
  std::vector<std::string> protected_changes;
  // Setup failure inside the sandbox before the command ran: the step and its errno.
  std::string failed_step;
  int failed_errno = 0;
  std::string failure_detail;

  bool setup_failed() const { return !failed_step.empty(); }
  // The process exit code `sandbox run` uses: the command's, 128+signal, 124 on timeout,
  // 125 on a setup failure.
  int ShellExitCode() const;
};

Json ReportToJson(const RunReport& report);

// Bytes made safe to show a model: ANSI escape sequences removed, other control bytes and
// invalid UTF-8 replaced, tabs and newlines kept.
std::string SanitizeForModel(const std::string& bytes);

}  // namespace v4agent::sandbox
