// The on-disk session format (docs/sessions.md): one file holds everything a Session needs to
// continue bit-exactly in another process.
//
//   [0, 64)        header: magic "V4AGSESS", version, where the metadata and payload are,
//                  a checksum of both, and a hash of the header itself
//   [64, ...)      metadata: JSON (model fingerprint, numerics, KV layout, token count,
//                  per-layer row counts and formats, snapshots, and a table of sections)
//   payload        sections, each 64-byte aligned: token ids, last logits, state floats,
//                  history rows exactly as the cache stores them, snapshots' state and logits
//
// Reading verifies magic, version, header hash, sizes and checksum before anything is used,
// then checks every section against what the model's own cache expects; history rows are
// adopted straight from the mapping (never copied). Owns the format; knows nothing of what
// the agent stores in `extra`.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "engine/model/model.h"

namespace v4agent::engine {

inline constexpr char kSessionMagic[8] = {'V', '4', 'A', 'G', 'S', 'E', 'S', 'S'};
inline constexpr uint32_t kSessionVersion = 1;

struct SessionFileSection {
  std::string name;
  uint64_t offset = 0;  // from the start of the file
  uint64_t size = 0;
};

// What `v4agent session inspect` prints: read from the header and metadata only, after the
// checksum has been verified.
struct SessionFileInfo {
  std::string path;
  uint32_t version = 0;
  uint64_t file_size = 0;
  Json meta;  // the metadata as stored
  std::vector<SessionFileSection> sections;
  int64_t tokens = 0;
  int64_t snapshots = 0;
  uint64_t history_bytes = 0;
  uint64_t state_bytes = 0;
  uint64_t snapshot_bytes = 0;
};

// Opens `path`, checks header and checksum, parses the metadata. Never needs a model.
Result<SessionFileInfo> InspectSessionFile(const std::string& path);
// The header, metadata and token ids only, without reading the rest (no checksum: for
// indexing many files; Session::Load verifies everything before use).
Result<SessionFileInfo> ReadSessionFileHead(const std::string& path, std::vector<int32_t>* tokens);
// Whether a file with metadata `meta` was written by `model` with its numerics, simulations
// and KV layout; the error names the file and what differs.
Status CheckSessionModel(const Json& meta, const Model& model, const std::string& path);

}  // namespace v4agent::engine
