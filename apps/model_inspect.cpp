// `v4agent model inspect DIR [--json]`: what a checkpoint is, without running it.
#include <cstdio>
#include <map>

#include "apps/command.h"
#include "apps/flags.h"
#include "common/json.h"
#include "common/strings.h"
#include "engine/checkpoint/layout.h"
#include "engine/checkpoint/safetensors.h"
#include "engine/kv/sequence_cache.h"
#include "engine/model_config.h"
#include "engine/weights/weights.h"

namespace v4agent::apps {
namespace {

using namespace v4agent::engine;

int Run(const std::vector<std::string>& args) {
  auto flags = Flags::Parse(args, FlagSpec{{}, {"json"}});
  if (!flags.ok() || flags->positional().size() != 1) {
    std::fprintf(stderr, "usage: v4agent model inspect DIR [--json]\n%s\n",
                 flags.ok() ? "" : flags.status().message().c_str());
    return 2;
  }
  const std::string dir = flags->positional()[0];
  auto config = ModelConfig::Load(dir);
  if (!config.ok()) {
    std::fprintf(stderr, "v4agent model inspect: %s\n", config.status().ToString().c_str());
    return 1;
  }
  auto ckpt = Checkpoint::Open(dir);
  if (!ckpt.ok()) {
    std::fprintf(stderr, "v4agent model inspect: %s\n", ckpt.status().ToString().c_str());
    return 1;
  }
  auto bound = ModelWeights::Bind(**ckpt, *config, /*verify_scales=*/false);
  const ModelConfig& c = *config;
  std::vector<TensorSpec> specs;
  std::map<std::string, std::pair<int64_t, uint64_t>> by_dtype;
  uint64_t total_bytes = 0;
  for (const TensorView* t : (*ckpt)->tensors()) {
    specs.push_back(SpecFromTensor(t->name, t->dtype, t->shape));
    auto& e = by_dtype[std::string(DTypeName(t->dtype))];
    e.first++;
    e.second += t->nbytes;
    total_bytes += t->nbytes;
  }
  ParamCounts pc = CountParams(c, specs);
  KvFormula fp4 = KvBytesPerToken(c, true, false), fp8 = KvBytesPerToken(c, false, false),
            bf16 = KvBytesPerToken(c, false, true);
  const double m = 1 << 20;
  std::map<std::string, int> kinds;
  std::string pattern;
  for (int64_t i = 0; i < c.num_layers_with_mtp(); ++i) {
    std::string k = AttentionKindName(c.kind(i));
    if (i < c.num_hidden_layers) kinds[k]++;
    pattern += (i ? " " : "") + k + (i >= c.num_hidden_layers ? "(MTP)" : "");
  }
  if (flags->Has("json")) {
    Json j;
    j["path"] = dir;
    j["config"] = c.ToJson();
    j["layers"] = {{"main", c.num_hidden_layers}, {"mtp", c.num_nextn_predict_layers},
                   {"SWA", kinds["SWA"]},         {"CSA", kinds["CSA"]},
                   {"HCA", kinds["HCA"]},         {"pattern", pattern}};
    j["params"] = {{"total", pc.total},
                   {"total_with_mtp", pc.total_with_mtp},
                   {"active_per_token", pc.active}};
    Json dt = Json::object();
    for (const auto& [k, v] : by_dtype) dt[k] = {{"tensors", v.first}, {"bytes", v.second}};
    j["tensors"] = {{"count", (*ckpt)->num_tensors()}, {"bytes", total_bytes}, {"by_dtype", dt}};
    j["kv_cache"] = {
        {"bytes_per_token_fp8_fp4idx", fp4.bytes_per_token},
        {"bytes_per_token_fp8_fp8idx", fp8.bytes_per_token},
        {"bytes_per_token_bf16", bf16.bytes_per_token},
        {"bytes_at_1m_fp8_fp4idx", fp4.bytes_per_token * m},
        {"bytes_at_1m_fp8_fp8idx", fp8.bytes_per_token * m},
        {"bytes_at_1m_bf16", bf16.bytes_per_token * m},
    };
    j["binds"] = bound.ok();
    if (!bound.ok()) j["bind_error"] = bound.status().message();
    std::printf("%s\n", DumpJson(j, 2).c_str());
  } else {
    std::printf("checkpoint   %s\n", dir.c_str());
    std::printf("model        D=%lld, %lld layers + %lld MTP, %lld heads x %lld, vocab %lld\n",
                (long long)c.hidden_size, (long long)c.num_hidden_layers,
                (long long)c.num_nextn_predict_layers, (long long)c.num_attention_heads,
                (long long)c.head_dim, (long long)c.vocab_size);
    std::printf(
        "experts      %lld routed (top-%lld, %s) + %lld shared, width %lld; hash layers 0..%lld\n",
        (long long)c.n_routed_experts, (long long)c.num_experts_per_tok, c.scoring_func.c_str(),
        (long long)c.n_shared_experts, (long long)c.moe_intermediate_size,
        (long long)c.num_hash_layers - 1);
    std::printf("layers       SWA %d, CSA %d, HCA %d: %s\n", kinds["SWA"], kinds["CSA"],
                kinds["HCA"], pattern.c_str());
    std::printf("params       %.4gB total (%.4gB with MTP), %.4gB active per token\n",
                pc.total / 1e9, pc.total_with_mtp / 1e9, pc.active / 1e9);
    std::printf("tensors      %zu, %s\n", (*ckpt)->num_tensors(), HumanBytes(total_bytes).c_str());
    for (const auto& [k, v] : by_dtype) {
      std::printf("  %-8s   %6lld tensors  %s\n", k.c_str(), (long long)v.first,
                  HumanBytes(v.second).c_str());
    }
    std::printf(
        "kv cache     %.1f B/token (FP8 main + FP4 indexer), %.1f (FP8 indexer), %.1f (bf16)\n",
        fp4.bytes_per_token, fp8.bytes_per_token, bf16.bytes_per_token);
    std::printf("  at 1M      %s / %s / %s\n",
                HumanBytes(static_cast<uint64_t>(fp4.bytes_per_token * m)).c_str(),
                HumanBytes(static_cast<uint64_t>(fp8.bytes_per_token * m)).c_str(),
                HumanBytes(static_cast<uint64_t>(bf16.bytes_per_token * m)).c_str());
    std::printf("binding      %s\n", bound.ok() ? "every tensor the forward pass needs is present"
                                                : bound.status().message().c_str());
  }
  return bound.ok() ? 0 : 1;
}

SubcommandRegistrar registrar("model",
                              Command{"inspect",
                                      "summarise a checkpoint: config, layers, params, KV size",
                                      "usage: v4agent model inspect DIR [--json]", Run});

}  // namespace
}  // namespace v4agent::apps
