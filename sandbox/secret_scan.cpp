#include "sandbox/secret_scan.h"

#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <functional>

#include "common/strings.h"

namespace v4agent::sandbox {
namespace {

std::vector<std::string> Split(const std::string& path) {
  std::vector<std::string> out;
  for (const auto& c : StrSplit(path, '/')) {
    if (!c.empty() && c != ".") out.push_back(c);
  }
  return out;
}

bool MatchFrom(const std::vector<std::string>& pat, size_t pi, const std::vector<std::string>& name,
               size_t ni) {
  if (pi == pat.size()) return ni == name.size();
  if (pat[pi] == "**") {
    for (size_t k = ni; k <= name.size(); ++k) {
      if (MatchFrom(pat, pi + 1, name, k)) return true;
    }
    return false;
  }
  if (ni == name.size()) return false;
  if (fnmatch(pat[pi].c_str(), name[ni].c_str(), 0) != 0) return false;
  return MatchFrom(pat, pi + 1, name, ni + 1);
}

std::vector<std::string> PatternParts(const std::string& pattern) {
  std::vector<std::string> parts = Split(pattern);
  if (pattern.find('/') == std::string::npos) parts.insert(parts.begin(), "**");
  return parts;
}

struct Walker {
  const std::vector<std::vector<std::string>>& patterns;
  const std::vector<std::string>& skip;  // host paths not entered (hidden ones)
  uint64_t limit;
  SecretScan* scan;

  bool Matches(const std::vector<std::string>& rel) const {
    for (const auto& p : patterns) {
      if (MatchFrom(p, 0, rel, 0)) return true;
    }
    return false;
  }

  void Walk(const std::string& host, const std::string& inside, std::vector<std::string>* rel,
            dev_t dev) {
    DIR* d = opendir(host.c_str());
    if (!d) return;
    while (dirent* e = readdir(d)) {
      if (!std::strcmp(e->d_name, ".") || !std::strcmp(e->d_name, "..")) continue;
      if (scan->visited >= limit) {
        scan->truncated = true;
        break;
      }
      ++scan->visited;
      const std::string child_host = host + "/" + e->d_name;
      struct stat st;
      if (lstat(child_host.c_str(), &st) != 0 || S_ISLNK(st.st_mode)) continue;
      rel->push_back(e->d_name);
      const std::string child_inside = inside + "/" + e->d_name;
      if (Matches(*rel)) {
        if (S_ISDIR(st.st_mode)) {
          scan->masks.push_back({LateMount::kMaskDir, child_inside});
        } else if (S_ISREG(st.st_mode)) {
          scan->masks.push_back({LateMount::kMaskFile, child_inside});
        }
      } else if (S_ISDIR(st.st_mode) && st.st_dev == dev &&
                 std::find(skip.begin(), skip.end(), child_host) == skip.end() &&
                 !(rel->size() >= 2 && (*rel)[rel->size() - 2] == ".git" &&
                   (*rel)[rel->size() - 1] == "objects")) {
        Walk(child_host, child_inside, rel, dev);
      }
      rel->pop_back();
    }
    closedir(d);
  }
};

}  // namespace

bool SecretPatternMatches(const std::string& pattern, const std::string& rel) {
  return MatchFrom(PatternParts(pattern), 0, Split(rel), 0);
}

SecretScan ScanSecrets(const Profile& profile) {
  SecretScan scan;
  if (profile.secret_patterns.empty()) return scan;
  std::vector<std::vector<std::string>> patterns;
  for (const auto& p : profile.secret_patterns) patterns.push_back(PatternParts(p));
  std::vector<std::string> skip;
  for (const auto& h : profile.hidden_paths) skip.push_back(profile.rootfs + h);
  Walker w{patterns, skip, profile.secret_scan_limit, &scan};
  auto walk_root = [&](const std::string& host, const std::string& inside) {
    struct stat st;
    if (stat(host.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return;
    std::vector<std::string> rel;
    w.Walk(host, inside, &rel, st.st_dev);
  };
  for (const WritableRoot& root : WritableRoots(profile)) walk_root(root.host, root.inside);
  for (const std::string& r : profile.secret_roots) {
    walk_root(profile.rootfs.empty() ? r : profile.rootfs + r, r);
  }
  return scan;
}

}  // namespace v4agent::sandbox
