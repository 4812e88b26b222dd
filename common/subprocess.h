// RunProcess: runs a trusted host program (git, patch) with an argv — never through a shell —
// and returns its exit status and output. For the host-side steps of batch runs and
// evaluation (checking out a mirror, applying a patch); anything the agent or a repository
// controls runs in the sandbox instead. Never inherits more than stdin from /dev/null and the
// parent's environment plus `env`.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"

namespace v4agent {

struct ProcessOptions {
  std::string cwd;               // empty: the current directory
  std::vector<std::string> env;  // extra NAME=value entries
  std::string stdin_data;
  double timeout_seconds = 600;
  size_t max_output = 4 << 20;  // per stream; the rest is dropped
};

struct ProcessResult {
  int exit_code = -1;  // -1 when killed by a signal or the timeout
  bool timed_out = false;
  std::string out, err;
  bool ok() const { return exit_code == 0; }
};

// Errors only when the program cannot be started (it names argv[0]).
Result<ProcessResult> RunProcess(const std::vector<std::string>& argv,
                                 const ProcessOptions& options = {});

}  // namespace v4agent
