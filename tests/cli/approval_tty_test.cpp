// Approval on a terminal: `v4agent run` under a policy whose rule says "ask", driven through a
// real pseudo-terminal. The prompt shows the command, the rule and its reason; "a" allows the
// command for the rest of the session (the same command later runs without a second prompt),
// "n" denies it; every answer is in the trajectory; a resumed run re-applies "a" answers.
#include <gtest/gtest.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/trajectory.h"
#include "common/json.h"
#include "common/strings.h"
#include "tests/cli/cli_util.h"

namespace v4agent {
namespace {

constexpr char kPolicy[] =
    "rules:\n"
    "  - id: ask-touch\n"
    "    prefix: [touch]\n"
    "    decision: ask\n"
    "    reason: \"creating files needs a look\"\n"
    "    match: [\"touch a\"]\n";

std::string Call(const std::string& id, const std::string& name, const Json& args) {
  return DumpJson(Json{
             {"reasoning_content", "next"},
             {"content", ""},
             {"tool_calls",
              Json::array({Json{{"id", id}, {"name", name}, {"arguments", DumpJson(args)}}})}}) +
         "\n";
}

struct TtyRun {
  int code = -1;
  std::string screen;  // everything the terminal showed
  int prompts = 0;
};

// Runs v4agent on a pty; answers each approval prompt with the next of `answers` ("KILL":
// SIGKILL the process instead, as a crash or a closed laptop would).
TtyRun RunOnTty(const std::vector<std::string>& args, std::vector<std::string> answers) {
  int master = -1;
  const pid_t pid = forkpty(&master, nullptr, nullptr, nullptr);
  if (pid == 0) {
    std::vector<char*> argv;
    static std::string bin = cli_testing::kBin;
    argv.push_back(bin.data());
    std::vector<std::string> copy = args;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(bin.c_str(), argv.data());
    _exit(127);
  }
  TtyRun run;
  size_t scanned = 0;
  for (;;) {
    pollfd p{master, POLLIN, 0};
    if (poll(&p, 1, 30000) <= 0) break;
    char buf[4096];
    const ssize_t n = read(master, buf, sizeof(buf));
    if (n <= 0) break;
    run.screen.append(buf, static_cast<size_t>(n));
    const size_t at = run.screen.find("[n] deny: ", scanned);
    if (at != std::string::npos) {
      scanned = at + 1;
      ++run.prompts;
      const std::string answer = answers.empty() ? "n" : answers.front();
      if (!answers.empty()) answers.erase(answers.begin());
      if (answer == "KILL") {
        kill(pid, SIGKILL);
        break;
      }
      (void)!write(master, (answer + "\n").data(), answer.size() + 1);
    }
  }
  int status = 0;
  waitpid(pid, &status, 0);
  close(master);
  run.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

std::vector<Json> ApprovalsIn(const std::string& trajectory) {
  std::vector<Json> out;
  auto records = agent::ReadTrajectory(trajectory);
  if (!records.ok()) return out;
  for (const Json& r : *records) {
    if (r.value("type", "") == "tool_result" && r.contains("details") &&
        r["details"].contains("approval")) {
      for (const Json& a : r["details"]["approval"]) out.push_back(a);
    }
  }
  return out;
}

TEST(ApprovalTtyTest, SessionAnswerIsRememberedAndRecorded) {
  ScopedTempDir dir;
  const std::string ws = dir.path() + "/ws";
  ASSERT_EQ(std::system(StrCat("mkdir -p ", ws).c_str()), 0);
  ASSERT_TRUE(WriteFile(dir.path() + "/p.yaml", kPolicy).ok());
  ASSERT_TRUE(WriteFile(dir.path() + "/s.jsonl", Call("c1", "bash", {{"command", "touch a"}}) +
                                                     Call("c2", "bash", {{"command", "touch a"}}) +
                                                     Call("c3", "bash", {{"command", "touch b"}}) +
                                                     Call("c4", "submit", {{"answer", "done"}}))
                  .ok());
  const std::string traj = dir.path() + "/t.jsonl";
  TtyRun run =
      RunOnTty({"run", "--scripted", dir.path() + "/s.jsonl", "--task", "make files", "--workspace",
                ws, "--policy", dir.path() + "/p.yaml", "--trajectory", traj},
               {"a", "n"});
  EXPECT_EQ(run.code, 0) << run.screen;
  // One prompt for "touch a" (then remembered), one for "touch b" (denied).
  EXPECT_EQ(run.prompts, 2) << run.screen;
  EXPECT_NE(run.screen.find("ask-touch"), std::string::npos) << run.screen;
  EXPECT_NE(run.screen.find("creating files needs a look"), std::string::npos) << run.screen;
  EXPECT_NE(run.screen.find("touch a"), std::string::npos);
  EXPECT_TRUE(PathExists(ws + "/a"));
  EXPECT_FALSE(PathExists(ws + "/b"));
  const auto approvals = ApprovalsIn(traj);
  ASSERT_EQ(approvals.size(), 3u) << traj;
  EXPECT_EQ(approvals[0]["answer"], "session");
  EXPECT_FALSE(approvals[0]["remembered"].get<bool>());
  EXPECT_EQ(approvals[1]["answer"], "session");
  EXPECT_TRUE(approvals[1]["remembered"].get<bool>());
  EXPECT_EQ(approvals[2]["answer"], "deny");
  EXPECT_EQ(approvals[2]["action"], "touch b");
}

TEST(ApprovalTtyTest, WithoutATerminalAskIsDeny) {
  ScopedTempDir dir;
  ASSERT_TRUE(WriteFile(dir.path() + "/p.yaml", kPolicy).ok());
  ASSERT_TRUE(WriteFile(dir.path() + "/s.jsonl", Call("c1", "bash", {{"command", "touch a"}}) +
                                                     Call("c2", "submit", {{"answer", "x"}}))
                  .ok());
  auto r = cli_testing::Exec(StrCat("run --scripted ", dir.path(), "/s.jsonl --task t --workspace ",
                                    dir.path(), " --policy ", dir.path(), "/p.yaml --trajectory ",
                                    dir.path(), "/t.jsonl --quiet"));
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_FALSE(PathExists(dir.path() + "/a"));
}

TEST(ApprovalTtyTest, ResumeReappliesSessionAnswers) {
  // "touch a" allowed for the session, then the run is killed at the next prompt; resumed, the
  // interrupted call asks again and a later "touch a" runs without asking.
  ScopedTempDir dir;
  const std::string ws = dir.path() + "/ws";
  ASSERT_EQ(std::system(StrCat("mkdir -p ", ws).c_str()), 0);
  ASSERT_TRUE(WriteFile(dir.path() + "/p.yaml", kPolicy).ok());
  const std::string script =
      Call("c1", "bash", {{"command", "touch a"}}) + Call("c2", "bash", {{"command", "touch c"}}) +
      Call("c3", "bash", {{"command", "touch a"}}) + Call("c4", "submit", {{"answer", "done"}});
  ASSERT_TRUE(WriteFile(dir.path() + "/s.jsonl", script).ok());
  const std::string traj = dir.path() + "/t.jsonl";
  const std::vector<std::string> common = {"--scripted", dir.path() + "/s.jsonl", "--task",
                                           "t",          "--workspace",           ws,
                                           "--policy",   dir.path() + "/p.yaml"};
  std::vector<std::string> first_args = {"run"};
  first_args.insert(first_args.end(), common.begin(), common.end());
  first_args.insert(first_args.end(), {"--trajectory", traj});
  TtyRun first = RunOnTty(first_args, {"a", "KILL"});
  EXPECT_EQ(first.prompts, 2) << first.screen;
  ASSERT_TRUE(PathExists(ws + "/a"));
  ASSERT_FALSE(PathExists(ws + "/c"));
  std::vector<std::string> second_args = {"run"};
  second_args.insert(second_args.end(), common.begin(), common.end());
  second_args.insert(second_args.end(), {"--resume", traj});
  TtyRun second = RunOnTty(second_args, {"y"});
  EXPECT_EQ(second.code, 0) << second.screen;
  EXPECT_EQ(second.prompts, 1) << second.screen;  // "touch c" only
  EXPECT_TRUE(PathExists(ws + "/c"));
  const auto approvals = ApprovalsIn(traj);
  ASSERT_FALSE(approvals.empty());
  EXPECT_TRUE(approvals.back()["remembered"].get<bool>()) << DumpJson(approvals.back());
}

}  // namespace
}  // namespace v4agent
