// `v4agent run` as a user runs it: the scripted example end to end with --json, bad usage,
// and resume after the process was killed mid-run (nothing finished runs twice).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "common/json.h"
#include "common/strings.h"
#include "tests/cli/cli_util.h"

namespace v4agent {
namespace {

using cli_testing::Exec;
const std::string kExample = std::string(V4_SOURCE_DIR) + "/examples/median";

std::string CopyExample(const ScopedTempDir& dir) {
  const std::string ws = dir.path() + "/median";
  EXPECT_EQ(std::system(StrCat("cp -r ", kExample, " ", ws, " && cd ", ws,
                               " && rm -f scripted.jsonl && git init -q . && git add -A && git -c "
                               "user.email=a@b -c user.name=n commit -qm init")
                            .c_str()),
            0);
  return ws;
}

TEST(RunCliTest, ScriptedExampleJsonSummary) {
  ScopedTempDir dir;
  const std::string ws = CopyExample(dir);
  auto r = Exec(
      StrCat("run --scripted ", kExample, "/scripted.jsonl --task-file ", kExample,
             "/task.md --workspace ", ws, " --trajectory ", dir.path(), "/t.jsonl --json --quiet"),
      "", false);
  ASSERT_EQ(r.code, 0) << r.out;
  auto j = ParseJson(r.out, "stdout");
  ASSERT_TRUE(j.ok()) << r.out;
  for (const char* key : {"status", "steps", "tokens_prefilled", "tokens_reused",
                          "tokens_generated", "rewinds", "trajectory"}) {
    EXPECT_TRUE(j->contains(key)) << key;
  }
  EXPECT_EQ((*j)["status"], "submitted");
  EXPECT_EQ((*j)["steps"], 5);
  EXPECT_EQ((*j)["trajectory"], dir.path() + "/t.jsonl");
}

TEST(RunCliTest, UsageErrors) {
  EXPECT_EQ(Exec("run --task x").code, 2);  // no client
  EXPECT_EQ(Exec("run --scripted a --model b --task x").code, 2);
  EXPECT_EQ(Exec("run --scripted a.jsonl").code, 2);  // no task
  EXPECT_EQ(Exec("run --scripted a --task x --constrained").code, 2);
  auto r = Exec("run --scripted /nonexistent.jsonl --task x --workspace /tmp");
  EXPECT_EQ(r.code, 4);
  EXPECT_NE(r.out.find("/nonexistent.jsonl"), std::string::npos) << r.out;
  r = Exec("run --scripted x --task x --policy /nonexistent.yaml --workspace /tmp");
  EXPECT_EQ(r.code, 4);
  EXPECT_NE(r.out.find("/nonexistent.yaml"), std::string::npos) << r.out;
}

TEST(RunCliTest, ResumeAfterAKillRunsNothingFinishedTwice) {
  ScopedTempDir dir;
  const std::string ws = CopyExample(dir);
  const std::string script = dir.path() + "/script.jsonl";
  std::string lines;
  for (int i = 1; i <= 3; ++i) {
    const std::string cmd = i == 3 ? "echo step3 >> log.txt; test -e resumed || sleep 30"
                                   : StrCat("echo step", i, " >> log.txt");
    lines += DumpJson(Json{{"tool_calls",
                            {{{"id", StrCat("c", i)},
                              {"name", "bash"},
                              {"arguments", DumpJson(Json{{"command", cmd}})}}}}}) +
             "\n";
  }
  lines +=
      DumpJson(Json{{"tool_calls", {{{"id", "c4"}, {"name", "submit"}, {"arguments", "{}"}}}}}) +
      "\n";
  ASSERT_TRUE(WriteFile(script, lines).ok());
  const std::string traj = dir.path() + "/t.jsonl";
  const pid_t pid = fork();
  if (pid == 0) {
    execl(cli_testing::kBin.c_str(), "v4agent", "run", "--scripted", script.c_str(), "--task",
          "log steps", "--workspace", ws.c_str(), "--trajectory", traj.c_str(), "--quiet",
          static_cast<char*>(nullptr));
    _exit(127);
  }
  // Wait until the third command is running, then kill the run like a crash would.
  // Up to 60 s: a saturated machine (a benchmark beside ctest -j2) is slow to start sandboxes.
  for (int i = 0; i < 1200; ++i) {
    auto log = ReadFile(ws + "/log.txt");
    if (log.ok() && log->find("step3") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  // The resumed run replays the finished calls and re-runs only the interrupted one (which
  // no longer sleeps once `resumed` exists).
  ASSERT_TRUE(WriteFile(ws + "/resumed", "").ok());
  auto r = Exec(StrCat("run --scripted ", script, " --resume ", traj, " --workspace ", ws,
                       " --json --quiet --max-wall 120"),
                "", false);
  ASSERT_EQ(r.code, 0) << r.out;
  auto j = ParseJson(r.out, "stdout");
  ASSERT_TRUE(j.ok()) << r.out;
  EXPECT_EQ((*j)["status"], "submitted");
  EXPECT_EQ((*j)["tool_calls_replayed"], 2);
  const std::string log = *ReadFile(ws + "/log.txt");
  EXPECT_EQ(log, "step1\nstep2\nstep3\nstep3\n") << "finished steps must not run again";
}

}  // namespace
}  // namespace v4agent
