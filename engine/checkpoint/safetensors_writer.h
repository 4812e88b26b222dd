// Writes safetensors files in the layout of the official V4 release: header with
// __metadata__ {"format": "pt"}, tensors in insertion order, data 8-byte aligned.
// Owns no tensor memory beyond what is added to it; never writes a partial file in place
// (writes go to a temporary file that is renamed at the end).
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"
#include "engine/checkpoint/dtype.h"

namespace v4agent::engine {

class SafetensorsWriter {
 public:
  // Copies `bytes`; its size must equal shape x dtype (checked: programmer error otherwise).
  void Add(const std::string& name, DType dtype, std::vector<int64_t> shape,
           std::span<const uint8_t> bytes);
  void AddF32(const std::string& name, std::vector<int64_t> shape, std::span<const float> values);
  void SetMetadata(const std::string& key, const std::string& value) { metadata_[key] = value; }

  // Total data bytes so far (the index's total_size counts these).
  uint64_t data_bytes() const { return data_.size(); }
  std::vector<std::string> names() const;

  Status Write(const std::string& path) const;

  // Writes only the header and extends the file to its full size without writing data
  // (a sparse file): lets tests open checkpoints with the real Flash/Pro layouts.
  // `entries` gives (name, dtype, shape) in order.
  struct Entry {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
  };
  static Status WriteHeaderOnly(const std::string& path, const std::vector<Entry>& entries);

 private:
  struct Item {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
    uint64_t begin, end;
  };
  static std::string Header(const std::vector<Item>& items,
                            const std::map<std::string, std::string>& metadata);

  std::vector<Item> items_;
  std::vector<uint8_t> data_;
  std::map<std::string, std::string> metadata_ = {{"format", "pt"}};
};

}  // namespace v4agent::engine
