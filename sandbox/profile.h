// Profile: everything the sandbox enforces for one command, as plain data. The sandbox knows
// nothing of tools or policies; whoever builds a Profile decides, the launcher enforces.
// DefaultProfile() is the `v4agent sandbox run` default: host root read-only, the workspace
// writable, no network, 2 GB of memory, 256 processes, 60 s.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace v4agent::sandbox {

// .git/hooks, .git/config, the shells' rc files, .envrc and .vscode.
std::vector<std::string> DefaultProtectedPaths();

enum class NetworkMode {
  kNone,      // an empty network namespace (no interfaces up)
  kLoopback,  // a new network namespace with only lo, up
  kHost,      // the host's network (still every other namespace and seccomp)
  kProxy,     // like kLoopback, plus an HTTP(S) proxy at 127.0.0.1:kProxyPort inside that
              // relays to `proxy_socket` on the host (the egress allowlist proxy)
};
constexpr int kProxyPort = 3128;

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
  uint64_t cpu_seconds = 0;  // RLIMIT_CPU; 0: unlimited
  // RLIMIT_AS bytes. 0: only as the fallback for cgroup.memory_bytes where no memory cgroup
  // can be used (address space is not memory: V8, JVMs and ASan reserve far more than they
  // use, so it is never set where the cgroup limit holds).
  uint64_t address_space = 0;
  // RLIMIT_NPROC. 0: only as the fallback for cgroup.pids where no pids cgroup can be used and
  // we are not host root (the kernel does not apply RLIMIT_NPROC to uid 0).
  uint64_t processes = 0;
  uint64_t open_files = 1024;  // RLIMIT_NOFILE
  uint64_t file_size = 0;      // RLIMIT_FSIZE bytes
};

// The limits proper, enforced by a cgroup (v2, else v1) where one is usable; otherwise by the
// fallbacks the report names (RLIMIT_AS, RLIMIT_NPROC, the pid namespace's pid_max).
struct CgroupLimits {
  uint64_t memory_bytes = 0;  // memory.max / memory.limit_in_bytes
  uint64_t pids = 0;          // pids.max
  uint32_t cpu_percent = 0;   // cpu.max as a share of one CPU (100 = one core); v2 only
};

struct Profile {
  // Root view: the host's / read-only, or `rootfs` (a directory) read-only.
  std::string rootfs;
  // The root view writable where the user can write (full-access policies). Everything else
  // (namespaces, seccomp, private /tmp /dev /proc, limits) stays.
  bool root_writable = false;
  std::vector<Bind> binds;  // e.g. the workspace, writable
  // Paths inside writable binds that cannot be written, renamed, removed, replaced or created
  // (see sandbox/protected_paths.h); relative paths are taken inside each writable bind.
  std::vector<std::string> protected_paths = DefaultProtectedPaths();
  // Paths inside writable binds checked on the host after every command: one that appeared is
  // quarantined, one that changed is reported (for names that cannot be masked, such as
  // .git/commondir, which git must not find as a directory).
  std::vector<std::string> watched_paths = {".git/commondir"};
  // Paths replaced by something empty (a tmpfs for directories, an empty file otherwise).
  std::vector<std::string> hidden_paths;
  // Secret files by glob ("**/.env", "**/*.pem", "**/id_*": ** is any number of directories,
  // * ? [...] match within one name, a leading dot included). Every match that exists when a
  // command starts, in a writable bind or under one of `secret_roots`, is replaced by an empty
  // read-only file (a matching directory by an empty one). A file the command itself creates
  // stays readable to that command; the next command sees it masked.
  std::vector<std::string> secret_patterns;
  std::vector<std::string> secret_roots;   // read-only trees also scanned (e.g. the home dir)
  uint64_t secret_scan_limit = 200'000;    // entries visited per command before giving up
  uint64_t tmp_size_bytes = 256ull << 20;  // the private /tmp
  uint64_t shm_size_bytes = 64ull << 20;   // the private /dev/shm
  NetworkMode network = NetworkMode::kNone;
  std::string proxy_socket;  // kProxy: the host's unix socket the in-sandbox relay connects to
  SeccompMode seccomp = SeccompMode::kDenyList;
  // Tests of the seccomp layer only: the command keeps the capabilities it has in the
  // sandbox's user namespace, so a test can show seccomp alone refusing a call.
  bool keep_capabilities_for_tests = false;
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
