// `v4agent batch --config`, `evaluate` and `inspect` the way a user runs them, on the instance
// examples/batch/make_instances.sh builds: a config file's settings reach the run and its
// mistakes name their line; the replay reads as a story; the HTML page renders in headless
// Chromium with its script run (row count, the resolved cell, a linked replay opened).
#include <gtest/gtest.h>

#include <cstdlib>

#include "common/file_util.h"
#include "common/json.h"
#include "common/strings.h"
#include "tests/cli/cli_util.h"

namespace v4agent {
namespace {

using cli_testing::Exec;

class BatchCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(std::system(StrCat("bash ", V4_SOURCE_DIR, "/examples/batch/make_instances.sh ",
                                 dir_.path(), " >/dev/null")
                              .c_str()),
              0);
  }
  std::string Batch(const std::string& extra) {
    return StrCat("batch --instances ", dir_.path(), "/instances.jsonl --repos ", dir_.path(),
                  "/repos --scripted ", V4_SOURCE_DIR, "/examples/median/scripted.jsonl --out ",
                  dir_.path(), "/out ", extra);
  }
  ScopedTempDir dir_;
};

TEST_F(BatchCliTest, ConfigFileSettingsReachTheRunAndItsErrorsNameTheLine) {
  const std::string bad = dir_.path() + "/bad.yaml";
  ASSERT_TRUE(WriteFile(bad, "workers: 1\nbudgets:\n  max_step: 3\n").ok());
  auto r = Exec(Batch("--config " + bad));
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find(bad + ":3:3: unknown key \"max_step\" in budgets"), std::string::npos)
      << r.out;
  ASSERT_TRUE(WriteFile(bad, "task_template: \"{problem} here\"\n").ok());
  r = Exec(Batch("--config " + bad));
  EXPECT_NE(r.out.find(":1:16: task_template: unknown field {problem}"), std::string::npos)
      << r.out;
  ASSERT_TRUE(WriteFile(bad, "policy: no-such-policy\n").ok());
  r = Exec(Batch("--config " + bad));
  EXPECT_NE(r.out.find(":1:9: policy \"no-such-policy\" is neither"), std::string::npos) << r.out;

  const std::string good = dir_.path() + "/batch.yaml";
  ASSERT_TRUE(WriteFile(good,
                        "task_template: \"Issue {instance_id}: {problem_statement}\"\n"
                        "policy: workspace-write\nbudgets: {max_steps: 12}\n"
                        "model: {max_turn_tokens: 256, thinking: false}\n")
                  .ok());
  r = Exec(Batch("--config " + good));
  ASSERT_EQ(r.code, 0) << r.out;
  auto traj = ReadFile(dir_.path() + "/out/instances/example__median-1/trajectory.jsonl");
  ASSERT_TRUE(traj.ok());
  auto start = ParseJson(traj->substr(0, traj->find('\n')), "trajectory");
  ASSERT_TRUE(start.ok());
  EXPECT_TRUE(StartsWith((*start)["task"].get<std::string>(), "Issue example__median-1: median"));
  EXPECT_EQ((*start)["budgets"]["max_steps"], 12);
  EXPECT_EQ((*start)["thinking"], false);
  // A flag wins over the file.
  ASSERT_EQ(std::system(StrCat("rm -rf ", dir_.path(), "/out").c_str()), 0);
  r = Exec(Batch("--config " + good + " --max-steps 7"));
  ASSERT_EQ(r.code, 0) << r.out;
  traj = ReadFile(dir_.path() + "/out/instances/example__median-1/trajectory.jsonl");
  start = ParseJson(traj->substr(0, traj->find('\n')), "trajectory");
  EXPECT_EQ((*start)["budgets"]["max_steps"], 7);
  // Not a terminal: one log line per instance with counts by status.
  EXPECT_NE(r.out.find("[1/1] example__median-1: submitted | submitted 1"), std::string::npos)
      << r.out;
}

TEST_F(BatchCliTest, InspectReplaysARunAndItsHtmlPageRendersInChromium) {
  ASSERT_EQ(Exec(Batch("")).code, 0);
  auto ev = Exec(StrCat("evaluate --instances ", dir_.path(), "/instances.jsonl --predictions ",
                        dir_.path(), "/out/preds.jsonl --repos ", dir_.path(), "/repos --specs ",
                        dir_.path(), "/specs.yaml --run-id r1 --out ", dir_.path(), "/out"));
  ASSERT_EQ(ev.code, 0) << ev.out;
  auto text = Exec(StrCat("inspect ", dir_.path(), "/out/instances/example__median-1"));
  ASSERT_EQ(text.code, 0) << text.out;
  size_t at = 0;
  for (const char* piece : {"== task: ", "> view {\"path\": \"stats.py\"}", "< view -> allow",
                            "> str_replace", "> submit", "== end: status submitted"}) {
    at = text.out.find(piece, at);
    ASSERT_NE(at, std::string::npos) << piece << "\n" << text.out;
  }
  EXPECT_EQ(Exec("inspect /no/such/trajectory.jsonl").code, 1);

  const std::string page = dir_.path() + "/page.html";
  auto html = Exec(StrCat("inspect --html ", page, " ", dir_.path(), "/out"));
  ASSERT_EQ(html.code, 0) << html.out;
  ASSERT_EQ(std::system("command -v chromium >/dev/null"), 0)
      << "chromium is missing: scripts/setup.sh installs it";
  const std::string dom = dir_.path() + "/dom.html";
  ASSERT_EQ(std::system(StrCat("chromium --headless --no-sandbox --disable-gpu --dump-dom 'file://",
                               page, "#inst-example__median-1' > ", dom, " 2>/dev/null")
                            .c_str()),
            0);
  auto d = ReadFile(dom);
  ASSERT_TRUE(d.ok());
  EXPECT_NE(d->find("id=\"shown\">1 shown<"), std::string::npos) << "the script did not run";
  EXPECT_NE(d->find("id=\"resolved\">resolved 1 of 1<"), std::string::npos);
  EXPECT_NE(d->find("<td class=\"res\">resolved</td>"), std::string::npos);
  EXPECT_NE(d->find("<details id=\"inst-example__median-1\" open=\"\">"), std::string::npos)
      << "the linked replay was not opened";
  EXPECT_NE(d->find("median now sorts a copy"), std::string::npos);
}

// YAML-defined tools through `run --tools` and `batch --tools`: the model calls the shipped
// find_definition and gets its real answer from the sandbox.
TEST_F(BatchCliTest, YamlToolsWorkInRunAndBatch) {
  const std::string script = dir_.path() + "/tools.jsonl";
  ASSERT_TRUE(
      WriteFile(script,
                "{\"content\": \"\", \"tool_calls\": [{\"id\": \"t1\", \"name\": "
                "\"find_definition\", \"arguments\": \"{\\\"symbol\\\": \\\"median\\\"}\"}]}\n"
                "{\"content\": \"\", \"tool_calls\": [{\"id\": \"t2\", \"name\": \"submit\", "
                "\"arguments\": \"{\\\"answer\\\": \\\"found\\\"}\"}]}\n")
          .ok());
  const std::string tools = StrCat(V4_SOURCE_DIR, "/tools/yaml");
  auto r = Exec(StrCat("run --task 'Where is median defined?' --workspace ", dir_.path(),
                       "/src --scripted ", script, " --tools ", tools, " --trajectory ",
                       dir_.path(), "/run.jsonl --quiet"));
  EXPECT_EQ(r.code, 0) << r.out;
  auto traj = ReadFile(dir_.path() + "/run.jsonl");
  ASSERT_TRUE(traj.ok());
  EXPECT_NE(traj->find("stats.py:10: def median(values):"), std::string::npos) << *traj;

  r = Exec(StrCat("batch --instances ", dir_.path(), "/instances.jsonl --repos ", dir_.path(),
                  "/repos --scripted ", script, " --tools ", tools, " --out ", dir_.path(),
                  "/tools-out"));
  EXPECT_EQ(r.code, 0) << r.out;
  traj = ReadFile(dir_.path() + "/tools-out/instances/example__median-1/trajectory.jsonl");
  ASSERT_TRUE(traj.ok());
  EXPECT_NE(traj->find("stats.py:10: def median(values):"), std::string::npos) << *traj;
  // A broken tool file stops the batch before any instance runs, naming the file and line.
  const std::string bad = dir_.path() + "/bad-tool.yaml";
  ASSERT_TRUE(WriteFile(bad, "name: x\ndescription: d\nrun: {argv: [echo], colour: red}\n").ok());
  r = Exec(Batch("--tools " + bad));
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find(bad + ":3:21: unknown key \"colour\" in run"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace v4agent
