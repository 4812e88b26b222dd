// The sandbox's child side: everything between clone() and execve(), in the fixed order of
// the setup steps (user ns maps, mounts + pivot_root, /dev, /proc, network, UTS, then in the
// command's own process: session, stdio, fds, rlimits, cwd, no_new_privs, capabilities,
// seccomp, exec). All inputs are precomputed by the parent into a ChildPlan, so the child
// never allocates (it may have been cloned from a multi-threaded process). A failing step
// writes {step, errno} to the error pipe and exits 127.
#pragma once

#include <sys/resource.h>

#include <cstdint>
#include <string>
#include <vector>

#include "sandbox/profile.h"
#include "sandbox/protected_paths.h"

namespace v4agent::sandbox {

struct ChildPlan {
  int err_fd = -1;     // write end, O_CLOEXEC: setup failure records
  int status_fd = -1;  // write end: the command's wait status (4 bytes)
  int stdin_fd = -1, stdout_fd = -1, stderr_fd = -1;  // the command's ends of the pipes
  int go_fd = -1;  // read end: wait for one byte before setting up (-1: no wait)

  bool new_user = true;
  std::string uid_map, gid_map;

  // Mounts. Sources are host paths, resolved by the child (a mount can only be cloned from
  // inside the caller's own mount namespace) before the staging tmpfs shadows anything.
  static constexpr size_t kMaxTrees = 192;
  std::string root_source;
  bool root_writable = false;
  std::string stage = "/tmp";            // where the staging tmpfs goes (our mount ns only)
  std::string newroot = "/tmp/.v4root";  // the new root inside it
  struct BindMount {
    std::string source;
    std::string target;  // absolute, under newroot
    bool writable = false;
    bool is_dir = true;
  };
  std::vector<BindMount> binds;  // in order: writable binds first, then read-only re-binds
  struct Hidden {
    std::string target;  // absolute, under newroot
    bool is_dir = true;
  };
  std::vector<Hidden> hidden;
  // An empty read-only file made in the staging tmpfs, bound over hidden and secret files.
  std::string empty_file = "/tmp/.v4empty";
  std::string tmp_target, tmp_options;
  std::string shm_target, shm_options;  // a private, size-capped /dev/shm
  std::string pts_target, pts_options;  // a private devpts instance
  std::string dev_target;
  std::vector<std::pair<std::string, std::string>> dev_nodes;  // host node -> target file
  std::vector<std::pair<std::string, std::string>> dev_links;  // link path -> target
  std::string proc_target;
  // When not empty: written to the pid namespace's /proc/sys/kernel/pid_max (the process
  // limit of last resort where no cgroup can be used and we are host root).
  std::string pid_max;

  NetworkMode network = NetworkMode::kNone;
  // kProxy: the init relays connections to 127.0.0.1:kProxyPort to this unix socket path
  // (inside the sandbox's view).
  std::string proxy_socket;
  std::string hostname;
  std::vector<std::pair<int, rlimit>> rlimits;
  std::vector<uint8_t> seccomp_bpf;
  bool drop_capabilities = true;

  // The command arrives on this pipe once the sandbox is set up (so a sandbox can be prepared
  // ahead of its command): NUL-separated cwd, search PATH, argc, argv..., envc, env...,
  // mountc, mounts... (each its kind letter followed by the path). argv[0] is resolved
  // against the search PATH when it has no '/'. The init makes the mounts before it starts
  // the command; a mount that fails fails the setup.
  int cmd_fd = -1;
};

// Serializes a command for ChildPlan::cmd_fd.
std::string EncodeCommand(const std::string& cwd, const std::string& search_path,
                          const std::vector<std::string>& argv, const std::vector<std::string>& env,
                          const std::vector<LateMount>& mounts = {});
constexpr size_t kMaxCommandBytes = 1 << 20;

// Entry point of the cloned child (pid 1 of the new pid namespace). Never returns.
[[noreturn]] void RunChild(const ChildPlan& plan);

// Setup failure record sent over the error pipe.
struct FailureRecord {
  char step[32];
  int err;
};

}  // namespace v4agent::sandbox
