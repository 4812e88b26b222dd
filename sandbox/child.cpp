#include "sandbox/child.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/mount.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

// Everything here runs between clone() and execve(): only syscalls and the plan's
// preallocated strings, no allocation, no locks.
namespace v4agent::sandbox {
namespace {

const ChildPlan* g_plan = nullptr;

[[noreturn]] void Fail(const char* step, int err) {
  FailureRecord r{};
  std::strncpy(r.step, step, sizeof(r.step) - 1);
  r.err = err;
  if (g_plan && g_plan->err_fd >= 0) {
    ssize_t n = write(g_plan->err_fd, &r, sizeof(r));
    (void)n;
  }
  _exit(127);
}

void Check(bool ok, const char* step) {
  if (!ok) Fail(step, errno);
}

bool WriteWhole(const char* path, const std::string& text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  close(fd);
  return ok;
}

// mkdir -p inside the (writable) staging area; the last component is a file when !is_dir.
bool MakePath(const std::string& path, bool is_dir) {
  char buf[4096];
  if (path.size() >= sizeof(buf)) {
    errno = ENAMETOOLONG;
    return false;
  }
  std::memcpy(buf, path.c_str(), path.size() + 1);
  for (size_t i = 1; i < path.size(); ++i) {
    if (buf[i] != '/') continue;
    buf[i] = '\0';
    if (mkdir(buf, 0755) != 0 && errno != EEXIST) return false;
    buf[i] = '/';
  }
  if (is_dir) return mkdir(buf, 0755) == 0 || errno == EEXIST;
  int fd = open(buf, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return errno == EEXIST || errno == EROFS ? access(buf, F_OK) == 0 : false;
  close(fd);
  return true;
}

int OpenTreeClone(const std::string& path) {
  return static_cast<int>(
      syscall(SYS_open_tree, AT_FDCWD, path.c_str(),
              OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE | AT_SYMLINK_NOFOLLOW));
}

bool SetAttr(int tree, uint64_t set) {
  struct mount_attr attr {};
  attr.attr_set = set;
  return syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof(attr)) ==
         0;
}

bool MoveTo(int tree, const std::string& target) {
  return syscall(SYS_move_mount, tree, "", AT_FDCWD, target.c_str(), MOVE_MOUNT_F_EMPTY_PATH) == 0;
}

// A detached read-only mount of an empty file, cloned over hidden and secret files.
int g_empty_tree = -1;

// An empty file where the command cannot write (EROFS), unlike /dev/null, which swallows writes.
void MaskFile(const char* target, const char* step) {
  const int tree = static_cast<int>(syscall(SYS_open_tree, g_empty_tree, "",
                                            OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH));
  Check(tree >= 0 && MoveTo(tree, target), step);
  close(tree);
}

void MaskDir(const char* target, const char* options, const char* step) {
  Check(mount("tmpfs", target, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, options) == 0,
        step);
}

void SetupMounts(const ChildPlan& p) {
  Check(mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0, "mount_private");
  // Clone every source tree first, while the host paths still resolve as on the host (the
  // staging tmpfs below may shadow them, e.g. a workspace under /tmp).
  int root = OpenTreeClone(p.root_source);
  Check(root >= 0, "root_view");
  Check(SetAttr(root,
                (p.root_writable ? 0 : MOUNT_ATTR_RDONLY) | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV),
        "root_readonly");
  int trees[ChildPlan::kMaxTrees];
  size_t n_trees = 0;
  for (const auto& b : p.binds) {
    int tree = OpenTreeClone(b.source);
    Check(tree >= 0, "bind_open");
    uint64_t attrs = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
    if (!b.writable) attrs |= MOUNT_ATTR_RDONLY;
    Check(SetAttr(tree, attrs), "bind_attrs");
    trees[n_trees++] = tree;
  }
  const size_t first_dev = n_trees;
  for (const auto& node : p.dev_nodes) {
    int tree = OpenTreeClone(node.first);
    Check(tree >= 0, "dev_node_open");
    trees[n_trees++] = tree;
  }
  Check(mount("tmpfs", p.stage.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "mode=700,size=64k") == 0,
        "stage_tmpfs");
  {
    const int fd = open(p.empty_file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
    Check(fd >= 0, "empty_file");
    close(fd);
    g_empty_tree = OpenTreeClone(p.empty_file);
    Check(g_empty_tree >= 0 && SetAttr(g_empty_tree, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID |
                                                         MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC),
          "empty_file_tree");
  }
  Check(mkdir(p.newroot.c_str(), 0755) == 0, "stage_mkdir");
  Check(MoveTo(root, p.newroot), "root_attach");
  close(root);
  Check(mount("tmpfs", p.tmp_target.c_str(), "tmpfs", MS_NOSUID | MS_NODEV,
              p.tmp_options.c_str()) == 0,
        "tmp_tmpfs");
  for (size_t i = 0; i < p.binds.size(); ++i) {
    const auto& b = p.binds[i];
    // A target that does not exist yet can only be made inside our own tmpfs mounts.
    if (access(b.target.c_str(), F_OK) != 0) Check(MakePath(b.target, b.is_dir), "bind_target");
    Check(MoveTo(trees[i], b.target), "bind_attach");
    close(trees[i]);
  }
  for (const auto& h : p.hidden) {
    if (access(h.target.c_str(), F_OK) != 0) continue;
    if (h.is_dir) {
      MaskDir(h.target.c_str(), "mode=000,size=4k", "hide_dir");
    } else {
      MaskFile(h.target.c_str(), "hide_file");
    }
  }
  Check(
      mount("tmpfs", p.dev_target.c_str(), "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=755,size=1m") == 0,
      "dev_tmpfs");
  for (size_t i = 0; i < p.dev_nodes.size(); ++i) {
    const std::string& target = p.dev_nodes[i].second;
    Check(MakePath(target, false), "dev_node_file");
    Check(MoveTo(trees[first_dev + i], target), "dev_node_bind");
    close(trees[first_dev + i]);
  }
  // POSIX semaphores and shared memory (Python's multiprocessing) live in /dev/shm.
  Check(MakePath(p.shm_target, true) && mount("tmpfs", p.shm_target.c_str(), "tmpfs",
                                              MS_NOSUID | MS_NODEV, p.shm_options.c_str()) == 0,
        "dev_shm");
  // A devpts instance of our own: ptys for script/expect/tests, none of the host's.
  Check(MakePath(p.pts_target, true) && mount("devpts", p.pts_target.c_str(), "devpts",
                                              MS_NOSUID | MS_NOEXEC, p.pts_options.c_str()) == 0,
        "dev_pts");
  for (const auto& [link, target] : p.dev_links) {
    Check(symlink(target.c_str(), link.c_str()) == 0, "dev_symlink");
  }
  Check(
      mount("proc", p.proc_target.c_str(), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) == 0,
      "proc");
  Check(chdir(p.newroot.c_str()) == 0, "pivot_chdir");
  Check(syscall(SYS_pivot_root, ".", ".") == 0, "pivot_root");
  Check(umount2(".", MNT_DETACH) == 0, "old_root_detach");
  Check(chdir("/") == 0, "pivot_chdir");
  if (!p.pid_max.empty()) Check(WriteWhole("/proc/sys/kernel/pid_max", p.pid_max), "pid_max");
}

void SetupLoopback() {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  Check(s >= 0, "net_socket");
  struct ifreq ifr {};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  Check(ioctl(s, SIOCGIFFLAGS, &ifr) == 0, "net_lo_flags");
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP | IFF_RUNNING);
  Check(ioctl(s, SIOCSIFFLAGS, &ifr) == 0, "net_lo_up");
  close(s);
}

void DropCapabilities() {
  for (int cap = 0; cap <= 63; ++cap) {
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) Fail("cap_bounding", errno);
  }
  struct __user_cap_header_struct hdr {
    _LINUX_CAPABILITY_VERSION_3, 0
  };
  struct __user_cap_data_struct data[2]{};
  Check(syscall(SYS_capset, &hdr, data) == 0, "capabilities");
}

// Tests of the seccomp layer: the command (uid != 0 inside) would lose every capability at
// execve; made ambient, the user namespace's capabilities survive it.
void KeepCapabilitiesAcrossExec() {
  struct __user_cap_header_struct hdr {
    _LINUX_CAPABILITY_VERSION_3, 0
  };
  struct __user_cap_data_struct data[2]{};
  Check(syscall(SYS_capget, &hdr, data) == 0, "capabilities");
  data[0].inheritable = data[0].permitted;
  data[1].inheritable = data[1].permitted;
  Check(syscall(SYS_capset, &hdr, data) == 0, "capabilities");
  for (int cap = 0; cap <= 63; ++cap) prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0);
}

// The command, parsed from the command pipe into static storage (no allocation).
char g_cmd[kMaxCommandBytes + 1];
char* g_argv[8192];
char* g_envp[8192];
const char* g_mounts[4096];  // each: the LateMount kind letter, then the path
long g_mount_count = 0;
const char* g_cwd = "/";
const char* g_search = "";

void ReadCommand(const ChildPlan& p) {
  size_t n = 0;
  for (;;) {
    if (n >= kMaxCommandBytes) Fail("command_too_long", E2BIG);
    const ssize_t r = read(p.cmd_fd, g_cmd + n, kMaxCommandBytes - n);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) Fail("command_read", errno);
    if (r == 0) break;
    n += static_cast<size_t>(r);
  }
  close(p.cmd_fd);
  g_cmd[n] = '\0';
  // Fields: cwd, search, argc, argv..., envc, env...
  size_t at = 0;
  auto next = [&]() -> char* {
    if (at >= n) Fail("command_format", EINVAL);
    char* f = g_cmd + at;
    at += std::strlen(f) + 1;
    return f;
  };
  g_cwd = next();
  g_search = next();
  const long argc = std::strtol(next(), nullptr, 10);
  if (argc <= 0 || argc >= 8191) Fail("command_format", EINVAL);
  for (long i = 0; i < argc; ++i) g_argv[i] = next();
  g_argv[argc] = nullptr;
  const long envc = std::strtol(next(), nullptr, 10);
  if (envc < 0 || envc >= 8191) Fail("command_format", EINVAL);
  for (long i = 0; i < envc; ++i) g_envp[i] = next();
  g_envp[envc] = nullptr;
  g_mount_count = std::strtol(next(), nullptr, 10);
  if (g_mount_count < 0 || g_mount_count > 4096) Fail("command_format", EINVAL);
  for (long i = 0; i < g_mount_count; ++i) {
    g_mounts[i] = next();
    if (g_mounts[i][0] == '\0' || g_mounts[i][1] != '/') Fail("command_format", EINVAL);
  }
}

// The protected-path and secret mounts of this command (sandbox/protected_paths.h): made by
// the init, which holds CAP_SYS_ADMIN over the sandbox's mount namespace, before the command
// exists. Symlinks are never followed in the last component.
void LateMounts() {
  for (long i = 0; i < g_mount_count; ++i) {
    const char kind = g_mounts[i][0];
    const char* path = g_mounts[i] + 1;
    switch (kind) {
      case LateMount::kPin:
      case LateMount::kReadOnly: {
        const int tree = OpenTreeClone(path);
        Check(tree >= 0, "protect_open");
        if (kind == LateMount::kReadOnly) {
          Check(SetAttr(tree, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV),
                "protect_readonly");
        }
        Check(MoveTo(tree, path), "protect_attach");
        close(tree);
        break;
      }
      case LateMount::kMaskFile:
      case LateMount::kMaskDir: {
        // Nothing to hide where the sandbox's view has nothing (under a hidden directory).
        struct stat st;
        if (lstat(path, &st) != 0) break;
        if (kind == LateMount::kMaskFile) {
          MaskFile(path, "secret_file");
        } else {
          MaskDir(path, "mode=555,size=4k", "secret_dir");
        }
        break;
      }
      default:
        Fail("command_format", EINVAL);
    }
  }
}

[[noreturn]] void Exec() {
  const char* file = g_argv[0];
  if (std::strchr(file, '/')) {
    execve(file, g_argv, g_envp);
    Fail("exec", errno);
  }
  char buf[4096];
  int last = ENOENT;
  const char* dirs = g_search;
  while (*dirs) {
    const char* end = std::strchr(dirs, ':');
    const size_t len = end ? static_cast<size_t>(end - dirs) : std::strlen(dirs);
    const size_t flen = std::strlen(file);
    if (len + flen + 2 < sizeof(buf)) {
      std::memcpy(buf, dirs, len);
      size_t at = len;
      if (at == 0) buf[at++] = '.';
      buf[at++] = '/';
      std::memcpy(buf + at, file, flen + 1);
      execve(buf, g_argv, g_envp);
      if (errno != ENOENT && errno != ENOTDIR) last = errno;
    }
    if (!end) break;
    dirs = end + 1;
  }
  Fail("exec", last);
}

[[noreturn]] void RunCommand(const ChildPlan& p) {
  Check(setsid() >= 0, "session");
  Check(dup2(p.stdin_fd, 0) == 0 && dup2(p.stdout_fd, 1) == 1 && dup2(p.stderr_fd, 2) == 2,
        "stdio");
  Check(syscall(SYS_close_range, 3, ~0u, CLOSE_RANGE_CLOEXEC) == 0, "close_fds");
  for (const auto& [resource, lim] : p.rlimits) {
    Check(setrlimit(static_cast<__rlimit_resource>(resource), &lim) == 0, "rlimits");
  }
  Check(chdir(g_cwd) == 0, "cwd");
  Check(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0, "no_new_privs");
  if (p.drop_capabilities) {
    DropCapabilities();
  } else {
    KeepCapabilitiesAcrossExec();
  }
  if (!p.seccomp_bpf.empty()) {
    struct sock_fprog prog {};
    prog.len = static_cast<unsigned short>(p.seccomp_bpf.size() / sizeof(struct sock_filter));
    prog.filter = reinterpret_cast<struct sock_filter*>(const_cast<uint8_t*>(p.seccomp_bpf.data()));
    Check(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) == 0, "seccomp");
  }
  Exec();
}

// The in-sandbox end of the egress proxy: the init accepts on 127.0.0.1:kProxyPort in the
// sandbox's network namespace and relays each connection to the host proxy's unix socket.
// Static buffers only (the init never allocates).
constexpr int kMaxRelays = 64;
constexpr size_t kRelayBuf = 16384;
struct RelayPair {
  int fd[2] = {-1, -1};    // 0: the command's TCP side, 1: the proxy's unix side
  char buf[2][kRelayBuf];  // buf[i]: read from fd[i], to be written to fd[1 - i]
  size_t len[2] = {0, 0}, off[2] = {0, 0};
  bool eof[2] = {false, false};
};
RelayPair g_relays[kMaxRelays];

int ProxyListener() {
  const int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  Check(s >= 0, "proxy_socket");
  const int one = 1;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(kProxyPort);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  Check(bind(s, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0, "proxy_bind");
  Check(listen(s, 64) == 0, "proxy_listen");
  return s;
}

void ClosePair(RelayPair* r) {
  for (int& fd : r->fd) {
    if (fd >= 0) close(fd);
    fd = -1;
  }
}

void AcceptRelay(const ChildPlan& p, int listener) {
  for (;;) {
    const int c = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (c < 0) return;
    RelayPair* slot = nullptr;
    for (auto& r : g_relays) {
      if (r.fd[0] < 0) {
        slot = &r;
        break;
      }
    }
    const int u = slot ? socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0) : -1;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    const size_t n = std::min(p.proxy_socket.size(), sizeof(addr.sun_path) - 1);
    std::memcpy(addr.sun_path, p.proxy_socket.c_str(), n);
    if (u < 0 || connect(u, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      if (u >= 0) close(u);
      close(c);  // no slot or no proxy: the client sees the connection close
      continue;
    }
    fcntl(u, F_SETFL, O_NONBLOCK);
    *slot = RelayPair{};
    slot->fd[0] = c;
    slot->fd[1] = u;
  }
}

// Moves bytes for one pair as far as they go without blocking.
void Pump(RelayPair* r) {
  for (int i = 0; i < 2; ++i) {
    const int from = r->fd[i], to = r->fd[1 - i];
    if (r->len[i] == 0 && !r->eof[i]) {
      const ssize_t n = read(from, r->buf[i], kRelayBuf);
      if (n > 0) {
        r->len[i] = static_cast<size_t>(n);
        r->off[i] = 0;
      } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        r->eof[i] = true;
        shutdown(to, SHUT_WR);
      }
    }
    while (r->len[i] > 0) {
      const ssize_t w = send(to, r->buf[i] + r->off[i], r->len[i], MSG_NOSIGNAL);
      if (w < 0 && (errno == EAGAIN || errno == EINTR)) break;
      if (w <= 0) {
        ClosePair(r);
        return;
      }
      r->off[i] += static_cast<size_t>(w);
      r->len[i] -= static_cast<size_t>(w);
    }
  }
  if (r->eof[0] && r->eof[1] && r->len[0] == 0 && r->len[1] == 0) ClosePair(r);
}

template <typename Reap>
[[noreturn]] void RelayLoop(const ChildPlan& p, int listener, int sigfd, Reap reap) {
  pollfd fds[2 + 2 * kMaxRelays];
  for (;;) {
    int n = 0;
    fds[n++] = pollfd{sigfd, POLLIN, 0};
    fds[n++] = pollfd{listener, POLLIN, 0};
    for (auto& r : g_relays) {
      if (r.fd[0] < 0) continue;
      for (int i = 0; i < 2; ++i) {
        short ev = 0;
        if (r.len[i] == 0 && !r.eof[i]) ev |= POLLIN;
        if (r.len[1 - i] > 0) ev |= POLLOUT;
        fds[n++] = pollfd{r.fd[i], ev, 0};
      }
    }
    if (poll(fds, static_cast<nfds_t>(n), -1) < 0 && errno != EINTR) _exit(0);
    if (fds[0].revents) {
      signalfd_siginfo info;
      while (read(sigfd, &info, sizeof(info)) > 0) {
      }
      reap();
    }
    if (fds[1].revents) AcceptRelay(p, listener);
    for (auto& r : g_relays) {
      if (r.fd[0] >= 0) Pump(&r);
    }
  }
}

}  // namespace

std::string EncodeCommand(const std::string& cwd, const std::string& search_path,
                          const std::vector<std::string>& argv, const std::vector<std::string>& env,
                          const std::vector<LateMount>& mounts) {
  std::string out;
  auto add = [&](const std::string& f) {
    out.append(f.c_str());  // an embedded NUL would end the field anyway
    out.push_back('\0');
  };
  add(cwd);
  add(search_path);
  add(std::to_string(argv.size()));
  for (const auto& a : argv) add(a);
  add(std::to_string(env.size()));
  for (const auto& e : env) add(e);
  add(std::to_string(mounts.size()));
  for (const auto& m : mounts) add(std::string(1, static_cast<char>(m.kind)) + m.path);
  return out;
}

void RunChild(const ChildPlan& p) {
  g_plan = &p;
  // Keep only our own descriptors. A sandbox prepared while another runs would otherwise hold
  // that one's pipes (stdin never reaching EOF), and a waiting init must not hold the
  // launcher's stdout either.
  int keep[8] = {p.stdin_fd,  p.stdout_fd, p.stderr_fd, p.err_fd,
                 p.status_fd, p.cmd_fd,    p.go_fd,     -1};
  std::sort(keep, keep + 8);
  int from = 0;
  for (int fd : keep) {
    if (fd < from) continue;
    if (fd > from) syscall(SYS_close_range, from, fd - 1, 0);
    from = fd + 1;
  }
  syscall(SYS_close_range, from, ~0u, 0);
  // Die with the launcher: nothing may outlive the process that owns the sandbox.
  Check(prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) == 0, "die_with_parent");
  if (p.go_fd >= 0) {
    char c;
    Check(read(p.go_fd, &c, 1) == 1, "wait_parent");
  }
  if (p.new_user) {
    // A launcher that changed its uid (setuid from root) is not dumpable, which makes its
    // /proc/self files root's; the child must own them to write its own maps.
    Check(prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) == 0, "userns_dumpable");
    Check(WriteWhole("/proc/self/setgroups", "deny"), "userns_setgroups");
    Check(WriteWhole("/proc/self/uid_map", p.uid_map), "userns_uid_map");
    Check(WriteWhole("/proc/self/gid_map", p.gid_map), "userns_gid_map");
  }
  SetupMounts(p);
  if (p.network == NetworkMode::kLoopback || p.network == NetworkMode::kProxy) SetupLoopback();
  Check(sethostname(p.hostname.c_str(), p.hostname.size()) == 0, "uts");
  // Set up and waiting: the command may have been sent already or come much later.
  ReadCommand(p);
  LateMounts();
  const bool relay = p.network == NetworkMode::kProxy;
  int listener = -1, sigfd = -1;
  if (relay) {
    listener = ProxyListener();
    // SIGCHLD through a descriptor, so the init can wait for children and relay at once.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    Check(sigprocmask(SIG_BLOCK, &set, nullptr) == 0, "proxy_sigmask");
    sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    Check(sigfd >= 0, "proxy_signalfd");
  }
  // Pid 1 of the namespace stays as its init: it reaps everything and reports the command's
  // status; when it exits the kernel kills whatever is left in the namespace.
  // The raw system call, not glibc's fork(): that one takes malloc's arena locks for its
  // atfork handlers, and this process is a clone() of a multithreaded launcher, so a lock
  // another thread held at that moment is held here forever (seen as a test command that
  // never started while two evaluation workers ran).
  const pid_t cmd = static_cast<pid_t>(syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0));
  Check(cmd >= 0, "fork");
  if (cmd == 0) {
    if (relay) {
      sigset_t none;
      sigemptyset(&none);
      sigprocmask(SIG_SETMASK, &none, nullptr);
    }
    RunCommand(p);
  }
  close(p.stdin_fd);
  close(p.stdout_fd);
  close(p.stderr_fd);
  auto reap = [&](bool block) {
    for (;;) {
      int status = 0;
      const pid_t w = waitpid(-1, &status, block ? 0 : WNOHANG);
      if (w == cmd) {
        ssize_t n = write(p.status_fd, &status, sizeof(status));
        (void)n;
        _exit(0);
      }
      if (w == 0) return;
      if (w < 0 && errno != EINTR) _exit(0);
    }
  };
  if (!relay) reap(true);
  RelayLoop(p, listener, sigfd, [&] { reap(false); });
}

}  // namespace v4agent::sandbox
