#include "engine/kernels/cpu/packed_matmul.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <vector>

#include "common/check.h"
#include "engine/kernels/cpu/packed_matmul_dot.h"
#include "engine/quant/codecs.h"

namespace v4agent::engine::kernels {
namespace {

std::atomic<int> g_forced{-1};
std::atomic<bool> g_two_streams{true};
std::atomic<GemvProfile*> g_profile{nullptr};

// Times one call for the profile, if any: charged on destruction to `format`.
class ProfileScope {
 public:
  ProfileScope() : profile_(g_profile.load(std::memory_order_relaxed)) {
    if (profile_ != nullptr) start_ = std::chrono::steady_clock::now();
  }
  void Add(WeightFormat format, uint64_t bytes) {
    if (profile_ == nullptr) return;
    const size_t f = static_cast<size_t>(format);
    format_bytes_[f] += bytes;
    if (format_bytes_[f] > format_bytes_[main_]) main_ = f;
  }
  ~ProfileScope() {
    if (profile_ == nullptr) return;
    const auto end = std::chrono::steady_clock::now();
    profile_->seconds[main_] += std::chrono::duration<double>(end - start_).count();
    for (size_t f = 0; f < 4; ++f) profile_->bytes[main_] += format_bytes_[f];
    ++profile_->calls[main_];
  }

 private:
  GemvProfile* profile_;
  std::chrono::steady_clock::time_point start_;
  uint64_t format_bytes_[4] = {};
  size_t main_ = 0;
};

}  // namespace

const char* IsaName(Isa isa) {
  switch (isa) {
    case Isa::kScalar:
      return "scalar";
    case Isa::kAvx2:
      return "avx2";
    case Isa::kAvx512:
      return "avx512";
    case Isa::kAvx512Vbmi:
      return "avx512-vbmi";
  }
  return "?";
}

Isa DetectIsa() {
  static const Isa best = [] {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq")) {
      return __builtin_cpu_supports("avx512vbmi") && __builtin_cpu_supports("gfni")
                 ? Isa::kAvx512Vbmi
                 : Isa::kAvx512;
    }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::kAvx2;
    return Isa::kScalar;
  }();
  return best;
}

Isa ActiveIsa() {
  const int f = g_forced.load(std::memory_order_relaxed);
  return f < 0 ? DetectIsa() : static_cast<Isa>(f);
}

void ForceIsa(Isa isa) {
  g_forced.store(static_cast<int>(std::min(isa, DetectIsa())), std::memory_order_relaxed);
}

void SetGemvProfile(GemvProfile* profile) { g_profile.store(profile, std::memory_order_relaxed); }

void SetGemvTwoStreams(bool on) { g_two_streams.store(on, std::memory_order_relaxed); }
bool GemvTwoStreams() { return g_two_streams.load(std::memory_order_relaxed); }

// The oracle the vector kernels must match bit for bit: each tile's weights as fp32 (FP4: the
// e2m1 values and the block scales apart), then for each token and row the sums in the order
// packed_linear.h fixes.
void RunTilesScalar(const TileJob& job) {
  const PackedLinear& w = *job.w;
  const int64_t in = w.in;
  const bool fp4 = w.format == WeightFormat::kFP4;
  std::vector<float> row(static_cast<size_t>(in));
  std::vector<float> tile(static_cast<size_t>(in * kTileRows));
  std::vector<float> scale(fp4 ? static_cast<size_t>(in / kFp4Block * kTileRows) : 0);
  for (int64_t t = job.tile_begin; t < job.tile_end; ++t) {
    for (int64_t j = 0; j < kTileRows; ++j) {
      if (fp4) {
        const uint8_t* codes = w.TileData(t);
        const uint8_t* sc = w.TileScales(t);
        for (int64_t k = 0; k < in; ++k) {
          const uint8_t byte = codes[(k / 2) * w.StepStride(t) + j];
          tile[k * kTileRows + j] = quant::E2M1ToFloat(k % 2 == 0 ? byte & 0xF : byte >> 4);
        }
        for (int64_t b = 0; b < in / kFp4Block; ++b) {
          const uint8_t e = sc[b * w.ScaleStride(t) + j];
          scale[b * kTileRows + j] = e == 0 ? 0.0f : std::ldexp(1.0f, e - 127);
        }
      } else {
        w.DequantRow(t * kTileRows + j, row.data());
        for (int64_t k = 0; k < in; ++k) tile[k * kTileRows + j] = row[k];
      }
    }
    for (int64_t tok = 0; tok < job.tokens; ++tok) {
      const float* x = job.x + tok * job.x_stride;
      for (int64_t j = 0; j < kTileRows; ++j) {
        const int64_t r = t * kTileRows + j;
        if (r >= job.row_end) break;
        float acc = 0;
        if (fp4) {
          for (int64_t b = 0; b < in / kFp4Block; ++b) {
            float p = 0;
            for (int64_t k = b * kFp4Block; k < (b + 1) * kFp4Block; ++k) {
              p = std::fma(tile[k * kTileRows + j], x[k], p);
            }
            acc = std::fma(p, scale[b * kTileRows + j], acc);
          }
        } else {
          for (int64_t k = 0; k < in; ++k) acc = std::fma(tile[k * kTileRows + j], x[k], acc);
        }
        job.y[tok * job.y_stride + (r - job.row_origin)] = acc;
      }
    }
  }
}

namespace {

void RunTiles(Isa isa, const TileJob& job) {
  if (job.w->bf16_dot) {
    return isa >= Isa::kAvx512 && HasAvx512Bf16() ? RunTilesDotAvx512(job) : RunTilesDotScalar(job);
  }
  switch (isa) {
    case Isa::kAvx512Vbmi:
      return RunTilesAvx512Vbmi(job);
    case Isa::kAvx512:
      return RunTilesAvx512(job);
    case Isa::kAvx2:
      return RunTilesAvx2(job);
    case Isa::kScalar:
      return RunTilesScalar(job);
  }
}

// Threads take whole units of groups. With one token a unit is two groups, so that a thread's
// share can always be read as two streams (GemvTiles); with more tokens the tile kernels take
// one group at a time and a unit is one group.
int64_t UnitGroups(bool one_token) { return one_token ? 2 : 1; }

}  // namespace

void PackedMatMulBatch(const PackedProduct* products, int64_t count, ThreadPool* pool) {
  // Product i's tiles, and its units of groups (groups counted from tile 0, as in
  // PackedMatMul) numbered [first[i], first[i + 1]) across all products.
  struct Span {
    int64_t row_begin, row_end, tile_begin, tile_end, group_begin;
  };
  const int64_t unit = UnitGroups(std::all_of(
      products, products + count, [](const PackedProduct& p) { return p.tokens == 1; }));
  ProfileScope profile;
  std::vector<Span> spans(static_cast<size_t>(count));
  std::vector<int64_t> first(static_cast<size_t>(count + 1), 0);
  int64_t macs = 0;
  for (int64_t i = 0; i < count; ++i) {
    const PackedProduct& p = products[i];
    Span& s = spans[i];
    s.row_begin = p.row_begin;
    s.row_end = p.row_end < 0 ? p.w->out : p.row_end;
    V4_CHECK(s.row_begin % kTileRows == 0 && s.row_begin <= s.row_end && s.row_end <= p.w->out);
    s.tile_begin = s.row_begin / kTileRows;
    s.tile_end = (s.row_end + kTileRows - 1) / kTileRows;
    s.group_begin = s.tile_begin / kGroupTiles;
    const int64_t group_end = (s.tile_end + kGroupTiles - 1) / kGroupTiles;
    const int64_t groups = s.tile_end > s.tile_begin ? group_end - s.group_begin : 0;
    first[i + 1] = first[i] + (groups + unit - 1) / unit;
    macs += (s.row_end - s.row_begin) * p.w->in * p.tokens;
    profile.Add(p.w->format, p.w->Bytes() * static_cast<uint64_t>(s.row_end - s.row_begin) /
                                 static_cast<uint64_t>(p.w->out));
  }
  const Isa isa = ActiveIsa();
  auto run = [&](size_t b, size_t e) {
    for (int64_t i = 0; i < count; ++i) {
      const int64_t gb = std::max<int64_t>(static_cast<int64_t>(b), first[i]) - first[i];
      const int64_t ge = std::min<int64_t>(static_cast<int64_t>(e), first[i + 1]) - first[i];
      if (gb >= ge) continue;
      const PackedProduct& p = products[i];
      const Span& s = spans[i];
      const PackedLinear& w = *p.w;
      RunTiles(isa, TileJob{&w, std::max(s.tile_begin, (s.group_begin + gb * unit) * kGroupTiles),
                            std::min(s.tile_end, (s.group_begin + ge * unit) * kGroupTiles),
                            s.row_end, s.row_begin, p.x, p.x_stride > 0 ? p.x_stride : w.in,
                            p.tokens, p.y, p.y_stride > 0 ? p.y_stride : s.row_end - s.row_begin});
    }
  };
  const size_t total = static_cast<size_t>(first[count]);
  if (pool == nullptr || pool->num_threads() == 1 || total < 2 || macs < (1 << 17)) {
    run(0, total);
  } else {
    pool->ParallelFor(total, 1, run);
  }
}

void PackedMatMul(const PackedLinear& w, int64_t row_begin, int64_t row_end, const float* x,
                  int64_t x_stride, int64_t tokens, float* y, int64_t y_stride, ThreadPool* pool) {
  V4_CHECK(row_begin % kTileRows == 0 && row_begin <= row_end && row_end <= w.out);
  const int64_t tile_begin = row_begin / kTileRows;
  const int64_t tile_end = (row_end + kTileRows - 1) / kTileRows;
  const Isa isa = ActiveIsa();
  // Threads take whole groups of kGroupTiles tiles (counted from tile 0, as the packed
  // layout interleaves them), so no cache line of a group's stream is read by two threads.
  ProfileScope profile;
  profile.Add(w.format, w.Bytes() * static_cast<uint64_t>(row_end - row_begin) /
                            static_cast<uint64_t>(w.out));
  const int64_t group_begin = tile_begin / kGroupTiles;
  const int64_t unit = UnitGroups(tokens == 1);
  auto run = [&](size_t b, size_t e) {
    TileJob job{&w,
                std::max(tile_begin, (group_begin + static_cast<int64_t>(b) * unit) * kGroupTiles),
                std::min(tile_end, (group_begin + static_cast<int64_t>(e) * unit) * kGroupTiles),
                row_end,
                row_begin,
                x,
                x_stride,
                tokens,
                y,
                y_stride};
    RunTiles(isa, job);
  };
  const int64_t tiles = tile_end - tile_begin;
  // Waking the other threads costs microseconds: split only work that dwarfs that.
  const int64_t macs = tiles * kTileRows * w.in * tokens;
  const int64_t groups = (tile_end + kGroupTiles - 1) / kGroupTiles - group_begin;
  const size_t units = static_cast<size_t>((groups + unit - 1) / unit);
  if (pool == nullptr || pool->num_threads() == 1 || tiles < 2 || macs < (1 << 17)) {
    run(0, units);
  } else {
    pool->ParallelFor(units, 1, run);
  }
}

}  // namespace v4agent::engine::kernels
