// Engine speed on CPU, each figure measured in this run:
//  1. prefill and decode tokens/s on mini-flash (1 and all threads);
//  2. per-token decode cost against context length up to 64K tokens on tiny-fast (CSA top-k
//     fixed, HCA linear in L/ratio, indexer linear in L/4);
//  3. Append of 20 tokens on top of a 1K vs a 64K history (no re-prefill: only the attention
//     terms grow), with the time a re-prefill of the whole 64K history would take.
// Usage: bench_engine [--max-context N]   (default 65536)
#include <cstdio>
#include <cstring>
#include <random>

#include "common/stopwatch.h"
#include "engine/model/model.h"
#include "engine/session/session.h"

using namespace v4agent;
using namespace v4agent::engine;

namespace {

std::vector<int32_t> Tokens(int64_t n, int64_t vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (auto& v : t) v = static_cast<int32_t>(rng() % static_cast<uint64_t>(vocab));
  return t;
}

std::unique_ptr<Model> Load(const std::string& name, int threads, int64_t max_context) {
  ModelOptions o;
  o.num_threads = threads;
  o.max_context = max_context;
  auto m = Model::Load(std::string(V4_SOURCE_DIR) + "/tests/goldens/" + name + "/checkpoint", o);
  if (!m.ok()) {
    std::fprintf(stderr, "%s\n", m.status().ToString().c_str());
    std::exit(1);
  }
  return std::move(m).value();
}

}  // namespace

int main(int argc, char** argv) {
  setvbuf(stdout, nullptr, _IOLBF, 0);  // progress stays visible when piped to a file
  int64_t max_ctx = 65536;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--max-context") == 0) max_ctx = std::atoll(argv[i + 1]);
  }
  std::printf("== 1. mini-flash prefill / decode\n");
  for (int threads : {1, 0}) {
    auto m = Load("mini-flash", threads, 0);
    Session s(m.get(), SessionOptions{});
    auto prompt = Tokens(512, m->config().vocab_size, 1);
    Stopwatch sw;
    if (!s.Append(prompt).ok()) return 1;
    double prefill = sw.ElapsedSeconds();
    Sampler g(SamplerOptions{});
    sw.Reset();
    auto r = s.Generate(g, 64, nullptr);
    double decode = sw.ElapsedSeconds();
    std::printf("threads=%-3d prefill 512 tokens: %7.1f tok/s | decode 64 tokens: %7.1f tok/s\n",
                m->pool()->num_threads(), 512 / prefill, r->tokens.size() / decode);
  }

  std::printf("\n== 2. tiny-fast decode cost vs context (all threads)\n");
  auto tiny = Load("tiny-fast", 0, max_ctx + 64);
  auto cache = tiny->NewCache();
  auto all = Tokens(max_ctx, tiny->config().vocab_size, 2);
  std::vector<float> logits;
  double first_cost = 0;
  int64_t pos = 0;
  for (int64_t ctx = 1024; ctx <= max_ctx; ctx *= 2) {
    while (pos < ctx - 8) {
      int64_t n = std::min<int64_t>(512, ctx - 8 - pos);
      if (!tiny->Forward(*cache, std::span<const int32_t>(all).subspan(pos, n), false, &logits)
               .ok())
        return 1;
      pos += n;
    }
    Stopwatch sw;
    for (int i = 0; i < 8; ++i, ++pos) {
      if (!tiny->Forward(*cache, std::span<const int32_t>(all).subspan(pos, 1), false, &logits)
               .ok())
        return 1;
    }
    double per = sw.ElapsedSeconds() / 8;
    if (first_cost == 0) first_cost = per;
    std::printf("context %6lld: %7.3f ms/token (%.2fx the 1K cost)\n", (long long)ctx, per * 1e3,
                per / first_cost);
  }

  std::printf("\n== 3. Append 20 tokens on a live session: 1K vs %lldK history\n",
              (long long)(max_ctx / 1024));
  auto extra = Tokens(20, tiny->config().vocab_size, 3);
  double append_1k = 0, append_big = 0, reprefill = 0;
  {
    Session s(tiny.get(), SessionOptions{});
    if (!s.Append(std::span<const int32_t>(all).subspan(0, 1024)).ok()) return 1;
    Stopwatch sw;
    if (!s.Append(extra).ok()) return 1;
    append_1k = sw.ElapsedSeconds();
  }
  {
    Session s(tiny.get(), SessionOptions{});
    Stopwatch sw;
    if (!s.Append(std::span<const int32_t>(all).subspan(0, max_ctx - 20)).ok()) return 1;
    reprefill = sw.ElapsedSeconds();
    sw.Reset();
    if (!s.Append(extra).ok()) return 1;
    append_big = sw.ElapsedSeconds();
  }
  std::printf("append 20 on 1K history:   %8.2f ms\n", append_1k * 1e3);
  std::printf(
      "append 20 on %lldK history: %8.2f ms (%.2fx; attention over more compressed entries)\n",
      (long long)(max_ctx / 1024), append_big * 1e3, append_big / append_1k);
  std::printf("re-prefilling that history instead: %.2f s (%.0fx the append)\n", reprefill,
              reprefill / append_big);
  return 0;
}
