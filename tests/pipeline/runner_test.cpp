// Pipelines run for real: commands and tools in the sandbox under the policy, the agent loop
// with the scripted client, conditions, retries, timeouts, outputs, artifacts, foreach with
// parallel iterations, called pipelines, hostile values that stay data, and a run killed with
// SIGKILL and resumed through the CLI.
#include "pipeline/runner.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "agent/scripted_client.h"
#include "common/file_util.h"
#include "common/strings.h"
#include "pipeline/loader.h"
#include "tests/cli/cli_util.h"

namespace v4agent::pipeline {
namespace {

class RunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ws_ = dir_.path() + "/ws";
    std::filesystem::create_directories(ws_);
    for (const char* f : {"stats.py", "test_stats.py"}) {
      auto text = ReadFile(StrCat(V4_SOURCE_DIR, "/examples/median/", f));
      ASSERT_TRUE(text.ok());
      ASSERT_TRUE(WriteFile(ws_ + "/" + f, *text).ok());
    }
    ASSERT_EQ(std::system(StrCat("cd ", ws_,
                                 " && git init -q . && git add -A && git -c "
                                 "user.name=u -c user.email=u@x commit -qm base")
                              .c_str()),
              0);
  }
  Result<Json> Run(const std::string& yaml, std::map<std::string, std::string> inputs = {},
                   const std::string& script = "") {
    const std::string f = dir_.path() + "/p" + std::to_string(n_) + ".yaml";
    V4_CHECK(WriteFile(f, yaml).ok());
    LoadResult loaded = LoadPipeline(f);
    if (!loaded.errors.empty()) return InvalidArgumentError(loaded.errors[0]);
    RunOptions o;
    o.workspace = ws_;
    o.run_dir = dir_.path() + "/run" + std::to_string(n_++);
    o.inputs = std::move(inputs);
    if (!script.empty()) {
      o.make_client = [script]() -> Result<std::unique_ptr<agent::ModelClient>> {
        V4_ASSIGN_OR_RETURN(agent::ScriptedClient c, agent::ScriptedClient::FromFile(script));
        return std::unique_ptr<agent::ModelClient>(new agent::ScriptedClient(std::move(c)));
      };
    }
    o.on_event = [this](const StepEvent& e) { events_.push_back(e.path + ":" + e.state); };
    return RunPipeline(*loaded.pipeline, o);
  }
  static std::string Outcome(const Json& s, const std::string& path) {
    return s["steps"].contains(path) ? s["steps"][path].value("outcome", "?") : "absent";
  }
  ScopedTempDir dir_;
  std::string ws_;
  int n_ = 0;
  std::vector<std::string> events_;
};

TEST_F(RunnerTest, ConditionsFailuresRetriesTimeoutsAndOutputs) {
  auto s = Run(R"Y(
inputs:
  greeting: {type: string, default: hello}
  n: {type: integer, default: 2}
env:
  WHO: world
steps:
  - id: hello
    run: |
      echo "${{ inputs.greeting }} $WHO ${{ env.WHO }}"
      echo "count=$(( ${{ inputs.n }} + 1 ))" >> "$V4_OUTPUT"
  - id: skipped
    if: steps.hello.outputs.count == '4'
    run: echo never
  - id: flaky
    retries: 2
    run: |
      echo x >> attempts.txt
      [ "$(wc -l < attempts.txt)" -ge 2 ]
  - id: slow
    timeout: 1
    continue-on-error: true
    run: sleep 20
  - id: broken
    run: exit 3
  - id: after_failure
    run: echo should not run
  - id: cleanup
    if: failure()
    run: echo cleaning; mkdir -p out; echo data > out/a.txt
    artifacts: [out/*.txt]
outputs:
  count: ${{ steps.hello.outputs.count }}
  said: ${{ trim(steps.hello.stdout) }}
)Y");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ((*s)["status"], "failure");
  EXPECT_EQ(Outcome(*s, "hello"), "success");
  EXPECT_EQ((*s)["outputs"]["said"], "hello world world");
  EXPECT_EQ((*s)["outputs"]["count"], "3");
  EXPECT_EQ(Outcome(*s, "skipped"), "skipped");
  EXPECT_EQ(Outcome(*s, "flaky"), "success");
  EXPECT_EQ((*s)["steps"]["flaky"]["attempts"], 2);
  EXPECT_EQ(Outcome(*s, "slow"), "failure");
  EXPECT_NE((*s)["steps"]["slow"].value("error", "").find("timed out after 1 s"),
            std::string::npos);
  EXPECT_LT((*s)["steps"]["slow"]["seconds"].get<double>(), 15);
  EXPECT_EQ(Outcome(*s, "broken"), "failure");
  EXPECT_EQ((*s)["steps"]["broken"]["exit_code"], 3);
  EXPECT_EQ(Outcome(*s, "after_failure"), "skipped");
  EXPECT_EQ(Outcome(*s, "cleanup"), "success");
  const std::string artifact = (*s)["run_dir"].get<std::string>() + "/artifacts/cleanup/out/a.txt";
  EXPECT_EQ(ReadFile(artifact).value_or(""), "data\n");
  auto journal = ReadFile((*s)["run_dir"].get<std::string>() + "/journal.jsonl");
  ASSERT_TRUE(journal.ok());
  EXPECT_EQ(std::count(journal->begin(), journal->end(), '\n'), 9);  // start, 7 steps, end
}

TEST_F(RunnerTest, ValuesStayDataInEveryQuotingAndThePolicyReadsNestedShell) {
  ASSERT_TRUE(WriteFile(dir_.path() + "/policy.yaml",
                        "version: 1\nsandbox: {mode: workspace-write}\nrules:\n"
                        "  - id: no-rm\n    prefix: [rm]\n    decision: deny\n"
                        "    reason: nothing is removed here\n    match: ['rm -rf x']\n"
                        "    not_match: [ls]\n")
                  .ok());
  const std::string evil = "a'b\"c $(touch pwned1) `touch pwned2`; touch pwned3 * $HOME";
  auto s = Run(R"Y(
inputs:
  v: {type: string}
  cmd: {type: string, default: "rm -rf stats.py"}
policy: policy.yaml
steps:
  - id: bare
    run: printf '[%s]\n' ${{ inputs.v }}
  - id: double
    run: printf '[%s]\n' "x ${{ inputs.v }} y"
  - id: single
    run: printf '[%s]\n' 'x ${{ inputs.v }} y'
  - id: nested
    continue-on-error: true
    run: bash -c "${{ inputs.cmd }}"
)Y",
               {{"v", evil}});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  const std::string run_dir = (*s)["run_dir"].get<std::string>();
  auto out = [&](const std::string& step) {
    return ReadFile(run_dir + "/steps/" + step + "/stdout.txt").value_or("<none>");
  };
  EXPECT_EQ(out("bare"), "[" + evil + "]\n");
  EXPECT_EQ(out("double"), "[x " + evil + " y]\n");
  EXPECT_EQ(out("single"), "[x " + evil + " y]\n");
  for (const char* f : {"pwned1", "pwned2", "pwned3"}) EXPECT_FALSE(PathExists(ws_ + "/" + f));
  // The command handed to bash -c is read by the policy, which refuses rm.
  EXPECT_EQ(Outcome(*s, "nested"), "failure");
  EXPECT_NE((*s)["steps"]["nested"].value("error", "").find("rule no-rm"), std::string::npos)
      << s->dump(2);
  EXPECT_TRUE(PathExists(ws_ + "/stats.py"));
}

TEST_F(RunnerTest, ForeachRunsItemsInParallelAndCalledPipelinesReturnOutputs) {
  ASSERT_TRUE(WriteFile(dir_.path() + "/inner.yaml",
                        "inputs: {who: {type: string, required: true}}\nsteps:\n  - id: hi\n"
                        "    run: echo \"hi ${{ inputs.who }}\"\n"
                        "outputs: {said: '${{ trim(steps.hi.stdout) }}'}\n")
                  .ok());
  ASSERT_TRUE(WriteFile(ws_ + "/packages.txt", "alpha\n\n# a comment\nbeta\ngamma\ndelta\n").ok());
  std::string yaml = R"Y(
steps:
  - id: each
    foreach:
      lines: packages.txt
      as: pkg
      parallel: 2
      steps:
        - id: work
          # Each item records when it ran; overlapping intervals show two at once. An item
          # first waits (up to 20 s) until two items have started, so a slow sandbox start
          # on a loaded machine cannot hide the overlap, while serial runs still show none.
          run: |
            touch "started-${{ loop.index }}"
            for i in $(seq 200); do [ "$(ls started-* | wc -l)" -ge 2 ] && break; sleep 0.1; done
            start=$(date +%s%N); sleep 0.3; end=$(date +%s%N)
            echo "${{ pkg }} $start $end" >> "times-${{ loop.index }}.txt"
            echo "${{ pkg }}"
        - id: check
          if: steps.work.stdout == 'gamma\n' || contains(steps.work.stdout, 'gamma')
          run: exit 1
          continue-on-error: true
  - id: files
    foreach:
      glob: "*.py"
      steps:
        - id: size
          run: wc -l < "${{ item }}"
  - id: call
    pipeline: inner.yaml
    with: {who: "${{ steps.each.outputs.count }} packages"}
  - id: find
    tool: find_definition
    with: {symbol: median}
tools: [TOOLS]
outputs:
  said: ${{ steps.call.outputs.said }}
  failures: ${{ steps.each.outputs.failures }}
  files: ${{ length(steps.files.results) }}
)Y";
  yaml.replace(yaml.find("TOOLS"), 5, std::string(V4_SOURCE_DIR) + "/tools/yaml");
  auto s = Run(yaml);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ((*s)["status"], "success") << s->dump(2);
  // Four items from the file's non-empty, non-comment lines; gamma's check failed but was
  // allowed to, so the item counts as a failure and the foreach goes on.
  EXPECT_EQ((*s)["outputs"]["failures"], 1);
  EXPECT_EQ((*s)["steps"]["each/2/check"]["outcome"], "failure");
  EXPECT_EQ((*s)["steps"]["each/0/check"]["outcome"], "skipped");
  EXPECT_EQ((*s)["outputs"]["said"], "hi 4 packages");
  EXPECT_EQ((*s)["outputs"]["files"], 2);
  EXPECT_EQ(Outcome(*s, "find"), "success");
  std::vector<std::pair<int64_t, int64_t>> spans;
  for (int i = 0; i < 4; ++i) {
    auto t = ReadFile(StrCat(ws_, "/times-", i, ".txt"));
    ASSERT_TRUE(t.ok()) << i;
    auto parts = StrSplit(std::string(StripWhitespace(*t)), ' ');
    ASSERT_EQ(parts.size(), 3u);
    spans.emplace_back(std::stoll(parts[1]), std::stoll(parts[2]));
  }
  bool overlap = false;
  for (size_t a = 0; a < spans.size(); ++a) {
    for (size_t b = a + 1; b < spans.size(); ++b) {
      overlap = overlap || (spans[a].first < spans[b].second && spans[b].first < spans[a].second);
    }
  }
  EXPECT_TRUE(overlap) << "parallel: 2 never ran two items at once";
}

TEST_F(RunnerTest, AgentStepsDriveTheRealLoopAndHandBackThePatch) {
  auto s = Run(R"Y(
steps:
  - id: test
    run: python3 -m unittest
    continue-on-error: true
  - id: fix
    if: steps.test.exit_code != 0
    agent:
      task: "Fix the failing test: ${{ steps.test.stderr }}"
      max_steps: 10
  - id: retest
    run: python3 -m unittest
outputs:
  patch: ${{ steps.fix.patch }}
)Y",
               {}, std::string(V4_SOURCE_DIR) + "/examples/median/scripted.jsonl");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ((*s)["status"], "success") << s->dump(2);
  EXPECT_EQ((*s)["steps"]["fix"]["status"], "submitted");
  EXPECT_NE((*s)["outputs"]["patch"].get<std::string>().find("+    values = sorted(values)"),
            std::string::npos);
  EXPECT_TRUE(PathExists((*s)["steps"]["fix"]["trajectory"].get<std::string>()));
  // Without a model an agent step fails and says why.
  auto none = Run("steps:\n  - id: a\n    agent: {task: t}\n");
  ASSERT_TRUE(none.ok());
  EXPECT_NE((*none)["steps"]["a"].value("error", "").find("agent steps need a model"),
            std::string::npos);
}

// The v4agent binary: exit status and output (stdout and stderr).
std::pair<int, std::string> Cli(const std::string& args) {
  const auto r = cli_testing::Exec(args);
  return {r.code, r.out};
}

TEST_F(RunnerTest, AKilledRunResumesWithoutRerunningFinishedSteps) {
  const std::string file = dir_.path() + "/long.yaml";
  ASSERT_TRUE(WriteFile(file,
                        "inputs: {tag: {type: string, default: a}}\nsteps:\n"
                        "  - id: first\n    run: echo ran >> count.txt\n"
                        "  - id: wait\n    run: sleep 4\n"
                        "  - id: last\n    run: echo last >> count.txt\n")
                  .ok());
  const std::string rd = dir_.path() + "/rd";
  const std::string args = StrCat("pipeline run ", file, " --workspace ", ws_, " --run-dir ", rd);
  const pid_t pid = fork();
  if (pid == 0) {
    const std::string bin = StrCat(V4_BINARY_DIR, "/apps/v4agent");
    execl("/bin/sh", "sh", "-c", StrCat("exec ", bin, " ", args, " >/dev/null 2>&1").c_str(),
          nullptr);
    _exit(127);
  }
  // Kill it once the first step is journaled, while the second sleeps.
  bool journaled = false;
  for (int i = 0; i < 200 && !journaled; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    auto j = ReadFile(rd + "/journal.jsonl");
    journaled = j.ok() && j->find("\"path\":\"first\"") != std::string::npos;
  }
  ASSERT_TRUE(journaled);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  kill(pid, SIGKILL);
  int st = 0;
  waitpid(pid, &st, 0);
  ASSERT_TRUE(WIFSIGNALED(st));
  EXPECT_EQ(ReadFile(ws_ + "/count.txt").value_or(""), "ran\n");

  auto again = Cli(args);
  EXPECT_EQ(again.first, 2);
  EXPECT_NE(again.second.find("holds an unfinished run: pass --resume to continue it, or --fresh"),
            std::string::npos)
      << again.second;
  auto other = Cli(args + " --resume --input tag=b");
  EXPECT_EQ(other.first, 2);
  EXPECT_NE(other.second.find("the earlier run had inputs"), std::string::npos) << other.second;
  auto resumed = Cli(args + " --resume");
  EXPECT_EQ(resumed.first, 0) << resumed.second;
  EXPECT_NE(resumed.second.find("first  reused"), std::string::npos) << resumed.second;
  EXPECT_NE(resumed.second.find("wait  success"), std::string::npos) << resumed.second;
  EXPECT_EQ(ReadFile(ws_ + "/count.txt").value_or(""), "ran\nlast\n");
  // A finished run is replaced by the next one: every step runs again.
  auto next = Cli(args);
  EXPECT_EQ(next.first, 0) << next.second;
  EXPECT_EQ(next.second.find("reused"), std::string::npos) << next.second;
  EXPECT_EQ(ReadFile(ws_ + "/count.txt").value_or(""), "ran\nlast\nran\nlast\n");
}

TEST_F(RunnerTest, TheShippedPipelinesRunWithTheScriptedClientAndCheckClean) {
  const std::string ex = StrCat(V4_SOURCE_DIR, "/examples/pipelines/");
  auto check =
      Cli(StrCat("pipeline check ", ex, "fix-failing-tests.yaml ", ex, "review-each-package.yaml"));
  EXPECT_EQ(check.first, 0) << check.second;
  const std::string bad = dir_.path() + "/bad.yaml";
  ASSERT_TRUE(WriteFile(bad,
                        "steps:\n  - id: a\n    run: ${{ steps.b.stdout }}\n  - id: b\n"
                        "    tool: nope\n")
                  .ok());
  check = Cli("pipeline check " + bad);
  EXPECT_EQ(check.first, 1);
  EXPECT_NE(check.second.find(bad + ":3:10: ${{ steps.b.stdout }}: step \"b\" comes later"),
            std::string::npos)
      << check.second;
  EXPECT_NE(check.second.find(bad + ":5:11: there is no tool \"nope\""), std::string::npos);
  EXPECT_NE(check.second.find("2 errors"), std::string::npos);

  auto fix = Cli(StrCat("pipeline run ", ex, "fix-failing-tests.yaml --workspace ", ws_,
                        " --run-dir ", dir_.path(), "/fix --scripted ", V4_SOURCE_DIR,
                        "/examples/median/scripted.jsonl"));
  EXPECT_EQ(fix.first, 0) << fix.second;
  EXPECT_NE(fix.second.find("fixed: true"), std::string::npos) << fix.second;
  auto report = ReadFile(dir_.path() + "/fix/steps/report/report.md");
  ASSERT_TRUE(report.ok());
  EXPECT_NE(report->find("+    values = sorted(values)"), std::string::npos) << *report;

  ASSERT_TRUE(
      WriteFile(ws_ + "/extra.py", "import os\nimport sys\n\n\ndef f():  \n    return sys.argv\n")
          .ok());
  auto review = Cli(StrCat("pipeline run ", ex, "review-each-package.yaml --workspace ", ws_,
                           " --run-dir ", dir_.path(), "/review --json --scripted ", V4_SOURCE_DIR,
                           "/examples/pipelines/explain.scripted.jsonl"));
  EXPECT_EQ(review.first, 0) << review.second;
  const size_t brace = review.second.find("{\n");
  ASSERT_NE(brace, std::string::npos) << review.second;
  auto j = ParseJson(review.second.substr(brace), "summary");
  ASSERT_TRUE(j.ok()) << review.second;
  EXPECT_EQ((*j)["outputs"]["reviewed"], 3);
  EXPECT_EQ((*j)["outputs"]["failures"], 1);
  EXPECT_EQ((*j)["steps"]["each/0/explain"]["status"], "submitted") << j->dump(2);
  EXPECT_EQ((*j)["steps"]["each/1/explain"]["outcome"], "skipped");
}

}  // namespace
}  // namespace v4agent::pipeline
