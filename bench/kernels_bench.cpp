// The fast CPU engine against this machine's limits, each limit measured in the same run:
//  1. read bandwidth (a streaming sum over 2 GiB, 1 and 2 threads) and register-only peaks
//     (fp32 FMA, which the fast numerics use; bf16 dot vdpbf16ps, which fast-bf16 uses by
//     rounding activations to bf16; int8 dot vpdpbusd: docs/engine.md);
//  2. the linear kernels at V4-Flash widths on random checkpoint-format matrices larger than
//     the caches: one-token GEMV in GB/s of checkpoint bytes and % of bandwidth, 512-token
//     GEMM in GFLOP/s, % of the fp32 peak and against OpenBLAS sgemm on the same shapes, each
//     next to the exact path; the GEMV once more on a matrix that fits in L2 (its ceiling
//     when memory is not the limit);
//  3. with --model DIR (the Flash-width slice of docs/benchmarks.md): decode tok/s at 1 and 2
//     threads with the weight bytes per token, GB/s and % of bandwidth (of section 1's, and of
//     a bandwidth pass just before each decode run); prefill of a 512-token chunk; the exact
//     numerics for comparison.
// "fast" in the tables is the numerics --numerics names (fast, the default, or fast-bf16, whose
// kernels round activations to bf16 for vdpbf16ps: kernels/cpu/packed_matmul_dot.h).
// Usage: bench_kernels [--model DIR] [--no-kernels] [--decode-tokens N]
//                      [--isa best|avx512|avx2|scalar] [--streams 1|2]
//                      [--numerics fast|fast-bf16]
#include <immintrin.h>
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common/stopwatch.h"
#include "common/thread_pool.h"
#include "engine/kernels/cpu/ops.h"
#include "engine/kernels/cpu/packed_linear.h"
#include "engine/kernels/cpu/packed_matmul.h"
#include "engine/kernels/cpu/packed_matmul_dot.h"
#include "engine/model/model.h"
#include "engine/weights/random_linear.h"

#if V4_HAVE_OPENBLAS
#include <cblas.h>
extern "C" void openblas_set_num_threads(int);
#endif

using namespace v4agent;
using namespace v4agent::engine;

namespace {

// ---- 1. machine ----

__attribute__((target("avx512f"))) double ReadPass(const float* p, size_t n) {
  // Four independent sums in registers so the adds never limit the stream.
  __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i + 64 <= n; i += 64) {
    a0 = _mm512_add_ps(a0, _mm512_load_ps(p + i));
    a1 = _mm512_add_ps(a1, _mm512_load_ps(p + i + 16));
    a2 = _mm512_add_ps(a2, _mm512_load_ps(p + i + 32));
    a3 = _mm512_add_ps(a3, _mm512_load_ps(p + i + 48));
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

double Bandwidth(ThreadPool& pool, const float* buf, size_t n, int reps = 5) {
  double best = 0;
  volatile double sink = 0;
  for (int rep = 0; rep < reps; ++rep) {
    Stopwatch sw;
    std::vector<double> part(static_cast<size_t>(pool.num_threads()));
    pool.ParallelFor(static_cast<size_t>(pool.num_threads()), 1, [&](size_t b, size_t e) {
      for (size_t t = b; t < e; ++t) {
        const size_t chunk = n / part.size() / 64 * 64;
        part[t] = ReadPass(buf + t * chunk, chunk);
      }
    });
    const double s = sw.ElapsedSeconds();
    for (double v : part) sink = sink + v;
    best = std::max(best, n * 4.0 / s / 1e9);
  }
  return best;
}

__attribute__((target("avx512f"))) double PeakFma(int64_t iters) {
  // Distinct starting values: identical chains would be merged by the compiler.
  __m512 acc[12];
#pragma GCC unroll 12
  for (int i = 0; i < 12; ++i) acc[i] = _mm512_set1_ps(1.0f + i);
  const __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
  for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 12
    for (auto& a : acc) a = _mm512_fmadd_ps(a, m, c);
  }
  float out[16];
  __m512 t = acc[0];
#pragma GCC unroll 12
  for (int i = 1; i < 12; ++i) t = _mm512_add_ps(t, acc[i]);
  _mm512_storeu_ps(out, t);
  return out[0];
}

__attribute__((target("avx512f,avx512bf16"))) double PeakBf16(int64_t iters) {
  __m512 acc[12];
#pragma GCC unroll 12
  for (int i = 0; i < 12; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i));
  const __m512bh x = (__m512bh)_mm512_set1_epi16(0x3F80), y = (__m512bh)_mm512_set1_epi16(0x3300);
  for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 12
    for (auto& a : acc) a = _mm512_dpbf16_ps(a, x, y);
  }
  float out[16];
  __m512 t = acc[0];
#pragma GCC unroll 12
  for (int i = 1; i < 12; ++i) t = _mm512_add_ps(t, acc[i]);
  _mm512_storeu_ps(out, t);
  return out[0];
}

__attribute__((target("avx512f,avx512vnni"))) double PeakInt8(int64_t iters) {
  __m512i acc[12];
#pragma GCC unroll 12
  for (int i = 0; i < 12; ++i) acc[i] = _mm512_set1_epi32(i);
  const __m512i x = _mm512_set1_epi8(3), y = _mm512_set1_epi8(5);
  for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 12
    for (auto& a : acc) a = _mm512_dpbusd_epi32(a, x, y);
  }
  int out[16];
  __m512i t = acc[0];
#pragma GCC unroll 12
  for (int i = 1; i < 12; ++i) t = _mm512_add_epi32(t, acc[i]);
  _mm512_storeu_si512(out, t);
  return out[0];
}

// ops per instruction per lane-group: fp32 FMA 16 lanes x 2 flops; bf16 dot 32 products x 2;
// int8 dot 64 products x 2.
double Peak(ThreadPool& pool, double (*fn)(int64_t), double ops_per_instr) {
  const int64_t iters = 20'000'000;
  double best = 0;
  volatile double sink = 0;
  for (int rep = 0; rep < 3; ++rep) {
    Stopwatch sw;
    pool.ParallelFor(static_cast<size_t>(pool.num_threads()), 1, [&](size_t b, size_t e) {
      for (size_t t = b; t < e; ++t) sink = sink + fn(iters);
    });
    best = std::max(best, iters * 12.0 * ops_per_instr * pool.num_threads() / sw.ElapsedSeconds());
  }
  return best / 1e9;
}

struct Machine {
  double bw[3] = {0, 0, 0};    // GB/s by thread count (1, 2)
  double fma[3] = {0, 0, 0};   // GFLOP/s
  double bf16[3] = {0, 0, 0};  // GFLOP/s
  double int8[3] = {0, 0, 0};  // GOP/s
};

// The buffer the read bandwidth streams (2 GiB, far beyond the caches), kept for the whole run
// so the model section can measure the bandwidth again beside each decode run.
struct ReadBuffer {
  ReadBuffer() : bytes(size_t{2} << 30), buf(bytes) {
    float* f = reinterpret_cast<float*>(buf.data());
    for (size_t i = 0; i < bytes / 4; ++i) f[i] = 1.0f;
  }
  const float* floats() const { return reinterpret_cast<const float*>(buf.data()); }
  size_t bytes;
  kernels::AlignedBytes buf;
};

Machine MeasureMachine(const ReadBuffer& rb) {
  Machine m;
  const float* f = rb.floats();
  const size_t bytes = rb.bytes;
  __builtin_cpu_init();
  const bool bf16 = __builtin_cpu_supports("avx512bf16");
  const bool vnni = __builtin_cpu_supports("avx512vnni");
  const bool avx512 = __builtin_cpu_supports("avx512f");
  std::printf("== 1. This machine, measured now\n");
  for (int threads : {1, 2}) {
    ThreadPool pool(threads);
    m.bw[threads] = Bandwidth(pool, f, bytes / 4);
    if (avx512) m.fma[threads] = Peak(pool, PeakFma, 32);
    if (bf16) m.bf16[threads] = Peak(pool, PeakBf16, 64);
    if (vnni) m.int8[threads] = Peak(pool, PeakInt8, 128);
    std::printf(
        "threads %d: read bandwidth %6.1f GB/s | peak fp32 FMA %6.1f GFLOP/s | bf16 dot %6.1f "
        "GFLOP/s | int8 dot %6.1f GOP/s\n",
        threads, m.bw[threads], m.fma[threads], m.bf16[threads], m.int8[threads]);
  }
  return m;
}

// The numerics of the "fast" columns and of section 3 (--numerics).
Numerics g_fast = Numerics::kFast;

// ---- 2. kernels ----

struct MatrixSet {
  std::vector<std::unique_ptr<OwnedLinear>> owned;
  std::vector<kernels::PackedLinear> packed;
  uint64_t bytes = 0;  // checkpoint bytes of the whole set
};

const char* FormatName(WeightFormat f) {
  switch (f) {
    case WeightFormat::kBF16:
      return "bf16";
    case WeightFormat::kF32:
      return "f32";
    case WeightFormat::kFP8:
      return "FP8";
    case WeightFormat::kFP4:
      return "FP4";
  }
  return "?";
}

// `copies` distinct copies of one random matrix, so one pass over the set streams from memory.
MatrixSet MakeSet(WeightFormat f, int64_t out, int64_t in, int copies) {
  MatrixSet s;
  auto first = RandomLinear(f, out, in, 1);
  for (int c = 0; c < copies; ++c) {
    auto o = std::make_unique<OwnedLinear>();
    o->data = first->data;
    o->scale = first->scale;
    o->linear = first->linear;
    o->linear.data = o->data.data();
    o->linear.scale = o->scale.empty() ? nullptr : o->scale.data();
    auto p = kernels::PackLinear(o->linear, nullptr, g_fast == Numerics::kFastBf16);
    if (!p.ok()) {
      std::fprintf(stderr, "%s\n", p.status().ToString().c_str());
      std::exit(1);
    }
    s.bytes += o->linear.StorageBytes();
    s.packed.push_back(std::move(p).value());
    s.owned.push_back(std::move(o));
  }
  return s;
}

// Seconds per pass over the set (best of `reps`), `tokens` tokens per matrix.
double TimeSet(MatrixSet& s, bool fast, int64_t tokens, ThreadPool& pool, int reps) {
  const int64_t in = s.owned[0]->linear.in, out = s.owned[0]->linear.out;
  std::vector<float> x(static_cast<size_t>(tokens * in));
  std::mt19937 rng(3);
  std::normal_distribution<float> nd;
  for (float& v : x) v = nd(rng);
  std::vector<float> y(static_cast<size_t>(tokens * out));
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    Stopwatch sw;
    for (size_t i = 0; i < s.owned.size(); ++i) {
      if (fast) {
        kernels::PackedMatMul(s.packed[i], 0, out, x.data(), in, tokens, y.data(), out, &pool);
      } else {
        kernels::MatMulRows(s.owned[i]->linear, 0, out, x.data(), in, tokens, y.data(), out, &pool);
      }
    }
    best = std::min(best, sw.ElapsedSeconds());
  }
  return best;
}

#if V4_HAVE_OPENBLAS
double TimeSgemm(const Linear& w, int64_t tokens, int threads) {
  openblas_set_num_threads(threads);
  std::vector<float> wf(static_cast<size_t>(w.out * w.in));
  for (int64_t r = 0; r < w.out; ++r) w.DequantRow(r, wf.data() + r * w.in);
  std::vector<float> x(static_cast<size_t>(tokens * w.in), 0.5f),
      y(static_cast<size_t>(tokens * w.out));
  double best = 1e30;
  for (int r = 0; r < 3; ++r) {
    Stopwatch sw;
    // y[tokens, out] = x[tokens, in] * w[out, in]^T
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(tokens),
                static_cast<int>(w.out), static_cast<int>(w.in), 1.0f, x.data(),
                static_cast<int>(w.in), wf.data(), static_cast<int>(w.in), 0.0f, y.data(),
                static_cast<int>(w.out));
    best = std::min(best, sw.ElapsedSeconds());
  }
  return best;
}
#endif

void Kernels(const Machine& m) {
  std::printf(
      "\n== 2. Linear kernels at V4-Flash widths (ISA %s, %d stream%s per thread in the "
      "one-token GEMV, fast = %s numerics)\n",
      kernels::IsaName(kernels::ActiveIsa()), kernels::GemvTwoStreams() ? 2 : 1,
      kernels::GemvTwoStreams() ? "s" : "", NumericsName(g_fast));
  struct Case {
    const char* what;
    WeightFormat f;
    int64_t out, in;
    int copies;
  };
  const Case cases[] = {
      {"bf16 LM head 129280x4096", WeightFormat::kBF16, 129280, 4096, 1},
      {"fp8 wo_b 4096x8192 (x8)", WeightFormat::kFP8, 4096, 8192, 8},
      {"fp8 wq_b 32768x1024 (x8)", WeightFormat::kFP8, 32768, 1024, 8},
      {"fp4 expert w1 2048x4096 (x64)", WeightFormat::kFP4, 2048, 4096, 64},
  };
  std::printf(
      "GEMV, one token (decode); GB/s of checkpoint bytes, %% of the same thread count's "
      "read bandwidth; last column: the same format's 256x2048 matrix (two groups, so the "
      "kernel decode runs), which stays in L2, one thread (the kernel's ceiling without "
      "memory)\n");
  std::printf("%-32s %7s | %-22s | %-22s | %-27s | %s\n", "matrix set", "MB", "exact 1t / 2t GB/s",
              "fast 1t / 2t GB/s", "fast % of bandwidth 1t / 2t", "in L2, 1t");
  std::vector<MatrixSet> sets;
  for (const Case& c : cases) {
    sets.push_back(MakeSet(c.f, c.out, c.in, c.copies));
    MatrixSet& s = sets.back();
    double gbs[2][3] = {};
    for (int threads : {1, 2}) {
      ThreadPool pool(threads);
      gbs[0][threads] = s.bytes / TimeSet(s, false, 1, pool, 1) / 1e9;
      gbs[1][threads] = s.bytes / TimeSet(s, true, 1, pool, 5) / 1e9;
    }
    MatrixSet small = MakeSet(c.f, 256, 2048, 1);
    ThreadPool one(1);
    const double in_cache = small.bytes / TimeSet(small, true, 1, one, 400) / 1e9;
    std::printf(
        "%-32s %7.0f | %9.2f / %9.2f  | %9.1f / %9.1f  | %5.0f%% / %5.0f%%  (%3.0fx exact)  | "
        "%5.1f GB/s\n",
        c.what, s.bytes / 1e6, gbs[0][1], gbs[0][2], gbs[1][1], gbs[1][2],
        100 * gbs[1][1] / m.bw[1], 100 * gbs[1][2] / m.bw[2], gbs[1][2] / gbs[0][2], in_cache);
  }
  std::printf("\nGEMM, 512 tokens (prefill), 2 threads; %% of the measured peaks\n");
  std::printf("%-32s | %8s | %8s | %9s | %9s | %s\n", "matrix", "exact", "fast", "% fp32 FMA",
              "% bf16 dot", "OpenBLAS sgemm (fp32 weights), fast / OpenBLAS");
  ThreadPool pool(2);
  for (size_t i = 0; i < sets.size(); ++i) {
    MatrixSet one;
    one.owned.push_back(std::move(sets[i].owned[0]));
    one.packed.push_back(std::move(sets[i].packed[0]));
    sets[i] = MatrixSet();
    const Linear& w = one.owned[0]->linear;
    // The head at 512 tokens would take minutes in exact: time a 16384-row slice of it.
    if (w.out > 16384) {
      one.owned[0]->linear.out = 16384;
      auto p = kernels::PackLinear(one.owned[0]->linear, nullptr, g_fast == Numerics::kFastBf16);
      one.packed[0] = std::move(p).value();
    }
    const double flop = 2.0 * w.out * w.in * 512;
    const double exact = flop / TimeSet(one, false, 512, pool, 1) / 1e9;
    const double fast = flop / TimeSet(one, true, 512, pool, 3) / 1e9;
    std::printf("%-24s %5lldx%-5lld | %8.1f | %8.1f | %8.0f%% | %8.0f%% |", cases[i].what,
                (long long)w.out, (long long)w.in, exact, fast, 100 * fast / m.fma[2],
                100 * fast / m.bf16[2]);
#if V4_HAVE_OPENBLAS
    const double blas = flop / TimeSgemm(w, 512, 2) / 1e9;
    std::printf(" %8.1f GFLOP/s, %.2fx\n", blas, fast / blas);
#else
    std::printf(" (built without OpenBLAS: install libopenblas-dev and re-run cmake)\n");
#endif
  }
}

// ---- 3. model ----

std::unique_ptr<Model> LoadModel(const std::string& dir, Numerics n, int threads) {
  ModelOptions o;
  o.numerics = n;
  o.num_threads = threads;
  auto m = Model::Load(dir, o);
  if (!m.ok()) {
    std::fprintf(stderr, "%s\n", m.status().ToString().c_str());
    std::exit(1);
  }
  return std::move(m).value();
}

std::vector<int32_t> Tokens(int64_t n, int64_t vocab) {
  std::mt19937_64 rng(42);
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (auto& v : t) v = static_cast<int32_t>(rng() % static_cast<uint64_t>(vocab));
  return t;
}

struct DecodeRuns {
  double best = 0;             // tok/s, the best run
  std::vector<double> paired;  // per run: its weight GB/s over the bandwidth just before it
  // Over all runs: parallel regions per token, and the share of the wall time outside them
  // (one thread working, the others idle).
  double regions_per_token = 0, serial_share = 0, serial_ms_per_token = 0;
  double wait_ms_per_token = 0;  // the calling thread's waits at the ends of regions
  // The packed products' time and bytes by weight format over all runs, the runs' wall time
  // and their paired bandwidths' sum (GB/s).
  kernels::GemvProfile profile;
  double wall = 0, bw_sum = 0;
  int64_t tokens = 0;
  double MedianPaired() const {
    std::vector<double> v = paired;
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
  }
};

// Greedy decode after a 16-token prompt, `runs` runs of `steps` tokens. With a buffer, each
// run is paired with the read bandwidth measured just before it (best of five passes, on as
// many threads as the model): this VM's bandwidth drifts by up to 2x over minutes, so a decode
// run compared with section 1's figure, minutes earlier, can read 60% or 150% at the same
// speed.
DecodeRuns Decode(Model& m, int64_t steps, int runs, const ReadBuffer* rb, int threads) {
  auto cache = m.NewCache();
  std::vector<float> logits;
  auto prompt = Tokens(16, m.config().vocab_size);
  if (!m.Forward(*cache, prompt, false, &logits).ok()) std::exit(1);
  DecodeRuns out;
  std::unique_ptr<ThreadPool> probe;
  if (rb != nullptr) probe = std::make_unique<ThreadPool>(threads);
  const double bytes_per_token = static_cast<double>(m.DecodeWeightBytes());
  for (int run = 0; run < runs; ++run) {
    double bw = 0;
    if (probe != nullptr) {
      bw = Bandwidth(*probe, rb->floats(), rb->bytes / 4);
      // Past the probe's workers' spin (ThreadPool::kSpinMicros), so they sleep during the run.
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    m.pool()->ResetStats();
    kernels::SetGemvProfile(&out.profile);
    Stopwatch sw;
    for (int64_t i = 0; i < steps; ++i) {
      const int32_t next =
          static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
      if (!m.Forward(*cache, std::span<const int32_t>(&next, 1), false, &logits).ok()) {
        std::exit(1);
      }
    }
    const double wall = sw.ElapsedSeconds(), tps = steps / wall;
    kernels::SetGemvProfile(nullptr);
    out.wall += wall;
    out.bw_sum += bw;
    out.tokens += steps;
    const ThreadPool::Stats st = m.pool()->stats();
    out.regions_per_token += static_cast<double>(st.regions) / steps / runs;
    out.serial_share += (1 - st.region_seconds / wall) / runs;
    out.serial_ms_per_token += 1e3 * (wall - st.region_seconds) / steps / runs;
    out.wait_ms_per_token += 1e3 * st.wait_seconds / steps / runs;
    out.best = std::max(out.best, tps);
    if (bw > 0) out.paired.push_back(tps * bytes_per_token / 1e9 / bw);
  }
  return out;
}

// Aggregate tokens per second of decode steps of `batch` sequences at once (ForwardBatch,
// what a server's continuous batching runs), each after its own 16-token prompt: the better
// of two runs of `steps` steps.
double DecodeBatch(Model& m, int64_t batch, int64_t steps) {
  std::vector<std::unique_ptr<SequenceCache>> caches;
  std::vector<SequenceCache*> ptrs;
  std::vector<int32_t> next;
  std::vector<float> logits;
  for (int64_t b = 0; b < batch; ++b) {
    caches.push_back(m.NewCache());
    ptrs.push_back(caches.back().get());
    auto prompt = Tokens(16 + b, m.config().vocab_size);
    if (!m.Forward(*caches.back(), prompt, false, &logits).ok()) std::exit(1);
    next.push_back(
        static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin()));
  }
  const int64_t V = m.config().vocab_size;
  double best = 0;
  for (int run = 0; run < 2; ++run) {
    Stopwatch sw;
    for (int64_t i = 0; i < steps; ++i) {
      if (!m.ForwardBatch(ptrs, next, &logits).ok()) std::exit(1);
      for (int64_t b = 0; b < batch; ++b) {
        next[b] = static_cast<int32_t>(
            std::max_element(logits.begin() + b * V, logits.begin() + (b + 1) * V) -
            (logits.begin() + b * V));
      }
    }
    best = std::max(best, batch * steps / sw.ElapsedSeconds());
  }
  return best;
}

// Tokens per second of one prefill of `tokens` tokens: the better of two, each on a new cache.
double Prefill(Model& m, int64_t tokens) {
  auto t = Tokens(tokens, m.config().vocab_size);
  double best = 0;
  for (int run = 0; run < 2; ++run) {
    auto cache = m.NewCache();
    std::vector<float> logits;
    Stopwatch sw;
    if (!m.Forward(*cache, t, false, &logits).ok()) std::exit(1);
    best = std::max(best, tokens / sw.ElapsedSeconds());
  }
  return best;
}

void ModelFigures(const Machine& mach, const ReadBuffer& rb, const std::string& dir,
                  int64_t decode_tokens) {
  std::printf("\n== 3. Model %s\n", dir.c_str());
  DecodeRuns fast_decode[3];
  double exact_decode[3] = {};
  uint64_t bytes = 0, params = 0;
  for (int threads : {1, 2}) {
    auto fast = LoadModel(dir, g_fast, threads);
    bytes = fast->DecodeWeightBytes();
    params = fast->DecodeWeightParams();
    if (threads == 1) {
      std::printf(
          "fast = %s numerics: %.2f GiB repacked in %.1f s (%s, %d stream%s per thread); a "
          "decode token reads %.3f GB of weights, %.2f G multiply-adds\n",
          NumericsName(g_fast), fast->packed_bytes() / double(1 << 30), fast->pack_seconds(),
          g_fast == Numerics::kFastBf16 ? kernels::DotKernelName()
                                        : kernels::IsaName(kernels::ActiveIsa()),
          kernels::GemvTwoStreams() ? 2 : 1, kernels::GemvTwoStreams() ? "s" : "", bytes / 1e9,
          params / 1e9);
    }
    fast_decode[threads] = Decode(*fast, decode_tokens, 5, &rb, threads);
    if (threads == 2) {
      const double one = DecodeBatch(*fast, 1, 16);
      std::printf("decode of B sequences at once (ForwardBatch), 2 threads, aggregate:");
      for (int64_t b : {1, 2, 4, 8}) {
        const double r = b == 1 ? one : DecodeBatch(*fast, b, 16);
        std::printf(" B=%lld %.1f tok/s (%.2fx)%s", static_cast<long long>(b), r, r / one,
                    b == 8 ? "\n" : ",");
      }
      const double p512 = Prefill(*fast, 512);
      const double gflops = p512 * 2.0 * params / 1e9;
      std::printf(
          "prefill, one 512-token chunk, 2 threads: fast %.1f tok/s = %.0f GFLOP/s of "
          "matmuls (%.0f%% of fp32 FMA peak, %.0f%% of bf16 dot peak)\n",
          p512, gflops, 100 * gflops / mach.fma[2], 100 * gflops / mach.bf16[2]);
    }
    fast.reset();
    auto exact = LoadModel(dir, Numerics::kExact, threads);
    exact_decode[threads] =
        Decode(*exact, std::max<int64_t>(2, decode_tokens / 16), 3, nullptr, threads).best;
    if (threads == 2) {
      const double p64 = Prefill(*exact, 64);
      std::printf("prefill, exact numerics, one 64-token chunk, 2 threads: %.1f tok/s\n", p64);
    }
  }
  for (int threads : {1, 2}) {
    const DecodeRuns& d = fast_decode[threads];
    const double gbs = d.best * bytes / 1e9;
    std::printf(
        "decode, %d thread%s: fast %6.2f tok/s = %5.1f GB/s = %3.0f%% of section 1's read "
        "bandwidth | exact %5.2f tok/s (fast/exact %.1fx)\n",
        threads, threads == 1 ? " " : "s", d.best, gbs, 100 * gbs / mach.bw[threads],
        exact_decode[threads], d.best / exact_decode[threads]);
    std::printf("  each run over the bandwidth measured just before it: median %3.0f%% (runs",
                100 * d.MedianPaired());
    for (double r : d.paired) std::printf(" %.0f%%", 100 * r);
    std::printf(")\n");
    // Each format's products inside decode (their calls' wall time, waits included) against
    // the mean of the runs' paired bandwidths: which format falls short of the GEMV table.
    if (!d.paired.empty()) {
      const double bw = d.bw_sum / static_cast<double>(d.paired.size());
      double in_products = 0;
      std::printf("  by weight format, per token:");
      for (WeightFormat f :
           {WeightFormat::kBF16, WeightFormat::kFP8, WeightFormat::kFP4, WeightFormat::kF32}) {
        const size_t i = static_cast<size_t>(f);
        if (d.profile.calls[i] == 0) continue;
        const double s = d.profile.seconds[i], gbs = d.profile.bytes[i] / s / 1e9;
        in_products += s;
        std::printf(" %s %.1f ms, %.0f MB, %.1f GB/s (%.0f%%);", FormatName(f), 1e3 * s / d.tokens,
                    d.profile.bytes[i] / 1e6 / d.tokens, gbs, 100 * gbs / bw);
      }
      std::printf(
          " outside products %.1f ms (means over the runs, against their mean paired "
          "bandwidth %.1f GB/s)\n",
          1e3 * (d.wall - in_products) / d.tokens, bw);
    }
    if (threads > 1) {
      std::printf(
          "  %.0f parallel regions per token; %.2f ms per token (%.1f%% of the time) outside "
          "them, one thread working alone; the calling thread waited %.2f ms per token at "
          "region ends for the others' last ranges (means of the runs)\n",
          d.regions_per_token, d.serial_ms_per_token, 100 * d.serial_share, d.wait_ms_per_token);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  setvbuf(stdout, nullptr, _IOLBF, 0);
  std::string model;
  bool kernels_section = true;
  int64_t decode_tokens = 32;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--model" && i + 1 < argc) {
      model = argv[++i];
    } else if (a == "--no-kernels") {
      kernels_section = false;
    } else if (a == "--decode-tokens" && i + 1 < argc) {
      decode_tokens = std::atoll(argv[++i]);
    } else if (a == "--numerics" && i + 1 < argc) {
      auto n = ParseNumerics(argv[++i]);
      if (!n.ok() || *n == Numerics::kExact) {
        std::fprintf(stderr, "--numerics: expected fast or fast-bf16, got '%s'\n", argv[i]);
        return 2;
      }
      g_fast = *n;
    } else if (a == "--streams" && i + 1 < argc) {
      // What the one-token GEMV's second memory stream is worth: 1 reads one group at a time.
      const std::string s = argv[++i];
      if (s != "1" && s != "2") {
        std::fprintf(stderr, "--streams: expected 1 or 2, got '%s'\n", s.c_str());
        return 2;
      }
      kernels::SetGemvTwoStreams(s == "2");
    } else if (a == "--isa" && i + 1 < argc) {
      // The fallbacks' speed on this machine: what a CPU without AVX-512 gets.
      const std::string isa = argv[++i];
      if (isa == "avx512") {
        kernels::ForceIsa(kernels::Isa::kAvx512);
      } else if (isa == "avx2") {
        kernels::ForceIsa(kernels::Isa::kAvx2);
      } else if (isa == "scalar") {
        kernels::ForceIsa(kernels::Isa::kScalar);
      } else if (isa != "best") {
        std::fprintf(stderr, "--isa: expected best, avx512, avx2 or scalar, got '%s'\n",
                     isa.c_str());
        return 2;
      }
    } else {
      std::fprintf(stderr,
                   "usage: bench_kernels [--model DIR] [--no-kernels] [--decode-tokens N] "
                   "[--isa best|avx512|avx2|scalar] [--streams 1|2] [--numerics fast|fast-bf16]\n");
      return 2;
    }
  }
  const ReadBuffer rb;
  const Machine m = MeasureMachine(rb);
  if (kernels_section) Kernels(m);
  if (!model.empty()) ModelFigures(m, rb, model, decode_tokens);
  return 0;
}
