// Trajectory: the JSONL record of a run, one JSON object per line per event, each line written
// and fsync'd before the loop moves on so a killed run loses at most the line being written.
// Owns the file format; never decides what a run does next (the loop reads it on --resume).
#pragma once

#include <string>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "common/unique_fd.h"

namespace v4agent::agent {

class TrajectoryWriter {
 public:
  // Opens for append (creating it); a resumed run continues the same file.
  static Result<TrajectoryWriter> Open(const std::string& path);
  // Writes one record (a "type" key is expected) as one line, then fsyncs.
  Status Append(const Json& record);
  const std::string& path() const { return path_; }

 private:
  TrajectoryWriter(std::string path, UniqueFd fd) : path_(std::move(path)), fd_(std::move(fd)) {}
  std::string path_;
  UniqueFd fd_;
};

// Reads every complete record. A torn last line (the process died mid-write) is dropped, not an
// error; a malformed line anywhere else is DataLoss naming the line.
Result<std::vector<Json>> ReadTrajectory(const std::string& path);

}  // namespace v4agent::agent
