#include "common/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

#include "common/file_util.h"
#include "common/strings.h"

extern char** environ;

namespace v4agent {

Result<ProcessResult> RunProcess(const std::vector<std::string>& argv,
                                 const ProcessOptions& options) {
  if (argv.empty()) return InvalidArgumentError("RunProcess: empty argv");
  int in[2], out[2], err[2];
  if (pipe2(in, O_CLOEXEC) != 0) return ErrnoError("RunProcess: pipe", errno);
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
    return ErrnoError("RunProcess: pipe", errno);
  }
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) env_strings.emplace_back(*e);
  for (const auto& e : options.env) env_strings.push_back(e);
  std::vector<char*> envp, args;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_copy = argv;
  for (auto& a : argv_copy) args.push_back(a.data());
  args.push_back(nullptr);
  const pid_t pid = fork();
  if (pid < 0) return ErrnoError("RunProcess: fork", errno);
  if (pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    setpgid(0, 0);
    if (!options.cwd.empty() && chdir(options.cwd.c_str()) != 0) _exit(126);
    execvpe(args[0], args.data(), envp.data());
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  close(err[1]);
  // Small inputs (patches) fit the pipe buffer mostly; write in the poll loop for the rest.
  size_t written = 0;
  int in_fd = in[1];
  if (options.stdin_data.empty()) {
    close(in_fd);
    in_fd = -1;
  }
  ProcessResult r;
  const auto start = std::chrono::steady_clock::now();
  int open_fds = 2;
  while (open_fds > 0 || in_fd >= 0) {
    pollfd fds[3];
    int n = 0;
    if (out[0] >= 0) fds[n++] = {out[0], POLLIN, 0};
    if (err[0] >= 0) fds[n++] = {err[0], POLLIN, 0};
    if (in_fd >= 0) fds[n++] = {in_fd, POLLOUT, 0};
    const double left =
        options.timeout_seconds -
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (left <= 0) {
      r.timed_out = true;
      kill(-pid, SIGKILL);
      break;
    }
    if (poll(fds, n, static_cast<int>(std::min(left, 1.0) * 1000) + 1) < 0 && errno != EINTR) {
      break;
    }
    for (int i = 0; i < n; ++i) {
      if (fds[i].revents == 0) continue;
      if (fds[i].fd == in_fd) {
        // A child that exits without reading its stdin must not kill us with SIGPIPE.
        const long w = WritePipeNoSignal(in_fd, options.stdin_data.data() + written,
                                         options.stdin_data.size() - written);
        if (w > 0) written += static_cast<size_t>(w);
        if (w < 0 || written == options.stdin_data.size()) {
          close(in_fd);
          in_fd = -1;
        }
        continue;
      }
      char buf[65536];
      ssize_t got = read(fds[i].fd, buf, sizeof(buf));
      std::string& sink = fds[i].fd == out[0] ? r.out : r.err;
      if (got > 0) {
        if (sink.size() < options.max_output) {
          sink.append(buf,
                      std::min<size_t>(static_cast<size_t>(got), options.max_output - sink.size()));
        }
      } else {
        close(fds[i].fd);
        (fds[i].fd == out[0] ? out[0] : err[0]) = -1;
        --open_fds;
      }
    }
  }
  if (in_fd >= 0) close(in_fd);
  if (out[0] >= 0) close(out[0]);
  if (err[0] >= 0) close(err[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!r.timed_out && WIFEXITED(status)) {
    r.exit_code = WEXITSTATUS(status);
    if (r.exit_code == 127 && r.out.empty() && r.err.empty()) {
      return NotFoundError(StrCat("cannot run '", argv[0], "': not found"));
    }
  }
  return r;
}

}  // namespace v4agent
