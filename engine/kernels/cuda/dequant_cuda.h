// CUDA twins of the CPU dequantization and matrix-vector kernels (engine/quant,
// engine/kernels/cpu): FP8 e4m3 with 128x128 UE8M0 block scales and packed FP4 e2m1 with
// per-32 UE8M0 scales. Host-side API over host buffers, so tests can compare them with the CPU
// reference on the same inputs. No CUDA type appears in this header; without a device every
// call returns UNAVAILABLE.
#pragma once

#include <cstdint>
#include <vector>

#include "common/status.h"

namespace v4agent::engine::cuda {

// Number of visible CUDA devices (0 when there is no driver or device).
int DeviceCount();

// Dequantizes a whole FP8 matrix [rows, cols] (+ scales [ceil(rows/128), ceil(cols/128)]).
Result<std::vector<float>> DequantFp8(const uint8_t* weight, const uint8_t* scale, int64_t rows,
                                      int64_t cols);
// Dequantizes a packed FP4 matrix [rows, cols] (bytes [rows, cols/2], scales [rows, cols/32]).
Result<std::vector<float>> DequantFp4(const uint8_t* packed, const uint8_t* scale, int64_t rows,
                                      int64_t cols);
// y[rows] = W x for an FP8 matrix, dequantizing on the fly; fp32 accumulation.
Result<std::vector<float>> MatVecFp8(const uint8_t* weight, const uint8_t* scale, int64_t rows,
                                     int64_t cols, const std::vector<float>& x);

}  // namespace v4agent::engine::cuda
