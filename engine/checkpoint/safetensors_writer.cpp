#include "engine/checkpoint/safetensors_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstring>

#include "common/check.h"
#include "common/json.h"
#include "common/unique_fd.h"

namespace v4agent::engine {
namespace {

uint64_t NumBytes(DType dtype, const std::vector<int64_t>& shape) {
  uint64_t n = DTypeSize(dtype);
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);
  return n;
}

Status WriteAll(int fd, const void* data, size_t size, const std::string& path) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::write(fd, p, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("cannot write " + path, errno);
    }
    p += n;
    size -= static_cast<size_t>(n);
  }
  return Status::Ok();
}

}  // namespace

void SafetensorsWriter::Add(const std::string& name, DType dtype, std::vector<int64_t> shape,
                            std::span<const uint8_t> bytes) {
  V4_CHECK_EQ(NumBytes(dtype, shape), bytes.size()) << "tensor " << name;
  Item item{name, dtype, std::move(shape), data_.size(), data_.size() + bytes.size()};
  data_.insert(data_.end(), bytes.begin(), bytes.end());
  items_.push_back(std::move(item));
}

void SafetensorsWriter::AddF32(const std::string& name, std::vector<int64_t> shape,
                               std::span<const float> values) {
  Add(name, DType::kF32, std::move(shape),
      {reinterpret_cast<const uint8_t*>(values.data()), values.size() * sizeof(float)});
}

std::vector<std::string> SafetensorsWriter::names() const {
  std::vector<std::string> out;
  for (const auto& i : items_) out.push_back(i.name);
  return out;
}

std::string SafetensorsWriter::Header(const std::vector<Item>& items,
                                      const std::map<std::string, std::string>& metadata) {
  // Written by hand, in insertion order: an ordered JSON object would make this quadratic in
  // the tensor count (145k tensors in the Pro layout).
  std::string h = "{";
  bool first = true;
  if (!metadata.empty()) {
    Json m = Json::object();
    for (const auto& [k, v] : metadata) m[k] = v;
    h += "\"__metadata__\":" + DumpJson(m);
    first = false;
  }
  for (const auto& i : items) {
    if (!first) h += ',';
    first = false;
    h += DumpJson(Json(i.name));
    h += ":{\"dtype\":\"";
    h += DTypeName(i.dtype);
    h += "\",\"shape\":[";
    for (size_t d = 0; d < i.shape.size(); ++d) h += (d ? "," : "") + std::to_string(i.shape[d]);
    h += "],\"data_offsets\":[" + std::to_string(i.begin) + "," + std::to_string(i.end) + "]}";
  }
  h += "}";
  // Pad with spaces so the data area starts 8-byte aligned, as the release files do.
  while ((8 + h.size()) % 8 != 0) h += ' ';
  return h;
}

Status SafetensorsWriter::Write(const std::string& path) const {
  std::string header = Header(items_, metadata_);
  std::string tmp = path + ".tmp";
  {
    UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!fd) return ErrnoError("cannot create " + tmp, errno);
    uint64_t len = header.size();
    V4_RETURN_IF_ERROR(WriteAll(fd.get(), &len, 8, tmp));
    V4_RETURN_IF_ERROR(WriteAll(fd.get(), header.data(), header.size(), tmp));
    V4_RETURN_IF_ERROR(WriteAll(fd.get(), data_.data(), data_.size(), tmp));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) return ErrnoError("cannot rename " + tmp, errno);
  return Status::Ok();
}

Status SafetensorsWriter::WriteHeaderOnly(const std::string& path,
                                          const std::vector<Entry>& entries) {
  std::vector<Item> items;
  uint64_t offset = 0;
  for (const auto& e : entries) {
    uint64_t n = NumBytes(e.dtype, e.shape);
    items.push_back({e.name, e.dtype, e.shape, offset, offset + n});
    offset += n;
  }
  std::string header = Header(items, {{"format", "pt"}});
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd) return ErrnoError("cannot create " + path, errno);
  uint64_t len = header.size();
  V4_RETURN_IF_ERROR(WriteAll(fd.get(), &len, 8, path));
  V4_RETURN_IF_ERROR(WriteAll(fd.get(), header.data(), header.size(), path));
  if (::ftruncate(fd.get(), static_cast<off_t>(8 + header.size() + offset)) != 0) {
    return ErrnoError("cannot extend " + path, errno);
  }
  return Status::Ok();
}

}  // namespace v4agent::engine
