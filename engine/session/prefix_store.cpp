#include "engine/session/prefix_store.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>

#include "common/hash.h"
#include "common/logging.h"
#include "common/strings.h"
#include "engine/session/session_file.h"

namespace v4agent::engine {
namespace {

namespace fs = std::filesystem;

int64_t MtimeNs(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0;
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

void Touch(PrefixEntry& e) {
  ::utimensat(AT_FDCWD, e.path.c_str(), nullptr, 0);  // a failed touch only ages the entry
  e.last_used_ns = MtimeNs(e.path);
}

// Every *.v4s file of `dir` with its ids and metadata (null when unreadable), by path.
Result<std::vector<std::pair<PrefixEntry, Json>>> Scan(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return NotFoundError(StrCat(dir, ": not a directory"));
  std::vector<std::pair<PrefixEntry, Json>> out;
  for (const auto& f : fs::directory_iterator(dir, ec)) {
    if (!f.is_regular_file() || f.path().extension() != ".v4s") continue;
    PrefixEntry e;
    e.path = f.path().string();
    e.bytes = f.file_size(ec);
    e.last_used_ns = MtimeNs(e.path);
    auto head = ReadSessionFileHead(e.path, &e.tokens);
    if (!head.ok()) {
      e.tokens.clear();
      e.why_not = head.status().message();
    }
    out.emplace_back(std::move(e), head.ok() ? head->meta : Json());
  }
  if (ec) return IoError(StrCat(dir, ": cannot list: ", ec.message()));
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a.first.path < b.first.path; });
  return out;
}

}  // namespace

Result<std::vector<PrefixEntry>> ListSessionDir(const std::string& dir) {
  V4_ASSIGN_OR_RETURN(auto scanned, Scan(dir));
  std::vector<PrefixEntry> out;
  for (auto& [e, meta] : scanned) out.push_back(std::move(e));
  return out;
}

Result<std::unique_ptr<PrefixStore>> PrefixStore::Open(const std::string& dir, const Model* model,
                                                       const PrefixStoreOptions& options) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return IoError(StrCat(dir, ": cannot create the session store: ", ec.message()));
  auto store = std::unique_ptr<PrefixStore>(new PrefixStore(dir, model, options));
  V4_ASSIGN_OR_RETURN(auto scanned, Scan(dir));
  for (auto& [e, meta] : scanned) {
    if (e.why_not.empty()) {
      if (Status st = CheckSessionModel(meta, *model, e.path); !st.ok()) {
        e.tokens.clear();
        e.why_not = st.message();
      } else {
        e.usable = true;
      }
    }
    store->entries_.push_back(std::move(e));
  }
  store->Rebuild();
  return store;
}

void PrefixStore::Rebuild() {
  radix_.Clear();
  for (size_t i = 0; i < entries_.size(); ++i) {
    if (entries_[i].usable) radix_.Insert(entries_[i].tokens, static_cast<int64_t>(i));
  }
}

uint64_t PrefixStore::total_bytes() const {
  uint64_t t = 0;
  for (const auto& e : entries_) t += e.bytes;
  return t;
}

Result<PrefixStore::Taken> PrefixStore::Take(Model* model, std::span<const int32_t> ids,
                                             const SessionOptions& options) {
  Taken out;
  const TokenRadix::Match m = radix_.Longest(ids);
  if (m.key < 0 || m.length < options_.min_tokens) return out;
  PrefixEntry& e = entries_[static_cast<size_t>(m.key)];
  auto loaded = Session::Load(model, e.path, options);
  if (!loaded.ok()) {
    // Evicted by another process, or damaged: a cache miss. A damaged file is removed.
    V4_LOG(WARNING) << "session store: dropping " << e.path << ": " << loaded.status().message();
    if (loaded.status().code() == StatusCode::kDataLoss) {
      std::error_code ec;
      fs::remove(e.path, ec);
    }
    entries_.erase(entries_.begin() + m.key);
    Rebuild();
    return out;
  }
  Touch(e);
  out.session = std::move(loaded).value();
  if (m.length < out.session->length()) {
    V4_RETURN_IF_ERROR(out.session->Rewind(m.length));
  }
  out.replayed = out.session->Stats().tokens_replayed;
  out.from_store = m.length - out.replayed;
  return out;
}

Status PrefixStore::Put(const Session& session) {
  const auto& tokens = session.tokens();
  if (static_cast<int64_t>(tokens.size()) < options_.min_tokens) return Status::Ok();
  const TokenRadix::Match m = radix_.Longest(tokens);
  if (m.key >= 0 && m.length == static_cast<int64_t>(tokens.size()) &&
      entries_[static_cast<size_t>(m.key)].tokens.size() == tokens.size()) {
    Touch(entries_[static_cast<size_t>(m.key)]);
    return Status::Ok();
  }
  V4_ASSIGN_OR_RETURN(ModelFingerprint fp, model_->Fingerprint());
  Hasher h;
  h.UpdateValue(fp.config_hash).UpdateValue(fp.tensor_digest);
  h.Update(NumericsName(model_->options().numerics));
  h.Update(tokens.data(), tokens.size() * sizeof(int32_t));
  PrefixEntry e;
  e.path = (fs::path(dir_) / (Hex64(h.Digest()) + ".v4s")).string();
  V4_RETURN_IF_ERROR(session.Save(e.path));
  std::error_code ec;
  e.bytes = fs::file_size(e.path, ec);
  e.tokens = tokens;
  e.usable = true;
  Touch(e);
  entries_.push_back(std::move(e));
  Evict(entries_.back().path);
  Rebuild();
  return Status::Ok();
}

void PrefixStore::Evict(const std::string& keep) {
  std::vector<size_t> order(entries_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return entries_[a].last_used_ns < entries_[b].last_used_ns;
  });
  uint64_t total = total_bytes();
  std::vector<bool> drop(entries_.size(), false);
  // The oldest go first; the file just written goes last, only when it alone is over budget.
  std::stable_partition(order.begin(), order.end(),
                        [&](size_t i) { return entries_[i].path != keep; });
  for (size_t i : order) {
    if (total <= options_.budget_bytes) break;
    std::error_code ec;
    fs::remove(entries_[i].path, ec);
    total -= entries_[i].bytes;
    drop[i] = true;
  }
  std::vector<PrefixEntry> kept;
  for (size_t i = 0; i < entries_.size(); ++i) {
    if (!drop[i]) kept.push_back(std::move(entries_[i]));
  }
  entries_ = std::move(kept);
}

}  // namespace v4agent::engine
