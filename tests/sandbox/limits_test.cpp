// Resource limits enforced by our sandbox (not by the shell inside it): processes, memory,
// open files and file size, as root (where RLIMIT_NPROC means nothing and a cgroup must do
// the work) and as uid 65534 (where the fallbacks apply). Each test sets our limit small
// and shows what the command could do against it; each has a control run without the limit
// that shows the same command gets further, so none passes whatever happened.
#include <dirent.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "common/strings.h"
#include "tests/sandbox/sandbox_harness.h"

namespace v4agent::sandbox {
namespace {

using testing::Outcome;

class LimitsTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    if (GetParam() && !testing::CanDropToNobody()) GTEST_SKIP() << "needs root to drop from";
  }
  bool unprivileged() const { return GetParam(); }
  Outcome Py(const Profile& p, const std::string& code) {
    return testing::RunIn(p, {"python3", "-c", code}, unprivileged());
  }
  testing::Workspace ws_;
};

// Forks until refused; prints how many it made. Children sleep so they all stay alive.
constexpr char kForkBomb[] =
    "import os, time\n"
    "n = 0\n"
    "for i in range(150):\n"
    "    try:\n"
    "        pid = os.fork()\n"
    "    except OSError:\n"
    "        break\n"
    "    if pid == 0:\n"
    "        time.sleep(30)\n"
    "        os._exit(0)\n"
    "    n += 1\n"
    "print(n)\n";

// The groups this test process made (their names carry our pid): tests run in parallel.
std::vector<std::string> OurCgroups() {
  std::vector<std::string> out;
  const std::string mine = StrCat("v4agent-", static_cast<int64_t>(getpid()), "-");
  for (const char* h : {"/sys/fs/cgroup/pids", "/sys/fs/cgroup/memory", "/sys/fs/cgroup/unified"}) {
    // Our own group and one level below it are where groups are made.
    std::vector<std::string> dirs = {h};
    if (DIR* d = opendir(h)) {
      while (dirent* e = readdir(d)) {
        if (e->d_type == DT_DIR && e->d_name[0] != '.') dirs.push_back(StrCat(h, "/", e->d_name));
      }
      closedir(d);
    }
    for (const auto& dir : dirs) {
      if (DIR* d = opendir(dir.c_str())) {
        while (dirent* e = readdir(d)) {
          if (StartsWith(e->d_name, mine)) out.push_back(dir + "/" + e->d_name);
        }
        closedir(d);
      }
    }
  }
  return out;
}

TEST_P(LimitsTest, ForkBombStopsAtThePidsLimit) {
  Profile p = DefaultProfile(ws_.path());
  p.cgroup.pids = 64;
  const auto groups_before = OurCgroups();
  Outcome o = Py(p, kForkBomb);
  ASSERT_EQ(o.code, 0) << o.out << o.err << DumpJson(o.report);
  const int made = std::atoi(o.out.c_str());
  // The sandbox's init, sh-less python and its children all count: at most 64 in all.
  EXPECT_LE(made + 2, 64) << DumpJson(o.report);
  EXPECT_GE(made, 40) << "something other than the limit stopped the forks: " << o.err;
  const std::string applied = DumpJson(o.report["limits_applied"]);
  const HostSupport host = ProbeHost();
  if (host.limits_pids() && !unprivileged()) {
    EXPECT_NE(applied.find("pids.max=64"), std::string::npos) << applied;
    EXPECT_GT(o.report["forks_refused"].get<int64_t>(), 0);
  } else if (unprivileged()) {
    EXPECT_NE(applied.find("rlimit_nproc=64"), std::string::npos) << applied;
  }
  // Root is not subject to RLIMIT_NPROC: the report must not claim it.
  if (!unprivileged()) {
    EXPECT_EQ(applied.find("rlimit_nproc"), std::string::npos) << applied;
  }
  EXPECT_EQ(OurCgroups(), groups_before);  // nothing left behind

  // Control: without our limit the same program makes all 150.
  p.cgroup.pids = 0;
  o = Py(p, kForkBomb);
  EXPECT_EQ(std::atoi(o.out.c_str()), 150) << o.out << o.err;
}

TEST_P(LimitsTest, MemoryHogIsStoppedAndReported) {
  const HostSupport host = ProbeHost();
  Profile p = DefaultProfile(ws_.path());
  p.cgroup.memory_bytes = 256ull << 20;
  // 2 GB written, so it is resident (a lazy calloc would not be).
  const std::string hog = "b = b'x' * (2 * 1024**3)\nprint('survived', len(b))";
  const auto groups_before = OurCgroups();
  Outcome o = Py(p, hog);
  EXPECT_EQ(o.out.find("survived"), std::string::npos) << o.out;
  if (host.limits_memory() && !unprivileged()) {
    EXPECT_EQ(o.code, 128 + 9) << o.err;  // the OOM killer's SIGKILL
    EXPECT_TRUE(o.report["out_of_memory"].get<bool>()) << DumpJson(o.report);
  } else {
    // The address-space fallback: the allocation fails inside the program.
    EXPECT_NE(o.err.find("MemoryError"), std::string::npos) << o.err;
    EXPECT_NE(DumpJson(o.report["limits_applied"]).find("by RLIMIT_AS"), std::string::npos);
  }
  EXPECT_EQ(OurCgroups(), groups_before);

  // Control: with room for it, the same program survives.
  p.cgroup.memory_bytes = 6ull << 30;
  o = Py(p, hog);
  EXPECT_NE(o.out.find("survived 2147483648"), std::string::npos) << o.out << o.err;
}

TEST_P(LimitsTest, NodeStartsUnderTheDefaultMemoryLimit) {
  // RLIMIT_AS counts reservations, not use: V8 reserves more than 512 MB at start.
  Outcome o = testing::RunIn(DefaultProfile(ws_.path()), {"node", "-e", "console.log(6*7)"},
                             unprivileged());
  EXPECT_EQ(o.out, "42\n") << o.err;
}

TEST_P(LimitsTest, OpenFilesStopAtOurLimit) {
  Profile p = DefaultProfile(ws_.path());
  const std::string code =
      "import os\nfs = []\ntry:\n    while len(fs) < 5000: fs.append(os.open('/dev/null', 0))\n"
      "except OSError as e:\n    print('errno', e.errno)\nprint(len(fs))";
  p.rlimits.open_files = 64;
  Outcome o = Py(p, code);
  EXPECT_EQ(o.out, "errno 24\n61\n") << o.err;  // 0, 1, 2 and 61 more: EMFILE at 64
  p.rlimits.open_files = 8192;
  o = Py(p, code);
  EXPECT_EQ(o.out, "5000\n") << o.err;
}

TEST_P(LimitsTest, FileSizeStopsAtOurLimit) {
  Profile p = DefaultProfile(ws_.path());
  const std::vector<std::string> cmd = {
      "/bin/sh", "-c", "head -c 1000000 /dev/zero > big; echo code=$?; stat -c %s big"};
  p.rlimits.file_size = 100 * 1024;
  Outcome o = testing::RunIn(p, cmd, unprivileged());
  EXPECT_EQ(o.out, "code=153\n102400\n") << o.err;  // SIGXFSZ at exactly our limit
  p.rlimits.file_size = 0;
  o = testing::RunIn(p, cmd, unprivileged());
  EXPECT_EQ(o.out, "code=0\n1000000\n") << o.err;
}

INSTANTIATE_TEST_SUITE_P(Users, LimitsTest, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "Unprivileged" : "Self"; });

}  // namespace
}  // namespace v4agent::sandbox
