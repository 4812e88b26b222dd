// RunProcess: argv without a shell, output, exit codes, timeouts, and a child that never reads
// its stdin does not kill us with SIGPIPE.
#include "common/subprocess.h"

#include <gtest/gtest.h>

namespace v4agent {
namespace {

TEST(SubprocessTest, ArgvOutputExitAndEnv) {
  auto r = RunProcess({"/bin/sh", "-c", "echo out; echo err >&2; echo $V; exit 3", "$(touch x)"},
                      ProcessOptions{"/", {"V=val"}, "", 10, 1 << 20});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_EQ(r->out, "out\nval\n");
  EXPECT_EQ(r->err, "err\n");
  auto cat = RunProcess({"cat"}, ProcessOptions{"", {}, "piped input", 10, 1 << 20});
  ASSERT_TRUE(cat.ok());
  EXPECT_EQ(cat->out, "piped input");
  EXPECT_EQ(RunProcess({"no-such-program-v4agent"}).status().code(), StatusCode::kNotFound);
}

TEST(SubprocessTest, ChildIgnoringStdinDoesNotRaiseSigpipe) {
  // 8 MiB is far more than a pipe holds, and `true` exits without reading any of it.
  auto r = RunProcess({"true"}, ProcessOptions{"", {}, std::string(8 << 20, 'x'), 10, 1 << 20});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->exit_code, 0);
}

TEST(SubprocessTest, TimeoutKillsTheTree) {
  auto r = RunProcess({"/bin/sh", "-c", "sleep 30 & sleep 30"},
                      ProcessOptions{"", {}, "", 0.5, 1 << 20});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->timed_out);
  EXPECT_EQ(r->exit_code, -1);
}

}  // namespace
}  // namespace v4agent
