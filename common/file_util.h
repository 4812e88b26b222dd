// Whole-file helpers: read, write, atomic replace, temporary directories.
// Every error names the path. Never follows a path it was not given (no globbing, no ~).
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace v4agent {

Result<std::string> ReadFile(const std::string& path);
Status WriteFile(const std::string& path, std::string_view contents);
// Writes to a temporary file beside `path`, fsyncs it, then renames it over `path`.
Status WriteFileAtomic(const std::string& path, std::string_view contents);
bool PathExists(const std::string& path);
// Creates a fresh directory under $TMPDIR (or /tmp) named prefix-XXXXXX.
Result<std::string> MakeTempDir(std::string_view prefix);
// Removes a file or a directory tree (no error when absent).
Status RemoveAll(const std::string& path);

// A temporary directory removed with everything in it on destruction. For tests and scratch.
class ScopedTempDir {
 public:
  ScopedTempDir();  // V4_CHECKs that the directory could be made.
  ~ScopedTempDir();
  ScopedTempDir(const ScopedTempDir&) = delete;
  ScopedTempDir& operator=(const ScopedTempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace v4agent
