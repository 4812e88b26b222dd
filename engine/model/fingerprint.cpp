#include "engine/model/fingerprint.h"

#include <algorithm>
#include <cstdio>

#include "common/hash.h"
#include "common/json.h"

namespace v4agent::engine {

std::string Hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string ModelFingerprint::ToString() const {
  return "config " + Hex64(config_hash) + " tensors " + Hex64(tensor_digest);
}

Result<ModelFingerprint> FingerprintOf(const std::string& config_path, const Checkpoint& ckpt) {
  ModelFingerprint f;
  // Canonical form: keys sorted, no whitespace, so reformatting the file changes nothing.
  V4_ASSIGN_OR_RETURN(Json config, ReadJsonFile(config_path));
  f.config_hash = Hash64(config.dump());
  std::vector<const TensorView*> tensors = ckpt.tensors();
  std::sort(tensors.begin(), tensors.end(),
            [](const TensorView* a, const TensorView* b) { return a->name < b->name; });
  Hasher h;
  for (const TensorView* t : tensors) {
    h.Update(t->name).UpdateValue(static_cast<int>(t->dtype)).UpdateValue(t->nbytes);
    for (int64_t d : t->shape) h.UpdateValue(d);
    const size_t edge = std::min<size_t>(256, t->nbytes);
    h.Update(t->data, edge).Update(t->data + t->nbytes - edge, edge);
  }
  f.tensor_digest = h.Digest();
  return f;
}

}  // namespace v4agent::engine
