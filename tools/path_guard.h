// Host-side path safety for the file tools: every path is resolved by the kernel beneath the
// workspace (openat2 RESOLVE_BENEATH; writes also RESOLVE_NO_SYMLINKS), so absolute paths
// outside it, `..` escapes, symlinked parents and symlinks swapped in between check and use
// all fail. Writes are atomic (temp file + rename) and keep the file's mode. Never consults
// the policy: callers do that first.
#pragma once

#include <string>

#include "common/status.h"

namespace v4agent::tools {

// A path given by the model (relative to the workspace, or absolute inside it) as a clean
// relative path ("." for the workspace itself). Error when it leaves the workspace.
Result<std::string> Relativize(const std::string& workspace, const std::string& path);

// Opens beneath `dir_fd`; `for_write` forbids any symlink on the way.
Result<int> OpenBeneath(int dir_fd, const std::string& rel, int flags, bool for_write,
                        mode_t mode = 0644);

Result<std::string> ReadBeneath(int dir_fd, const std::string& rel, size_t max_bytes);

// Writes `content` to `rel` atomically; creates missing parent directories when `make_parents`.
// An existing file keeps its mode.
Status WriteBeneath(int dir_fd, const std::string& rel, const std::string& content,
                    bool make_parents);

Status RemoveBeneath(int dir_fd, const std::string& rel);

bool LooksBinary(const std::string& head);

// Whether `path` (relative to `workspace`, or absolute) names something inside the workspace
// once `..` and symbolic links are resolved. For paths handed to a sandboxed program, which
// resolves them itself; host-side access goes through OpenBeneath instead.
bool ResolvesBeneath(const std::string& workspace, const std::string& path);

}  // namespace v4agent::tools
