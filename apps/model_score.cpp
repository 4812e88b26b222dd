// `v4agent model score`: runs one goldens-format case file through the engine and writes the
// engine's outputs under the case's own tensor names, so any case can be checked by comparing
// two files.
#include <cmath>
#include <cstdio>

#include "apps/command.h"
#include "apps/flags.h"
#include "common/strings.h"
#include "engine/checkpoint/safetensors.h"
#include "engine/checkpoint/safetensors_writer.h"
#include "engine/model/model.h"
#include "engine/session/session.h"

namespace v4agent::apps {
namespace {

using namespace v4agent::engine;

constexpr char kUsage[] =
    "usage: v4agent model score --model DIR --case CASE.safetensors --out OUT.safetensors\n"
    "                           [--teacher-forced] [--qat-sim on|off] [--threads N]\n"
    "                           [--numerics exact|fast|fast-bf16]\n"
    "prompt_L*.safetensors: one prefill of prompt_tokens (prefill_logits, every row), then 16\n"
    "greedy decode steps (gen_tokens, decode_logits; --teacher-forced feeds the case's\n"
    "gen_tokens). two_turn.safetensors: prefill P1, decode G1, append P2 as one chunk on the\n"
    "live session, decode G2 (tokens, logits). The simulations follow the case's 'mode'\n"
    "metadata unless --qat-sim overrides it.";

int64_t ArgMax(const std::vector<float>& v) {
  return std::max_element(v.begin(), v.end()) - v.begin();
}

std::vector<int32_t> Ints(const TensorView* t) { return t->Copy<int32_t>(); }

Status Score(const Flags& flags) {
  V4_ASSIGN_OR_RETURN(auto kase, Checkpoint::Open(*flags.Get("case")));
  const auto& meta = kase->files()[0]->metadata();
  std::string mode = meta.count("mode") ? meta.at("mode") : "sim";
  if (auto o = flags.Get("qat-sim")) mode = *o == "off" ? "nosim" : "sim";
  ModelOptions mo;
  V4_ASSIGN_OR_RETURN(mo.numerics, ParseNumerics(flags.GetOr("numerics", "exact")));
  mo.qat_sim = mode != "nosim";
  V4_ASSIGN_OR_RETURN(int64_t threads, flags.GetInt("threads", 0));
  mo.num_threads = static_cast<int>(threads);
  V4_ASSIGN_OR_RETURN(auto model, Model::Load(*flags.Get("model"), mo));
  const int64_t V = model->config().vocab_size;
  SafetensorsWriter out;
  out.SetMetadata("mode", mode);
  out.SetMetadata("producer", "v4agent model score");
  Sampler greedy(SamplerOptions{});
  if (const TensorView* pt = kase->Find("prompt_tokens")) {
    auto prompt = Ints(pt);
    const int64_t steps = kase->Find("gen_tokens") ? kase->Find("gen_tokens")->numel() : 16;
    std::vector<int32_t> forced;
    if (flags.Has("teacher-forced")) {
      V4_ASSIGN_OR_RETURN(const TensorView* g, kase->Get("gen_tokens"));
      forced = Ints(g);
    }
    auto cache = model->NewCache();
    std::vector<float> prefill, step, decode;
    V4_RETURN_IF_ERROR(model->Forward(*cache, prompt, true, &prefill));
    std::vector<float> last(prefill.end() - V, prefill.end());
    std::vector<int32_t> gen;
    for (int64_t i = 0; i < steps; ++i) {
      int32_t pick = static_cast<int32_t>(ArgMax(last));
      gen.push_back(pick);
      int32_t feed = forced.empty() ? pick : forced[i];
      V4_RETURN_IF_ERROR(model->Forward(*cache, std::span<const int32_t>(&feed, 1), false, &step));
      decode.insert(decode.end(), step.begin(), step.end());
      last = step;
    }
    const int64_t L = static_cast<int64_t>(prompt.size());
    out.Add("prompt_tokens", DType::kI32, {L},
            {reinterpret_cast<const uint8_t*>(prompt.data()), prompt.size() * 4});
    out.AddF32("prefill_logits", {L, V}, prefill);
    out.Add("gen_tokens", DType::kI32, {steps},
            {reinterpret_cast<const uint8_t*>(gen.data()), gen.size() * 4});
    out.AddF32("decode_logits", {steps, V}, decode);
  } else if (const TensorView* tt = kase->Find("tokens")) {
    auto tokens = Ints(tt);
    auto need = [&](const char* k) -> Result<int64_t> {
      int64_t v = 0;
      if (!meta.count(k) || !ParseInt64(meta.at(k), &v)) {
        return InvalidArgumentError(StrCat(*flags.Get("case"), ": metadata '", k, "' missing"));
      }
      return v;
    };
    V4_ASSIGN_OR_RETURN(int64_t p1, need("p1"));
    V4_ASSIGN_OR_RETURN(int64_t g1, need("g1"));
    V4_ASSIGN_OR_RETURN(int64_t p2, need("p2"));
    V4_ASSIGN_OR_RETURN(int64_t g2, need("g2"));
    if (p1 + g1 + p2 + g2 != static_cast<int64_t>(tokens.size())) {
      return InvalidArgumentError("two-turn segment lengths do not add up to the token count");
    }
    auto span = std::span<const int32_t>(tokens);
    std::vector<float> logits;
    std::vector<int32_t> ours;
    {
      auto cache = model->NewCache();
      V4_RETURN_IF_ERROR(model->Forward(*cache, span.subspan(0, p1), true, &logits));
    }
    Session s(model.get(), SessionOptions{});
    V4_RETURN_IF_ERROR(s.Append(span.subspan(0, p1)));
    ours.assign(tokens.begin(), tokens.begin() + p1);
    auto gen = [&](int64_t n) -> Status {
      V4_ASSIGN_OR_RETURN(auto r, s.Generate(greedy, n, [&](int32_t id) {
        logits.insert(logits.end(), s.last_logits().begin(), s.last_logits().end());
        ours.push_back(id);
        return true;
      }));
      (void)r;
      return Status::Ok();
    };
    V4_RETURN_IF_ERROR(gen(g1));
    // P2 in one chunk on the live session; its per-row logits come from a fork fed token by
    // token (bit-identical to the chunk, see tests/engine_model/session_test.cpp).
    auto fork = s.Fork();
    for (int64_t i = 0; i < p2; ++i) {
      V4_RETURN_IF_ERROR(fork->Append(span.subspan(p1 + g1 + i, 1)));
      logits.insert(logits.end(), fork->last_logits().begin(), fork->last_logits().end());
    }
    V4_RETURN_IF_ERROR(s.Append(span.subspan(p1 + g1, p2)));
    ours.insert(ours.end(), tokens.begin() + p1 + g1, tokens.begin() + p1 + g1 + p2);
    V4_RETURN_IF_ERROR(gen(g2));
    const int64_t n = static_cast<int64_t>(ours.size());
    out.Add("tokens", DType::kI32, {n},
            {reinterpret_cast<const uint8_t*>(ours.data()), ours.size() * 4});
    out.AddF32("logits", {n, V}, logits);
  } else {
    return InvalidArgumentError(*flags.Get("case") +
                                ": neither prompt_tokens nor tokens: not a goldens case file");
  }
  return out.Write(*flags.Get("out"));
}

int Run(const std::vector<std::string>& args) {
  auto flags = Flags::Parse(
      args,
      FlagSpec{{"model", "case", "out", "qat-sim", "threads", "numerics"}, {"teacher-forced"}});
  if (!flags.ok() || !flags->Get("model") || !flags->Get("case") || !flags->Get("out")) {
    std::fprintf(
        stderr, "%s\n%s\n",
        flags.ok() ? "--model, --case and --out are required" : flags.status().message().c_str(),
        kUsage);
    return 2;
  }
  Status st = Score(*flags);
  if (!st.ok()) {
    std::fprintf(stderr, "v4agent model score: %s\n", st.ToString().c_str());
    return 1;
  }
  std::printf("wrote %s\n", flags->Get("out")->c_str());
  return 0;
}

SubcommandRegistrar registrar("model",
                              Command{"score",
                                      "run a goldens-format case and write the engine's outputs",
                                      kUsage, Run});

}  // namespace
}  // namespace v4agent::apps
