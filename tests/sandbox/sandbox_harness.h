// Runs commands in the real sandbox for the tests, either as the current user or, from a
// root test process, as an unprivileged user (uid/gid 65534) in a forked helper.
#pragma once

#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "common/file_util.h"
#include "common/json.h"
#include "sandbox/launcher.h"

namespace v4agent::sandbox::testing {

constexpr uid_t kNobody = 65534;

struct Outcome {
  int code = -1;  // ShellExitCode
  std::string out, err;
  Json report;
};

inline bool CanDropToNobody() { return geteuid() == 0; }

// Runs `argv` under `profile`; `unprivileged` forks a helper that becomes uid 65534 first.
inline Outcome RunIn(const Profile& profile, const std::vector<std::string>& argv,
                     bool unprivileged) {
  auto run = [&]() -> Outcome {
    Outcome o;
    auto r = Run(profile, argv);
    if (!r.ok()) {
      o.err = r.status().ToString();
      return o;
    }
    o.code = r->ShellExitCode();
    o.out = r->out.Text();
    o.err = r->err.Text();
    o.report = ReportToJson(*r);
    return o;
  };
  if (!unprivileged) return run();
  int fds[2];
  if (pipe(fds) != 0) return {};
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    if (setgroups(0, nullptr) != 0 || setgid(kNobody) != 0 || setuid(kNobody) != 0) _exit(3);
    Outcome o = run();
    const std::string blob =
        DumpJson(Json{{"code", o.code}, {"out", o.out}, {"err", o.err}, {"report", o.report}});
    size_t off = 0;
    while (off < blob.size()) {
      ssize_t w = write(fds[1], blob.data() + off, blob.size() - off);
      if (w <= 0) break;
      off += static_cast<size_t>(w);
    }
    _exit(0);
  }
  close(fds[1]);
  std::string blob;
  char buf[65536];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof(buf))) > 0) blob.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  int st = 0;
  waitpid(pid, &st, 0);
  Outcome o;
  auto j = ParseJson(blob, "helper");
  if (!j.ok()) {
    o.err = "helper failed: status " + std::to_string(st);
    return o;
  }
  o.code = (*j)["code"];
  o.out = (*j)["out"];
  o.err = (*j)["err"];
  o.report = (*j)["report"];
  return o;
}

// A workspace both root and the unprivileged helper can write.
class Workspace : public ScopedTempDir {
 public:
  Workspace() { chmod(path().c_str(), 0777); }
};

}  // namespace v4agent::sandbox::testing
