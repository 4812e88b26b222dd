// One session grown to 2^20 tokens, measured at every power of two (issue 14, docs/benchmarks.md):
// append cost of a fixed-size chunk on top of the history, decode ms/token, resident memory,
// KV bytes per token as stored and by the production formula, save and load time and file
// size, and whether a loaded copy continues bit-exactly. At the last point the append cost
// is set against a FLOP and byte model of that append (engine-notes §7.3) in the same run,
// and the history is counted to have been prefilled exactly once.
//
// The checkpoint is random-weight with V4-Flash's layer pattern (SWA, SWA, CSA, HCA, CSA,
// HCA + MTP; mini-flash's widths) and an indexer of 1 head x 64 dims, so the O(L^2) indexer
// of a million-token growth fits in well under an hour on two cores.
//
// Usage: bench_sessions [--max-log2 20] [--chunk 4096] [--probe 512] [--decode 8]
//                       [--threads N] [--dir DIR] [--numerics fast|exact]
#include <sys/resource.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "common/file_util.h"
#include "common/json.h"
#include "common/stopwatch.h"
#include "common/strings.h"
#include "engine/checkpoint/random_checkpoint.h"
#include "engine/model/model.h"
#include "engine/session/session.h"
#include "engine/session/session_file.h"

using namespace v4agent;
using namespace v4agent::engine;

namespace {

std::vector<int32_t> Tokens(int64_t n, int64_t vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (auto& v : t) v = static_cast<int32_t>(rng() % static_cast<uint64_t>(vocab));
  return t;
}

double RssGiB() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atof(line.c_str() + 6) / (1024.0 * 1024.0);
  }
  return 0;
}

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "bench_sessions: %s\n", what.c_str());
  std::exit(1);
}

// FLOPs of appending `c` tokens at history `l` (engine-notes §7.3's terms at these widths).
struct AppendModel {
  double flops = 0, bytes = 0;
};
AppendModel ModelAppend(const Model& m, int64_t l, int64_t c) {
  const ModelConfig& k = m.config();
  AppendModel r;
  const double linear = 2.0 * static_cast<double>(m.DecodeWeightParams());
  double per_token = linear;
  const double H = static_cast<double>(k.num_attention_heads), hd = static_cast<double>(k.head_dim);
  for (int64_t i = 0; i < k.num_hidden_layers; ++i) {
    per_token += 4.0 * H * hd * static_cast<double>(k.sliding_window);  // SWA window
    const int64_t ratio = k.ratio(i);
    if (ratio == 0) continue;
    const double entries = static_cast<double>(l) / static_cast<double>(ratio);
    if (k.kind(i) == AttentionKind::kCsa) {
      per_token += 2.0 * entries * static_cast<double>(k.index_n_heads * k.index_head_dim);
      per_token += 4.0 * H * hd * std::min<double>(static_cast<double>(k.index_topk), entries);
      // Each key read once per tile of 32 tokens, as fp32 (decoded once per call).
      r.bytes += static_cast<double>(c) / 32.0 * entries * k.index_head_dim * 4.0;
    } else {
      per_token += 4.0 * H * hd * entries;
      r.bytes += static_cast<double>(c) * entries * hd * 4.0;
    }
  }
  r.flops = per_token * static_cast<double>(c);
  r.bytes += static_cast<double>(m.DecodeWeightBytes());
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  setvbuf(stdout, nullptr, _IOLBF, 0);
  int max_log2 = 20;
  int64_t chunk = 4096, probe = 512, decode = 8, threads = 0;
  std::string dir, numerics = "fast";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--max-log2")
      max_log2 = std::atoi(v.c_str());
    else if (a == "--chunk")
      chunk = std::atoll(v.c_str());
    else if (a == "--probe")
      probe = std::atoll(v.c_str());
    else if (a == "--decode")
      decode = std::atoll(v.c_str());
    else if (a == "--threads")
      threads = std::atoll(v.c_str());
    else if (a == "--dir")
      dir = v;
    else if (a == "--numerics")
      numerics = v;
    else
      Die("unknown flag " + a);
  }
  ScopedTempDir scratch;
  if (dir.empty()) dir = scratch.path();
  const int64_t target = int64_t{1} << max_log2;

  // The checkpoint: mini-flash's config with a long context and a 1 x 64 indexer.
  auto base =
      ReadJsonFile(std::string(V4_SOURCE_DIR) + "/tests/goldens/mini-flash/checkpoint/config.json");
  if (!base.ok()) Die(base.status().ToString());
  Json cj = *base;
  cj["index_n_heads"] = 1;
  cj["index_head_dim"] = 64;
  cj["max_position_embeddings"] = target * 2;
  auto config = ModelConfig::FromJson(cj, "bench config");
  if (!config.ok()) Die(config.status().ToString());
  const std::string ckpt = dir + "/ckpt";
  if (!std::filesystem::exists(ckpt + "/config.json")) {
    if (Status s = WriteRandomCheckpoint(*config, 7, true, ckpt); !s.ok()) Die(s.ToString());
  }
  ModelOptions mo;
  mo.num_threads = static_cast<int>(threads);
  auto nm = ParseNumerics(numerics);
  if (!nm.ok()) Die(nm.status().ToString());
  mo.numerics = *nm;
  auto model = Model::Load(ckpt, mo);
  if (!model.ok()) Die(model.status().ToString());
  Model& m = **model;
  const ModelConfig& c = m.config();
  const KvFormula prod = KvBytesPerToken(c, true, false);
  std::printf(
      "checkpoint %s: %lld layers (%s), D=%lld, indexer %lld x %lld, numerics %s, %d threads\n",
      ckpt.c_str(), (long long)c.num_hidden_layers, "SWA SWA CSA HCA CSA HCA + MTP",
      (long long)c.hidden_size, (long long)c.index_n_heads, (long long)c.index_head_dim,
      numerics.c_str(), m.pool() ? m.pool()->num_threads() : 1);
  std::printf(
      "grow in chunks of %lld to %lld tokens; at each 2^k: append %lld tokens on a fork, "
      "decode %lld tokens on a fork, save, load, continue the loaded copy\n",
      (long long)chunk, (long long)target, (long long)probe, (long long)decode);
  std::printf("%8s %10s %12s %9s %8s %11s %11s %9s %9s %10s %6s\n", "tokens", "grow s", "append ms",
              "ms/tok", "RSS GiB", "KV B/tok", "formula", "save s", "load s", "file MiB", "exact");

  const int64_t V = c.vocab_size;
  Session s(&m, SessionOptions{chunk, 16});
  auto probe_ids = Tokens(probe, V, 99);
  Stopwatch total;
  double grow_s = 0;
  int64_t appended = 0;
  uint64_t seed = 1;
  double last_append_ms = 0;
  for (int k = 10; k <= max_log2; ++k) {
    const int64_t point = int64_t{1} << k;
    Stopwatch grow;
    while (s.length() < point) {
      const int64_t n = std::min(chunk, point - s.length());
      auto ids = Tokens(n, V, seed++);
      if (Status st = s.Append(ids); !st.ok()) Die(st.ToString());
      appended += n;
    }
    grow_s += grow.ElapsedSeconds();
    // Append a fixed-size chunk on top of the history (a fork shares it).
    auto fork = s.Fork();
    Stopwatch sw;
    if (Status st = fork->Append(probe_ids); !st.ok()) Die(st.ToString());
    last_append_ms = sw.ElapsedSeconds() * 1000;
    auto dec = s.Fork();
    Sampler greedy(SamplerOptions{});
    sw.Reset();
    auto gen = dec->Generate(greedy, decode, nullptr);
    if (!gen.ok()) Die(gen.status().ToString());
    const double ms_tok = sw.ElapsedSeconds() * 1000 / static_cast<double>(decode);
    const CacheBytes cb = s.Stats().cache_bytes;
    // Save, load, and continue the loaded copy: the same tokens as the fork that never left.
    const std::string file = dir + "/session.v4s";
    sw.Reset();
    if (Status st = s.Save(file); !st.ok()) Die(st.ToString());
    const double save_s = sw.ElapsedSeconds();
    const double file_mib =
        static_cast<double>(std::filesystem::file_size(file)) / (1024.0 * 1024.0);
    sw.Reset();
    auto loaded = Session::Load(&m, file, SessionOptions{chunk, 16});
    if (!loaded.ok()) Die(loaded.status().ToString());
    const double load_s = sw.ElapsedSeconds();
    Sampler greedy2(SamplerOptions{});
    auto gen2 = (*loaded)->Generate(greedy2, decode, nullptr);
    const bool exact = gen2.ok() && gen2->tokens == gen->tokens &&
                       std::memcmp((*loaded)->last_logits().data(), dec->last_logits().data(),
                                   V * sizeof(float)) == 0;
    std::printf("%8lld %10.1f %12.1f %9.2f %8.2f %11.1f %11.1f %9.3f %9.3f %10.1f %6s\n",
                (long long)point, grow_s, last_append_ms, ms_tok, RssGiB(),
                static_cast<double>(cb.history) / static_cast<double>(point),
                static_cast<double>(cb.history_production) / static_cast<double>(point), save_s,
                load_s, file_mib, exact ? "yes" : "NO");
  }
  const SessionStats st = s.Stats();
  std::printf(
      "\nhistory prefilled once: %lld tokens appended, %lld prefilled, %lld replayed "
      "(%s)\n",
      (long long)appended, (long long)st.tokens_prefilled, (long long)st.tokens_replayed,
      st.tokens_prefilled == appended && st.tokens_replayed == 0 ? "never recomputed"
                                                                 : "RECOMPUTED");
  std::printf(
      "production formula (FP8 rows with bf16 rope + FP4 indexer): %.1f B/token; as "
      "stored here the rope dims stay fp32 to be lossless\n",
      prod.bytes_per_token);
  const AppendModel am = ModelAppend(m, s.length(), probe);
  const double peak =
      117e9 * (m.pool() ? m.pool()->num_threads() : 1);  // engine-notes §4.4, fp32 FMA
  const double bw = 33.9e9;
  const double model_ms = std::max(am.flops / peak, am.bytes / bw) * 1000;
  std::printf(
      "append %lld tokens at %lld: %.1f ms measured; model %.2f GFLOP (%.1f ms at %.0f "
      "GFLOP/s) and %.2f GB (%.1f ms at %.1f GB/s) -> bound %.1f ms; measured / model = "
      "%.2f\n",
      (long long)probe, (long long)s.length(), last_append_ms, am.flops / 1e9,
      am.flops / peak * 1000, peak / 1e9, am.bytes / 1e9, am.bytes / bw * 1000, bw / 1e9, model_ms,
      last_append_ms / model_ms);
  std::printf("total %.1f s\n", total.ElapsedSeconds());
  return 0;
}
