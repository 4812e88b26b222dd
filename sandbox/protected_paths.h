// Protected paths inside writable binds (.git/hooks, .git/config, rc files, ...): what the
// sandbox's init must mount right before each command so that none of them can be written,
// renamed, removed or replaced, and the host-side check after the command that nothing
// protected changed anyway.
//
// The mechanism, per protected path inside a writable bind:
// - every directory between the bind and the path is pinned: bound onto itself, it becomes a
//   mount point, which rename(2), rmdir(2) and unlink(2) refuse (EBUSY) inside the sandbox;
// - the path itself is bound onto itself read-only (a file or a whole tree);
// - a name that does not exist yet gets a placeholder: an empty directory created on the host
//   for the duration of the command and bound read-only, so nothing can be created there (git
//   ignores empty directories, so the placeholder never shows in `git status` or a diff);
// - watched paths (e.g. .git/commondir, which git cannot have as a placeholder) and everything
//   above are fingerprinted on the host before the command and compared after it; a path that
//   appeared is moved to a quarantine directory outside the workspace, a change is reported.
// Never follows a symlink inside a writable bind: a symlinked component is not pinned but its
// link target is fingerprinted, so swapping it is reported.
#pragma once

#include <sys/stat.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "sandbox/profile.h"

namespace v4agent::sandbox {

// A mount the sandbox's init makes after the command arrives and before it runs. Paths are as
// the sandbox sees them.
struct LateMount {
  enum Kind : char {
    kPin = 'p',       // bind onto itself (a mount point), attributes unchanged
    kReadOnly = 'r',  // bind onto itself read-only, recursively
    kMaskFile = 'f',  // an empty read-only file over it
    kMaskDir = 'd',   // an empty read-only directory over it
  };
  Kind kind;
  std::string path;
};

// A writable bind as the host and the sandbox see it.
struct WritableRoot {
  std::string host;    // canonical host path
  std::string inside;  // path inside the sandbox
};
std::vector<WritableRoot> WritableRoots(const Profile& profile);

class ProtectionGuard {
 public:
  // Plans the mounts for `profile`'s protected paths, creates the placeholders and takes the
  // fingerprint. Call right before the command is sent; Finish() after it ended.
  static Result<std::unique_ptr<ProtectionGuard>> Begin(const Profile& profile);
  ~ProtectionGuard();  // removes placeholders if Finish() was not called
  ProtectionGuard(const ProtectionGuard&) = delete;
  ProtectionGuard& operator=(const ProtectionGuard&) = delete;

  const std::vector<LateMount>& mounts() const { return mounts_; }
  // Compares with the fingerprint (one line per change, naming the path), quarantines paths
  // that appeared, removes the placeholders.
  std::vector<std::string> Finish();

 private:
  ProtectionGuard() = default;
  void RemovePlaceholders();
  std::vector<LateMount> mounts_;
  std::vector<std::string> placeholders_;      // host paths we created
  std::map<std::string, std::string> before_;  // host path -> fingerprint
  bool finished_ = false;
};

// lstat(2) of a protected path for a sandbox's mount plan, false when it is missing or is a
// placeholder of a command running now: a placeholder is removed when its last command ends,
// so a sandbox that planned to bind it could find it gone when its init opens it (two
// commands on one workspace at once: a foreach with `parallel`). Such a name is a
// placeholder again, of this sandbox's own command, when that command starts.
bool LstatProtectedPath(const std::string& path, struct stat* st);

// Where quarantined paths go: $TMPDIR (or /tmp)/v4agent-quarantine-<euid>, mode 0700.
std::string QuarantineRoot();

}  // namespace v4agent::sandbox
