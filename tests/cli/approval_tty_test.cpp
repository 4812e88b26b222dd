// Approval on a terminal: `v4agent run` under a policy whose rule says "ask", driven through a
// real pseudo-terminal. The prompt shows the command, the rule and its reason; "a" allows the
// command for the rest of the session (the same command later runs without a second prompt),
// "n" denies it; every answer is in the trajectory; a resumed run re-applies "a" answers.
#include <gtest/gtest.h>
#include <unistd.h>

#include "agent/trajectory.h"
#include "common/json.h"
#include "common/strings.h"
#include "tests/cli/cli_util.h"
#include "tests/cli/tty_util.h"

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
