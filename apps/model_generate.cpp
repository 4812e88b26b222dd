// `v4agent model generate`: prefill a prompt on the in-process engine and stream tokens.
#include <cstdio>

#include "apps/command.h"
#include "apps/flags.h"
#include "common/stopwatch.h"
#include "common/strings.h"
#include "engine/checkpoint/safetensors_writer.h"
#include "engine/kernels/cpu/packed_matmul.h"
#include "engine/kernels/cpu/packed_matmul_dot.h"
#include "engine/model/model.h"
#include "engine/sampler/sampler.h"
#include "engine/session/session.h"
#include "engine/tokenizer/tokenizer.h"

namespace v4agent::apps {
namespace {

using namespace v4agent::engine;

constexpr char kUsage[] =
    "usage: v4agent model generate --model DIR (--tokens 1,2,3 | --prompt TEXT) [--max-tokens N]\n"
    "                              [--tokenizer PATH] [--temperature T] [--top-p P] [--top-k K]\n"
    "                              [--seed S] [--qat-sim on|off] [--threads N] [--chunk N]\n"
    "                              [--numerics fast|exact|fast-bf16] [--load-session FILE]\n"
    "                              [--save-session FILE] [--dump-logits FILE]\n"
    "Prefills the prompt, then streams the continuation and prints load, prefill and decode\n"
    "speeds on stderr. --prompt is tokenized with --tokenizer or DIR/tokenizer.json (special-\n"
    "token spellings become their ids) and the output is streamed as text; --tokens streams ids,\n"
    "one per line. Temperature 0 (the default) is greedy. --numerics fast (the default) runs\n"
    "the repacked checkpoint-format kernels, exact the fp32 oracle, fast-bf16 (opt-in) rounds\n"
    "activations to bf16 for vdpbf16ps (faster, deviates more; docs/engine.md).\n"
    "--load-session starts from a saved session (its history is mapped, not prefilled) and\n"
    "appends the prompt, if any, to it; --save-session writes the session after the run\n"
    "(docs/sessions.md). --dump-logits writes the logits each generated token was sampled from\n"
    "as a safetensors file (tensor `logits`, F32, [steps, vocab]).";

int Run(const std::vector<std::string>& args) {
  auto flags = Flags::Parse(
      args, FlagSpec{{"model", "tokens", "prompt", "max-tokens", "temperature", "top-p", "top-k",
                      "seed", "qat-sim", "threads", "chunk", "tokenizer", "numerics",
                      "load-session", "save-session", "dump-logits"},
                     {}});
  if (!flags.ok() || !flags->Get("model")) {
    std::fprintf(stderr, "%s\n%s\n",
                 flags.ok() ? "--model is required" : flags.status().message().c_str(), kUsage);
    return 2;
  }
  if (flags->Get("tokens") && flags->Get("prompt")) {
    std::fprintf(stderr, "--tokens and --prompt exclude each other\n%s\n", kUsage);
    return 2;
  }
  if (!flags->Get("tokens") && !flags->Get("prompt") && !flags->Get("load-session")) {
    std::fprintf(stderr, "one of --tokens and --prompt is required (or --load-session)\n%s\n",
                 kUsage);
    return 2;
  }
  std::unique_ptr<Tokenizer> tokenizer;
  std::vector<int32_t> prompt;
  if (flags->Get("prompt")) {
    auto tok = Tokenizer::Load(flags->GetOr("tokenizer", *flags->Get("model")));
    if (!tok.ok()) {
      std::fprintf(stderr, "v4agent model generate: --prompt needs a tokenizer: %s\n",
                   tok.status().ToString().c_str());
      return 1;
    }
    tokenizer = std::move(tok).value();
    prompt = tokenizer->Encode(*flags->Get("prompt"));
  }
  for (const auto& part :
       flags->Get("tokens") ? StrSplit(*flags->Get("tokens"), ',') : std::vector<std::string>{}) {
    int64_t v = 0;
    if (!ParseInt64(StripWhitespace(part), &v)) {
      std::fprintf(stderr, "v4agent model generate: --tokens: '%s' is not an integer\n",
                   part.c_str());
      return 2;
    }
    prompt.push_back(static_cast<int32_t>(v));
  }
  auto max_tokens = flags->GetInt("max-tokens", 16);
  auto temperature = flags->GetDouble("temperature", 0.0);
  auto top_p = flags->GetDouble("top-p", 1.0);
  auto top_k = flags->GetInt("top-k", 0);
  auto seed = flags->GetInt("seed", 0);
  auto threads = flags->GetInt("threads", 0);
  auto chunk = flags->GetInt("chunk", 256);
  for (const Status& s : {max_tokens.status(), temperature.status(), top_p.status(), top_k.status(),
                          seed.status(), threads.status(), chunk.status()}) {
    if (!s.ok()) {
      std::fprintf(stderr, "v4agent model generate: %s\n", s.message().c_str());
      return 2;
    }
  }
  ModelOptions mo;
  auto numerics = ParseNumerics(flags->GetOr("numerics", "fast"));
  if (!numerics.ok()) {
    std::fprintf(stderr, "v4agent model generate: --numerics: %s\n",
                 numerics.status().message().c_str());
    return 2;
  }
  mo.numerics = *numerics;
  mo.qat_sim = flags->GetOr("qat-sim", "on") != "off";
  mo.num_threads = static_cast<int>(*threads);
  Stopwatch load_sw;
  auto model = Model::Load(*flags->Get("model"), mo);
  if (!model.ok()) {
    std::fprintf(stderr, "v4agent model generate: %s\n", model.status().ToString().c_str());
    return 1;
  }
  const double load_s = load_sw.ElapsedSeconds();
  SessionOptions so;
  so.chunk_size = *chunk;
  std::unique_ptr<Session> owned;
  if (auto file = flags->Get("load-session")) {
    Stopwatch sw;
    auto loaded = Session::Load(model->get(), *file, so);
    if (!loaded.ok()) {
      std::fprintf(stderr, "v4agent model generate: --load-session: %s\n",
                   loaded.status().ToString().c_str());
      return 1;
    }
    owned = std::move(loaded).value();
    std::fprintf(stderr, "session: %lld tokens restored from %s in %.3f s\n",
                 static_cast<long long>(owned->length()), file->c_str(), sw.ElapsedSeconds());
  } else {
    owned = std::make_unique<Session>(model->get(), so);
  }
  Session& session = *owned;
  Status st = session.Append(prompt);
  if (!st.ok()) {
    std::fprintf(stderr, "v4agent model generate: %s\n", st.ToString().c_str());
    return 1;
  }
  SamplerOptions sopt;
  sopt.temperature = static_cast<float>(*temperature);
  sopt.top_p = static_cast<float>(*top_p);
  sopt.top_k = *top_k;
  sopt.seed = static_cast<uint64_t>(*seed);
  Sampler sampler(sopt);
  std::unique_ptr<StreamDecoder> decoder;
  if (tokenizer) decoder = std::make_unique<StreamDecoder>(*tokenizer);
  const bool dump = flags->Get("dump-logits").has_value();
  std::vector<float> dumped;
  if (dump) dumped = session.last_logits();
  auto gen = session.Generate(sampler, *max_tokens, [&](int32_t id) {
    if (dump)
      dumped.insert(dumped.end(), session.last_logits().begin(), session.last_logits().end());
    if (decoder) {
      std::string piece = decoder->Push(id);
      std::fwrite(piece.data(), 1, piece.size(), stdout);
    } else {
      std::printf("%d\n", id);
    }
    std::fflush(stdout);
    return true;
  });
  if (decoder) {
    std::string rest = decoder->Finish();
    std::fwrite(rest.data(), 1, rest.size(), stdout);
    std::printf("\n");
  }
  if (!gen.ok()) {
    std::fprintf(stderr, "v4agent model generate: %s\n", gen.status().ToString().c_str());
    return 1;
  }
  if (dump) {
    const int64_t V = (*model)->config().vocab_size;
    const int64_t steps = static_cast<int64_t>(gen->tokens.size());
    dumped.resize(static_cast<size_t>(steps * V));  // the row after the last token was never used
    SafetensorsWriter w;
    w.AddF32("logits", {steps, V}, dumped);
    if (Status ws = w.Write(*flags->Get("dump-logits")); !ws.ok()) {
      std::fprintf(stderr, "v4agent model generate: --dump-logits: %s\n", ws.ToString().c_str());
      return 1;
    }
  }
  if (auto file = flags->Get("save-session")) {
    Stopwatch sw;
    if (Status ss = session.Save(*file); !ss.ok()) {
      std::fprintf(stderr, "v4agent model generate: --save-session: %s\n", ss.ToString().c_str());
      return 1;
    }
    std::fprintf(stderr, "session: %lld tokens saved to %s in %.3f s\n",
                 static_cast<long long>(session.length()), file->c_str(), sw.ElapsedSeconds());
  }
  SessionStats s = session.Stats();
  if ((*model)->packed_bytes() > 0) {
    const bool bf16 = (*model)->options().numerics == Numerics::kFastBf16;
    std::fprintf(stderr, "numerics %s: %s repacked in %.2f s (%s) | ",
                 NumericsName((*model)->options().numerics),
                 HumanBytes((*model)->packed_bytes()).c_str(), (*model)->pack_seconds(),
                 bf16 ? kernels::DotKernelName() : kernels::IsaName(kernels::ActiveIsa()));
  }
  std::fprintf(stderr,
               "load %.2f s | prefill %lld tokens in %.3f s (%.1f tok/s) | decode %lld tokens in "
               "%.3f s (%.1f tok/s) | cache %s history + %s state\n",
               load_s, (long long)s.tokens_prefilled, s.prefill_seconds,
               s.tokens_prefilled / std::max(s.prefill_seconds, 1e-9),
               (long long)s.tokens_generated, s.decode_seconds,
               s.tokens_generated / std::max(s.decode_seconds, 1e-9),
               HumanBytes(s.cache_bytes.history).c_str(), HumanBytes(s.cache_bytes.state).c_str());
  return 0;
}

SubcommandRegistrar registrar("model",
                              Command{"generate", "prefill token ids and stream a continuation",
                                      kUsage, Run});

}  // namespace
}  // namespace v4agent::apps
