// The loop end to end with the real tools, policy and sandbox: the scripted client (a test
// double for the model only) solves examples/median through view, str_replace, bash and
// submit, and the submitted patch is the right one.
#include <gtest/gtest.h>

#include <cstdlib>

#include "agent/agent_loop.h"
#include "agent/scripted_client.h"
#include "agent/tool_registry_executor.h"
#include "common/file_util.h"
#include "common/strings.h"

namespace v4agent::agent {
namespace {

const std::string kExample = std::string(V4_SOURCE_DIR) + "/examples/median";

std::string CopyExample(const ScopedTempDir& dir) {
  const std::string ws = dir.path() + "/median";
  const std::string cmd =
      StrCat("cp -r ", kExample, " ", ws, " && cd ", ws,
             " && rm -f scripted.jsonl && git init -q . "
             "&& git add -A && git -c user.email=a@b -c user.name=n commit -qm init");
  EXPECT_EQ(std::system(cmd.c_str()), 0);
  return ws;
}

TEST(RunE2ETest, ScriptedModelSolvesTheExampleThroughTheRealTools) {
  ScopedTempDir dir;
  const std::string ws = CopyExample(dir);
  auto client = ScriptedClient::FromFile(kExample + "/scripted.jsonl");
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  auto policy = policies::BuiltinPolicy("workspace-write");
  auto tools = RegistryExecutor::Create(ws, *policy);
  ASSERT_TRUE(tools.ok()) << tools.status().ToString();
  LoopOptions o;
  o.task = *ReadFile(kExample + "/task.md");
  o.system_prompt = DefaultSystemPrompt(ws);
  o.trajectory_path = dir.path() + "/run.jsonl";
  o.workspace = ws;
  o.budgets = BudgetsFromPolicy(*policy);
  auto summary = RunAgent(*client, **tools, o);
  ASSERT_TRUE(summary.ok()) << summary.status().ToString();
  EXPECT_EQ(summary->status, ExitStatus::kSubmitted) << summary->detail;
  EXPECT_EQ(summary->steps, 5);
  EXPECT_EQ(summary->tool_calls_executed, 5);
  EXPECT_NE(summary->submission.find("+    values = sorted(values)"), std::string::npos)
      << summary->submission;
  EXPECT_EQ(summary->submission.find("__pycache__"), std::string::npos);
  // The repository's tests pass after the run, run outside the sandbox.
  EXPECT_EQ(
      std::system(StrCat("cd ", ws, " && python3 -m unittest -q test_stats 2>/dev/null").c_str()),
      0);
  // The trajectory shows the failing test run before the fix and the passing one after.
  const std::string traj = *ReadFile(o.trajectory_path);
  EXPECT_NE(traj.find("FAILED (failures=1)"), std::string::npos);
  EXPECT_NE(traj.find("\\nOK"), std::string::npos);
}

TEST(RunE2ETest, PolicyDenialsReachTheModelAndTheRunGoesOn) {
  ScopedTempDir dir;
  const std::string ws = CopyExample(dir);
  std::vector<Completion> script(2);
  script[0].tool_calls = {ToolCall{"a", "bash", R"({"command": "git push origin main"})"}};
  script[1].tool_calls = {ToolCall{"b", "submit", "{}"}};
  ScriptedClient client(script);
  auto policy = policies::BuiltinPolicy("workspace-write");
  auto tools = RegistryExecutor::Create(ws, *policy);
  LoopOptions o;
  o.task = "push it";
  o.trajectory_path = dir.path() + "/run.jsonl";
  o.workspace = ws;
  auto summary = RunAgent(client, **tools, o);
  ASSERT_TRUE(summary.ok());
  EXPECT_EQ(summary->status, ExitStatus::kSubmitted);
  const std::string traj = *ReadFile(o.trajectory_path);
  EXPECT_NE(traj.find("deny: no-git-push"), std::string::npos) << traj;
}

}  // namespace
}  // namespace v4agent::agent
