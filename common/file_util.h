// Whole-file helpers: read, write, atomic replace, temporary directories.
// Every error names the path. Never follows a path it was not given (no globbing, no ~).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"

namespace v4agent {

Result<std::string> ReadFile(const std::string& path);
Status WriteFile(const std::string& path, std::string_view contents);
// Writes to a temporary file beside `path`, fsyncs it, then renames it over `path`.
Status WriteFileAtomic(const std::string& path, std::string_view contents);
bool PathExists(const std::string& path);
// write(2) to a pipe whose reader may be gone: fails with EPIPE instead of raising SIGPIPE
// (which would kill the whole process). Returns what write returns.
long WritePipeNoSignal(int fd, const void* data, size_t size);

// A file written in pieces and published atomically: bytes go to a temporary file beside
// `path`; Commit() fsyncs it, renames it over `path` and fsyncs the directory. Destroyed
// without Commit(), the temporary file is removed and `path` is untouched.
class AtomicFileWriter {
 public:
  static Result<std::unique_ptr<AtomicFileWriter>> Create(const std::string& path);
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  Status Write(const void* data, size_t size);
  // Overwrites bytes already written (a header filled in last).
  Status WriteAt(uint64_t offset, const void* data, size_t size);
  uint64_t offset() const { return offset_; }
  Status Commit();

 private:
  AtomicFileWriter(std::string path, std::string tmp, int fd)
      : path_(std::move(path)), tmp_(std::move(tmp)), fd_(fd) {}
  std::string path_, tmp_;
  int fd_ = -1;
  uint64_t offset_ = 0;
  bool committed_ = false;
};
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
