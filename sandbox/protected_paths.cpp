#include "sandbox/protected_paths.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <set>

#include "common/file_util.h"
#include "common/strings.h"

namespace v4agent::sandbox {
namespace {

namespace fs = std::filesystem;

// Placeholders are shared by sandboxes that run at the same time on one workspace: the last
// one to finish removes it (removing a mount point on the host would detach it in the other
// sandbox).
std::mutex g_placeholder_mu;
std::map<std::string, int> g_placeholder_refs;

constexpr size_t kMaxTreeEntries = 4096;
constexpr uint64_t kMaxHashedBytes = 4 << 20;

uint64_t HashFile(const std::string& path, uint64_t size) {
  // FNV-1a over the contents: a tripwire, not a MAC (the sandbox cannot write here at all).
  uint64_t h = 1469598103934665603ull;
  if (size > kMaxHashedBytes) return h;
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return h ^ static_cast<uint64_t>(errno);
  char buf[65536];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) {
    for (ssize_t i = 0; i < n; ++i) {
      h ^= static_cast<unsigned char>(buf[i]);
      h *= 1099511628211ull;
    }
  }
  close(fd);
  return h;
}

// One line per entry: type, identity, size, mode, contents; a directory lists its tree.
void Describe(const std::string& path, const std::string& rel, std::string* out, size_t* budget) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) {
    *out += StrCat(rel, " absent\n");
    return;
  }
  if (*budget == 0) {
    *out += StrCat(rel, " ...\n");
    return;
  }
  --*budget;
  const std::string id = StrCat(" ino=", static_cast<uint64_t>(st.st_ino),
                                " mode=", static_cast<uint64_t>(st.st_mode & 07777));
  if (S_ISLNK(st.st_mode)) {
    char target[4096];
    const ssize_t n = readlink(path.c_str(), target, sizeof(target));
    *out += StrCat(rel, " symlink", id, " -> ",
                   std::string(target, static_cast<size_t>(std::max<ssize_t>(n, 0))), "\n");
  } else if (S_ISREG(st.st_mode)) {
    *out += StrCat(rel, " file", id, " size=", static_cast<uint64_t>(st.st_size),
                   " links=", static_cast<uint64_t>(st.st_nlink),
                   " hash=", HashFile(path, static_cast<uint64_t>(st.st_size)), "\n");
  } else if (S_ISDIR(st.st_mode)) {
    *out += StrCat(rel, " dir", id, "\n");
    std::vector<std::string> names;
    if (DIR* d = opendir(path.c_str())) {
      while (dirent* e = readdir(d)) {
        if (std::strcmp(e->d_name, ".") && std::strcmp(e->d_name, "..")) names.push_back(e->d_name);
      }
      closedir(d);
    }
    std::sort(names.begin(), names.end());
    for (const auto& n : names) Describe(path + "/" + n, rel + "/" + n, out, budget);
  } else {
    *out += StrCat(rel, " special", id, "\n");
  }
}

// A pinned directory's identity only: its contents change legitimately (.git/objects).
std::string Identity(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) return "absent";
  return StrCat(S_ISDIR(st.st_mode)   ? "dir"
                : S_ISLNK(st.st_mode) ? "symlink"
                                      : "other",
                " ino=", static_cast<uint64_t>(st.st_ino));
}

std::string Tree(const std::string& path) {
  std::string out;
  size_t budget = kMaxTreeEntries;
  Describe(path, ".", &out, &budget);
  return out;
}

bool IsEmptyDir(const std::string& path) {
  DIR* d = opendir(path.c_str());
  if (!d) return false;
  bool empty = true;
  while (dirent* e = readdir(d)) {
    if (std::strcmp(e->d_name, ".") && std::strcmp(e->d_name, "..")) empty = false;
  }
  closedir(d);
  return empty;
}

// Moves `path` out of the workspace into the quarantine; returns where it went or why not
// (then it is left in place, and the report says so).
std::string Quarantine(const std::string& path) {
  static std::atomic<int> counter{0};
  const std::string root = QuarantineRoot();
  // Ours alone: a directory of that name owned by someone else is not used.
  if (mkdir(root.c_str(), 0700) != 0 && errno != EEXIST) {
    return StrCat("not moved (", root, ": ", std::strerror(errno), ")");
  }
  struct stat st;
  if (lstat(root.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid()) {
    return StrCat("not moved (", root, " is not a directory of ours)");
  }
  const std::string dir = StrCat(root, "/", static_cast<int64_t>(getpid()), "-", counter++);
  std::error_code ec;
  fs::create_directories(dir, ec);
  const std::string dest = dir + "/" + fs::path(path).filename().string();
  if (rename(path.c_str(), dest.c_str()) == 0) return dest;
  // Another filesystem: copy, then remove.
  fs::copy(path, dest, fs::copy_options::recursive | fs::copy_options::copy_symlinks, ec);
  if (ec) return StrCat("not moved (", ec.message(), ")");
  fs::remove_all(path, ec);
  if (ec) return StrCat(dest, " (copied; removing the original failed: ", ec.message(), ")");
  return dest;
}

std::vector<std::string> Components(const std::string& rel) {
  std::vector<std::string> out;
  for (const auto& c : StrSplit(rel, '/')) {
    if (!c.empty() && c != ".") out.push_back(c);
  }
  return out;
}

}  // namespace

bool LstatProtectedPath(const std::string& path, struct stat* st) {
  // Under the lock placeholders are made and removed with, so the answer cannot be a
  // placeholder that is about to go.
  std::lock_guard<std::mutex> lock(g_placeholder_mu);
  if (g_placeholder_refs.count(path)) return false;
  return lstat(path.c_str(), st) == 0;
}

std::string QuarantineRoot() {
  const char* tmp = std::getenv("TMPDIR");
  return StrCat(tmp && *tmp ? tmp : "/tmp", "/v4agent-quarantine-",
                static_cast<uint64_t>(geteuid()));
}

std::vector<WritableRoot> WritableRoots(const Profile& profile) {
  std::vector<WritableRoot> roots;
  for (const Bind& b : profile.binds) {
    if (!b.writable) continue;
    std::error_code ec;
    const fs::path src = fs::canonical(b.source, ec);
    if (ec) continue;  // Prepare() has reported it
    roots.push_back({src.string(), b.target.empty() ? src.string() : b.target});
  }
  return roots;
}

Result<std::unique_ptr<ProtectionGuard>> ProtectionGuard::Begin(const Profile& profile) {
  auto g = std::unique_ptr<ProtectionGuard>(new ProtectionGuard());
  std::set<std::string> pinned, planned;
  auto relative_to = [](const std::string& path, const std::string& root) -> std::string {
    if (path == root) return ".";
    if (StartsWith(path, root + "/")) return path.substr(root.size() + 1);
    return "";
  };
  for (const WritableRoot& root : WritableRoots(profile)) {
    auto plan = [&](const std::string& entry, bool watch_only) -> Status {
      std::string rel = entry;
      if (!rel.empty() && rel[0] == '/') {
        rel = relative_to(rel, root.host);
        if (rel.empty()) return Status::Ok();  // not under this root
      }
      const std::vector<std::string> comps = Components(rel);
      if (comps.empty()) return Status::Ok();
      std::string host = root.host, inside = root.inside;
      for (size_t i = 0; i < comps.size(); ++i) {
        host += "/" + comps[i];
        inside += "/" + comps[i];
        const bool last = i + 1 == comps.size();
        // Inside a placeholder made for an earlier entry (.git for .git/hooks, then
        // .git/config): already read-only and empty as a whole.
        if (std::find(g->placeholders_.begin(), g->placeholders_.end(), host) !=
            g->placeholders_.end()) {
          return Status::Ok();
        }
        struct stat st;
        // Under the placeholder lock: another command's placeholder is one of ours too (held
        // until both ended), never a directory of the workspace that it may remove meanwhile.
        std::unique_lock<std::mutex> lock(g_placeholder_mu);
        const bool shared = !watch_only && g_placeholder_refs.count(host) > 0;
        if (shared || lstat(host.c_str(), &st) != 0) {
          if (!shared && errno != ENOENT) {
            return ErrnoError(StrCat("sandbox: protected path ", host), errno);
          }
          if (watch_only) {
            lock.unlock();
            g->before_.emplace(host, Tree(host));
            return Status::Ok();
          }
          // A missing name: an empty directory, held read-only while the command runs.
          if (!shared && mkdir(host.c_str(), 0755) != 0 && errno != EEXIST) {
            return ErrnoError(StrCat("sandbox: placeholder for protected path ", host), errno);
          }
          ++g_placeholder_refs[host];
          lock.unlock();
          g->placeholders_.push_back(host);
          if (planned.insert(inside).second) {
            g->mounts_.push_back({LateMount::kReadOnly, inside});
          }
          g->before_.emplace(host, "placeholder");
          return Status::Ok();
        }
        lock.unlock();
        if (S_ISLNK(st.st_mode)) {
          // Not pinned (a mount cannot sit on a symlink); a swap shows in the fingerprint.
          g->before_.emplace(host, Tree(host));
          return Status::Ok();
        }
        if (!last && S_ISDIR(st.st_mode)) {
          if (!watch_only && pinned.insert(inside).second) {
            g->mounts_.push_back({LateMount::kPin, inside});
          }
          g->before_.emplace(host, Identity(host));
          continue;
        }
        // The path itself, or a file where a directory was expected (a gitfile `.git`, which
        // redirects git elsewhere): read-only as a whole.
        if (!watch_only && planned.insert(inside).second) {
          g->mounts_.push_back({LateMount::kReadOnly, inside});
        }
        g->before_.emplace(host, Tree(host));
        return Status::Ok();
      }
      return Status::Ok();
    };
    for (const std::string& p : profile.protected_paths) {
      if (Status s = plan(p, false); !s.ok()) {
        g->RemovePlaceholders();
        return s;
      }
    }
    for (const std::string& p : profile.watched_paths) {
      if (Status s = plan(p, true); !s.ok()) {
        g->RemovePlaceholders();
        return s;
      }
    }
  }
  // Outer mounts first: a pin of .git before the read-only bind of .git/hooks inside it.
  std::stable_sort(g->mounts_.begin(), g->mounts_.end(), [](const auto& a, const auto& b) {
    return std::count(a.path.begin(), a.path.end(), '/') <
           std::count(b.path.begin(), b.path.end(), '/');
  });
  return g;
}

std::vector<std::string> ProtectionGuard::Finish() {
  std::vector<std::string> changes;
  finished_ = true;
  std::set<std::string> placeholder_set(placeholders_.begin(), placeholders_.end());
  for (const auto& [host, was] : before_) {
    if (placeholder_set.count(host)) {
      struct stat st;
      if (lstat(host.c_str(), &st) != 0) {
        changes.push_back(StrCat(host, ": the placeholder was removed"));
      } else if (!S_ISDIR(st.st_mode) || !IsEmptyDir(host)) {
        changes.push_back(StrCat(host, ": created while protected; moved to ", Quarantine(host)));
      }
      continue;
    }
    // A pinned directory was fingerprinted by identity only (one line, no newline).
    const std::string now = was.find('\n') == std::string::npos ? Identity(host) : Tree(host);
    if (now == was) continue;
    if (StartsWith(was, ". absent")) {
      changes.push_back(StrCat(host, ": appeared (a watched path); moved to ", Quarantine(host)));
    } else {
      changes.push_back(StrCat(host, ": changed while protected (before: ",
                               StripWhitespace(was.substr(0, was.find('\n'))),
                               "; after: ", StripWhitespace(now.substr(0, now.find('\n'))), ")"));
    }
  }
  RemovePlaceholders();
  return changes;
}

void ProtectionGuard::RemovePlaceholders() {
  std::lock_guard<std::mutex> lock(g_placeholder_mu);
  for (const auto& p : placeholders_) {
    auto it = g_placeholder_refs.find(p);
    if (it == g_placeholder_refs.end() || --it->second > 0) continue;
    g_placeholder_refs.erase(it);
    rmdir(p.c_str());  // only while empty: a non-empty one was reported and quarantined
  }
  placeholders_.clear();
}

ProtectionGuard::~ProtectionGuard() {
  if (!finished_) RemovePlaceholders();
}

}  // namespace v4agent::sandbox
