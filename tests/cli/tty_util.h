// Runs v4agent on a real pseudo-terminal for the CLI tests that need one (approval prompts,
// live displays).
#pragma once

#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "tests/cli/cli_util.h"

namespace v4agent {

struct TtyRun {
  int code = -1;
  std::string screen;  // everything the terminal showed
  int prompts = 0;
};

// Runs v4agent on a pty; answers each approval prompt with the next of `answers` ("KILL":
// SIGKILL the process instead, as a crash or a closed laptop would).
inline TtyRun RunOnTty(const std::vector<std::string>& args, std::vector<std::string> answers) {
  int master = -1;
  const pid_t pid = forkpty(&master, nullptr, nullptr, nullptr);
  if (pid == 0) {
    std::vector<char*> argv;
    static std::string bin = cli_testing::kBin;
    argv.push_back(bin.data());
    std::vector<std::string> copy = args;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(bin.c_str(), argv.data());
    _exit(127);
  }
  TtyRun run;
  size_t scanned = 0;
  for (;;) {
    pollfd p{master, POLLIN, 0};
    if (poll(&p, 1, 30000) <= 0) break;
    char buf[4096];
    const ssize_t n = read(master, buf, sizeof(buf));
    if (n <= 0) break;
    run.screen.append(buf, static_cast<size_t>(n));
    const size_t at = run.screen.find("[n] deny: ", scanned);
    if (at != std::string::npos) {
      scanned = at + 1;
      ++run.prompts;
      const std::string answer = answers.empty() ? "n" : answers.front();
      if (!answers.empty()) answers.erase(answers.begin());
      if (answer == "KILL") {
        kill(pid, SIGKILL);
        break;
      }
      (void)!write(master, (answer + "\n").data(), answer.size() + 1);
    }
  }
  int status = 0;
  waitpid(pid, &status, 0);
  close(master);
  run.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

}  // namespace v4agent
