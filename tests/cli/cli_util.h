// Runs the built v4agent executable the way a user does, for the CLI tests.
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

#include "common/check.h"
#include "common/file_util.h"

namespace v4agent::cli_testing {

inline const std::string kBin = std::string(V4_BINARY_DIR) + "/apps/v4agent";

struct CmdResult {
  int code;
  std::string out;  // stdout, and stderr too when merged
  std::string err;  // stderr when not merged (for failure messages)
};

// Runs v4agent with `args` (shell words) and, optionally, `input` on stdin.
inline CmdResult Exec(const std::string& args, const std::string& input = "",
                      bool merge_stderr = true) {
  static ScopedTempDir scratch;
  const std::string in_file = scratch.path() + "/stdin";
  V4_CHECK(WriteFile(in_file, input).ok());
  const std::string err_file = scratch.path() + "/stderr";
  std::string cmd =
      kBin + " " + args + " < " + in_file + (merge_stderr ? " 2>&1" : " 2>" + err_file);
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  int status = pclose(p);
  std::string err;
  if (!merge_stderr) {
    auto e = ReadFile(err_file);
    if (e.ok()) err = *e;
  }
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out, err};
}

}  // namespace v4agent::cli_testing
