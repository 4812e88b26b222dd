// Batch runs with the scripted client (a TEST DOUBLE for a model that knows the fix) over the
// instances of repos.h: predictions in the harness's format that evaluate as resolved, the
// agent never shown the patches or test lists, a workspace without later history, a missing
// mirror recorded per instance while the batch goes on, and a batch killed with SIGKILL and
// run again that ends with every instance in preds.jsonl exactly once.
#include "batch/batch_run.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <filesystem>
#include <set>
#include <thread>

#include "agent/scripted_client.h"
#include "agent/tool_registry_executor.h"
#include "batch/evaluate.h"
#include "tests/batch/repos.h"

namespace v4agent::batch {
namespace {

namespace fs = std::filesystem;
using testing::Built;
using testing::MakeRepo;
using testing::Sh;

// Looks around (the history and the files), fixes add(), submits.
const char kScript[] =
    R"({"content": "", "tool_calls": [{"id": "c1", "name": "bash", "arguments": "{\"command\": \"git log --all --oneline | wc -l; git tag | wc -l; ls -a\"}"}]})"
    "\n"
    R"({"content": "", "tool_calls": [{"id": "c2", "name": "str_replace", "arguments": "{\"path\": \"calc.py\", \"old_str\": \"    return a - b\\n\\n\\ndef sub\", \"new_str\": \"    return a + b\\n\\n\\ndef sub\"}"}]})"
    "\n"
    R"({"content": "", "tool_calls": [{"id": "c3", "name": "submit", "arguments": "{\"answer\": \"fixed add\"}"}]})"
    "\n";

class BatchRunTest : public ::testing::Test {
 protected:
  void SetUp() override {
    repos_ = dir_.path() + "/repos";
    fs::create_directories(repos_);
    for (const char* n : {"ucalc", "pcalc", "qcalc"}) {
      built_.push_back(MakeRepo(dir_.path(), repos_, n, std::string(n) != "ucalc"));
      instances_.push_back(built_.back().instance);
    }
    script_ = dir_.path() + "/script.jsonl";
    ASSERT_TRUE(WriteFile(script_, kScript).ok());
    ASSERT_TRUE(WriteFile(dir_.path() + "/specs.yaml", testing::kSpecs).ok());
  }
  BatchOptions Options(const std::string& out) {
    BatchOptions o;
    o.repos_dir = repos_;
    o.out_dir = out;
    o.workers = 1;  // the kill test runs two (see evaluate_test.cpp on more)
    o.model_name = "scripted";
    auto policy = policies::BuiltinPolicy("workspace-write");
    V4_CHECK(policy.ok());
    o.policy = *policy;
    o.budgets = agent::BudgetsFromPolicy(*policy);
    o.budgets.max_steps = 5;
    const std::string script = script_;
    o.make_client = [script](int) -> Result<std::unique_ptr<agent::ModelClient>> {
      V4_ASSIGN_OR_RETURN(agent::ScriptedClient c, agent::ScriptedClient::FromFile(script));
      return std::unique_ptr<agent::ModelClient>(new agent::ScriptedClient(std::move(c)));
    };
    return o;
  }
  ScopedTempDir dir_;
  std::string repos_, script_;
  std::vector<Built> built_;
  std::vector<Instance> instances_;
};

TEST_F(BatchRunTest, PredictionsEvaluateResolvedAndNothingLeaks) {
  const std::string out = dir_.path() + "/out";
  std::vector<Instance> ins = instances_;
  Instance missing = ins[0];
  missing.id = "acme__absent-1";
  missing.repo = "acme/absent";
  ins.push_back(missing);
  auto s = RunBatch(ins, Options(out));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ((*s)["by_status"]["submitted"], 3) << s->dump(2);
  EXPECT_EQ((*s)["by_status"]["error"], 1);
  auto st = ReadJsonFile(out + "/instances/acme__absent-1/status.json");
  ASSERT_TRUE(st.ok());
  EXPECT_NE((*st)["detail"].get<std::string>().find("no git mirror"), std::string::npos);

  // The agent saw one commit, no tag, and never the test patch, gold patch or test lists.
  for (const Instance& in : instances_) {
    auto traj = ReadFile(out + "/instances/" + in.id + "/trajectory.jsonl");
    ASSERT_TRUE(traj.ok());
    EXPECT_NE(traj->find("add() subtracts"), std::string::npos);
    EXPECT_NE(traj->find("1\\n0\\n"), std::string::npos) << "history or tags leaked";
    for (const std::string& secret :
         {in.fail_to_pass[0], std::string("test_add"), std::string("upstream fix")}) {
      EXPECT_EQ(traj->find(secret), std::string::npos) << secret << " leaked into " << in.id;
    }
  }
  // The predictions grade as resolved by our evaluator.
  auto preds = LoadPredictions(out + "/preds.jsonl", instances_);
  ASSERT_TRUE(preds.ok()) << preds.status().ToString();
  ASSERT_EQ(preds->size(), 4u);  // the missing mirror gets an empty prediction
  auto specs = EvalSpecs::Load(dir_.path() + "/specs.yaml");
  ASSERT_TRUE(specs.ok());
  EvalOptions eo;
  eo.repos_dir = repos_;
  eo.out_dir = dir_.path() + "/eval";
  eo.run_id = "b";
  eo.workers = 1;
  auto e = Evaluate(instances_, *preds, *specs, eo);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ((*e)["resolved_instances"], 3) << e->dump(2);

  // Run again: every instance is finished, nothing runs, preds.jsonl unchanged.
  const std::string before = *ReadFile(out + "/preds.jsonl");
  int reused = 0;
  auto again =
      RunBatch(ins, Options(out), [&](const InstanceOutcome& o, int, int) { reused += o.reused; });
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(reused, 4);
  EXPECT_EQ(*ReadFile(out + "/preds.jsonl"), before);
}

TEST_F(BatchRunTest, KilledWithSigkillAndRunAgainLosesAndDuplicatesNothing) {
  // Every instance sleeps in a tool call, so the kill lands mid-batch.
  const std::string slow = dir_.path() + "/slow.jsonl";
  ASSERT_TRUE(
      WriteFile(
          slow,
          std::string(
              R"({"content": "", "tool_calls": [{"id": "c0", "name": "bash", "arguments": "{\"command\": \"sleep 1\"}"}]})") +
              "\n" + kScript)
          .ok());
  std::vector<Instance> many;
  for (int copy = 0; copy < 3; ++copy) {
    for (Instance in : instances_) {
      in.id += "-" + std::to_string(copy);
      many.push_back(in);
    }
  }
  const std::string out = dir_.path() + "/killed";
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    BatchOptions o = Options(out);
    o.workers = 2;
    o.make_client = [slow](int) -> Result<std::unique_ptr<agent::ModelClient>> {
      V4_ASSIGN_OR_RETURN(agent::ScriptedClient c, agent::ScriptedClient::FromFile(slow));
      return std::unique_ptr<agent::ModelClient>(new agent::ScriptedClient(std::move(c)));
    };
    RunBatch(many, o).IgnoreError();
    _exit(0);
  }
  // Kill once a few instances are done, others mid-run.
  for (int i = 0; i < 400; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    int done = 0;
    for (const Instance& in : many)
      done += fs::exists(out + "/instances/" + in.id + "/status.json");
    if (done >= 3) break;
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  int done_before = 0;
  for (const Instance& in : many)
    done_before += fs::exists(out + "/instances/" + in.id + "/status.json");
  EXPECT_GE(done_before, 3);
  EXPECT_LT(done_before, 9) << "the kill came too late to test anything";
  auto s = RunBatch(many, Options(out));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  auto text = ReadFile(out + "/preds.jsonl");
  ASSERT_TRUE(text.ok());
  std::multiset<std::string> ids;
  for (const std::string& line : StrSplit(*text, '\n')) {
    if (line.empty()) continue;
    auto j = ParseJson(line, "preds");
    ASSERT_TRUE(j.ok()) << line;
    ids.insert((*j)["instance_id"].get<std::string>());
  }
  EXPECT_EQ(ids.size(), many.size());
  for (const Instance& in : many) EXPECT_EQ(ids.count(in.id), 1u) << in.id;
  EXPECT_EQ((*s)["finished_instances"], static_cast<int>(many.size()));

  // Two shards merge back into one set.
  auto merged = MergeBatches({out, out}, dir_.path() + "/merged");
  ASSERT_TRUE(merged.ok());
  EXPECT_EQ((*merged)["total_instances"], static_cast<int>(many.size()));
}

}  // namespace
}  // namespace v4agent::batch
