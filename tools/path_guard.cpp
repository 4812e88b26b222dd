#include "tools/path_guard.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "common/strings.h"
#include "common/unique_fd.h"

namespace v4agent::tools {
namespace {

int OpenAt2(int dir, const std::string& rel, int flags, mode_t mode, uint64_t resolve) {
  struct open_how how {};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  how.mode = (flags & O_CREAT) ? mode : 0;
  how.resolve = resolve;
  return static_cast<int>(syscall(SYS_openat2, dir, rel.c_str(), &how, sizeof(how)));
}

std::string Explain(const std::string& rel, int err) {
  switch (err) {
    case EXDEV:
      return StrCat(rel, ": the path leaves the workspace");
    case ELOOP:
      return StrCat(rel,
                    ": a symbolic link is in the way (file tools do not follow links when "
                    "writing)");
    case ENOENT:
      return StrCat(rel, ": no such file or directory");
    case EISDIR:
      return StrCat(rel, ": is a directory");
    case ENOTDIR:
      return StrCat(rel, ": a part of the path is not a directory");
    case EACCES:
    case EPERM:
      return StrCat(rel, ": permission denied");
    default:
      return StrCat(rel, ": ", std::strerror(err));
  }
}

}  // namespace

Result<std::string> Relativize(const std::string& workspace, const std::string& path) {
  if (path.empty()) return InvalidArgumentError("the path is empty");
  if (path.find('\0') != std::string::npos) return InvalidArgumentError("the path contains NUL");
  std::filesystem::path p(path);
  if (p.is_absolute()) {
    p = p.lexically_normal();
    auto rel = p.lexically_relative(workspace);
    if (rel.empty() || *rel.begin() == "..") {
      return PermissionDeniedError(
          StrCat(path, ": outside the workspace ", workspace, " (use a path inside it)"));
    }
    p = rel;
  }
  p = p.lexically_normal();
  std::string s = p.string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  if (s.empty()) s = ".";
  if (s == ".." || StartsWith(s, "../")) {
    return PermissionDeniedError(StrCat(path, ": outside the workspace (\"..\" leaves it)"));
  }
  return s;
}

Result<int> OpenBeneath(int dir_fd, const std::string& rel, int flags, bool for_write,
                        mode_t mode) {
  uint64_t resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  if (for_write) resolve |= RESOLVE_NO_SYMLINKS;
  int fd = OpenAt2(dir_fd, rel, flags, mode, resolve);
  if (fd < 0) {
    const int err = errno;
    if (err == EXDEV || err == ELOOP) return PermissionDeniedError(Explain(rel, err));
    if (err == ENOENT) return NotFoundError(Explain(rel, err));
    return ErrnoError(Explain(rel, err), err);
  }
  return fd;
}

Result<std::string> ReadBeneath(int dir_fd, const std::string& rel, size_t max_bytes) {
  V4_ASSIGN_OR_RETURN(int raw, OpenBeneath(dir_fd, rel, O_RDONLY, false));
  UniqueFd fd(raw);
  struct stat st;
  if (fstat(fd.get(), &st) != 0) return ErrnoError(rel, errno);
  if (S_ISDIR(st.st_mode)) return FailedPreconditionError(Explain(rel, EISDIR));
  if (!S_ISREG(st.st_mode)) return FailedPreconditionError(rel + ": not a regular file");
  std::string out;
  char buf[65536];
  for (;;) {
    const ssize_t n = read(fd.get(), buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(rel, errno);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > max_bytes) {
      return ResourceExhaustedError(
          StrCat(rel, ": larger than ", max_bytes, " bytes; view it by line range"));
    }
  }
  return out;
}

Status WriteBeneath(int dir_fd, const std::string& rel, const std::string& content,
                    bool make_parents) {
  std::filesystem::path p(rel);
  const std::string parent = p.has_parent_path() ? p.parent_path().string() : ".";
  const std::string leaf = p.filename().string();
  if (leaf.empty() || leaf == "." || leaf == "..") {
    return InvalidArgumentError(StrCat(rel, ": not a file path"));
  }
  if (make_parents && parent != ".") {
    std::string acc;
    for (const auto& part : std::filesystem::path(parent)) {
      acc = acc.empty() ? part.string() : acc + "/" + part.string();
      auto dir = OpenBeneath(dir_fd, acc, O_PATH | O_DIRECTORY, true);
      if (dir.ok()) {
        close(*dir);
        continue;
      }
      // mkdirat on the parent we already resolved safely.
      const auto up = std::filesystem::path(acc).has_parent_path()
                          ? std::filesystem::path(acc).parent_path().string()
                          : std::string(".");
      V4_ASSIGN_OR_RETURN(int up_fd, OpenBeneath(dir_fd, up, O_PATH | O_DIRECTORY, true));
      UniqueFd guard(up_fd);
      if (mkdirat(up_fd, std::filesystem::path(acc).filename().c_str(), 0755) != 0 &&
          errno != EEXIST) {
        return ErrnoError(StrCat(acc, ": cannot create the directory"), errno);
      }
    }
  }
  V4_ASSIGN_OR_RETURN(int pfd, OpenBeneath(dir_fd, parent, O_PATH | O_DIRECTORY, true));
  UniqueFd parent_fd(pfd);
  mode_t mode = 0644;
  struct stat st;
  if (fstatat(parent_fd.get(), leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
    if (S_ISLNK(st.st_mode)) {
      return PermissionDeniedError(Explain(rel, ELOOP));
    }
    if (S_ISDIR(st.st_mode)) return FailedPreconditionError(Explain(rel, EISDIR));
    mode = st.st_mode & 07777;
  }
  static std::atomic<int> counter{0};
  const std::string tmp =
      StrCat(".", leaf, ".v4tmp-", static_cast<int64_t>(getpid()), "-", counter++);
  int wfd = openat(parent_fd.get(), tmp.c_str(),
                   O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
  if (wfd < 0) return ErrnoError(StrCat(rel, ": cannot write"), errno);
  UniqueFd out(wfd);
  fchmod(out.get(), mode);
  size_t off = 0;
  while (off < content.size()) {
    const ssize_t n = write(out.get(), content.data() + off, content.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      unlinkat(parent_fd.get(), tmp.c_str(), 0);
      return ErrnoError(StrCat(rel, ": write failed"), err);
    }
    off += static_cast<size_t>(n);
  }
  if (renameat(parent_fd.get(), tmp.c_str(), parent_fd.get(), leaf.c_str()) != 0) {
    const int err = errno;
    unlinkat(parent_fd.get(), tmp.c_str(), 0);
    return ErrnoError(StrCat(rel, ": cannot replace the file"), err);
  }
  return Status::Ok();
}

Status RemoveBeneath(int dir_fd, const std::string& rel) {
  std::filesystem::path p(rel);
  const std::string parent = p.has_parent_path() ? p.parent_path().string() : ".";
  V4_ASSIGN_OR_RETURN(int pfd, OpenBeneath(dir_fd, parent, O_PATH | O_DIRECTORY, true));
  UniqueFd parent_fd(pfd);
  if (unlinkat(parent_fd.get(), p.filename().c_str(), 0) != 0) {
    return ErrnoError(Explain(rel, errno), errno);
  }
  return Status::Ok();
}

bool LooksBinary(const std::string& head) {
  const size_t n = std::min<size_t>(head.size(), 8192);
  size_t odd = 0;
  for (size_t i = 0; i < n; ++i) {
    const unsigned char c = static_cast<unsigned char>(head[i]);
    if (c == 0) return true;
    if (c < 0x09 || (c > 0x0d && c < 0x20)) ++odd;
  }
  return n > 0 && odd * 10 > n;
}

bool ResolvesBeneath(const std::string& workspace, const std::string& path) {
  if (path.empty()) return true;
  std::error_code ec;
  const std::filesystem::path p = std::filesystem::path(path).is_absolute()
                                      ? std::filesystem::path(path)
                                      : std::filesystem::path(workspace) / path;
  const std::string d = std::filesystem::weakly_canonical(p, ec).string();
  return !ec && (d == workspace || StartsWith(d, workspace + "/"));
}

}  // namespace v4agent::tools
