// Fresh workspaces at an instance's base commit from a local directory of git mirrors, with
// no network and nothing from after the base commit: the workspace's repository is created
// empty and fetches only the base commit (and its ancestors), so later commits, tags and the
// fix itself are neither reachable (`git log --all`) nor present by hash.
#pragma once

#include <string>

#include "common/status.h"

namespace v4agent::batch {

// The mirror of `repo` ("owner/name") under `repos_dir`: owner__name.git, owner__name,
// owner/name.git or owner/name, the first that is a git repository. The error lists the
// places looked at.
Result<std::string> FindMirror(const std::string& repos_dir, const std::string& repo);

// Creates `dest` (which must not exist) as a repository whose HEAD is `commit` (a full id)
// with a clean work tree, on a branch named "main"; "git diff" in it then shows the agent's
// changes. The error names the mirror and the commit when it is not there.
Status CheckoutAt(const std::string& mirror, const std::string& commit, const std::string& dest);

// The workspace's diff against HEAD, new files included (what a prediction's model_patch is).
Result<std::string> WorkspaceDiff(const std::string& workspace);

}  // namespace v4agent::batch
