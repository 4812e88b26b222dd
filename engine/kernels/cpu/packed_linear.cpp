#include "engine/kernels/cpu/packed_linear.h"

#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

#include "common/check.h"
#include "common/strings.h"
#include "engine/quant/codecs.h"

namespace v4agent::engine::kernels {

namespace {
constexpr size_t kHugePage = size_t{2} << 20;
}

// Large buffers come from mmap in whole 2 MiB pages with transparent huge pages requested:
// the kernels stream them, and 4 KiB pages cost a TLB miss every 4 KiB and a page fault each
// at load. mmap's pages are already zero (the padding rows must be).
AlignedBytes::AlignedBytes(size_t n) : n_(n) {
  if (n >= kHugePage) {
    mapped_ = (n + kHugePage - 1) / kHugePage * kHugePage;
    // Over-map by one huge page so the start can be aligned to one.
    void* raw = mmap(nullptr, mapped_ + kHugePage, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    V4_CHECK(raw != MAP_FAILED) << "mmap of " << n << " bytes: " << std::strerror(errno);
    const uintptr_t start =
        (reinterpret_cast<uintptr_t>(raw) + kHugePage - 1) / kHugePage * kHugePage;
    const size_t head = start - reinterpret_cast<uintptr_t>(raw);
    if (head > 0) munmap(raw, head);
    const size_t tail = kHugePage - head;
    if (tail > 0) munmap(reinterpret_cast<uint8_t*>(start) + mapped_, tail);
    madvise(reinterpret_cast<void*>(start), mapped_, MADV_HUGEPAGE);
    p_.reset(reinterpret_cast<uint8_t*>(start));
    p_.get_deleter().mapped = mapped_;
    return;
  }
  const size_t rounded = (n + 63) / 64 * 64;
  p_.reset(static_cast<uint8_t*>(std::aligned_alloc(64, rounded == 0 ? 64 : rounded)));
  std::memset(p_.get(), 0, rounded == 0 ? 64 : rounded);
}

void AlignedBytes::Free::operator()(uint8_t* p) const {
  if (mapped > 0) {
    munmap(p, mapped);
  } else {
    std::free(p);
  }
}

namespace {

// The value a fast kernel gives the e4m3 byte before its multiplier: the magnitude bits as
// the exponent and mantissa of a float (2^-120 times the e4m3 value, exactly, subnormals
// included) with the sign on top.
float Fp8Raw(uint8_t b) {
  const uint32_t bits =
      (static_cast<uint32_t>(b & 0x7F) << 20) | (static_cast<uint32_t>(b & 0x80) << 24);
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

float Ue8m0Bits(uint8_t e) {
  const uint32_t bits = static_cast<uint32_t>(e) << 23;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

}  // namespace

int64_t PackedLinear::steps() const {
  if (bf16_dot && format == WeightFormat::kFP8) return (in + 3) / 4;
  if (bf16_dot && format == WeightFormat::kFP4) return in / 8;
  return format == WeightFormat::kFP8 || format == WeightFormat::kF32 ? in : in_pairs();
}

int64_t PackedLinear::step_bytes() const {
  if (bf16_dot) return kTileRows * 4;
  return format == WeightFormat::kFP8 || format == WeightFormat::kFP4 ? kTileRows : kTileRows * 4;
}

const uint8_t* PackedLinear::CodeByte(int64_t t, int64_t j, int64_t k, int* shift) const {
  const uint8_t* tile = TileData(t);
  const int64_t stride = StepStride(t);
  *shift = 0;
  if (format == WeightFormat::kFP8) {
    if (!bf16_dot) return tile + k * stride + j;
    const int64_t kk = k % 4;
    return tile + (k / 4) * stride + 4 * j + 2 * (kk % 2) + kk / 2;
  }
  // FP4
  if (!bf16_dot) {
    *shift = k % 2 == 0 ? 0 : 4;
    return tile + (k / 2) * stride + j;
  }
  const int64_t kk = k % 8, q = kk / 2, h = kk % 2;
  *shift = q % 2 == 0 ? 0 : 4;
  return tile + (k / 8) * stride + 4 * j + 2 * h + q / 2;
}

int64_t PackedLinear::GroupTiles(int64_t t) const {
  return std::min(kGroupTiles, tiles - t / kGroupTiles * kGroupTiles);
}

const uint8_t* PackedLinear::TileData(int64_t t) const {
  return data.data() + (t / kGroupTiles) * kGroupTiles * steps() * step_bytes() +
         (t % kGroupTiles) * step_bytes();
}

const uint8_t* PackedLinear::TileScales(int64_t t) const {
  return scales.data() + (t / kGroupTiles) * kGroupTiles * (in / kFp4Block) * kTileRows +
         (t % kGroupTiles) * kTileRows;
}

void PackedLinear::DequantRow(int64_t r, float* dst) const {
  const int64_t t = r / kTileRows, j = r % kTileRows;
  const uint8_t* tile = TileData(t);
  const int64_t stride = StepStride(t);
  switch (format) {
    case WeightFormat::kFP8: {
      const float* mult = reinterpret_cast<const float*>(scales.data()) + t * k_blocks();
      int shift;
      for (int64_t k = 0; k < in; ++k) {
        dst[k] = Fp8Raw(*CodeByte(t, j, k, &shift)) * mult[k / kFp8Block];
      }
      break;
    }
    case WeightFormat::kFP4: {
      const uint8_t* sc = TileScales(t);
      int shift;
      for (int64_t k = 0; k < in; ++k) {
        const uint8_t code = (*CodeByte(t, j, k, &shift) >> shift) & 0xF;
        dst[k] = quant::E2M1ToFloat(code) * Ue8m0Bits(sc[(k / kFp4Block) * ScaleStride(t) + j]);
      }
      break;
    }
    case WeightFormat::kBF16:
      for (int64_t k = 0; k < in; ++k) {
        uint16_t v;
        std::memcpy(&v, tile + (k / 2) * stride + (j * 2 + k % 2) * 2, 2);
        dst[k] = quant::Bf16ToFloat(v);
      }
      break;
    case WeightFormat::kF32:
      for (int64_t k = 0; k < in; ++k) std::memcpy(dst + k, tile + k * stride + j * 4, 4);
      break;
  }
}

namespace {

// Fills tiles [t0, t1) of `p` from `w`, tile by tile so the writes are sequential. Returns the
// first malformed value found, naming the tensor.
Status PackTiles(const Linear& w, PackedLinear& p, int64_t t0, int64_t t1) {
  const int64_t in = w.in;
  for (int64_t t = t0; t < t1; ++t) {
    const int64_t rows = std::min(kTileRows, w.out - t * kTileRows);
    uint8_t* tile = p.TileData(t);
    const int64_t stride = p.StepStride(t);
    switch (w.format) {
      case WeightFormat::kFP8:
        for (int64_t j = 0; j < rows; ++j) {
          const uint8_t* src = w.data + (t * kTileRows + j) * in;
          for (int64_t k = 0; k < in; ++k) {
            if ((src[k] & 0x7F) == 0x7F) {
              return InvalidArgumentError(
                  StrCat(w.name, ": e4m3 NaN byte at row ", t * kTileRows + j, ", column ", k));
            }
          }
          if (!p.bf16_dot) {
            for (int64_t k = 0; k < in; ++k) tile[k * stride + j] = src[k];
            continue;
          }
          // Four columns per step: byte 4j + 2 (kk % 2) + kk / 2 holds column 4s + kk.
          for (int64_t k = 0; k < in; ++k) {
            tile[(k / 4) * stride + 4 * j + 2 * (k % 2) + (k % 4) / 2] = src[k];
          }
        }
        break;
      case WeightFormat::kFP4: {
        const int64_t pairs = in / 2, blocks = in / kFp4Block;
        uint8_t* sdst = p.TileScales(t);
        const int64_t sstride = p.ScaleStride(t);
        for (int64_t j = 0; j < rows; ++j) {
          const uint8_t* src = w.data + (t * kTileRows + j) * pairs;
          if (!p.bf16_dot) {
            for (int64_t c = 0; c < pairs; ++c) tile[c * stride + j] = src[c];
          } else {
            // Eight columns (four source bytes) per step: word 2j + h holds columns
            // 8s + 2q + h in nibble q.
            for (int64_t st = 0; st < in / 8; ++st) {
              const uint8_t* b = src + 4 * st;
              uint8_t* d = tile + st * stride + 4 * j;
              d[0] = static_cast<uint8_t>((b[0] & 0xF) | (b[1] << 4));
              d[1] = static_cast<uint8_t>((b[2] & 0xF) | (b[3] << 4));
              d[2] = static_cast<uint8_t>((b[0] >> 4) | (b[1] & 0xF0));
              d[3] = static_cast<uint8_t>((b[2] >> 4) | (b[3] & 0xF0));
            }
          }
          const uint8_t* ssrc = w.scale + (t * kTileRows + j) * blocks;
          for (int64_t b = 0; b < blocks; ++b) sdst[b * sstride + j] = ssrc[b];
        }
        break;
      }
      case WeightFormat::kBF16:
        for (int64_t j = 0; j < rows; ++j) {
          const uint8_t* src = w.data + (t * kTileRows + j) * in * 2;  // any alignment
          for (int64_t k = 0; k < in; ++k) {
            std::memcpy(tile + (k / 2) * stride + (j * 2 + k % 2) * 2, src + 2 * k, 2);
          }
        }
        break;
      case WeightFormat::kF32:
        for (int64_t j = 0; j < rows; ++j) {
          const uint8_t* src = w.data + (t * kTileRows + j) * in * 4;
          for (int64_t k = 0; k < in; ++k) std::memcpy(tile + k * stride + j * 4, src + 4 * k, 4);
        }
        break;
    }
  }
  return Status::Ok();
}

}  // namespace

Result<PackedLinear> PackLinear(const Linear& w, ThreadPool* pool, bool bf16_dot) {
  PackedLinear p;
  p.format = w.format;
  p.bf16_dot = bf16_dot && w.format != WeightFormat::kF32;
  p.out = w.out;
  p.in = w.in;
  p.tiles = (w.out + kTileRows - 1) / kTileRows;
  const int64_t rows = p.tiles * kTileRows;
  switch (w.format) {
    case WeightFormat::kFP8: {
      p.data = AlignedBytes(static_cast<size_t>(rows * p.steps() * p.step_bytes() / kTileRows));
      p.scales = AlignedBytes(static_cast<size_t>(p.tiles * p.k_blocks()) * sizeof(float));
      const int64_t scale_cols = p.k_blocks();
      float* mult = reinterpret_cast<float*>(p.scales.data());
      for (int64_t t = 0; t < p.tiles; ++t) {
        const int64_t row_block = t * kTileRows / kFp8Block;
        for (int64_t kb = 0; kb < scale_cols; ++kb) {
          const uint8_t s = w.scale[row_block * scale_cols + kb];
          if (s > 127 + 7) {
            return InvalidArgumentError(StrCat(w.name, ": the FP8 scale 2^", int(s) - 127,
                                               " at block (", row_block, ", ", kb,
                                               ") is beyond what the fast kernels represent"));
          }
          mult[t * scale_cols + kb] = std::ldexp(1.0f, static_cast<int>(s) - 127 + 120);
        }
      }
      break;
    }
    case WeightFormat::kFP4:
      if (w.in % kFp4Block != 0) {
        return InvalidArgumentError(
            StrCat(w.name, ": FP4 input width ", w.in, " is not a multiple of 32"));
      }
      p.data = AlignedBytes(static_cast<size_t>(rows * p.steps() * p.step_bytes() / kTileRows));
      p.scales = AlignedBytes(static_cast<size_t>(rows * (w.in / kFp4Block)));
      break;
    case WeightFormat::kBF16:
      p.data = AlignedBytes(static_cast<size_t>(rows * p.in_pairs()) * 4);
      break;
    case WeightFormat::kF32:
      p.data = AlignedBytes(static_cast<size_t>(rows * w.in) * 4);
      break;
  }
  if (pool == nullptr || pool->num_threads() == 1 || p.tiles < 64) {
    V4_RETURN_IF_ERROR(PackTiles(w, p, 0, p.tiles));
    return p;
  }
  // Whole groups per thread: their tiles share cache lines.
  const int64_t groups = (p.tiles + kGroupTiles - 1) / kGroupTiles;
  Status first_error;
  size_t first_begin = static_cast<size_t>(groups);
  std::mutex mu;
  pool->ParallelFor(static_cast<size_t>(groups), 2, [&](size_t b, size_t e) {
    Status s = PackTiles(w, p, static_cast<int64_t>(b) * kGroupTiles,
                         std::min(p.tiles, static_cast<int64_t>(e) * kGroupTiles));
    std::lock_guard<std::mutex> lock(mu);
    // The error of the lowest tile wins, so the message does not depend on how the ranges
    // were split or which thread finished first.
    if (!s.ok() && b < first_begin) {
      first_begin = b;
      first_error = s;
    }
  });
  V4_RETURN_IF_ERROR(first_error);
  return p;
}

}  // namespace v4agent::engine::kernels
