#include "sandbox/launcher.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/pidfd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "common/file_util.h"
#include "common/stopwatch.h"
#include "common/strings.h"
#include "common/unique_fd.h"
#include "sandbox/cgroup.h"
#include "sandbox/child.h"
#include "sandbox/protected_paths.h"
#include "sandbox/seccomp_rules.h"
#include "sandbox/secret_scan.h"

extern char** environ;

namespace v4agent::sandbox {
namespace {

namespace fs = std::filesystem;

// Head + tail capture with bounded memory: the first cap/2 bytes and a ring of the last cap/2.
class Capture {
 public:
  explicit Capture(uint64_t cap) : head_cap_(cap / 2), tail_cap_(cap - cap / 2) {}
  void Add(std::string_view data) {
    total_ += data.size();
    const size_t h = std::min<size_t>(data.size(), head_cap_ - head_.size());
    head_.append(data.substr(0, h));
    data.remove_prefix(h);
    if (data.empty() || tail_cap_ == 0) return;
    tail_.append(data);
    if (tail_.size() > 2 * tail_cap_) tail_.erase(0, tail_.size() - tail_cap_);
  }
  StreamCapture Finish() {
    StreamCapture c;
    if (tail_.size() > tail_cap_) tail_.erase(0, tail_.size() - tail_cap_);
    c.head = std::move(head_);
    c.tail = std::move(tail_);
    c.total_bytes = total_;
    c.dropped_bytes = total_ - c.head.size() - c.tail.size();
    return c;
  }

 private:
  size_t head_cap_, tail_cap_;
  std::string head_, tail_;
  uint64_t total_ = 0;
};

struct Pipe {
  UniqueFd read, write;
};

Result<Pipe> MakePipe(int flags) {
  int fds[2];
  if (pipe2(fds, flags) != 0) return ErrnoError("pipe", errno);
  return Pipe{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

int ChildEntry(void* arg) { RunChild(*static_cast<const ChildPlan*>(arg)); }

std::string Inside(const std::string& newroot, const std::string& path) { return newroot + path; }

// Whether the running kernel is at least major.minor (uname's release).
bool KernelAtLeast(int major, int minor) {
  utsname u{};
  if (uname(&u) != 0) return false;
  int ma = 0, mi = 0;
  if (std::sscanf(u.release, "%d.%d", &ma, &mi) != 2) return false;
  return ma > major || (ma == major && mi >= minor);
}

const char* NetworkModeName(NetworkMode m) {
  switch (m) {
    case NetworkMode::kNone:
      return "none";
    case NetworkMode::kLoopback:
      return "loopback";
    case NetworkMode::kHost:
      return "host";
    case NetworkMode::kProxy:
      return "proxy";
  }
  return "?";
}

// Where the egress proxy's socket appears inside (the sandbox's private /tmp).
constexpr char kProxySocketInside[] = "/tmp/.v4agent-proxy.sock";

// The kernel's floor for pid_max (RESERVED_PIDS + 1).
constexpr uint64_t kMinPidMax = 301;

void SetLimit(ChildPlan* p, RunReport* r, int resource, uint64_t value, const char* name) {
  if (value == 0) return;
  rlimit lim{static_cast<rlim_t>(value), static_cast<rlim_t>(value)};
  p->rlimits.emplace_back(resource, lim);
  r->limits_applied.push_back(StrCat("rlimit_", name, "=", value));
}

}  // namespace

std::vector<std::string> DefaultProtectedPaths() {
  return {".git/hooks",   ".git/config", ".bashrc", ".bash_profile", ".bash_login",
          ".bash_logout", ".profile",    ".zshrc",  ".zshenv",       ".zprofile",
          ".zlogin",      ".envrc",      ".vscode"};
}

Profile DefaultProfile(const std::string& workspace) {
  Profile p;
  p.binds.push_back(Bind{workspace, workspace, true});
  p.cwd = workspace;
  p.rlimits.file_size = 1ull << 30;
  p.cgroup.memory_bytes = 2ull << 30;
  p.cgroup.pids = 256;
  p.timeout_seconds = 60;
  // Credentials and sockets of the host user: never visible to a sandboxed command.
  if (const char* home = std::getenv("HOME"); home && *home) {
    for (const char* d : {".ssh", ".aws", ".gnupg", ".config/gcloud", ".docker", ".kube", ".netrc",
                          ".git-credentials", ".npmrc", ".pypirc"}) {
      p.hidden_paths.push_back(StrCat(home, "/", d));
    }
  }
  p.hidden_paths.push_back("/run");
  p.hidden_paths.push_back("/var/run/docker.sock");
  return p;
}

HostSupport ProbeHost() {
  HostSupport h;
  const CgroupSupport cg = ProbeCgroups();
  h.cgroup_v2_writable = !cg.v2_dir.empty();
  h.cgroup_path = cg.v2_dir;
  h.cgroup_v1_pids = cg.v1_pids;
  h.cgroup_v1_memory = cg.v1_memory;
  h.cgroup_reason = StrJoin(cg.reasons, "; ");
  h.pid_namespace_pid_max = KernelAtLeast(6, 14);
  return h;
}

// A sandbox set up (or setting itself up) and waiting for its command.
struct Prepared {
  pid_t child = -1;
  UniqueFd pidfd;
  Pipe in, out, err, fail, status;
  UniqueFd cmd;  // write end: the command
  std::unique_ptr<CgroupScope> cgroup;
  RunReport report;  // limits applied / unavailable so far
};

std::string ShapeKey(const Profile& p) {
  // Everything a prepared sandbox fixes before its command is known.
  std::string k = StrCat(p.rootfs, "|", p.root_writable, "|", p.tmp_size_bytes, "|",
                         static_cast<int>(p.network), "|", static_cast<int>(p.seccomp), "|", p.uid,
                         "|", p.gid, "|", p.hostname, "|", p.keep_capabilities_for_tests, "|",
                         p.rlimits.cpu_seconds, "|", p.rlimits.address_space, "|",
                         p.rlimits.processes, "|", p.rlimits.open_files, "|", p.rlimits.file_size,
                         "|", p.cgroup.memory_bytes, "|", p.cgroup.pids, "|", p.cgroup.cpu_percent);
  for (const auto& b : p.binds) k += StrCat("|b", b.source, ">", b.target, b.writable);
  for (const auto& x : p.protected_paths) k += "|p" + x;
  for (const auto& x : p.hidden_paths) k += "|h" + x;
  k += StrCat("|s", p.shm_size_bytes, "|x", p.proxy_socket);
  return k;
}

Result<std::unique_ptr<Prepared>> Prepare(const Profile& profile) {
  auto prep = std::make_unique<Prepared>();
  RunReport& report = prep->report;
  ChildPlan plan;
  // User namespace: the command runs as profile.uid inside, mapped to us outside.
  plan.new_user = true;
  plan.uid_map = StrCat(profile.uid, " ", static_cast<uint64_t>(geteuid()), " 1\n");
  plan.gid_map = StrCat(profile.gid, " ", static_cast<uint64_t>(getegid()), " 1\n");

  // Mount plan.
  plan.root_source = profile.rootfs.empty() ? "/" : profile.rootfs;
  plan.root_writable = profile.root_writable;
  if (struct stat st; stat(plan.root_source.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return NotFoundError(StrCat("sandbox: root view ", plan.root_source, " is not a directory"));
  }
  const std::string& nr = plan.newroot;
  std::vector<std::string> writable_roots;
  for (const Bind& b : profile.binds) {
    std::error_code ec;
    const fs::path src = fs::canonical(b.source, ec);
    if (ec) return NotFoundError(StrCat("sandbox: bind source ", b.source, ": ", ec.message()));
    const std::string target = b.target.empty() ? src.string() : b.target;
    plan.binds.push_back({src.string(), Inside(nr, target), b.writable, fs::is_directory(src)});
    if (b.writable) writable_roots.push_back(src.string());
  }
  for (const std::string& rel : profile.protected_paths) {
    std::vector<std::string> candidates;
    if (!rel.empty() && rel[0] == '/') {
      candidates.push_back(rel);
    } else {
      for (const auto& root : writable_roots) candidates.push_back(root + "/" + rel);
    }
    for (const auto& path : candidates) {
      struct stat st;
      if (!LstatProtectedPath(path, &st) || S_ISLNK(st.st_mode)) continue;
      plan.binds.push_back({path, Inside(nr, path), false, S_ISDIR(st.st_mode)});
    }
  }
  for (const std::string& h : profile.hidden_paths) {
    struct stat st;
    if (lstat(h.c_str(), &st) != 0 || S_ISLNK(st.st_mode)) continue;
    plan.hidden.push_back({Inside(nr, h), S_ISDIR(st.st_mode)});
  }
  plan.empty_file = plan.stage + "/.v4empty";
  plan.tmp_target = Inside(nr, "/tmp");
  plan.tmp_options = StrCat("mode=1777,size=", profile.tmp_size_bytes);
  plan.dev_target = Inside(nr, "/dev");
  plan.shm_target = Inside(nr, "/dev/shm");
  plan.shm_options = StrCat("mode=1777,size=", profile.shm_size_bytes);
  plan.pts_target = Inside(nr, "/dev/pts");
  plan.pts_options = "newinstance,ptmxmode=0666,mode=0620";
  for (const char* dev : {"null", "zero", "full", "random", "urandom", "tty"}) {
    plan.dev_nodes.emplace_back(StrCat("/dev/", dev), Inside(nr, StrCat("/dev/", dev)));
  }
  plan.dev_links = {{Inside(nr, "/dev/fd"), "/proc/self/fd"},
                    {Inside(nr, "/dev/stdin"), "/proc/self/fd/0"},
                    {Inside(nr, "/dev/stdout"), "/proc/self/fd/1"},
                    {Inside(nr, "/dev/stderr"), "/proc/self/fd/2"},
                    {Inside(nr, "/dev/ptmx"), "pts/ptmx"}};
  plan.proc_target = Inside(nr, "/proc");
  if (plan.binds.size() + plan.dev_nodes.size() > ChildPlan::kMaxTrees) {
    return InvalidArgumentError(StrCat("sandbox: too many binds (", plan.binds.size(),
                                       "); at most ", ChildPlan::kMaxTrees - 8));
  }
  report.limits_applied.push_back(profile.root_writable ? "root=writable" : "root=read-only");
  report.limits_applied.push_back(StrCat("tmp_size=", profile.tmp_size_bytes));

  // Network, UTS, limits.
  plan.network = profile.network;
  if (profile.network == NetworkMode::kProxy) {
    if (profile.proxy_socket.empty()) {
      return InvalidArgumentError("sandbox: network mode proxy needs the proxy's socket");
    }
    if (struct stat st; stat(profile.proxy_socket.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode)) {
      return NotFoundError(
          StrCat("sandbox: proxy socket ", profile.proxy_socket, " is not a listening socket"));
    }
    plan.proxy_socket = kProxySocketInside;
    plan.binds.push_back({profile.proxy_socket, Inside(nr, kProxySocketInside), false, false});
  }
  plan.hostname = profile.hostname;
  report.limits_applied.push_back(StrCat("network=", NetworkModeName(profile.network)));
  // Memory and processes: a cgroup where one is usable; otherwise the fallbacks, each named in
  // the report with what it does and does not cover.
  std::unique_ptr<CgroupScope> cgroup_scope;
  const CgroupLimits& want = profile.cgroup;
  if (want.memory_bytes || want.pids || want.cpu_percent) {
    auto scope = CgroupScope::Create(want);
    if (scope.ok()) {
      cgroup_scope = std::move(scope).value();
      for (const auto& l : cgroup_scope->applied()) report.limits_applied.push_back(l);
      for (const auto& l : cgroup_scope->unavailable()) report.limits_unavailable.push_back(l);
    } else {
      report.limits_unavailable.push_back(StrCat("cgroup: ", scope.status().message()));
    }
  }
  const bool cg_memory = cgroup_scope && cgroup_scope->limits_memory();
  const bool cg_pids = cgroup_scope && cgroup_scope->limits_pids();
  uint64_t address_space = profile.rlimits.address_space;
  if (!address_space && want.memory_bytes && !cg_memory) {
    address_space = want.memory_bytes;
    report.limits_applied.push_back(
        StrCat("memory=", want.memory_bytes,
               " by RLIMIT_AS (fallback: limits address space, not memory in use)"));
  }
  SetLimit(&plan, &report, RLIMIT_AS, address_space, "as");
  const bool host_root = geteuid() == 0;
  uint64_t nproc = profile.rlimits.processes;
  if (!nproc && want.pids && !cg_pids && !host_root) nproc = want.pids;
  if (nproc && host_root) {
    report.limits_unavailable.push_back(
        StrCat("rlimit_nproc=", nproc, ": the kernel does not apply RLIMIT_NPROC to host uid 0"));
  } else {
    SetLimit(&plan, &report, RLIMIT_NPROC, nproc, "nproc");
  }
  if (want.pids && !cg_pids && host_root) {
    if (KernelAtLeast(6, 14)) {
      const uint64_t pid_max = std::max<uint64_t>(want.pids + 1, kMinPidMax);
      plan.pid_max = StrCat(pid_max);
      report.limits_applied.push_back(
          StrCat("pids<=", pid_max - 1, " by the pid namespace's pid_max=", pid_max,
                 " (fallback: no usable pids cgroup, and the kernel's floor is ", kMinPidMax, ")"));
    } else {
      report.limits_unavailable.push_back(
          "pids: no usable pids cgroup, host uid 0 and a kernel before 6.14 (no per-namespace "
          "pid_max): no process limit applies");
    }
  }
  SetLimit(&plan, &report, RLIMIT_CPU, profile.rlimits.cpu_seconds, "cpu");
  SetLimit(&plan, &report, RLIMIT_NOFILE, profile.rlimits.open_files, "nofile");
  SetLimit(&plan, &report, RLIMIT_FSIZE, profile.rlimits.file_size, "fsize");
  plan.rlimits.emplace_back(RLIMIT_CORE, rlimit{0, 0});
  report.limits_applied.push_back("rlimit_core=0");
  V4_ASSIGN_OR_RETURN(SeccompProgram seccomp,
                      BuildSeccompProgram(profile.seccomp, profile.network));
  plan.seccomp_bpf = std::move(seccomp.bpf);
  report.limits_applied.push_back(
      StrCat("seccomp=", profile.seccomp == SeccompMode::kDenyList    ? "deny-list"
                         : profile.seccomp == SeccompMode::kAllowList ? "allow-list"
                                                                      : "off"));
  report.limits_applied.push_back("no_new_privs");
  plan.drop_capabilities = !profile.keep_capabilities_for_tests;
  report.limits_applied.push_back(plan.drop_capabilities ? "capabilities=none"
                                                         : "capabilities=kept (tests only)");

  // Pipes.
  V4_ASSIGN_OR_RETURN(prep->in, MakePipe(O_CLOEXEC));
  V4_ASSIGN_OR_RETURN(prep->out, MakePipe(O_CLOEXEC));
  V4_ASSIGN_OR_RETURN(prep->err, MakePipe(O_CLOEXEC));
  V4_ASSIGN_OR_RETURN(prep->fail, MakePipe(O_CLOEXEC));
  V4_ASSIGN_OR_RETURN(prep->status, MakePipe(O_CLOEXEC));
  V4_ASSIGN_OR_RETURN(Pipe cmd, MakePipe(O_CLOEXEC));
  Pipe& in = prep->in;
  Pipe& out = prep->out;
  Pipe& err = prep->err;
  Pipe& fail = prep->fail;
  Pipe& status = prep->status;
  prep->cgroup = std::move(cgroup_scope);
  std::unique_ptr<CgroupScope>& cgroup = prep->cgroup;
  Pipe go;
  if (cgroup) {
    V4_ASSIGN_OR_RETURN(go, MakePipe(O_CLOEXEC));
    plan.go_fd = go.read.get();
  }
  plan.cmd_fd = cmd.read.get();
  plan.stdin_fd = in.read.get();
  plan.stdout_fd = out.write.get();
  plan.stderr_fd = err.write.get();
  plan.err_fd = fail.write.get();
  plan.status_fd = status.write.get();

  int flags = CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC |
              CLONE_PIDFD | SIGCHLD;
  if (profile.network != NetworkMode::kHost) flags |= CLONE_NEWNET;
  constexpr size_t kStack = 256 * 1024;
  void* stack = mmap(nullptr, kStack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (stack == MAP_FAILED) return ErrnoError("sandbox: child stack", errno);
  int pidfd_raw = -1;
  const pid_t child =
      clone(ChildEntry, static_cast<char*>(stack) + kStack, flags, &plan, &pidfd_raw);
  const int clone_errno = errno;
  munmap(stack, kStack);
  if (child < 0) return ErrnoError("sandbox: clone", clone_errno);
  prep->child = child;
  prep->pidfd = UniqueFd(pidfd_raw);
  if (cgroup) {
    Status s = cgroup->AddProcess(child);
    if (!s.ok()) report.limits_unavailable.push_back(StrCat("cgroup: ", s.message()));
    char c = 1;
    // The child may already have died in setup: EPIPE, never a SIGPIPE for the caller.
    if (WritePipeNoSignal(go.write.get(), &c, 1) != 1) {
      report.limits_unavailable.push_back("cgroup: could not release the child");
    }
    go.read.Reset();
  }
  in.read.Reset();
  out.write.Reset();
  err.write.Reset();
  fail.write.Reset();
  status.write.Reset();
  cmd.read.Reset();
  prep->cmd = std::move(cmd.write);
  return prep;
}

// Sends the command to a prepared sandbox and sees it through.
Result<RunReport> Execute(std::unique_ptr<Prepared> prep, const Profile& profile,
                          const std::vector<std::string>& argv, const RunOptions& options,
                          const std::function<void()>& after_start) {
  RunReport report = std::move(prep->report);
  Pipe& in = prep->in;
  Pipe& out = prep->out;
  Pipe& err = prep->err;
  Pipe& fail = prep->fail;
  Pipe& status = prep->status;
  UniqueFd& pidfd = prep->pidfd;
  const pid_t child = prep->child;
  std::unique_ptr<CgroupScope>& cgroup = prep->cgroup;
  // Command and environment: nothing from our environment but the allowlist.
  std::vector<std::string> env;
  for (const std::string& name : profile.env_allowlist) {
    if (const char* v = std::getenv(name.c_str())) env.push_back(name + "=" + v);
  }
  for (const std::string& kv : profile.env) {
    const std::string name = kv.substr(0, kv.find('='));
    std::erase_if(
        env, [&](const std::string& e) { return e.compare(0, name.size() + 1, name + "=") == 0; });
    env.push_back(kv);
  }
  if (profile.network == NetworkMode::kProxy) {
    // Every common client (curl, pip, npm, git, urllib) honours these; the sandbox's own
    // loopback stays direct.
    const std::string url = StrCat("http://127.0.0.1:", kProxyPort);
    for (const char* name : {"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"}) {
      env.push_back(StrCat(name, "=", url));
    }
    for (const char* name : {"NO_PROXY", "no_proxy"}) {
      env.push_back(StrCat(name, "=localhost,127.0.0.1,::1"));
    }
  }
  bool has_home = false;
  for (const auto& e : env) has_home = has_home || e.rfind("HOME=", 0) == 0;
  if (!has_home) env.push_back("HOME=/tmp");
  std::string search = "/usr/local/bin:/usr/bin:/bin";
  for (const auto& e : env) {
    if (e.rfind("PATH=", 0) == 0) search = e.substr(5);
  }
  std::string cwd = profile.cwd;
  if (cwd.empty()) {
    cwd = "/";
    for (const Bind& b : profile.binds) {
      if (b.writable) {
        cwd = b.target.empty() ? b.source : b.target;
        break;
      }
    }
  }
  auto abandon = [&] {
    syscall(SYS_pidfd_send_signal, pidfd.get(), SIGKILL, nullptr, 0);
    waitpid(child, nullptr, 0);
  };
  // Protected paths and secrets as they are now, not as they were when the sandbox was
  // prepared: the init mounts them before the command starts.
  auto guard = ProtectionGuard::Begin(profile);
  if (!guard.ok()) {
    abandon();
    return guard.status();
  }
  std::vector<LateMount> mounts = (*guard)->mounts();
  if (!profile.secret_patterns.empty()) {
    const SecretScan secrets = ScanSecrets(profile);
    mounts.insert(mounts.end(), secrets.masks.begin(), secrets.masks.end());
    report.limits_applied.push_back(StrCat("secrets_masked=", secrets.masks.size()));
    if (secrets.truncated) {
      report.limits_unavailable.push_back(
          StrCat("secret scan stopped after ", secrets.visited,
                 " entries (secret_scan_limit): files beyond it are not masked"));
    }
  }
  const std::string blob = EncodeCommand(cwd, search, argv, env, mounts);
  if (blob.size() > kMaxCommandBytes) {
    abandon();
    return InvalidArgumentError(StrCat("sandbox: the command and environment take ", blob.size(),
                                       " bytes; at most ", kMaxCommandBytes));
  }
  Stopwatch wall;
  for (size_t off = 0; off < blob.size();) {
    // A child that died during setup closes this pipe: EPIPE here, not a SIGPIPE that would
    // kill the process running the sandbox (a pipeline runner, a test).
    const ssize_t w = WritePipeNoSignal(prep->cmd.get(), blob.data() + off, blob.size() - off);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) break;  // the child died during setup: its failure record says why
    off += static_cast<size_t>(w);
  }
  prep->cmd.Reset();
  if (after_start) after_start();

  // Parent loop: feed stdin, capture output, watch the clock and the cancel flag.
  Capture cap_out(profile.capture_bytes), cap_err(profile.capture_bytes);
  std::string fail_bytes, status_bytes;
  size_t stdin_off = 0;
  if (profile.stdin_data.empty()) {
    in.write.Reset();
  } else {
    fcntl(in.write.get(), F_SETFL, O_NONBLOCK);
  }
  bool exited = false;
  double drain_deadline = -1;
  bool killed = false;
  auto kill_tree = [&] {
    if (!killed) {
      syscall(SYS_pidfd_send_signal, pidfd.get(), SIGKILL, nullptr, 0);
      killed = true;
    }
  };
  char buf[65536];
  for (;;) {
    const double now = wall.ElapsedSeconds();
    if (!exited && profile.timeout_seconds > 0 && now >= profile.timeout_seconds) {
      report.timed_out = true;
      kill_tree();
    }
    if (!exited && options.cancel && options.cancel->load()) {
      report.cancelled = true;
      kill_tree();
    }
    pollfd fds[6];
    int n = 0;
    auto add = [&](int fd, short events) {
      if (fd >= 0) fds[n++] = pollfd{fd, events, 0};
    };
    add(out.read.get(), POLLIN);
    add(err.read.get(), POLLIN);
    add(fail.read.get(), POLLIN);
    add(status.read.get(), POLLIN);
    add(exited ? -1 : pidfd.get(), POLLIN);
    add(in.write.get(), POLLOUT);
    const bool streams_open =
        out.read.valid() || err.read.valid() || fail.read.valid() || status.read.valid();
    if (exited && (!streams_open || now >= drain_deadline)) break;
    int wait_ms = 50;
    if (!exited && profile.timeout_seconds > 0) {
      wait_ms =
          std::min<int>(wait_ms, static_cast<int>((profile.timeout_seconds - now) * 1000) + 1);
    }
    if (exited) wait_ms = std::max(1, static_cast<int>((drain_deadline - now) * 1000));
    if (poll(fds, static_cast<nfds_t>(n), std::max(wait_ms, 0)) < 0 && errno != EINTR) {
      kill_tree();
      return ErrnoError("sandbox: poll", errno);
    }
    for (int i = 0; i < n; ++i) {
      if (!fds[i].revents) continue;
      const int fd = fds[i].fd;
      if (fd == pidfd.get()) {
        exited = true;
        // Everything in the namespace died with its init; pipes close as soon as the kernel
        // has torn them down. Bound the wait anyway.
        drain_deadline = wall.ElapsedSeconds() + 2.0;
        continue;
      }
      if (fd == in.write.get()) {
        // The command may exit without reading its input: EPIPE, never a SIGPIPE for us.
        const ssize_t w = WritePipeNoSignal(fd, profile.stdin_data.data() + stdin_off,
                                            profile.stdin_data.size() - stdin_off);
        if (w > 0) stdin_off += static_cast<size_t>(w);
        if (w < 0 && errno != EAGAIN) stdin_off = profile.stdin_data.size();
        if (stdin_off >= profile.stdin_data.size()) in.write.Reset();
        continue;
      }
      const ssize_t r = read(fd, buf, sizeof(buf));
      if (r <= 0) {
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (fd == out.read.get()) out.read.Reset();
        if (fd == err.read.get()) err.read.Reset();
        if (fd == fail.read.get()) fail.read.Reset();
        if (fd == status.read.get()) status.read.Reset();
        continue;
      }
      const std::string_view data(buf, static_cast<size_t>(r));
      if (fd == out.read.get()) {
        cap_out.Add(data);
        if (options.on_output) options.on_output(1, data);
      } else if (fd == err.read.get()) {
        cap_err.Add(data);
        if (options.on_output) options.on_output(2, data);
      } else if (fd == fail.read.get()) {
        fail_bytes.append(data);
      } else if (fd == status.read.get()) {
        status_bytes.append(data);
      }
    }
  }
  // The init reaped the whole tree, so its rusage (its own plus its reaped children's) is the
  // tree's.
  struct rusage ru {};
  int init_status = 0;
  while (wait4(child, &init_status, 0, &ru) < 0 && errno == EINTR) {
  }
  report.wall_seconds = wall.ElapsedSeconds();
  report.out = cap_out.Finish();
  report.err = cap_err.Finish();
  if (fail_bytes.size() >= sizeof(FailureRecord)) {
    FailureRecord rec;
    std::memcpy(&rec, fail_bytes.data(), sizeof(rec));
    rec.step[sizeof(rec.step) - 1] = '\0';
    report.failed_step = rec.step;
    report.failed_errno = rec.err;
    if (report.failed_step == "exec") {
      report.failure_detail = StrCat("cannot run ", argv[0], ": ", std::strerror(rec.err));
    }
  }
  if (status_bytes.size() >= sizeof(int)) {
    int st;
    std::memcpy(&st, status_bytes.data(), sizeof(st));
    if (WIFEXITED(st)) report.exit_code = WEXITSTATUS(st);
    if (WIFSIGNALED(st)) report.signal = WTERMSIG(st);
  } else if (killed) {
    report.signal = SIGKILL;
  } else if (!report.setup_failed()) {
    report.signal = WIFSIGNALED(init_status) ? WTERMSIG(init_status) : 0;
    if (report.signal == 0) {
      report.failed_step = "init";
      report.failure_detail = "the sandbox's init exited without a status";
    }
  }
  if (cgroup) cgroup->Collect(&report);
  report.protected_changes = (*guard)->Finish();
  report.cpu_seconds = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                       static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
  report.max_rss_kb = ru.ru_maxrss;
  return report;
}

Result<RunReport> Run(const Profile& profile, const std::vector<std::string>& argv,
                      const RunOptions& options) {
  if (argv.empty()) return InvalidArgumentError("sandbox: no command to run");
  V4_ASSIGN_OR_RETURN(std::unique_ptr<Prepared> prep, Prepare(profile));
  return Execute(std::move(prep), profile, argv, options, nullptr);
}

struct Launcher::Warm {
  std::string key;
  std::unique_ptr<Prepared> prepared;
};

// Preparation runs on one long-lived worker thread: a sandbox dies with the thread that
// cloned it (PR_SET_PDEATHSIG), so that thread must outlive it, and the clone's cost stays
// off the caller's path.
Launcher::Launcher() : worker_([this] { Work(); }) {}

Launcher::~Launcher() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  worker_.join();
  std::lock_guard<std::mutex> lock(mu_);
  Discard();
}

void Launcher::Discard() {
  if (!warm_) return;
  Prepared& p = *warm_->prepared;
  syscall(SYS_pidfd_send_signal, p.pidfd.get(), SIGKILL, nullptr, 0);
  waitpid(p.child, nullptr, 0);
  warm_.reset();
}

void Launcher::Work() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || pending_ != nullptr; });
    if (stop_) return;
    std::unique_ptr<Profile> profile = std::move(pending_);
    preparing_ = true;
    lock.unlock();
    auto next = Prepare(*profile);
    lock.lock();
    preparing_ = false;
    if (next.ok()) {
      Discard();
      warm_ = std::make_unique<Warm>(Warm{ShapeKey(*profile), std::move(next).value()});
    }
    cv_.notify_all();
  }
}

Result<RunReport> Launcher::Run(const Profile& profile, const std::vector<std::string>& argv,
                                const RunOptions& options) {
  if (argv.empty()) return InvalidArgumentError("sandbox: no command to run");
  const std::string key = ShapeKey(profile);
  std::unique_ptr<Prepared> prep;
  {
    std::unique_lock<std::mutex> lock(mu_);
    // A preparation of this shape under way finishes sooner than a fresh start would.
    cv_.wait(lock, [&] { return !preparing_ && pending_ == nullptr; });
    if (warm_ && warm_->key == key) {
      // Still waiting for its command (not died during setup)?
      pollfd pfd{warm_->prepared->pidfd.get(), POLLIN, 0};
      if (poll(&pfd, 1, 0) == 0) {
        prep = std::move(warm_->prepared);
        warm_.reset();
      }
    }
    Discard();
  }
  if (!prep) {
    V4_ASSIGN_OR_RETURN(prep, Prepare(profile));
    ++cold_starts_;
  } else {
    ++warm_starts_;
  }
  // While this command runs, the worker sets up the next sandbox of the same shape.
  auto prepare_next = [&] {
    std::lock_guard<std::mutex> lock(mu_);
    pending_ = std::make_unique<Profile>(profile);
    cv_.notify_all();
  };
  return Execute(std::move(prep), profile, argv, options, prepare_next);
}

}  // namespace v4agent::sandbox
