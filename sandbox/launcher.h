// Launcher: runs one command in a fresh sandbox built from a Profile (user, pid, mount, net,
// UTS and IPC namespaces, a read-only root view, seccomp, rlimits) and reports what happened.
// The parent side owns the timeout, cancellation, tree teardown (killing the namespace's
// init kills everything in it), output capture with bounded memory, and never hangs on a
// descendant that keeps a pipe open.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/status.h"
#include "sandbox/profile.h"
#include "sandbox/report.h"

namespace v4agent::sandbox {

struct RunOptions {
  // Output as it arrives (stream 1 = stdout, 2 = stderr), e.g. to pass it through.
  std::function<void(int stream, std::string_view data)> on_output;
  const std::atomic<bool>* cancel = nullptr;
};

// Errors only when the sandbox cannot be attempted (a bind source that does not exist, an
// empty argv, no pipes or processes left); everything after the clone is in the report,
// including a setup step that failed inside the sandbox.
Result<RunReport> Run(const Profile& profile, const std::vector<std::string>& argv,
                      const RunOptions& options = {});

// Runs commands like Run(), keeping one sandbox of the last profile's shape set up ahead: while
// a command runs, a worker thread prepares the next sandbox (namespaces, mounts, limits), so
// the next Run only sends its command. The command, environment, cwd, stdin and timeout may
// differ from call to call; another shape starts cold. Thread-safe.
class Launcher {
 public:
  Launcher();
  ~Launcher();
  Launcher(const Launcher&) = delete;
  Launcher& operator=(const Launcher&) = delete;
  Result<RunReport> Run(const Profile& profile, const std::vector<std::string>& argv,
                        const RunOptions& options = {});
  int warm_starts() const { return warm_starts_; }
  int cold_starts() const { return cold_starts_; }

 private:
  struct Warm;
  void Discard();  // needs mu_
  void Work();
  std::mutex mu_;
  std::condition_variable cv_;
  std::unique_ptr<Warm> warm_;
  std::unique_ptr<Profile> pending_;  // the next shape to prepare
  bool preparing_ = false;
  bool stop_ = false;
  int warm_starts_ = 0, cold_starts_ = 0;
  std::thread worker_;  // last: starts after the members it uses
};

// What this machine offers for enforcing limits, for reports, docs and tests.
struct HostSupport {
  bool cgroup_v2_writable = false;
  std::string cgroup_path;             // our cgroup2 directory when usable
  std::string cgroup_v1_pids;          // our writable v1 pids group, or ""
  std::string cgroup_v1_memory;        // our writable v1 memory group, or ""
  std::string cgroup_reason;           // why a hierarchy is not usable
  bool pid_namespace_pid_max = false;  // pid_max is per pid namespace (Linux >= 6.14)
  bool limits_pids() const { return cgroup_v2_writable || !cgroup_v1_pids.empty(); }
  bool limits_memory() const { return cgroup_v2_writable || !cgroup_v1_memory.empty(); }
};
HostSupport ProbeHost();

}  // namespace v4agent::sandbox
