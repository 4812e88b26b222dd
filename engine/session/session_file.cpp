#include "engine/session/session_file.h"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <ctime>
#include <map>
#include <memory>
#include <span>

#include "common/file_util.h"
#include "common/hash.h"
#include "common/mapped_file.h"
#include "common/strings.h"
#include "engine/session/session.h"

namespace v4agent::engine {
namespace {

struct Header {
  char magic[8];
  uint32_t version;
  uint32_t header_size;
  uint64_t meta_offset;
  uint64_t meta_size;
  uint64_t payload_offset;
  uint64_t payload_size;
  uint64_t checksum;     // Hash64 of the file bytes [meta_offset, payload_offset + payload_size)
  uint64_t header_hash;  // Hash64 of the 56 bytes before it
};
static_assert(sizeof(Header) == 64, "the header is 64 bytes on disk");
constexpr uint64_t kAlign = 64;

uint64_t Align(uint64_t v) { return (v + kAlign - 1) / kAlign * kAlign; }

const char* RowFormatName(RowFormat f) {
  switch (f) {
    case RowFormat::kFp32:
      return "fp32";
    case RowFormat::kFp8Main:
      return "fp8_main";
    case RowFormat::kFp4Index:
      return "fp4_index";
    case RowFormat::kBf16:
      return "bf16";
  }
  return "?";
}

const char* KvLayoutName(KvLayout l) {
  switch (l) {
    case KvLayout::kPacked:
      return "packed";
    case KvLayout::kFp32:
      return "fp32";
    case KvLayout::kBf16:
      return "bf16";
  }
  return "?";
}

// The state floats of a snapshot in a fixed order: per layer the window, then the compressor's
// cur_u, cur_s, prev_u, prev_s, then the indexer compressor's.
std::vector<float> PackState(const SequenceCache::Snapshot& s) {
  std::vector<float> out;
  auto add = [&](const std::vector<float>& v) { out.insert(out.end(), v.begin(), v.end()); };
  for (size_t i = 0; i < s.windows.size(); ++i) {
    add(s.windows[i]);
    for (const CompressorState* c : {&s.compressors[i], &s.index_compressors[i]}) {
      add(c->cur_u);
      add(c->cur_s);
      add(c->prev_u);
      add(c->prev_s);
    }
  }
  return out;
}

// Fills `s` (shaped by the model's own fresh cache) from `floats`; the size must match exactly.
Status UnpackState(std::span<const float> floats, SequenceCache::Snapshot* s,
                   const std::string& where) {
  size_t at = 0;
  bool short_input = false;
  auto take = [&](std::vector<float>& v) {
    if (v.empty()) return;  // e.g. prev_u of a compressor without overlap
    if (at + v.size() > floats.size()) {
      short_input = true;
      return;
    }
    std::memcpy(v.data(), floats.data() + at, v.size() * sizeof(float));
    at += v.size();
  };
  for (size_t i = 0; i < s->windows.size() && !short_input; ++i) {
    take(s->windows[i]);
    for (CompressorState* c : {&s->compressors[i], &s->index_compressors[i]}) {
      take(c->cur_u);
      take(c->cur_s);
      take(c->prev_u);
      take(c->prev_s);
    }
  }
  if (short_input || at != floats.size()) {
    return DataLossError(StrCat(where, ": holds ", floats.size(),
                                " state floats; this model's cache has ", PackState(*s).size()));
  }
  return Status::Ok();
}

// A section to write: one or more byte ranges back to back.
struct OutSection {
  std::string name;
  std::vector<std::span<const uint8_t>> pieces;
  std::vector<uint8_t> owned;  // when the bytes were built for the file
  uint64_t size = 0;
};

template <typename T>
std::span<const uint8_t> Bytes(const std::vector<T>& v) {
  return {reinterpret_cast<const uint8_t*>(v.data()), v.size() * sizeof(T)};
}

std::string NowUtc() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

Json LayerRowsMeta(const HistoryRows& rows) {
  return Json{{"format", RowFormatName(rows.format())},
              {"width", rows.width()},
              {"row_bytes", rows.bytes_per_row()},
              {"rows", rows.size()}};
}

// The checked view of one file: header, metadata and sections, all verified.
struct OpenedFile {
  std::shared_ptr<MappedFile> map;
  SessionFileInfo info;
  std::map<std::string, SessionFileSection> sections;

  Result<std::span<const uint8_t>> Section(const std::string& name) const {
    auto it = sections.find(name);
    if (it == sections.end()) {
      return DataLossError(StrCat(info.path, ": section '", name, "' is missing"));
    }
    return std::span<const uint8_t>(map->data() + it->second.offset, it->second.size);
  }
  Result<std::span<const float>> Floats(const std::string& name) const {
    V4_ASSIGN_OR_RETURN(auto bytes, Section(name));
    return std::span<const float>(reinterpret_cast<const float*>(bytes.data()),
                                  bytes.size() / sizeof(float));
  }
};

Result<OpenedFile> OpenChecked(const std::string& path, bool verify_checksum = true) {
  OpenedFile f;
  V4_ASSIGN_OR_RETURN(MappedFile m, MappedFile::Open(path));
  f.map = std::make_shared<MappedFile>(std::move(m));
  const uint64_t size = f.map->size();
  f.info.path = path;
  f.info.file_size = size;
  if (size < sizeof(Header)) {
    return DataLossError(StrCat(path, ": ", size,
                                " bytes is too short to be a v4agent session file (the header "
                                "alone is 64 bytes)"));
  }
  Header h;
  std::memcpy(&h, f.map->data(), sizeof(h));
  if (std::memcmp(h.magic, kSessionMagic, sizeof(h.magic)) != 0) {
    return InvalidArgumentError(
        StrCat(path, ": not a v4agent session file (it does not start with \"V4AGSESS\")"));
  }
  if (Hash64(&h, offsetof(Header, header_hash)) != h.header_hash) {
    return DataLossError(StrCat(path, ": the session header is corrupted (header hash mismatch)"));
  }
  if (h.version != kSessionVersion) {
    return FailedPreconditionError(StrCat(path, ": session format version ", h.version,
                                          "; this build reads version ", kSessionVersion));
  }
  const uint64_t end = h.payload_offset + h.payload_size;
  if (h.header_size != sizeof(Header) || h.meta_offset != sizeof(Header) ||
      h.payload_offset < h.meta_offset + h.meta_size || end < h.payload_offset) {
    return DataLossError(StrCat(path, ": the session header's extents are inconsistent"));
  }
  if (size < end) {
    return DataLossError(
        StrCat(path, ": truncated: the header says ", end, " bytes, the file has ", size));
  }
  if (size > end) {
    return DataLossError(
        StrCat(path, ": ", size - end, " unexpected bytes after the end of the session"));
  }
  if (verify_checksum && Hash64(f.map->data() + h.meta_offset, end - h.meta_offset) != h.checksum) {
    return DataLossError(StrCat(path, ": checksum mismatch: the session file is corrupted"));
  }
  f.info.version = h.version;
  V4_ASSIGN_OR_RETURN(
      f.info.meta,
      ParseJson(std::string_view(reinterpret_cast<const char*>(f.map->data() + h.meta_offset),
                                 h.meta_size),
                path + " metadata"));
  const std::string src = path + " metadata";
  if (!f.info.meta.is_object() || !f.info.meta.contains("sections") ||
      !f.info.meta["sections"].is_array()) {
    return DataLossError(StrCat(src, ": field 'sections': missing or not an array"));
  }
  for (const Json& s : f.info.meta["sections"]) {
    SessionFileSection sec;
    V4_ASSIGN_OR_RETURN(sec.name, JsonGetString(s, "name", src + " sections[]"));
    V4_ASSIGN_OR_RETURN(int64_t off, JsonGetInt(s, "offset", src + " sections." + sec.name));
    V4_ASSIGN_OR_RETURN(int64_t sz, JsonGetInt(s, "size", src + " sections." + sec.name));
    if (off < 0 || sz < 0 || off % kAlign != 0 ||
        static_cast<uint64_t>(off + sz) > h.payload_size) {
      return DataLossError(StrCat(src, ": section '", sec.name, "' [", off, ", +", sz,
                                  ") lies outside the payload or is misaligned"));
    }
    sec.offset = h.payload_offset + static_cast<uint64_t>(off);
    sec.size = static_cast<uint64_t>(sz);
    if (sec.name.starts_with("history.")) {
      f.info.history_bytes += sec.size;
    } else if (sec.name.starts_with("snapshot.")) {
      f.info.snapshot_bytes += sec.size;
    } else {
      f.info.state_bytes += sec.size;
    }
    f.sections[sec.name] = sec;
    f.info.sections.push_back(sec);
  }
  V4_ASSIGN_OR_RETURN(f.info.tokens, JsonGetInt(f.info.meta, "length", src));
  if (f.info.meta.contains("snapshots") && f.info.meta["snapshots"].is_array()) {
    f.info.snapshots = static_cast<int64_t>(f.info.meta["snapshots"].size());
  }
  return f;
}

Result<std::vector<int64_t>> ReadEntries(const Json& j, const std::string& where, size_t layers) {
  if (!j.contains("entries") || !j["entries"].is_array() || j["entries"].size() != layers) {
    return DataLossError(
        StrCat(where, ": field 'entries': expected an array of ", layers, " per-layer counts"));
  }
  std::vector<int64_t> out;
  for (const Json& e : j["entries"]) {
    if (!e.is_number_integer() || e.get<int64_t>() < 0) {
      return DataLossError(StrCat(where, ": field 'entries': expected non-negative integers"));
    }
    out.push_back(e.get<int64_t>());
  }
  return out;
}

}  // namespace

Status CheckSessionModel(const Json& meta, const Model& model, const std::string& path) {
  // The model, numerics and layout must be the ones that wrote the file: anything else would
  // continue from a cache this model never produced.
  const std::string src = path + " metadata";
  V4_ASSIGN_OR_RETURN(ModelFingerprint fp, model.Fingerprint());
  if (!meta.contains("model") || !meta["model"].is_object()) {
    return DataLossError(StrCat(src, ": field 'model': missing"));
  }
  V4_ASSIGN_OR_RETURN(std::string cfg_hash, JsonGetString(meta["model"], "config_hash", src));
  V4_ASSIGN_OR_RETURN(std::string digest, JsonGetString(meta["model"], "tensor_digest", src));
  const std::string saved_dir = meta["model"].value("dir", std::string("?"));
  if (cfg_hash != Hex64(fp.config_hash)) {
    return FailedPreconditionError(StrCat(path, ": saved by another model (config ", cfg_hash,
                                          ", from ", saved_dir, "); this model ", model.dir(),
                                          " has config ", Hex64(fp.config_hash)));
  }
  if (digest != Hex64(fp.tensor_digest)) {
    return FailedPreconditionError(
        StrCat(path, ": saved by a model with the same config but other weights (tensors ", digest,
               ", from ", saved_dir, "); this model ", model.dir(), " has tensors ",
               Hex64(fp.tensor_digest)));
  }
  V4_ASSIGN_OR_RETURN(std::string numerics, JsonGetString(meta, "numerics", src));
  if (numerics != NumericsName(model.options().numerics)) {
    return FailedPreconditionError(
        StrCat(path, ": saved with --numerics ", numerics, "; this model runs --numerics ",
               NumericsName(model.options().numerics),
               " (the two round differently, so the cache would not continue exactly)"));
  }
  V4_ASSIGN_OR_RETURN(bool qat, JsonGetBool(meta, "qat_sim", src));
  if (qat != model.options().qat_sim) {
    return FailedPreconditionError(StrCat(path, ": saved with the QAT simulations ",
                                          qat ? "on" : "off", "; this model has them ",
                                          model.options().qat_sim ? "on" : "off"));
  }
  V4_ASSIGN_OR_RETURN(std::string layout, JsonGetString(meta, "kv_layout", src));
  if (layout != KvLayoutName(model.options().kv_layout)) {
    return FailedPreconditionError(StrCat(path, ": saved with KV layout ", layout,
                                          "; this model stores ",
                                          KvLayoutName(model.options().kv_layout)));
  }

  return Status::Ok();
}

Result<SessionFileInfo> InspectSessionFile(const std::string& path) {
  V4_ASSIGN_OR_RETURN(OpenedFile f, OpenChecked(path));
  return f.info;
}

Result<SessionFileInfo> ReadSessionFileHead(const std::string& path, std::vector<int32_t>* tokens) {
  V4_ASSIGN_OR_RETURN(OpenedFile f, OpenChecked(path, /*verify_checksum=*/false));
  if (tokens != nullptr) {
    V4_ASSIGN_OR_RETURN(auto bytes, f.Section("tokens"));
    if (bytes.size() != static_cast<size_t>(f.info.tokens) * sizeof(int32_t)) {
      return DataLossError(StrCat(path, ": section 'tokens' holds ", bytes.size(), " bytes for ",
                                  f.info.tokens, " tokens"));
    }
    tokens->resize(static_cast<size_t>(f.info.tokens));
    if (!tokens->empty()) std::memcpy(tokens->data(), bytes.data(), bytes.size());
  }
  return f.info;
}

Status Session::Save(const std::string& path, const SessionSaveOptions& save) const {
  V4_ASSIGN_OR_RETURN(ModelFingerprint fp, model_->Fingerprint());
  const ModelConfig& c = model_->config();
  std::vector<OutSection> sections;
  auto add_owned = [&](std::string name, std::vector<uint8_t> bytes) {
    OutSection s;
    s.name = std::move(name);
    s.owned = std::move(bytes);
    s.size = s.owned.size();
    sections.push_back(std::move(s));
  };
  auto to_bytes = [](const auto& v) {
    auto b = Bytes(v);
    return std::vector<uint8_t>(b.begin(), b.end());
  };
  add_owned("tokens", to_bytes(tokens_));
  add_owned("logits", to_bytes(last_logits_));
  const SequenceCache::Snapshot live = cache_->TakeSnapshot();
  add_owned("state", to_bytes(PackState(live)));

  Json layers = Json::array();
  for (int64_t i = 0; i < cache_->num_layers(); ++i) {
    const LayerCache& l = cache_->layer(i);
    Json lj{{"entries", l.num_entries}, {"ratio", l.ratio}};
    for (auto [key, rows] :
         {std::pair<const char*, const HistoryRows*>{"compressed", &l.compressed},
          {"index", &l.index_keys}}) {
      if (rows->width() == 0) continue;
      lj[key] = LayerRowsMeta(*rows);
      if (rows->size() == 0) continue;
      OutSection s;
      s.name = StrCat("history.", i, ".", key);
      for (int64_t ch = 0; ch < rows->num_chunks(); ++ch) s.pieces.push_back(rows->ChunkBytes(ch));
      s.size = rows->bytes();
      sections.push_back(std::move(s));
    }
    layers.push_back(std::move(lj));
  }

  Json snapshots = Json::array();
  if (save.snapshots) {
    int k = 0;
    for (const Mark& m : marks_) {
      if (m.length == 0) continue;  // the empty sequence is rebuilt from the model
      snapshots.push_back({{"length", m.length},
                           {"mtp_length", m.snapshot.mtp_length},
                           {"entries", m.snapshot.entries},
                           {"has_logits", !m.logits.empty()}});
      add_owned(StrCat("snapshot.", k, ".state"), to_bytes(PackState(m.snapshot)));
      add_owned(StrCat("snapshot.", k, ".logits"), to_bytes(m.logits));
      ++k;
    }
  }

  Json sec_table = Json::array();
  uint64_t payload = 0;
  for (const OutSection& s : sections) {
    sec_table.push_back({{"name", s.name}, {"offset", payload}, {"size", s.size}});
    payload = Align(payload + s.size);
  }
  Json meta{{"format", "v4agent session"},
            {"version", kSessionVersion},
            {"created", NowUtc()},
            {"model",
             {{"config_hash", Hex64(fp.config_hash)},
              {"tensor_digest", Hex64(fp.tensor_digest)},
              {"dir", model_->dir()}}},
            {"numerics", NumericsName(model_->options().numerics)},
            {"qat_sim", model_->options().qat_sim},
            {"kv_layout", KvLayoutName(model_->options().kv_layout)},
            {"vocab_size", c.vocab_size},
            {"num_layers", cache_->num_layers()},
            {"length", length()},
            {"cache_length", cache_->length()},
            {"mtp_length", cache_->mtp_length()},
            {"layers", std::move(layers)},
            {"snapshots", std::move(snapshots)},
            {"sections", std::move(sec_table)},
            {"extra", save.extra}};
  const std::string meta_text = DumpJson(meta);

  Header h{};
  std::memcpy(h.magic, kSessionMagic, sizeof(h.magic));
  h.version = kSessionVersion;
  h.header_size = sizeof(Header);
  h.meta_offset = sizeof(Header);
  h.meta_size = meta_text.size();
  h.payload_offset = Align(h.meta_offset + h.meta_size);
  h.payload_size = payload;

  V4_ASSIGN_OR_RETURN(auto w, AtomicFileWriter::Create(path));
  Hash64Stream sum;
  static const uint8_t kZeros[kAlign] = {};
  auto put = [&](const void* data, size_t n) -> Status {
    sum.Update(data, n);
    return w->Write(data, n);
  };
  auto pad = [&]() -> Status {
    const uint64_t rel = w->offset() - h.payload_offset;
    const uint64_t n = Align(rel) - rel;
    return n == 0 ? Status::Ok() : put(kZeros, n);
  };
  V4_RETURN_IF_ERROR(w->Write(&h, sizeof(h)));  // written again below with the checksum
  V4_RETURN_IF_ERROR(put(meta_text.data(), meta_text.size()));
  {
    const uint64_t n = h.payload_offset - w->offset();
    if (n > 0) V4_RETURN_IF_ERROR(put(kZeros, n));
  }
  for (const OutSection& s : sections) {
    if (!s.owned.empty()) V4_RETURN_IF_ERROR(put(s.owned.data(), s.owned.size()));
    for (auto p : s.pieces) V4_RETURN_IF_ERROR(put(p.data(), p.size()));
    V4_RETURN_IF_ERROR(pad());
  }
  h.checksum = sum.Finish();
  h.header_hash = Hash64(&h, offsetof(Header, header_hash));
  V4_RETURN_IF_ERROR(w->WriteAt(0, &h, sizeof(h)));
  return w->Commit();
}

Result<std::unique_ptr<Session>> Session::Load(Model* model, const std::string& path,
                                               const SessionOptions& options, Json* extra) {
  V4_ASSIGN_OR_RETURN(OpenedFile f, OpenChecked(path));
  const Json& meta = f.info.meta;
  const std::string src = path + " metadata";
  const ModelConfig& c = model->config();

  V4_RETURN_IF_ERROR(CheckSessionModel(meta, *model, path));

  auto s = std::make_unique<Session>(model, options);
  SequenceCache& cache = *s->cache_;
  const size_t n_layers = static_cast<size_t>(cache.num_layers());
  V4_ASSIGN_OR_RETURN(int64_t length, JsonGetInt(meta, "length", src));
  V4_ASSIGN_OR_RETURN(int64_t cache_length, JsonGetInt(meta, "cache_length", src));
  V4_ASSIGN_OR_RETURN(int64_t mtp_length, JsonGetInt(meta, "mtp_length", src));
  if (length < 0 || cache_length != length || length > model->max_context()) {
    return DataLossError(StrCat(src, ": length ", length, " (cache ", cache_length,
                                ") is not a valid position for a context of ",
                                model->max_context()));
  }

  V4_ASSIGN_OR_RETURN(auto tok_bytes, f.Section("tokens"));
  if (tok_bytes.size() != static_cast<size_t>(length) * sizeof(int32_t)) {
    return DataLossError(StrCat(path, ": section 'tokens' holds ", tok_bytes.size(), " bytes for ",
                                length, " tokens"));
  }
  s->tokens_.resize(static_cast<size_t>(length));
  if (length > 0) std::memcpy(s->tokens_.data(), tok_bytes.data(), tok_bytes.size());
  for (size_t i = 0; i < s->tokens_.size(); ++i) {
    if (s->tokens_[i] < 0 || s->tokens_[i] >= c.vocab_size) {
      return DataLossError(StrCat(path, ": token ", i, " is id ", s->tokens_[i],
                                  ", outside the vocabulary of ", c.vocab_size));
    }
  }
  V4_ASSIGN_OR_RETURN(auto logits, f.Floats("logits"));
  const size_t want_logits = length > 0 ? static_cast<size_t>(c.vocab_size) : 0;
  if (logits.size() != want_logits) {
    return DataLossError(StrCat(path, ": section 'logits' holds ", logits.size(),
                                " floats; expected ", want_logits));
  }
  s->last_logits_.assign(logits.begin(), logits.end());

  // History rows: adopted in place from the mapping after checking format, width and count.
  if (!meta.contains("layers") || !meta["layers"].is_array() || meta["layers"].size() != n_layers) {
    return DataLossError(
        StrCat(src, ": field 'layers': expected ", n_layers, " layers for this model"));
  }
  std::vector<int64_t> live_entries;
  for (size_t i = 0; i < n_layers; ++i) {
    const Json& lj = meta["layers"][i];
    const std::string where = StrCat(src, " layers[", i, "]");
    V4_ASSIGN_OR_RETURN(int64_t entries, JsonGetInt(lj, "entries", where));
    LayerCache& l = cache.layer(static_cast<int64_t>(i));
    const int64_t max_entries = l.ratio == 0 ? 0 : length / l.ratio;
    if (entries < 0 || entries > max_entries) {
      return DataLossError(StrCat(where, ": ", entries, " entries is impossible after ", length,
                                  " tokens at compression ratio ", l.ratio));
    }
    live_entries.push_back(entries);
    for (auto [key, rows] : {std::pair<const char*, HistoryRows*>{"compressed", &l.compressed},
                             {"index", &l.index_keys}}) {
      if (rows->width() == 0) {
        if (lj.contains(key)) return DataLossError(StrCat(where, ": unexpected '", key, "' rows"));
        continue;
      }
      if (!lj.contains(key)) return DataLossError(StrCat(where, ": field '", key, "': missing"));
      const std::string rwhere = StrCat(where, ".", key);
      V4_ASSIGN_OR_RETURN(std::string format, JsonGetString(lj[key], "format", rwhere));
      V4_ASSIGN_OR_RETURN(int64_t width, JsonGetInt(lj[key], "width", rwhere));
      V4_ASSIGN_OR_RETURN(int64_t row_bytes, JsonGetInt(lj[key], "row_bytes", rwhere));
      V4_ASSIGN_OR_RETURN(int64_t rows_n, JsonGetInt(lj[key], "rows", rwhere));
      if (format != RowFormatName(rows->format()) || width != rows->width() ||
          row_bytes != rows->bytes_per_row() || rows_n != entries) {
        return DataLossError(StrCat(rwhere, ": ", rows_n, " rows of ", format, " width ", width,
                                    " (", row_bytes, " B); this model's cache stores ",
                                    RowFormatName(rows->format()), " width ", rows->width(), " (",
                                    rows->bytes_per_row(), " B) and expects ", entries));
      }
      if (entries == 0) continue;
      const std::string name = StrCat("history.", i, ".", key);
      V4_ASSIGN_OR_RETURN(auto bytes, f.Section(name));
      if (bytes.size() != static_cast<size_t>(entries * row_bytes)) {
        return DataLossError(StrCat(path, ": section '", name, "' holds ", bytes.size(),
                                    " bytes for ", entries, " rows of ", row_bytes));
      }
      rows->AdoptMapped(entries, bytes.data(), f.map);
    }
  }

  // State: shaped by the model's own cache, filled from the file.
  SequenceCache::Snapshot live = cache.TakeSnapshot();
  const SequenceCache::Snapshot empty = live;
  V4_ASSIGN_OR_RETURN(auto state, f.Floats("state"));
  V4_RETURN_IF_ERROR(UnpackState(state, &live, path + ": section 'state'"));
  live.length = length;
  live.mtp_length = mtp_length;
  live.entries = live_entries;
  cache.Restore(live);

  // Snapshots, oldest first, after the empty-sequence mark the constructor took.
  if (meta.contains("snapshots") && meta["snapshots"].is_array()) {
    int64_t prev = 0;
    for (size_t k = 0; k < meta["snapshots"].size(); ++k) {
      const Json& sj = meta["snapshots"][k];
      const std::string where = StrCat(src, " snapshots[", k, "]");
      Mark m;
      V4_ASSIGN_OR_RETURN(m.length, JsonGetInt(sj, "length", where));
      m.snapshot = empty;
      m.snapshot.length = m.length;
      V4_ASSIGN_OR_RETURN(m.snapshot.mtp_length, JsonGetInt(sj, "mtp_length", where));
      V4_ASSIGN_OR_RETURN(m.snapshot.entries, ReadEntries(sj, where, n_layers));
      if (m.length <= prev || m.length > length) {
        return DataLossError(
            StrCat(where, ": length ", m.length, " is not after ", prev, " and within ", length));
      }
      for (size_t i = 0; i < n_layers; ++i) {
        if (m.snapshot.entries[i] > live_entries[i]) {
          return DataLossError(StrCat(where, ": layer ", i, " has more entries than the session"));
        }
      }
      V4_ASSIGN_OR_RETURN(auto st, f.Floats(StrCat("snapshot.", k, ".state")));
      V4_RETURN_IF_ERROR(
          UnpackState(st, &m.snapshot, StrCat(path, ": section 'snapshot.", k, ".state'")));
      V4_ASSIGN_OR_RETURN(auto lg, f.Floats(StrCat("snapshot.", k, ".logits")));
      if (lg.size() != static_cast<size_t>(c.vocab_size)) {
        return DataLossError(StrCat(path, ": section 'snapshot.", k, ".logits' holds ", lg.size(),
                                    " floats; expected ", c.vocab_size));
      }
      m.logits.assign(lg.begin(), lg.end());
      s->marks_.push_back(std::move(m));
      prev = s->marks_.back().length;
    }
  }
  s->TakeMark();  // the restored position, when no snapshot was saved there
  while (static_cast<int64_t>(s->marks_.size()) > std::max<int64_t>(2, options.max_snapshots)) {
    s->marks_.erase(s->marks_.begin() + 1);  // oldest first; the empty-sequence mark stays
  }
  s->stats_.tokens_restored = length;
  if (extra != nullptr) *extra = meta.contains("extra") ? meta["extra"] : Json::object();
  return s;
}

}  // namespace v4agent::engine
