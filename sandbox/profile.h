// Profile: everything the sandbox enforces for one command, as plain data. The sandbox knows
// nothing of tools or policies; whoever builds a Profile decides, the launcher enforces.
// DefaultProfile() is the `v4agent sandbox run` default: host root read-only, the workspace
// writable, no network, 512 MB, 256 processes, 60 s.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace v4agent::sandbox {

enum class NetworkMode {
  kNone,      // an empty network namespace (no interfaces up)
  kLoopback,  // a new network namespace with only lo, up
  kHost,      // the host's network (still every other namespace and seccomp)
};

enum class SeccompMode {
  kDenyList,   // everything but the dangerous families (the default)
  kAllowList,  // only the syscalls ordinary build and test tools use
  kOff,        // no filter (tests of the other layers only)
};

struct Bind {
  std::string source;  // host path
  std::string target;  // path inside; empty: same as source
  bool writable = false;
};

struct Rlimits {
  uint64_t cpu_seconds = 0;    // RLIMIT_CPU; 0: unlimited
  uint64_t address_space = 0;  // RLIMIT_AS bytes
  uint64_t processes = 0;      // RLIMIT_NPROC
  uint64_t open_files = 1024;  // RLIMIT_NOFILE
  uint64_t file_size = 0;      // RLIMIT_FSIZE bytes
};

struct CgroupLimits {
  uint64_t memory_bytes = 0;  // memory.max
  uint64_t pids = 0;          // pids.max
  uint32_t cpu_percent = 0;   // cpu.max as a share of one CPU (100 = one core)
};

struct Profile {
  // Root view: the host's / read-only, or `rootfs` (a directory) read-only.
  std::string rootfs;
  // The root view writable where the user can write (full-access policies). Everything else
  // (namespaces, seccomp, private /tmp /dev /proc, limits) stays.
  bool root_writable = false;
  std::vector<Bind> binds;  // e.g. the workspace, writable
  // Paths inside writable binds that stay read-only (.git/hooks, .git/config, rc files);
  // relative paths are taken inside each writable bind.
  std::vector<std::string> protected_paths = {".git/hooks", ".git/config",   ".bashrc",
                                              ".profile",   ".bash_profile", ".zshrc"};
  // Paths replaced by something empty (a tmpfs for directories, an empty file otherwise).
  std::vector<std::string> hidden_paths;
  uint64_t tmp_size_bytes = 256ull << 20;  // the private /tmp
  NetworkMode network = NetworkMode::kNone;
  SeccompMode seccomp = SeccompMode::kDenyList;
  // Variables copied from the parent's environment when set there; nothing else leaks.
  std::vector<std::string> env_allowlist = {"PATH", "LANG", "LC_ALL", "TERM", "TZ"};
  std::vector<std::string> env;  // extra "NAME=value" entries (win over the allowlist)
  Rlimits rlimits;
  CgroupLimits cgroup;
  double timeout_seconds = 60;
  uint64_t capture_bytes = 1 << 20;  // per stream, kept as head + tail
  std::string stdin_data;
  std::string cwd;      // inside; empty: the first writable bind, else /
  uint32_t uid = 1000;  // inside the user namespace
  uint32_t gid = 1000;
  std::string hostname = "sandbox";
};

// The `sandbox run` default for `workspace` (an absolute path): see the header comment.
Profile DefaultProfile(const std::string& workspace);

}  // namespace v4agent::sandbox
