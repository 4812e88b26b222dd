// Read-only safetensors: one mmapped file, or a sharded checkpoint directory with
// model.safetensors.index.json. Tensors are zero-copy views into the mappings.
// Owns header validation (offsets inside the data area, size == shape x dtype, no overlaps,
// index and shards agree). Never copies or converts tensor data; every error names the file
// and the tensor.
#pragma once

#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/check.h"
#include "common/mapped_file.h"
#include "common/status.h"
#include "engine/checkpoint/dtype.h"

namespace v4agent::engine {

struct TensorView {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;
  size_t nbytes = 0;
  const std::string* file = nullptr;  // path of the file holding it (owned by the file object)

  int64_t numel() const;
  int64_t dim(size_t i) const { return shape[i]; }
  // "embed.weight BF16 [256, 128]".
  std::string Describe() const;
  // A typed view; only for tensors whose data is aligned for T (safetensors does not
  // guarantee alignment of a tensor that follows an odd-sized one: use Copy<T>() then).
  template <typename T>
  std::span<const T> as() const {
    V4_CHECK(reinterpret_cast<uintptr_t>(data) % alignof(T) == 0)
        << "tensor " << name << " is not aligned for a typed view; use Copy()";
    return {reinterpret_cast<const T*>(data), nbytes / sizeof(T)};
  }
  // The elements copied out (any alignment).
  template <typename T>
  std::vector<T> Copy() const {
    std::vector<T> out(nbytes / sizeof(T));
    if (nbytes) std::memcpy(out.data(), data, out.size() * sizeof(T));
    return out;
  }
};

class SafetensorsFile {
 public:
  // Maps and validates one .safetensors file.
  static Result<std::unique_ptr<SafetensorsFile>> Open(const std::string& path);
  // Parses a header from memory (the fuzz target and tests use this). `bytes` must stay alive.
  static Result<std::unique_ptr<SafetensorsFile>> FromBytes(std::span<const uint8_t> bytes,
                                                            const std::string& name);

  const std::string& path() const { return path_; }
  const std::vector<TensorView>& tensors() const { return tensors_; }
  const TensorView* Find(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  size_t file_size() const { return size_; }

 private:
  Status Parse(std::span<const uint8_t> bytes);

  std::string path_;
  MappedFile map_;
  size_t size_ = 0;
  std::vector<TensorView> tensors_;
  std::unordered_map<std::string, size_t> by_name_;
  std::map<std::string, std::string> metadata_;
};

// A checkpoint: a directory with model.safetensors.index.json and its shards, a directory
// with a single model.safetensors, or one .safetensors file.
class Checkpoint {
 public:
  static Result<std::unique_ptr<Checkpoint>> Open(const std::string& path);

  // The directory holding config.json (empty when opened from a bare file).
  const std::string& dir() const { return dir_; }
  const TensorView* Find(const std::string& name) const;
  // Like Find, but a missing tensor is a NotFound error naming it and the checkpoint.
  Result<const TensorView*> Get(const std::string& name) const;
  // All tensors, sorted by name.
  std::vector<const TensorView*> tensors() const;
  const std::vector<std::unique_ptr<SafetensorsFile>>& files() const { return files_; }
  size_t num_tensors() const { return by_name_.size(); }

 private:
  std::string dir_;
  std::string source_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const TensorView*> by_name_;
};

}  // namespace v4agent::engine
