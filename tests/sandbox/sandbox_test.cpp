// The sandbox doing ordinary work (a build, git, python, pipes, workspace writes) and
// reporting exactly what happened (exit codes, signals, timeouts, capture, setup failures),
// as root and as an unprivileged user.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "common/strings.h"
#include "tests/sandbox/sandbox_harness.h"

namespace v4agent::sandbox {
namespace {

using testing::Outcome;

class SandboxTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    if (GetParam() && !testing::CanDropToNobody()) {
      GTEST_SKIP() << "the unprivileged variant needs a root test process to drop from";
    }
  }
  Outcome Sh(const std::string& script, Profile* profile = nullptr) {
    Profile p = profile ? *profile : DefaultProfile(ws_.path());
    return testing::RunIn(p, {"/bin/sh", "-c", script}, GetParam());
  }
  std::string ws() const { return ws_.path(); }
  testing::Workspace ws_;
};

TEST_P(SandboxTest, OrdinaryWorkRunsInTheWorkspace) {
  ASSERT_TRUE(
      WriteFile(ws() + "/main.c", "#include <stdio.h>\nint main(void){puts(\"built\");}\n").ok());
  Outcome o =
      Sh("cc -o main main.c && ./main && echo data > out.txt && cat out.txt | tr a-z A-Z "
         "&& (cd /usr && ls bin >/dev/null) && python3 -c 'print(6*7)' && "
         "git init -q repo && cd repo && git -c user.email=a@b -c user.name=n commit -q "
         "--allow-empty -m x && git log --oneline | wc -l && make --version | head -1");
  ASSERT_EQ(o.code, 0) << o.out << o.err;
  EXPECT_NE(o.out.find("built\nDATA\n42\n1\nGNU Make"), std::string::npos) << o.out;
  EXPECT_EQ(*ReadFile(ws() + "/out.txt"), "data\n");
}

TEST_P(SandboxTest, ExitCodesSignalsAndStdin) {
  EXPECT_EQ(Sh("exit 7").code, 7);
  EXPECT_EQ(Sh("kill -SEGV $$").code, 128 + 11);
  Profile p = DefaultProfile(ws());
  p.stdin_data = "line one\nline two\n";
  Outcome o = Sh("wc -l", &p);
  EXPECT_EQ(StripWhitespace(o.out), "2");
  EXPECT_EQ(o.report["exit_code"], 0);
}

TEST_P(SandboxTest, SetupFailureNamesTheStepAndErrno) {
  Profile search = DefaultProfile(ws());
  search.env = {"PATH=/usr/bin:/bin"};  // the test user's PATH may name dirs nobody can read
  Outcome o = testing::RunIn(search, {"no-such-program-xyz"}, GetParam());
  EXPECT_EQ(o.code, 125);
  EXPECT_EQ(o.report["setup_failure"]["step"], "exec");
  EXPECT_EQ(o.report["setup_failure"]["errno"], ENOENT);
  Profile p = DefaultProfile(ws());
  p.cwd = "/no/such/dir";
  o = Sh("true", &p);
  EXPECT_EQ(o.code, 125);
  EXPECT_EQ(o.report["setup_failure"]["step"], "cwd");
}

TEST_P(SandboxTest, ReportNamesTheMechanismOfEachLimit) {
  Outcome o = Sh("true");
  ASSERT_EQ(o.code, 0);
  const std::string applied = DumpJson(o.report["limits_applied"]);
  const std::string unavailable = DumpJson(o.report["limits_unavailable"]);
  for (const char* l : {"seccomp=deny-list", "no_new_privs", "network=none", "root=read-only",
                        "capabilities=none", "rlimit_nofile=", "rlimit_fsize="}) {
    EXPECT_NE(applied.find(l), std::string::npos) << l << " in " << applied;
  }
  const HostSupport host = ProbeHost();
  const bool as_root = !GetParam() && geteuid() == 0;
  // Processes: a cgroup where one is usable, else RLIMIT_NPROC (never claimed for root),
  // else the pid namespace's pid_max.
  if (host.limits_pids() && as_root) {
    EXPECT_NE(applied.find("pids.max=256"), std::string::npos) << applied;
  } else if (!as_root) {
    EXPECT_NE(applied.find("rlimit_nproc=256"), std::string::npos) << applied;
  } else {
    EXPECT_NE(applied.find("pid_max"), std::string::npos) << applied << unavailable;
  }
  if (as_root) {
    EXPECT_EQ(applied.find("rlimit_nproc"), std::string::npos) << applied;
  }
  // Memory: the cgroup, else the address-space fallback, named as such.
  if (host.limits_memory() && as_root) {
    EXPECT_NE(applied.find("memory"), std::string::npos) << applied;
    EXPECT_EQ(applied.find("rlimit_as"), std::string::npos) << applied;
  } else {
    EXPECT_NE(applied.find("by RLIMIT_AS"), std::string::npos) << applied;
    EXPECT_NE(unavailable.find("memory"), std::string::npos) << unavailable;
  }
  EXPECT_GE(o.report["wall_seconds"].get<double>(), 0.0);
}

TEST_P(SandboxTest, TimeoutKillsTheWholeTreeAndKeepsPartialOutput) {
  Profile p = DefaultProfile(ws());
  p.timeout_seconds = 1;
  // A duration of its own, so the other variant running at the same time (ctest -j) has
  // sleepers that do not count here.
  const std::string sleep = StrCat("sleep 100.", getpid() % 100000, GetParam() ? 1 : 0);
  Outcome o = Sh(StrCat("echo started; (setsid ", sleep, " &); nohup ", sleep,
                        " >/dev/null 2>&1 & sh -c '", sleep, " & disown' ; while :; do :; done"),
                 &p);
  EXPECT_EQ(o.code, 124);
  EXPECT_TRUE(o.report["timed_out"].get<bool>());
  EXPECT_EQ(o.out, "started\n");
  EXPECT_LT(o.report["wall_seconds"].get<double>(), 5.0);
  // Nothing of it survives: no process of ours is still sleeping.
  FILE* ps = popen(StrCat("pgrep -fx '", sleep, "' | wc -l").c_str(), "r");
  char buf[32] = {0};
  ASSERT_TRUE(fgets(buf, sizeof(buf), ps));
  pclose(ps);
  EXPECT_EQ(std::string(buf), "0\n");
}

TEST_P(SandboxTest, GrandchildHoldingStdoutDoesNotHangTheReader) {
  Profile p = DefaultProfile(ws());
  p.timeout_seconds = 20;
  Outcome o = Sh("(sleep 30; echo late) & echo early", &p);
  EXPECT_EQ(o.code, 0);
  EXPECT_EQ(o.out, "early\n");
  EXPECT_LT(o.report["wall_seconds"].get<double>(), 5.0);
}

TEST_P(SandboxTest, OutputFloodStaysBoundedWithHeadTailAndCount) {
  Profile p = DefaultProfile(ws());
  p.capture_bytes = 64 * 1024;
  Outcome o = Sh("head -c 20000000 /dev/zero | tr '\\0' 'x'; echo; echo END", &p);
  ASSERT_EQ(o.code, 0);
  EXPECT_EQ(o.report["stdout"]["total_bytes"], 20000005);
  EXPECT_EQ(o.report["stdout"]["captured_bytes"], 64 * 1024);
  EXPECT_NE(o.out.find("bytes elided"), std::string::npos);
  EXPECT_EQ(o.out.substr(o.out.size() - 4), "END\n");
  EXPECT_LT(o.out.size(), 70u * 1024);
}

TEST_P(SandboxTest, AllowListProfileRunsOrdinaryToolsAndRefusesTheRest) {
  Profile p = DefaultProfile(ws());
  p.seccomp = SeccompMode::kAllowList;
  Outcome o =
      Sh("ls / >/dev/null && python3 -c 'print(6*7)' && git --version >/dev/null && "
         "echo ok; unshare -Ur true 2>/dev/null || echo no-userns; "
         "python3 -c \"import ctypes; l=ctypes.CDLL(None, use_errno=True); "
         "print(l.syscall(321, 0, 0, 0), ctypes.get_errno())\"",
         &p);
  EXPECT_EQ(o.out, "42\nok\nno-userns\n-1 38\n") << o.err;  // bpf: ENOSYS
  EXPECT_NE(DumpJson(o.report["limits_applied"]).find("seccomp=allow-list"), std::string::npos);
}

TEST_P(SandboxTest, NetworkModes) {
  Profile p = DefaultProfile(ws());
  p.network = NetworkMode::kLoopback;
  Outcome o =
      Sh("python3 -c \"import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); "
         "s.listen(); c=socket.socket(); c.connect(s.getsockname()); print('lo')\"",
         &p);
  EXPECT_EQ(o.out, "lo\n") << o.err;
  o = Sh("python3 -c \"import socket; socket.socket()\" 2>&1");
  EXPECT_NE(o.out.find("Permission denied"), std::string::npos) << o.out;
}

TEST(LauncherTest, PreparedSandboxesRunEachCommandWithItsOwnArgsEnvCwdAndStdin) {
  testing::Workspace ws;
  ASSERT_EQ(std::system(StrCat("mkdir -p ", ws.path(), "/sub").c_str()), 0);
  Launcher launcher;
  for (int i = 0; i < 6; ++i) {
    Profile p = DefaultProfile(ws.path());
    p.env = {StrCat("STEP=", i)};
    p.cwd = i % 2 ? ws.path() + "/sub" : ws.path();
    p.stdin_data = StrCat("in", i);
    auto r = launcher.Run(p, {"/bin/sh", "-c", "echo $STEP $(basename $PWD) $(cat); exit $STEP"});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(
        r->out.Text(),
        StrCat(i, " ", i % 2 ? std::string("sub") : ws.path().substr(ws.path().rfind('/') + 1),
               " in", i, "\n"));
    EXPECT_EQ(r->exit_code, i);
  }
  EXPECT_EQ(launcher.cold_starts(), 1);
  EXPECT_EQ(launcher.warm_starts(), 5);
  // Another shape (network on loopback) cannot use the prepared sandbox.
  Profile lo = DefaultProfile(ws.path());
  lo.network = NetworkMode::kLoopback;
  auto r = launcher.Run(lo, {"/bin/true"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(launcher.cold_starts(), 2);
  // Timeouts and setup failures behave as in a cold start.
  lo.timeout_seconds = 1;
  r = launcher.Run(lo, {"/bin/sh", "-c", "sleep 30"});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->timed_out);
  r = launcher.Run(lo, {"no-such-program-xyz"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->failed_step, "exec");
}

TEST(LauncherTest, ACommandThatIgnoresItsStdinDoesNotKillUsWithSigpipe) {
  testing::Workspace ws;
  Profile p = DefaultProfile(ws.path());
  p.stdin_data = std::string(8 << 20, 'x');  // far more than a pipe holds
  for (int i = 0; i < 3; ++i) {
    auto r = sandbox::Run(p, {"/bin/true"});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->exit_code, 0);
  }
}

// The sandbox's init is a clone() of this multithreaded process: anything it calls that takes
// a libc lock (glibc's fork() takes malloc's) can find the lock held forever by a thread that
// had it at clone time. Threads allocating nonstop make that moment likely.
TEST(LauncherTest, SandboxesStartedWhileOtherThreadsAllocateNeverDeadlock) {
  testing::Workspace ws;
  std::atomic<bool> stop{false};
  std::vector<std::thread> churn;
  for (int t = 0; t < 2; ++t) {
    churn.emplace_back([&stop, t] {
      std::vector<void*> held(64, nullptr);
      for (size_t i = 0; !stop.load(std::memory_order_relaxed); ++i) {
        void*& slot = held[(i * 7 + t) % held.size()];
        std::free(slot);
        slot = std::malloc(16 + (i * 131) % 4096);
        std::memset(slot, 1, 16);
      }
      for (void* p : held) std::free(p);
    });
  }
  int hung = 0;
  for (int i = 0; i < 40; ++i) {
    Profile p = DefaultProfile(ws.path());
    p.timeout_seconds = 10;
    auto r = sandbox::Run(p, {"/bin/true"});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    if (r->timed_out) ++hung;
    if (hung > 0) break;
  }
  stop = true;
  for (auto& t : churn) t.join();
  EXPECT_EQ(hung, 0) << "a sandbox never started its command";
}

TEST(SanitizeTest, AnsiAndBinaryBytesAreCleanedForTheModel) {
  EXPECT_EQ(SanitizeForModel("\x1b[31mred\x1b[0m ok\r\nline\rnext\x01\xff\ttab é"),
            "red ok\nline\nnext\xEF\xBF\xBD\xEF\xBF\xBD\ttab é");
  EXPECT_EQ(SanitizeForModel("\x1b]0;title\x07text"), "text");
}

INSTANTIATE_TEST_SUITE_P(Users, SandboxTest, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "Unprivileged" : "Self"; });

}  // namespace
}  // namespace v4agent::sandbox
