// Tensor element types as safetensors names them, with their sizes. Owns the mapping between
// header strings ("BF16", "F8_E4M3", ...) and DType; never interprets tensor contents.
#pragma once

#include <cstddef>
#include <string_view>

#include "common/status.h"

namespace v4agent::engine {

enum class DType {
  kBool,
  kU8,
  kI8,  // In V4 checkpoints: two packed e2m1 (FP4) codes per byte.
  kI16,
  kI32,
  kI64,
  kF8E4M3,
  kF8E8M0,  // UE8M0 block scales: 2^(byte - 127).
  kF16,
  kBF16,
  kF32,
  kF64,
};

Result<DType> ParseDType(std::string_view name);
std::string_view DTypeName(DType dtype);
size_t DTypeSize(DType dtype);

}  // namespace v4agent::engine
