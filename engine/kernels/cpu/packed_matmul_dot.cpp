#include "engine/kernels/cpu/packed_matmul_dot.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <vector>

#include "engine/kernels/cpu/scratch.h"
#include "engine/quant/codecs.h"

namespace v4agent::engine::kernels {
namespace {

// What `vdpbf16ps` does to a value below the normal range, in and out.
float Ftz(float f) { return std::fpclassify(f) == FP_SUBNORMAL ? 0.0f : f; }

// Step 3 of the header.
float Dot(float c, float v0, float a0, float v1, float a1) {
  c = Ftz(c + Ftz(v1) * Ftz(a1));
  return Ftz(c + Ftz(v0) * Ftz(a0));
}

// Step 2: the weight of tile t's row j, column k, as the bf16 the kernel multiplies.
float DotWeight(const PackedLinear& w, int64_t t, int64_t j, int64_t k) {
  if (k >= w.in) return 0.0f;
  int shift;
  switch (w.format) {
    case WeightFormat::kFP8: {
      const uint8_t b = *w.CodeByte(t, j, k, &shift);
      return std::bit_cast<float>((static_cast<uint32_t>(b & 0x7F) << 20) |
                                  (static_cast<uint32_t>(b & 0x80) << 24));
    }
    case WeightFormat::kFP4:
      return quant::E2M1ToFloat((*w.CodeByte(t, j, k, &shift) >> shift) & 0xF);
    case WeightFormat::kBF16: {
      uint16_t v;
      std::memcpy(&v, w.TileData(t) + (k / 2) * w.StepStride(t) + (j * 2 + k % 2) * 2, 2);
      return quant::Bf16ToFloat(v);
    }
    case WeightFormat::kF32:
      break;
  }
  return 0.0f;
}

int64_t PaddedPairs(const PackedLinear& w) {
  switch (w.format) {
    case WeightFormat::kFP8:
      return w.steps() * 2;
    case WeightFormat::kFP4:
      return w.steps() * 4;
    default:
      return w.steps();
  }
}

}  // namespace

int64_t DotPairsStride(const PackedLinear& w) { return (PaddedPairs(w) + 15) / 16 * 16; }

bool HasAvx512Bf16() {
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512bf16");
  }();
  return has;
}

const char* DotKernelName() {
  return HasAvx512Bf16() && ActiveIsa() >= Isa::kAvx512
             ? "avx512-bf16"
             : "scalar emulation: this CPU has no AVX-512 BF16, use --numerics fast";
}

int DotShift(float amax, WeightFormat format) {
  if (!(amax > 0) || !std::isfinite(amax)) return 0;
  const int target = format == WeightFormat::kFP8 ? 100 : 0;
  const int s = target - std::ilogb(amax);
  return s < -126 ? -126 : (s > 126 ? 126 : s);
}

uint16_t Bf16Rne(float x) {
  uint32_t u = std::bit_cast<uint32_t>(x);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((u >> 16) | 0x40);  // NaN
  u += 0x7FFFu + ((u >> 16) & 1);
  return static_cast<uint16_t>(u >> 16);
}

DotActivations PrepareDotActivations(const TileJob& job) {
  const PackedLinear& w = *job.w;
  const int64_t stride = DotPairsStride(w);
  float* scratch = ScratchFloats(static_cast<size_t>(job.tokens * (stride + 1)));
  uint32_t* pairs = reinterpret_cast<uint32_t*>(scratch);
  float* unscale = scratch + job.tokens * stride;
  for (int64_t i = 0; i < job.tokens; ++i) {
    const float* x = job.x + i * job.x_stride;
    float amax = 0;
    for (int64_t k = 0; k < w.in; ++k) {
      const float a = std::fabs(x[k]);
      amax = a > amax ? a : amax;
    }
    const int s = DotShift(amax, w.format);
    const float up = std::ldexp(1.0f, s);
    unscale[i] = std::ldexp(1.0f, -s);
    uint32_t* dst = pairs + i * stride;
    for (int64_t p = 0; p < stride; ++p) {
      const int64_t k = 2 * p;
      const uint32_t lo = k < w.in ? Bf16Rne(x[k] * up) : 0;
      const uint32_t hi = k + 1 < w.in ? Bf16Rne(x[k + 1] * up) : 0;
      dst[p] = lo | (hi << 16);
    }
  }
  return {pairs, stride, unscale};
}

// The oracle: the header's definition, one output at a time.
void RunTilesDotScalar(const TileJob& job) {
  const PackedLinear& w = *job.w;
  const DotActivations act = PrepareDotActivations(job);
  const int64_t pairs = PaddedPairs(w);
  const int64_t block_pairs = w.format == WeightFormat::kFP8   ? kFp8Block / 2
                              : w.format == WeightFormat::kFP4 ? kFp4Block / 2
                                                               : pairs;
  std::vector<float> v(static_cast<size_t>(pairs * 2));
  for (int64_t t = job.tile_begin; t < job.tile_end; ++t) {
    for (int64_t j = 0; j < kTileRows; ++j) {
      const int64_t r = t * kTileRows + j;
      if (r >= job.row_end) break;
      for (int64_t k = 0; k < pairs * 2; ++k) v[k] = DotWeight(w, t, j, k);
      for (int64_t i = 0; i < job.tokens; ++i) {
        const uint32_t* a = act.pairs + i * act.stride;
        float acc = 0;
        for (int64_t b = 0; b * block_pairs < pairs; ++b) {
          float p = 0;
          for (int64_t q = b * block_pairs; q < (b + 1) * block_pairs && q < pairs; ++q) {
            p = Dot(p, v[2 * q], std::bit_cast<float>(a[q] << 16), v[2 * q + 1],
                    std::bit_cast<float>(a[q] & 0xFFFF0000u));
          }
          switch (w.format) {
            case WeightFormat::kFP8:
              acc = std::fma(
                  p, reinterpret_cast<const float*>(w.scales.data())[t * w.k_blocks() + b], acc);
              break;
            case WeightFormat::kFP4: {
              const uint8_t e = w.TileScales(t)[b * w.ScaleStride(t) + j];
              acc = std::fma(p, std::bit_cast<float>(static_cast<uint32_t>(e) << 23), acc);
              break;
            }
            default:
              acc = p;
          }
        }
        job.y[i * job.y_stride + (r - job.row_origin)] = acc * act.unscale[i];
      }
    }
  }
}

}  // namespace v4agent::engine::kernels
