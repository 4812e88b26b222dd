#include "engine/checkpoint/safetensors.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <set>

#include "common/json.h"
#include "common/strings.h"

namespace v4agent::engine {
namespace {

constexpr uint64_t kMaxHeaderBytes = 100ull << 20;  // safetensors' own limit is 100 MB

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

}  // namespace

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string TensorView::Describe() const {
  return StrCat(name, " ", DTypeName(dtype), " ", ShapeString(shape));
}

Result<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path) {
  V4_ASSIGN_OR_RETURN(MappedFile map, MappedFile::Open(path));
  auto file = std::unique_ptr<SafetensorsFile>(new SafetensorsFile());
  file->path_ = path;
  file->map_ = std::move(map);
  V4_RETURN_IF_ERROR(file->Parse(file->map_.bytes()));
  return file;
}

Result<std::unique_ptr<SafetensorsFile>> SafetensorsFile::FromBytes(std::span<const uint8_t> bytes,
                                                                    const std::string& name) {
  auto file = std::unique_ptr<SafetensorsFile>(new SafetensorsFile());
  file->path_ = name;
  V4_RETURN_IF_ERROR(file->Parse(bytes));
  return file;
}

Status SafetensorsFile::Parse(std::span<const uint8_t> bytes) {
  size_ = bytes.size();
  if (bytes.size() < 8) {
    return DataLossError(StrCat(path_, ": truncated: ", bytes.size(),
                                " bytes, too short for the 8-byte header length"));
  }
  uint64_t header_len = 0;
  std::memcpy(&header_len, bytes.data(), 8);  // little-endian on every supported host
  if (header_len > kMaxHeaderBytes) {
    return DataLossError(
        StrCat(path_, ": header length ", header_len, " exceeds the 100 MiB limit"));
  }
  if (header_len > bytes.size() - 8) {
    return DataLossError(StrCat(path_, ": header length ", header_len, " runs past the end of the ",
                                bytes.size(), "-byte file (truncated?)"));
  }
  std::string_view header(reinterpret_cast<const char*>(bytes.data() + 8), header_len);
  V4_ASSIGN_OR_RETURN(Json j, ParseJson(header, path_ + " header"));
  if (!j.is_object()) return DataLossError(path_ + ": header is not a JSON object");
  const uint8_t* data_start = bytes.data() + 8 + header_len;
  const uint64_t data_size = bytes.size() - 8 - header_len;

  struct Span {
    uint64_t begin, end;
    size_t index;
  };
  std::vector<Span> spans;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& name = it.key();
    const Json& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) return DataLossError(path_ + ": __metadata__ is not an object");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string()) {
          return DataLossError(
              StrCat(path_, ": __metadata__ value '", m.key(), "' is not a string"));
        }
        metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    auto where = [&](std::string_view what) {
      return DataLossError(StrCat(path_, ": tensor '", name, "': ", what));
    };
    if (!v.is_object()) return where("entry is not an object");
    auto dt = v.find("dtype");
    auto sh = v.find("shape");
    auto off = v.find("data_offsets");
    if (dt == v.end() || !dt->is_string()) return where("missing or non-string 'dtype'");
    if (sh == v.end() || !sh->is_array()) return where("missing or non-array 'shape'");
    if (off == v.end() || !off->is_array() || off->size() != 2) {
      return where("'data_offsets' must be [begin, end]");
    }
    auto dtype = ParseDType(dt->get<std::string>());
    if (!dtype.ok()) return where(dtype.status().message());
    TensorView t;
    t.name = name;
    t.dtype = *dtype;
    unsigned __int128 numel = 1;
    for (const auto& d : *sh) {
      if (!d.is_number_unsigned() && !(d.is_number_integer() && d.get<int64_t>() >= 0)) {
        return where("shape entries must be non-negative integers");
      }
      int64_t dim = d.get<int64_t>();
      t.shape.push_back(dim);
      numel *= static_cast<uint64_t>(dim);
      if (numel > (static_cast<unsigned __int128>(1) << 62)) return where("shape is too large");
    }
    for (const auto& o : *off) {
      if (!o.is_number_unsigned() && !(o.is_number_integer() && o.get<int64_t>() >= 0)) {
        return where("data_offsets must be non-negative integers");
      }
    }
    uint64_t begin = (*off)[0].get<uint64_t>(), end = (*off)[1].get<uint64_t>();
    if (begin > end) return where(StrCat("data_offsets [", begin, ", ", end, "] are reversed"));
    if (end > data_size) {
      return where(StrCat("data_offsets [", begin, ", ", end, "] run past the end of the data (",
                          data_size, " bytes; file truncated?)"));
    }
    unsigned __int128 expect = numel * DTypeSize(t.dtype);
    if (expect != end - begin) {
      return where(StrCat("holds ", end - begin, " bytes but ", DTypeName(t.dtype), " ",
                          ShapeString(t.shape), " needs ", static_cast<uint64_t>(expect)));
    }
    t.data = data_start + begin;
    t.nbytes = end - begin;
    t.file = &path_;
    if (by_name_.count(name)) return where("appears twice");
    by_name_[name] = tensors_.size();
    spans.push_back({begin, end, tensors_.size()});
    tensors_.push_back(std::move(t));
  }
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  // Sorted by start, a tensor overlaps an earlier one iff it starts before the furthest end
  // seen so far (empty tensors occupy no bytes and overlap nothing).
  const Span* furthest = nullptr;
  for (const Span& cur : spans) {
    if (cur.end == cur.begin) continue;
    if (furthest != nullptr && cur.begin < furthest->end) {
      return DataLossError(StrCat(path_, ": tensors '", tensors_[furthest->index].name, "' and '",
                                  tensors_[cur.index].name, "' overlap (bytes ", cur.begin, "..",
                                  std::min(cur.end, furthest->end), ")"));
    }
    if (furthest == nullptr || cur.end > furthest->end) furthest = &cur;
  }
  return Status::Ok();
}

const TensorView* SafetensorsFile::Find(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &tensors_[it->second];
}

Result<std::unique_ptr<Checkpoint>> Checkpoint::Open(const std::string& path) {
  namespace fs = std::filesystem;
  auto ckpt = std::unique_ptr<Checkpoint>(new Checkpoint());
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) {
    ckpt->source_ = path;
    V4_ASSIGN_OR_RETURN(auto file, SafetensorsFile::Open(path));
    ckpt->files_.push_back(std::move(file));
  } else if (fs::is_directory(path, ec)) {
    ckpt->dir_ = path;
    std::string index_path = path + "/model.safetensors.index.json";
    if (fs::exists(index_path, ec)) {
      ckpt->source_ = index_path;
      V4_ASSIGN_OR_RETURN(Json index, ReadJsonFile(index_path));
      auto wm = index.find("weight_map");
      if (!index.is_object() || wm == index.end() || !wm->is_object()) {
        return DataLossError(index_path + ": missing object 'weight_map'");
      }
      std::map<std::string, size_t> shard_index;
      for (auto it = wm->begin(); it != wm->end(); ++it) {
        if (!it.value().is_string()) {
          return DataLossError(
              StrCat(index_path, ": weight_map['", it.key(), "'] is not a string"));
        }
        std::string shard = it.value().get<std::string>();
        if (shard.find('/') != std::string::npos || shard == "..") {
          return DataLossError(
              StrCat(index_path, ": shard name '", shard, "' is not a plain file name"));
        }
        if (!shard_index.count(shard)) {
          std::string shard_path = path + "/" + shard;
          auto file = SafetensorsFile::Open(shard_path);
          if (!file.ok()) {
            return file.status().WithContext(
                StrCat(index_path, ": shard for tensor '", it.key(), "'"));
          }
          shard_index[shard] = ckpt->files_.size();
          ckpt->files_.push_back(std::move(file).value());
        }
        const SafetensorsFile& f = *ckpt->files_[shard_index[shard]];
        if (f.Find(it.key()) == nullptr) {
          return DataLossError(StrCat(index_path, ": tensor '", it.key(), "' is mapped to ", shard,
                                      " but that shard does not hold it"));
        }
      }
      // Every tensor of every shard must be in the index, and in exactly one shard.
      for (const auto& f : ckpt->files_) {
        for (const auto& t : f->tensors()) {
          auto it = wm->find(t.name);
          if (it == wm->end()) {
            return DataLossError(StrCat(index_path, ": tensor '", t.name, "' in ", f->path(),
                                        " is missing from weight_map"));
          }
        }
      }
    } else if (fs::exists(path + "/model.safetensors", ec)) {
      ckpt->source_ = path + "/model.safetensors";
      V4_ASSIGN_OR_RETURN(auto file, SafetensorsFile::Open(ckpt->source_));
      ckpt->files_.push_back(std::move(file));
    } else {
      return NotFoundError(path + ": no model.safetensors.index.json or model.safetensors");
    }
  } else {
    return NotFoundError("no such checkpoint file or directory: " + path);
  }
  for (const auto& f : ckpt->files_) {
    for (const auto& t : f->tensors()) {
      if (ckpt->by_name_.count(t.name)) {
        return DataLossError(StrCat(ckpt->source_, ": tensor '", t.name, "' is in two files: ",
                                    *ckpt->by_name_[t.name]->file, " and ", f->path()));
      }
      ckpt->by_name_[t.name] = &t;
    }
  }
  return ckpt;
}

const TensorView* Checkpoint::Find(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

Result<const TensorView*> Checkpoint::Get(const std::string& name) const {
  const TensorView* t = Find(name);
  if (t == nullptr) return NotFoundError(StrCat(source_, ": missing tensor '", name, "'"));
  return t;
}

std::vector<const TensorView*> Checkpoint::tensors() const {
  std::vector<const TensorView*> out;
  out.reserve(by_name_.size());
  for (const auto& [name, t] : by_name_) out.push_back(t);
  return out;
}

}  // namespace v4agent::engine
