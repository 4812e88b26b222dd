#include "engine/checkpoint/dtype.h"

#include <array>
#include <string>

namespace v4agent::engine {
namespace {

struct Entry {
  DType dtype;
  std::string_view name;
  size_t size;
};

constexpr std::array<Entry, 12> kTable = {{
    {DType::kBool, "BOOL", 1},
    {DType::kU8, "U8", 1},
    {DType::kI8, "I8", 1},
    {DType::kI16, "I16", 2},
    {DType::kI32, "I32", 4},
    {DType::kI64, "I64", 8},
    {DType::kF8E4M3, "F8_E4M3", 1},
    {DType::kF8E8M0, "F8_E8M0", 1},
    {DType::kF16, "F16", 2},
    {DType::kBF16, "BF16", 2},
    {DType::kF32, "F32", 4},
    {DType::kF64, "F64", 8},
}};

}  // namespace

Result<DType> ParseDType(std::string_view name) {
  for (const auto& e : kTable) {
    if (e.name == name) return e.dtype;
  }
  return InvalidArgumentError("unsupported dtype \"" + std::string(name) + "\"");
}

std::string_view DTypeName(DType dtype) {
  for (const auto& e : kTable) {
    if (e.dtype == dtype) return e.name;
  }
  return "?";
}

size_t DTypeSize(DType dtype) {
  for (const auto& e : kTable) {
    if (e.dtype == dtype) return e.size;
  }
  return 0;
}

}  // namespace v4agent::engine
