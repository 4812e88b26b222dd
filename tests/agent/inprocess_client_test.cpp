// InProcessClient on the mini-flash golden checkpoint: five turns through one live session.
// ByteCodec and LineRenderer are TEST DOUBLES for the V4 tokenizer and the DSML codec (the mini
// checkpoint's 1024-token vocabulary cannot hold V4 ids; bytes fit).
#include "agent/inprocess_client.h"

#include <gtest/gtest.h>

#include <cstring>

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

}  // namespace
}  // namespace v4agent::agent
