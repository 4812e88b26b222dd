// Per-exec overhead of /bin/true under our sandbox vs bubblewrap with equivalent isolation
// (user+pid+mount+net+ipc+uts namespaces, read-only root, writable workspace, fresh /proc and
// /dev, new session, die-with-parent), alternating, N runs each in the same process; prints
// the medians and their ratio. Ours runs in-process (as the agent uses it), pre-forked (the
// launcher keeps the next sandbox set up) and cold; bwrap is spawned the way a tool would
// spawn it. Usage: bench_sandbox [N]   (default 200)
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "common/file_util.h"
#include "common/stopwatch.h"
#include "sandbox/launcher.h"

extern char** environ;

using namespace v4agent;

namespace {

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(p * (v.size() - 1))];
}

}  // namespace

int main(int argc, char** argv) {
  setvbuf(stdout, nullptr, _IOLBF, 0);
  const int n = argc > 1 ? std::atoi(argv[1]) : 200;
  ScopedTempDir ws;
  sandbox::Profile profile = sandbox::DefaultProfile(ws.path());
  std::vector<std::string> bw = {"bwrap",
                                 "--unshare-all",
                                 "--ro-bind",
                                 "/",
                                 "/",
                                 "--bind",
                                 ws.path(),
                                 ws.path(),
                                 "--proc",
                                 "/proc",
                                 "--dev",
                                 "/dev",
                                 "--tmpfs",
                                 "/tmp",
                                 "--bind",
                                 ws.path(),
                                 ws.path(),
                                 "--new-session",
                                 "--die-with-parent",
                                 "--chdir",
                                 ws.path(),
                                 "/bin/true"};
  std::vector<char*> bw_argv;
  for (auto& s : bw) bw_argv.push_back(s.data());
  bw_argv.push_back(nullptr);
  std::vector<double> ours, cold, theirs;
  sandbox::Launcher launcher;  // pre-forked: the next sandbox sets up while a command runs
  (void)launcher.Run(profile, {"/bin/true"});
  for (int i = 0; i < n; ++i) {
    // Let the prepared sandbox finish its setup, as it does while an agent's model thinks,
    // so neither side's timing includes the other's background work.
    usleep(20000);
    Stopwatch sw;
    auto r = launcher.Run(profile, {"/bin/true"});
    const double t_ours = sw.ElapsedSeconds();
    usleep(20000);
    sw.Reset();
    auto c = sandbox::Run(profile, {"/bin/true"});
    cold.push_back(sw.ElapsedSeconds());
    if (!c.ok() || c->ShellExitCode() != 0) return 1;
    usleep(20000);
    if (!r.ok() || r->ShellExitCode() != 0) {
      std::fprintf(stderr, "sandbox run failed: %s\n",
                   r.ok() ? r->failed_step.c_str() : r.status().ToString().c_str());
      return 1;
    }
    sw.Reset();
    pid_t pid;
    if (posix_spawnp(&pid, "bwrap", nullptr, nullptr, bw_argv.data(), environ) != 0) {
      std::fprintf(stderr, "cannot spawn bwrap (install bubblewrap)\n");
      return 1;
    }
    int st = 0;
    waitpid(pid, &st, 0);
    const double t_bwrap = sw.ElapsedSeconds();
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
      std::fprintf(stderr, "bwrap failed with status %d\n", st);
      return 1;
    }
    ours.push_back(t_ours);
    theirs.push_back(t_bwrap);
  }
  const double mo = Median(ours), mb = Median(theirs), mc = Median(cold);
  std::printf("runs: %d each, alternating (warm starts %d, cold %d)\n", n, launcher.warm_starts(),
              launcher.cold_starts());
  std::printf("v4agent sandbox, pre-forked: median %.3f ms, p90 %.3f ms\n", mo * 1e3,
              Percentile(ours, 0.9) * 1e3);
  std::printf("v4agent sandbox, cold:       median %.3f ms, p90 %.3f ms (%.2fx bwrap)\n", mc * 1e3,
              Percentile(cold, 0.9) * 1e3, mc / mb);
  std::printf("bwrap:                       median %.3f ms, p90 %.3f ms\n", mb * 1e3,
              Percentile(theirs, 0.9) * 1e3);
  std::printf("ratio (pre-forked / bwrap, median): %.2fx\n", mo / mb);
  return 0;
}
