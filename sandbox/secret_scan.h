// Secret files by glob pattern (Profile::secret_patterns): finds, right before a command
// starts, every path under the writable binds and the secret roots that a pattern matches, and
// turns each into a mask the sandbox's init mounts (an empty read-only file or directory).
// Patterns: '**' is any number of directories (also none), '*' '?' '[...]' match within one
// name (a leading dot too: hiding more is the safe side). A pattern without '/' matches the
// name at any depth, as in .gitignore.
#pragma once

#include <string>
#include <vector>

#include "sandbox/profile.h"
#include "sandbox/protected_paths.h"

namespace v4agent::sandbox {

// Whether `rel` (a path relative to the scanned root, '/'-separated) matches `pattern`.
bool SecretPatternMatches(const std::string& pattern, const std::string& rel);

struct SecretScan {
  std::vector<LateMount> masks;  // paths as the sandbox sees them
  uint64_t visited = 0;
  bool truncated = false;  // the entry limit stopped the walk
};

// Walks the writable binds and `profile.secret_roots`; mount points and .git directories'
// object stores are not entered.
SecretScan ScanSecrets(const Profile& profile);

}  // namespace v4agent::sandbox
