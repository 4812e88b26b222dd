// The agent loop end to end with ScriptedClient (a test double replaying completions) on a copy
// of examples/median, over the real tools, policy and sandbox (RegistryExecutor). Only what
// real tools cannot do on demand is a TEST DOUBLE, FaultTools: a tool that reports a fatal
// environment, one that raises the interrupt flag, one that kills the process mid-call, and a
// read-only tool that shows whether two calls ran at the same time. Nothing runs on the host.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <thread>

#include "agent/agent_loop.h"
#include "agent/scripted_client.h"
#include "agent/tool_registry_executor.h"
#include "agent/trajectory.h"
#include "common/file_util.h"
#include "common/strings.h"
#include "policies/policy.h"

namespace v4agent::agent {
namespace {

class FaultTools : public ToolExecutor {
 public:
  FaultTools(const std::string& ws, std::string log) : log_(std::move(log)) {
    auto real = RegistryExecutor::Create(ws, *policies::BuiltinPolicy("workspace-write"));
    V4_CHECK(real.ok()) << real.status().ToString();
    real_ = std::move(real).value();
  }
  std::vector<ToolSpec> Specs() const override {
    std::vector<ToolSpec> specs = real_->Specs();
    specs.push_back({"crash", "breaks the environment", Json{{"type", "object"}}});
    specs.push_back({"interrupt", "simulates Ctrl-C", Json{{"type", "object"}}});
    specs.push_back({"die", "kills the process", Json{{"type", "object"}}});
    specs.push_back({"peek", "read-only; waits for a second peek", Json{{"type", "object"}}, true});
    return specs;
  }
  ToolOutcome Execute(const ToolCall& call, double timeout) override {
    if (call.name == "peek") {
      // Succeeds only if another peek runs at the same time (the loop's parallel batch).
      ++peeks_started;
      for (int i = 0; i < 500 && peeks_started.load() < 2; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      return ToolOutcome{peeks_started.load() >= 2 ? "together" : "alone"};
    }
    // Appended before running so a kill mid-call still shows the call started.
    (void)WriteFile(log_, ReadFile(log_).value_or("") + call.name + "\n");
    ToolOutcome out;
    if (call.name == "crash") {
      out.fatal = true;
      out.output = "workspace vanished";
    } else if (call.name == "interrupt") {
      interrupt.store(true);
      out.output = "ok";
    } else if (call.name == "die") {
      ::_exit(137);
    } else {
      out = real_->Execute(call, timeout);
    }
    return out;
  }
  std::atomic<bool> interrupt{false};
  std::atomic<int> peeks_started{0};

 protected:
  std::string log_;

 private:
  std::unique_ptr<RegistryExecutor> real_;
};

Completion Call(const std::string& name, Json args, int64_t tokens = 10, int64_t context = 0) {
  Completion c;
  c.reasoning_content = "thinking about " + name;
  c.tool_calls.push_back({"call_" + name, name, args.dump()});
  c.tokens_generated = tokens;
  c.context_tokens = context;
  return c;
}

const char kFixed[] =
    "\"\"\"Small statistics helpers.\"\"\"\n\n\ndef mean(values):\n    if not values:\n"
    "        raise ValueError(\"mean of empty list\")\n    return sum(values) / len(values)\n\n\n"
    "def median(values):\n    if not values:\n        raise ValueError(\"median of empty list\")\n"
    "    values = sorted(values)\n    n = len(values)\n    mid = n // 2\n    if n % 2 == 1:\n"
    "        return values[mid]\n    return (values[mid - 1] + values[mid]) / 2\n";

std::vector<Completion> SolvingScript() {
  return {Call("view", {{"path", "stats.py"}}),
          Call("create", {{"path", "stats.py"}, {"file_text", kFixed}}),
          Call("bash", {{"command", "python3 -m unittest test_stats"}}),
          Call("submit", {{"answer", "median sorts first"}})};
}

// The example's workspace and its checks, set up and read with git and python on the host by
// the test itself (never by a model's call).
int HostShell(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()); }

class LoopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ws_ = dir_.path() + "/ws";
    log_ = dir_.path() + "/calls.log";
    traj_ = dir_.path() + "/traj.jsonl";
    ASSERT_EQ(
        HostShell(StrCat("cp -r '", V4_SOURCE_DIR, "/examples/median' '", ws_, "' && cd '", ws_,
                         "' && rm -f scripted.jsonl && git init -q && git add -A && "
                         "git -c user.email=t@t -c user.name=t commit -qm init")),
        0);
    tools_ = std::make_unique<FaultTools>(ws_, log_);
  }
  LoopOptions Options() {
    LoopOptions o;
    o.task = ReadFile(std::string(V4_SOURCE_DIR) + "/examples/median/task.md").value_or("");
    o.trajectory_path = traj_;
    o.workspace = ws_;
    o.budgets.command_timeout_seconds = 30;
    o.interrupt = &tools_->interrupt;
    return o;
  }
  RunSummary Run(std::vector<Completion> script, LoopOptions o) {
    ScriptedClient client(std::move(script));
    auto s = RunAgent(client, *tools_, o);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? *s : RunSummary{};
  }

  ScopedTempDir dir_;
  std::string ws_, log_, traj_;
  std::unique_ptr<FaultTools> tools_;
};

TEST_F(LoopTest, ScriptedRunSolvesTheExample) {
  RunSummary s = Run(SolvingScript(), Options());
  EXPECT_EQ(s.status, ExitStatus::kSubmitted) << s.detail;
  EXPECT_EQ(s.steps, 4);
  EXPECT_EQ(s.tool_calls_executed, 4);
  EXPECT_NE(s.submission.find("+    values = sorted(values)"), std::string::npos) << s.submission;
  EXPECT_EQ(HostShell(StrCat("cd '", ws_, "' && python3 -m unittest test_stats")), 0);
  auto records = ReadTrajectory(traj_);
  ASSERT_TRUE(records.ok());
  EXPECT_EQ(records->front()["type"], "start");
  EXPECT_EQ(records->back()["type"], "end");
  EXPECT_EQ(records->back()["status"], "submitted");
  int tool_results = 0;
  for (const auto& r : *records) {
    if (r["type"] == "tool_result") ++tool_results;
    if (r["type"] == "tool_result" && r["name"] == "bash") {
      EXPECT_NE(r["output"].get<std::string>().find("OK"), std::string::npos) << r["output"];
    }
  }
  EXPECT_EQ(tool_results, 4);
}

TEST_F(LoopTest, StepLimitAutosubmitsTheDiff) {
  auto o = Options();
  o.budgets.max_steps = 2;
  RunSummary s = Run(SolvingScript(), o);
  EXPECT_EQ(s.status, ExitStatus::kStepLimit);
  EXPECT_EQ(s.steps, 2);
  EXPECT_TRUE(s.autosubmitted);
  EXPECT_NE(s.submission.find("sorted(values)"), std::string::npos);
}

TEST_F(LoopTest, TokenLimit) {
  auto o = Options();
  o.budgets.max_generated_tokens = 150;
  RunSummary s = Run({Call("view", {{"path", "stats.py"}}, 100),
                      Call("view", {{"path", "task.md"}}, 100), Call("view", {{"path", "x"}}, 100)},
                     o);
  EXPECT_EQ(s.status, ExitStatus::kTokenLimit);
  EXPECT_EQ(s.steps, 2);
}

TEST_F(LoopTest, ContextLimit) {
  auto o = Options();
  o.budgets.max_context_tokens = 400;
  RunSummary s =
      Run({Call("view", {{"path", "stats.py"}}, 10, 500), Call("view", {{"path", "task.md"}})}, o);
  EXPECT_EQ(s.status, ExitStatus::kContextLimit);
  EXPECT_EQ(s.steps, 1);
}

TEST_F(LoopTest, TimeLimit) {
  auto o = Options();
  o.budgets.max_wall_seconds = 0;
  RunSummary s = Run(SolvingScript(), o);
  EXPECT_EQ(s.status, ExitStatus::kTimeLimit);
  EXPECT_EQ(s.steps, 0);
}

TEST_F(LoopTest, ThreeMalformedCallsInARowIsFormatError) {
  Completion bad;
  bad.tool_calls.push_back({"c", "view", "{\"path\": "});
  Completion unknown = Call("rm_rf", Json::object());
  Completion parser;  // what the DSML parser reports for unparseable output
  parser.content = "<garbled";
  parser.format_error = "Expected a tool call block.";
  RunSummary s = Run({bad, unknown, parser, Call("submit", Json::object())}, Options());
  EXPECT_EQ(s.status, ExitStatus::kFormatError);
  EXPECT_EQ(s.format_errors, 3);
  EXPECT_EQ(s.tool_calls_executed, 0);
}

TEST_F(LoopTest, FormatErrorIsRequeriedAndRecovered) {
  Completion bad;
  bad.tool_calls.push_back({"c", "view", "not json"});
  RunSummary s = Run({bad, bad, Call("submit", Json::object())}, Options());
  EXPECT_EQ(s.status, ExitStatus::kSubmitted);
  EXPECT_EQ(s.format_errors, 2);
}

TEST_F(LoopTest, ModelErrorWhenClientFails) {
  RunSummary s = Run({Call("view", {{"path", "stats.py"}})}, Options());
  EXPECT_EQ(s.status, ExitStatus::kModelError);
  EXPECT_NE(s.detail.find("script has only 1"), std::string::npos);
}

TEST_F(LoopTest, ToolFatal) {
  RunSummary s = Run({Call("crash", Json::object()), Call("submit", Json::object())}, Options());
  EXPECT_EQ(s.status, ExitStatus::kToolFatal);
  EXPECT_NE(s.detail.find("workspace vanished"), std::string::npos);
}

TEST_F(LoopTest, Interrupted) {
  RunSummary s =
      Run({Call("interrupt", Json::object()), Call("submit", Json::object())}, Options());
  EXPECT_EQ(s.status, ExitStatus::kInterrupted);
  EXPECT_EQ(s.steps, 1);
}

TEST_F(LoopTest, NoToolCallIsNudgedAndStuckLoopsWarned) {
  Completion talk;
  talk.content = "I think it is fine.";
  auto v = Call("view", {{"path", "stats.py"}});
  RunSummary s = Run({talk, v, v, v, Call("submit", Json::object())}, Options());
  EXPECT_EQ(s.status, ExitStatus::kSubmitted);
  EXPECT_EQ(s.stuck_warnings, 1);
  EXPECT_EQ(s.steps, 5);
}

TEST_F(LoopTest, ResumeAfterKillReRunsNothingFinished) {
  std::vector<Completion> script = SolvingScript();
  script.insert(script.begin() + 2, Call("die", Json::object()));
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ScriptedClient client(script);
    (void)RunAgent(client, *tools_, Options());
    ::_exit(0);
  }
  int wstatus = 0;
  ::waitpid(pid, &wstatus, 0);
  ASSERT_TRUE(WIFEXITED(wstatus));
  ASSERT_EQ(WEXITSTATUS(wstatus), 137) << "the child must die inside the tool call";
  EXPECT_EQ(ReadFile(log_).value_or(""), "view\ncreate\ndie\n");

  // The killed call never finished, so it is run again; a die that now succeeds would loop
  // forever, so the resumed process gets a tool set where die is harmless.
  class Survivor : public FaultTools {
   public:
    using FaultTools::FaultTools;
    ToolOutcome Execute(const ToolCall& call, double timeout) override {
      if (call.name == "die") {
        (void)WriteFile(log_, ReadFile(log_).value_or("") + "die-again\n");
        return ToolOutcome{"survived"};
      }
      return FaultTools::Execute(call, timeout);
    }
  } survivor(ws_, log_);
  ScriptedClient client(script);
  auto o = Options();
  o.resume = true;
  auto s = RunAgent(client, survivor, o);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->status, ExitStatus::kSubmitted) << s->detail;
  EXPECT_EQ(s->steps, 5);
  EXPECT_EQ(s->tool_calls_replayed, 2);
  EXPECT_EQ(s->tool_calls_executed, 3);
  EXPECT_EQ(ReadFile(log_).value_or(""), "view\ncreate\ndie\ndie-again\nbash\nsubmit\n");
  EXPECT_NE(s->submission.find("sorted(values)"), std::string::npos);

  // A finished run cannot be resumed again.
  ScriptedClient again(script);
  auto s2 = RunAgent(again, survivor, o);
  EXPECT_FALSE(s2.ok());
}

TEST_F(LoopTest, ReadOnlyCallsOfOneTurnRunInParallelAndRecordInOrder) {
  Completion two;
  two.tool_calls = {{"p1", "peek", "{}"}, {"p2", "peek", "{\"n\":2}"}};
  RunSummary s = Run({two, Call("submit", Json::object())}, Options());
  EXPECT_EQ(s.status, ExitStatus::kSubmitted);
  auto records = ReadTrajectory(traj_);
  ASSERT_TRUE(records.ok());
  std::vector<std::string> ids, outputs;
  for (const auto& r : *records) {
    if (r["type"] == "tool_result" && r["name"] == "peek") {
      ids.push_back(r["call_id"]);
      outputs.push_back(r["output"]);
    }
  }
  EXPECT_EQ(ids, (std::vector<std::string>{"p1", "p2"}));
  EXPECT_EQ(outputs, (std::vector<std::string>{"together", "together"}));
}

TEST_F(LoopTest, RefusesToOverwriteATrajectory) {
  ASSERT_TRUE(WriteFile(traj_, "{}\n").ok());
  ScriptedClient client(SolvingScript());
  EXPECT_FALSE(RunAgent(client, *tools_, Options()).ok());
}

}  // namespace
}  // namespace v4agent::agent
