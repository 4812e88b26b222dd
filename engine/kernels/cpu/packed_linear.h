// PackedLinear: a [out, in] checkpoint matrix repacked once at load for the "fast" kernels,
// still in its checkpoint format (FP8 e4m3 bytes, packed FP4 nibbles, bf16, f32; never widened
// to fp32): rows in tiles of 16, and for each k the tile's 16 weights together, so a kernel
// computes 16 outputs at once, one vector lane per row. The tiles of a group of 8 (128 rows,
// one FP8 scale block) are interleaved step by step (a step is one k, or a pair of k for BF16
// and FP4), so a one-token GEMV over a group reads one contiguous stream instead of eight.
// Scales sit beside the tiles: FP8 one multiplier per (tile, 128-column block), FP4 one UE8M0
// byte per (row, 32 columns), interleaved like the weights. Rows past `out` are zero padding.
//
// The order of the sums (fixed per format, whatever the number of tokens computed together,
// the tile grouping, the thread count or the instruction set, so that one-token decode and a
// prefill of many tokens give bit-identical results, as the cache promises):
// - FP8, BF16, F32: acc = fma(w[o][k], x[k], acc) for k in increasing order;
// - FP4: per 32-column block b, p = fma(code[o][k], x[k], p) over its k in increasing order
//   from p = 0, then acc = fma(p, 2^scale[o][b], acc) (the scale, a power of two, is applied
//   once per block; code is the e2m1 value).
// Every product is exact in fp32 before its one rounding, as in the "exact" numerics; only
// the order of the additions differs from it.
//
// The "bf16 dot" layout (`bf16_dot`, the fast-bf16 numerics of packed_matmul_dot.h) keeps the
// same tiles, groups and scales but makes a step one 64-byte vector per tile whose 32-bit lane
// j holds row j's weights for consecutive pairs of k, as `vdpbf16ps` takes them:
// - FP8: a step is 4 k. Byte 4j + o holds row j's k = 4s + kk with o = 2 (kk % 2) + kk / 2, so
//   the low bytes of the lane's two 16-bit words are the pair (4s, 4s + 1) and the high bytes
//   the pair (4s + 2, 4s + 3).
// - FP4: a step is 8 k. Nibble q of 16-bit word 2j + h holds row j's k = 8s + 2q + h, so the
//   words' nibble q of lane j is the pair (8s + 2q, 8s + 2q + 1).
// - BF16: the layout above (a step already is one pair per lane). F32 is never bf16_dot.
#pragma once

#include <cstdint>
#include <memory>
#include <utility>

#include "common/status.h"
#include "common/thread_pool.h"
#include "engine/weights/weights.h"

namespace v4agent::engine::kernels {

constexpr int64_t kTileRows = 16;
constexpr int64_t kGroupTiles = 8;
constexpr int64_t kFp8Block = 128;
constexpr int64_t kFp4Block = 32;

// 64-byte aligned, zero-filled bytes (2 MiB pages for large buffers).
class AlignedBytes {
 public:
  AlignedBytes() = default;
  explicit AlignedBytes(size_t n);
  uint8_t* data() { return p_.get(); }
  const uint8_t* data() const { return p_.get(); }
  size_t size() const { return n_; }

 private:
  struct Free {
    Free() : mapped(0) {}
    size_t mapped;  // mmap'ed length, or 0 for the heap
    void operator()(uint8_t* p) const;
  };
  std::unique_ptr<uint8_t, Free> p_;
  size_t n_ = 0;
  size_t mapped_ = 0;
};

struct PackedLinear {
  WeightFormat format = WeightFormat::kBF16;
  bool bf16_dot = false;  // the layout for packed_matmul_dot.h (never for F32)
  int64_t out = 0, in = 0;
  int64_t tiles = 0;  // ceil(out / 16)
  // [groups][steps()][tiles in the group][step_bytes()]: a step of a tile is FP8 / F32 the
  // 16 rows' weights at one k; BF16 [16][2] (row j's k = 2p and 2p + 1 side by side, so one
  // 32-bit lane holds both and converts with a shift or a mask); FP4 16 bytes, byte j holding
  // row j's codes for k = 2p (low nibble) and 2p + 1 (high nibble).
  AlignedBytes data;
  // FP8: [tiles][ceil(in / 128)] fp32, 2^(scale - 127) * 2^120 (the conversion reads an e4m3
  // byte as a float 2^-120 times its value). FP4: [groups][in / 32][tiles in the group][16]
  // UE8M0 bytes.
  AlignedBytes scales;

  int64_t k_blocks() const { return (in + kFp8Block - 1) / kFp8Block; }
  int64_t in_pairs() const { return (in + 1) / 2; }
  int64_t steps() const;
  int64_t step_bytes() const;
  // Tiles in t's group (8, fewer in the last group).
  int64_t GroupTiles(int64_t t) const;
  // Tile t's first step, and the distance from one of its steps to the next.
  const uint8_t* TileData(int64_t t) const;
  uint8_t* TileData(int64_t t) { return const_cast<uint8_t*>(std::as_const(*this).TileData(t)); }
  int64_t StepStride(int64_t t) const { return GroupTiles(t) * step_bytes(); }
  // FP4: tile t's 16 scale bytes of block 0, and the distance to those of the next block.
  const uint8_t* TileScales(int64_t t) const;
  uint8_t* TileScales(int64_t t) {
    return const_cast<uint8_t*>(std::as_const(*this).TileScales(t));
  }
  int64_t ScaleStride(int64_t t) const { return GroupTiles(t) * kTileRows; }
  // FP8 / FP4: the byte holding tile t's row j, column k (FP4: the code is (byte >> *shift) &
  // 15), in either layout.
  const uint8_t* CodeByte(int64_t t, int64_t j, int64_t k, int* shift) const;
  uint64_t Bytes() const { return data.size() + scales.size(); }
  // Row r as fp32 (tests and the scalar kernel's reference).
  void DequantRow(int64_t r, float* dst) const;
};

// Repacks `w` (tiles split over `pool` if given), in the bf16 dot layout if `bf16_dot` and the
// format is not F32. Errors name the tensor: FP4 with `in` not a
// multiple of 32, an e4m3 NaN byte (0x7F / 0xFF), an FP8 scale too large for the fp32 multiplier
// (above 2^7). A UE8M0 scale byte of 0 (2^-127) in an FP4 tensor is read as 0 (its weights are
// below 1e-37).
Result<PackedLinear> PackLinear(const Linear& w, ThreadPool* pool = nullptr, bool bf16_dot = false);

}  // namespace v4agent::engine::kernels
