#include "agent/trajectory.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "common/file_util.h"
#include "common/strings.h"

namespace v4agent::agent {

Result<TrajectoryWriter> TrajectoryWriter::Open(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError(StrCat("trajectory ", path, ": open"), errno);
  UniqueFd owned(fd);
  // A torn last line from a killed run would glue onto our first record; start on a new line.
  off_t size = ::lseek(fd, 0, SEEK_END);
  if (size > 0) {
    char last = 0;
    UniqueFd rd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (rd.valid() && ::pread(rd.get(), &last, 1, size - 1) == 1 && last != '\n') {
      if (::write(fd, "\n", 1) != 1) return ErrnoError(StrCat("trajectory ", path), errno);
    }
  }
  return TrajectoryWriter(path, std::move(owned));
}

Status TrajectoryWriter::Append(const Json& record) {
  std::string line = DumpJson(record);
  line.push_back('\n');
  size_t done = 0;
  while (done < line.size()) {
    ssize_t n = ::write(fd_.get(), line.data() + done, line.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(StrCat("trajectory ", path_, ": write"), errno);
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd_.get()) != 0) return ErrnoError(StrCat("trajectory ", path_, ": fsync"), errno);
  return Status::Ok();
}

Result<std::vector<Json>> ReadTrajectory(const std::string& path) {
  V4_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  std::vector<std::string> lines = StrSplit(text, '\n');
  std::vector<Json> records;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (StripWhitespace(lines[i]).empty()) continue;
    bool is_last = (i + 1 == lines.size());  // no newline after it: possibly torn
    auto parsed = ParseJson(lines[i], StrCat(path, ":", i + 1));
    if (!parsed.ok()) {
      if (is_last) break;
      // A torn line followed by a resumed run's records: skip only if it is not the start.
      bool next_nonempty = false;
      for (size_t k = i + 1; k < lines.size(); ++k) {
        if (!StripWhitespace(lines[k]).empty()) next_nonempty = true;
      }
      if (next_nonempty && records.empty()) {
        return DataLossError(StrCat(path, ":", i + 1, ": ", parsed.status().message()));
      }
      continue;
    }
    records.push_back(std::move(*parsed));
  }
  return records;
}

}  // namespace v4agent::agent
