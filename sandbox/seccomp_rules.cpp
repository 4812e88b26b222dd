#include "sandbox/seccomp_rules.h"

#include <linux/sched.h>
#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <map>
#include <mutex>

#include "common/strings.h"
#include "common/unique_fd.h"

namespace v4agent::sandbox {
namespace {

SeccompRule Deny(const char* name, const char* why, int err = EPERM) {
  return SeccompRule{name, RuleAction::kErrno, err, {}, why};
}

// Rules shared by both profiles: the argument checks that make clone, socket, ioctl and
// personality safe to allow.
void AddArgumentRules(NetworkMode network, std::vector<SeccompRule>* rules) {
  const uint64_t ns_flags[] = {CLONE_NEWNS,  CLONE_NEWUSER, CLONE_NEWPID,    CLONE_NEWNET,
                               CLONE_NEWUTS, CLONE_NEWIPC,  CLONE_NEWCGROUP, 0x00000080 /*TIME*/};
  for (uint64_t f : ns_flags) {
    rules->push_back(SeccompRule{"clone",
                                 RuleAction::kErrno,
                                 EPERM,
                                 {ArgMatch{0, ArgMatch::kMaskedEq, f, f}},
                                 "new namespaces from inside the sandbox"});
  }
  // glibc falls back to clone when clone3 says ENOSYS; clone3's flags live in memory where
  // a filter cannot read them.
  rules->push_back(Deny("clone3", "flags not inspectable; callers fall back to clone", ENOSYS));
  if (network == NetworkMode::kNone) {
    rules->push_back(SeccompRule{"socket",
                                 RuleAction::kErrno,
                                 EACCES,
                                 {ArgMatch{0, ArgMatch::kNe, AF_UNIX, 0}},
                                 "network sockets while the network is off (AF_UNIX stays)"});
  } else {
    // With a network (even loopback only): no raw packet, kernel-crypto, key or VM sockets.
    for (uint64_t family : {uint64_t{AF_PACKET}, uint64_t{AF_KEY}, uint64_t{AF_ALG},
                            uint64_t{AF_VSOCK}, uint64_t{AF_BLUETOOTH}, uint64_t{AF_XDP}}) {
      rules->push_back(SeccompRule{"socket",
                                   RuleAction::kErrno,
                                   EACCES,
                                   {ArgMatch{0, ArgMatch::kEq, family, 0}},
                                   "raw, crypto, key and VM-bridge socket families"});
    }
  }
  for (uint64_t req : {uint64_t{TIOCSTI}, uint64_t{TIOCLINUX}}) {
    rules->push_back(SeccompRule{"ioctl",
                                 RuleAction::kErrno,
                                 EPERM,
                                 {ArgMatch{1, ArgMatch::kMaskedEq, req, 0xffffffffu}},
                                 "typing into a terminal / console tricks"});
  }
  for (uint64_t f : {uint64_t{ADDR_NO_RANDOMIZE}, uint64_t{READ_IMPLIES_EXEC},
                     uint64_t{MMAP_PAGE_ZERO}, uint64_t{ADDR_COMPAT_LAYOUT}}) {
    rules->push_back(SeccompRule{"personality",
                                 RuleAction::kErrno,
                                 EPERM,
                                 {ArgMatch{0, ArgMatch::kMaskedEq, f, f}},
                                 "personality flags that weaken ASLR or memory protection"});
  }
}

scmp_datum_t Datum(uint64_t v) { return static_cast<scmp_datum_t>(v); }

}  // namespace

std::vector<SeccompRule> DenyListRules(NetworkMode network) {
  std::vector<SeccompRule> r;
  for (const char* name : {"mount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree",
                           "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr"}) {
    r.push_back(Deny(name, "changing the filesystem view"));
  }
  for (const char* name : {"unshare", "setns"}) r.push_back(Deny(name, "namespace changes"));
  for (const char* name :
       {"ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd"}) {
    r.push_back(Deny(name, "reading or steering other processes"));
  }
  for (const char* name : {"io_uring_setup", "io_uring_enter", "io_uring_register"}) {
    r.push_back(Deny(name, "io_uring bypasses syscall filtering"));
  }
  for (const char* name : {"keyctl", "add_key", "request_key"}) {
    r.push_back(Deny(name, "kernel keyrings are not namespaced"));
  }
  for (const char* name : {"bpf", "perf_event_open", "userfaultfd", "fanotify_init"}) {
    r.push_back(Deny(name, "kernel attack surface"));
  }
  for (const char* name :
       {"kexec_load",   "kexec_file_load", "init_module",   "finit_module", "delete_module",
        "reboot",       "swapon",          "swapoff",       "acct",         "syslog",
        "settimeofday", "clock_settime",   "clock_adjtime", "adjtimex",     "quotactl",
        "iopl",         "ioperm",          "vhangup",       "uselib",       "lookup_dcookie",
        "nfsservctl"}) {
    r.push_back(Deny(name, "system administration"));
  }
  for (const char* name : {"open_by_handle_at", "name_to_handle_at"}) {
    r.push_back(Deny(name, "file handles escape mount restrictions"));
  }
  AddArgumentRules(network, &r);
  return r;
}

std::vector<SeccompRule> AllowListRules(NetworkMode network) {
  std::vector<SeccompRule> r;
  static const char* const kAllowed[] = {
      // files and directories
      "read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev", "preadv2",
      "pwritev2", "open", "openat", "openat2", "close", "close_range", "creat", "lseek", "stat",
      "fstat", "lstat", "newfstatat", "statx", "statfs", "fstatfs", "access", "faccessat",
      "faccessat2", "readlink", "readlinkat", "getdents", "getdents64", "mkdir", "mkdirat", "rmdir",
      "unlink", "unlinkat", "rename", "renameat", "renameat2", "link", "linkat", "symlink",
      "symlinkat", "chmod", "fchmod", "fchmodat", "chown", "fchown", "lchown", "fchownat",
      "truncate", "ftruncate", "fallocate", "fsync", "fdatasync", "sync", "syncfs",
      "sync_file_range", "utime", "utimes", "utimensat", "futimesat", "getcwd", "chdir", "fchdir",
      "umask", "dup", "dup2", "dup3", "fcntl", "flock", "ioctl", "pipe", "pipe2", "sendfile",
      "splice", "tee", "copy_file_range", "fadvise64", "readahead", "getxattr", "lgetxattr",
      "fgetxattr", "listxattr", "llistxattr", "flistxattr", "setxattr", "lsetxattr", "fsetxattr",
      "removexattr", "lremovexattr", "fremovexattr", "inotify_init", "inotify_init1",
      "inotify_add_watch", "inotify_rm_watch", "memfd_create", "mknod", "mknodat",
      // memory
      "mmap", "munmap", "mprotect", "mremap", "brk", "madvise", "mlock", "munlock", "mincore",
      "msync", "membarrier", "mlock2",
      // processes and threads
      "clone", "fork", "vfork", "execve", "execveat", "exit", "exit_group", "wait4", "waitid",
      "kill", "tgkill", "tkill", "getpid", "getppid", "gettid", "getpgid", "setpgid", "getpgrp",
      "getsid", "setsid", "getuid", "geteuid", "getgid", "getegid", "getgroups", "getresuid",
      "getresgid", "setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid",
      "setgroups", "capget", "prctl", "arch_prctl", "set_tid_address", "set_robust_list",
      "get_robust_list", "futex", "futex_waitv", "rseq", "sched_yield", "sched_getaffinity",
      "sched_setaffinity", "sched_getparam", "sched_getscheduler", "sched_get_priority_max",
      "sched_get_priority_min", "getpriority", "setpriority", "getrlimit", "setrlimit", "prlimit64",
      "getrusage", "times", "uname", "sysinfo", "personality", "pidfd_open", "pidfd_send_signal",
      // signals and time
      "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigsuspend", "rt_sigpending",
      "rt_sigtimedwait", "rt_sigqueueinfo", "sigaltstack", "pause", "alarm", "nanosleep",
      "clock_nanosleep", "clock_gettime", "clock_getres", "gettimeofday", "time", "getitimer",
      "setitimer", "timer_create", "timer_settime", "timer_gettime", "timer_delete",
      "timerfd_create", "timerfd_settime", "timerfd_gettime",
      // waiting and events
      "poll", "ppoll", "select", "pselect6", "epoll_create", "epoll_create1", "epoll_ctl",
      "epoll_wait", "epoll_pwait", "epoll_pwait2", "eventfd", "eventfd2", "signalfd", "signalfd4",
      // sockets (families are checked by the argument rules)
      "socket", "socketpair", "connect", "accept", "accept4", "bind", "listen", "sendto",
      "recvfrom", "sendmsg", "recvmsg", "sendmmsg", "recvmmsg", "shutdown", "getsockname",
      "getpeername", "getsockopt", "setsockopt",
      // misc
      "getrandom", "get_mempolicy", "set_mempolicy", "mbind", "restart_syscall", "sched_getattr",
      "sched_setattr", "ioprio_get", "ioprio_set", "landlock_create_ruleset", "landlock_add_rule",
      "landlock_restrict_self"};
  for (const char* name : kAllowed) {
    r.push_back(SeccompRule{name, RuleAction::kAllow, 0, {}, "allow-list"});
  }
  AddArgumentRules(network, &r);
  return r;
}

static Result<SeccompProgram> CompileSeccompProgram(SeccompMode mode, NetworkMode network) {
  SeccompProgram prog;
  if (mode == SeccompMode::kOff) return prog;
  const bool allow_list = mode == SeccompMode::kAllowList;
  // The allow-list answers everything else with ENOSYS ("not here"), which programs take as a
  // missing feature; its argument rules say EPERM. (libseccomp refuses a rule whose action is
  // the default one, so the two must differ.)
  const uint32_t default_action = allow_list ? SCMP_ACT_ERRNO(ENOSYS) : SCMP_ACT_ALLOW;
  scmp_filter_ctx ctx = seccomp_init(default_action);
  if (!ctx) return InternalError("seccomp_init failed");
  struct Free {
    scmp_filter_ctx c;
    ~Free() { seccomp_release(c); }
  } free_ctx{ctx};
  // Calls from another ABI (i386 int 0x80, x32) kill the process: the filter only knows the
  // native numbers.
  if (int rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS); rc < 0) {
    return ErrnoError("seccomp: bad-arch action", -rc);
  }
  std::vector<SeccompRule> rules = allow_list ? AllowListRules(network) : DenyListRules(network);
  for (const SeccompRule& rule : rules) {
    const int nr = seccomp_syscall_resolve_name(rule.syscall.c_str());
    if (nr == __NR_SCMP_ERROR) {
      return InvalidArgumentError(StrCat("seccomp: unknown syscall \"", rule.syscall, "\""));
    }
    uint32_t action = SCMP_ACT_ALLOW;
    if (rule.action == RuleAction::kErrno) action = SCMP_ACT_ERRNO(rule.errno_value);
    if (rule.action == RuleAction::kKill) action = SCMP_ACT_KILL_PROCESS;
    if (action == default_action) continue;  // the default already does it
    std::vector<scmp_arg_cmp> cmps;
    for (const ArgMatch& a : rule.args) {
      switch (a.op) {
        case ArgMatch::kEq:
          cmps.push_back(SCMP_CMP(a.index, SCMP_CMP_EQ, Datum(a.value)));
          break;
        case ArgMatch::kNe:
          cmps.push_back(SCMP_CMP(a.index, SCMP_CMP_NE, Datum(a.value)));
          break;
        case ArgMatch::kMaskedEq:
          cmps.push_back(SCMP_CMP(a.index, SCMP_CMP_MASKED_EQ, Datum(a.mask), Datum(a.value)));
          break;
      }
    }
    // In the allow-list an argument rule refines a syscall that is also allowed outright;
    // libseccomp resolves the two (the conditional errno wins where it matches).
    const int rc = seccomp_rule_add_array(ctx, action, nr, static_cast<unsigned>(cmps.size()),
                                          cmps.empty() ? nullptr : cmps.data());
    if (rc < 0) {
      return ErrnoError(StrCat("seccomp: rule for ", rule.syscall), -rc);
    }
    ++prog.rules;
  }
  // libseccomp 2.5 exports to a file descriptor only: go through a memfd.
  UniqueFd mem(memfd_create("v4agent-seccomp", MFD_CLOEXEC));
  if (!mem.valid()) return ErrnoError("seccomp: memfd_create", errno);
  if (int rc = seccomp_export_bpf(ctx, mem.get()); rc < 0) {
    return ErrnoError("seccomp: export", -rc);
  }
  const off_t size = lseek(mem.get(), 0, SEEK_END);
  prog.bpf.resize(static_cast<size_t>(size));
  if (pread(mem.get(), prog.bpf.data(), prog.bpf.size(), 0) != size) {
    return ErrnoError("seccomp: reading the exported filter", errno);
  }
  return prog;
}

Result<SeccompProgram> BuildSeccompProgram(SeccompMode mode, NetworkMode network) {
  // Compiling takes longer than the rest of a sandbox start; the program depends only on the
  // two modes, so each is compiled once per process.
  static std::mutex mu;
  static std::map<std::pair<int, int>, SeccompProgram> cache;
  std::lock_guard<std::mutex> lock(mu);
  const auto key = std::make_pair(static_cast<int>(mode), static_cast<int>(network));
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  V4_ASSIGN_OR_RETURN(SeccompProgram prog, CompileSeccompProgram(mode, network));
  cache.emplace(key, prog);
  return prog;
}

}  // namespace v4agent::sandbox
