// InProcessClient on the mini-flash golden checkpoint: five turns through one live session.
// ByteCodec and LineRenderer are TEST DOUBLES for the V4 tokenizer and the DSML codec (the mini
// checkpoint's 1024-token vocabulary cannot hold V4 ids; bytes fit).
#include "agent/inprocess_client.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "common/file_util.h"
#include "common/strings.h"

namespace v4agent::agent {
namespace {

class ByteCodec : public TokenCodec {
 public:
  std::vector<int32_t> Encode(std::string_view text) const override {
    return std::vector<int32_t>(text.begin(), text.end());
  }
  std::string Decode(const std::vector<int32_t>& ids) const override {
    std::string out;
    for (int32_t id : ids) out.push_back(static_cast<char>(id & 0xff));
    return out;
  }
};

class LineRenderer : public PromptRenderer {
 public:
  bool drop_first_system = false;  // renders history differently: forces a rewind
  Result<std::string> Render(const std::vector<ChatMessage>& messages, const std::vector<ToolSpec>&,
                             bool) const override {
    std::string out;
    for (const auto& m : messages) {
      if (m.role == "system" && drop_first_system) continue;
      out +=
          m.role == "assistant" ? StrCat("A:", m.raw, "\n") : StrCat(m.role, ":", m.content, "\n");
    }
    return out + "A:";
  }
  Completion Parse(const std::string& raw) const override {
    Completion c;
    c.content = raw;
    return c;
  }
  size_t SharedPrefixLength(const std::vector<ChatMessage>& messages, const std::vector<ToolSpec>&,
                            bool) const override {
    size_t n = 0;
    for (const auto& m : messages) {
      if (m.role != "system" || drop_first_system) break;
      n += m.role.size() + 1 + m.content.size() + 1;
    }
    return n;
  }
};

std::unique_ptr<engine::Model> LoadMini() {
  engine::ModelOptions o;
  o.num_threads = 2;
  auto m =
      engine::Model::Load(std::string(V4_SOURCE_DIR) + "/tests/goldens/mini-flash/checkpoint", o);
  V4_CHECK(m.ok()) << m.status().ToString();
  return std::move(m).value();
}

TEST(InProcessClientTest, FiveTurnsPrefillOnlyNewTokensAndMatchOneFullPrefill) {
  auto model = LoadMini();
  ByteCodec codec;
  LineRenderer renderer;
  InProcessClient client(model.get(), &codec, &renderer, InProcessOptions{});
  CompletionRequest req;
  req.max_tokens = 3;
  req.messages.push_back({"system", "You fix bugs.", "", {}, ""});
  int64_t expected_reused = 0;
  std::string previous_text;
  for (int turn = 1; turn <= 5; ++turn) {
    req.messages.push_back({turn == 1 ? "user" : "tool", StrCat("result ", turn), "", {}, ""});
    std::string rendered = *renderer.Render(req.messages, {}, true);
    auto c = client.Complete(req, nullptr);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    ASSERT_EQ(rendered.compare(0, previous_text.size(), previous_text), 0);
    EXPECT_EQ(c->tokens_reused, expected_reused) << "turn " << turn;
    EXPECT_EQ(c->tokens_prefilled, static_cast<int64_t>(rendered.size() - previous_text.size()))
        << "turn " << turn;
    EXPECT_EQ(c->tokens_generated, 3);
    ChatMessage a;
    a.role = "assistant";
    a.raw = c->raw;
    req.messages.push_back(a);
    previous_text = rendered + c->raw;
    expected_reused = static_cast<int64_t>(previous_text.size());
  }
  EXPECT_EQ(client.rewinds(), 0);
  const auto& all = client.session().tokens();
  ASSERT_EQ(static_cast<int64_t>(all.size()), expected_reused);

  engine::Session fresh(model.get(), engine::SessionOptions{});
  ASSERT_TRUE(fresh.Append(all).ok());
  const auto& a = client.session().last_logits();
  const auto& b = fresh.last_logits();
  ASSERT_EQ(a.size(), b.size());
  // The engine's promise: appending turn by turn is bit-identical to one prefill.
  EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(float)));
}

TEST(InProcessClientTest, DivergentRenderRewindsToTheDivergenceAndStaysExact) {
  auto model = LoadMini();
  ByteCodec codec;
  LineRenderer renderer;
  InProcessClient client(model.get(), &codec, &renderer, InProcessOptions{});
  CompletionRequest req;
  req.max_tokens = 2;
  req.messages.push_back({"system", "sys", "", {}, ""});
  req.messages.push_back({"user", "hello", "", {}, ""});
  auto c1 = client.Complete(req, nullptr);
  ASSERT_TRUE(c1.ok());
  ChatMessage a;
  a.role = "assistant";
  a.raw = c1->raw;
  req.messages.push_back(a);
  req.messages.push_back({"user", "again", "", {}, ""});
  renderer.drop_first_system = true;
  auto c2 = client.Complete(req, nullptr);
  ASSERT_TRUE(c2.ok()) << c2.status().ToString();
  EXPECT_EQ(client.rewinds(), 1);
  EXPECT_EQ(c2->tokens_reused, 0);
  engine::Session fresh(model.get(), engine::SessionOptions{});
  ASSERT_TRUE(fresh.Append(client.session().tokens()).ok());
  const auto& x = client.session().last_logits();
  const auto& y = fresh.last_logits();
  ASSERT_EQ(x.size(), y.size());
  EXPECT_EQ(0, std::memcmp(x.data(), y.data(), x.size() * sizeof(float)));
}

TEST(InProcessClientTest, ResumeRebuildsTheCacheOnceFromRecordedIds) {
  auto model = LoadMini();
  ByteCodec codec;
  LineRenderer renderer;
  InProcessClient first(model.get(), &codec, &renderer, InProcessOptions{});
  CompletionRequest req;
  req.max_tokens = 3;
  req.messages.push_back({"user", "task", "", {}, ""});
  std::vector<Completion> turns;
  for (int turn = 1; turn <= 3; ++turn) {
    auto c = first.Complete(req, nullptr);
    ASSERT_TRUE(c.ok());
    // Round-trip through the trajectory's JSON form, as a resumed run reads it.
    auto back = CompletionFromJson(CompletionToJson(*c), "turn");
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    turns.push_back(*back);
    ChatMessage a;
    a.role = "assistant";
    a.raw = c->raw;
    req.messages.push_back(a);
    req.messages.push_back({"tool", StrCat("out ", turn), "", {}, ""});
  }
  InProcessClient resumed(model.get(), &codec, &renderer, InProcessOptions{});
  ASSERT_TRUE(resumed.ResumeFrom(turns).ok());
  EXPECT_EQ(resumed.session().tokens(), first.session().tokens());
  auto a = first.Complete(req, nullptr);
  auto b = resumed.Complete(req, nullptr);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(b->tokens_reused, a->tokens_reused);
  EXPECT_EQ(b->tokens_prefilled, a->tokens_prefilled);
  EXPECT_EQ(b->raw, a->raw);
  EXPECT_EQ(resumed.rewinds(), 0);
}

// Runs three turns with `options`, returning the turns as a trajectory records them.
std::vector<Completion> ThreeTurns(InProcessClient& client, CompletionRequest& req) {
  std::vector<Completion> turns;
  for (int turn = 1; turn <= 3; ++turn) {
    auto c = client.Complete(req, nullptr);
    EXPECT_TRUE(c.ok());
    if (!c.ok()) break;
    auto back = CompletionFromJson(CompletionToJson(*c), "turn");
    EXPECT_TRUE(back.ok());
    turns.push_back(*back);
    ChatMessage a;
    a.role = "assistant";
    a.raw = c->raw;
    req.messages.push_back(a);
    req.messages.push_back({"tool", StrCat("out ", turn), "", {}, ""});
  }
  return turns;
}

TEST(InProcessClientTest, ResumeRestoresTheSavedSessionInsteadOfPrefilling) {
  auto model = LoadMini();
  ByteCodec codec;
  LineRenderer renderer;
  ScopedTempDir dir;
  InProcessOptions io;
  io.session_path = dir.path() + "/t.jsonl.v4s";
  InProcessClient first(model.get(), &codec, &renderer, io);
  CompletionRequest req;
  req.max_tokens = 3;
  req.messages.push_back({"user", "task", "", {}, ""});
  auto turns = ThreeTurns(first, req);
  ASSERT_EQ(turns.size(), 3u);
  ASSERT_TRUE(std::filesystem::exists(io.session_path));

  InProcessClient resumed(model.get(), &codec, &renderer, io);
  ASSERT_TRUE(resumed.ResumeFrom(turns).ok());
  EXPECT_EQ(resumed.resume_restored_tokens(), first.session().length());
  EXPECT_EQ(resumed.session().Stats().tokens_prefilled, 0);  // nothing recomputed
  EXPECT_EQ(resumed.session().tokens(), first.session().tokens());
  auto a = first.Complete(req, nullptr);
  auto b = resumed.Complete(req, nullptr);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(b->raw, a->raw);
  EXPECT_EQ(b->tokens_prefilled, a->tokens_prefilled);

  // Without a usable file (here: damaged) it falls back to one prefill and says why.
  {
    std::string bytes = *ReadFile(io.session_path);
    bytes[bytes.size() - 10] ^= 0x40;
    ASSERT_TRUE(WriteFile(io.session_path, bytes).ok());
  }
  InProcessClient rebuilt(model.get(), &codec, &renderer, io);
  ASSERT_TRUE(rebuilt.ResumeFrom(turns).ok());
  EXPECT_EQ(rebuilt.resume_restored_tokens(), 0);
  EXPECT_NE(rebuilt.resume_fallback_reason().find("checksum"), std::string::npos)
      << rebuilt.resume_fallback_reason();
  EXPECT_EQ(
      rebuilt.session().Stats().tokens_prefilled,
      static_cast<int64_t>(resumed.session().length() - b->tokens_generated - b->tokens_prefilled));
}

TEST(InProcessClientTest, PrefixStoreServesTheSharedSystemBlockAndChangesNoOutput) {
  auto model = LoadMini();
  ByteCodec codec;
  LineRenderer renderer;
  ScopedTempDir dir;
  auto store = engine::PrefixStore::Open(dir.path() + "/cache", model.get());
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  const std::string system = "You are a careful agent. Tools: read, write, run, submit.";
  auto request = [&](const std::string& task) {
    CompletionRequest r;
    r.max_tokens = 4;
    r.messages.push_back({"system", system, "", {}, ""});
    r.messages.push_back({"user", task, "", {}, ""});
    return r;
  };
  InProcessOptions with_store;
  with_store.store = store->get();
  {
    InProcessClient a(model.get(), &codec, &renderer, with_store);
    auto c = a.Complete(request("fix the median"), nullptr);
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(c->tokens_from_store, 0);
  }
  // Another task: the system block comes from the store; the output is what a client
  // without a store produces.
  InProcessClient b(model.get(), &codec, &renderer, with_store);
  auto got = b.Complete(request("add a test"), nullptr);
  InProcessClient plain(model.get(), &codec, &renderer, InProcessOptions{});
  auto want = plain.Complete(request("add a test"), nullptr);
  ASSERT_TRUE(got.ok() && want.ok());
  const int64_t shared = static_cast<int64_t>(system.size()) + 8;  // "system:" ... "\n"
  EXPECT_EQ(got->tokens_from_store, shared);
  EXPECT_EQ(got->tokens_prefilled + got->tokens_from_store, want->tokens_prefilled);
  EXPECT_EQ(got->raw, want->raw);
  EXPECT_EQ(b.session().tokens(), plain.session().tokens());
  // The same task again: its whole first prompt comes from the store.
  InProcessClient c(model.get(), &codec, &renderer, with_store);
  auto again = c.Complete(request("add a test"), nullptr);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->tokens_prefilled, 0);
  EXPECT_EQ(again->raw, want->raw);
}

}  // namespace
}  // namespace v4agent::agent
