// `v4agent sandbox run`: one command in the sandbox, output passed through, the command's
// exit code (128+signal when killed, 124 on timeout, 125 when the sandbox could not be set
// up), and the JSON report to --report (or stderr with --report -).
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>

#include "apps/command.h"
#include "apps/flags.h"
#include "common/file_util.h"
#include "common/strings.h"
#include "sandbox/launcher.h"
#include "sandbox/profile_file.h"

namespace v4agent::apps {
namespace {

constexpr char kUsage[] =
    "usage: v4agent sandbox run [--profile FILE] [--workspace DIR]\n"
    "                           [--network none|loopback|host] [--timeout SECONDS]\n"
    "                           [--memory MB] [--pids N] [--report FILE] -- CMD [ARGS...]\n"
    "Runs CMD with the host root read-only, the workspace (default: the current directory)\n"
    "writable, a private /tmp, /dev and /proc, no network, 2048 MB, 256 processes and 60 s\n"
    "unless told otherwise; --profile FILE (JSON, see docs/sandbox.md) replaces the defaults\n"
    "and the other flags then adjust it. stdout/stderr pass through; the exit code is CMD's,\n"
    "128+signal when it was killed, 124 on timeout, 125 when the sandbox failed to start.";

int Run(const std::vector<std::string>& args) {
  auto flags = Flags::Parse(
      args,
      FlagSpec{{"profile", "workspace", "network", "timeout", "memory", "pids", "report"}, {}});
  if (!flags.ok()) {
    std::fprintf(stderr, "%s\n%s\n", flags.status().message().c_str(), kUsage);
    return 2;
  }
  if (flags->rest().empty()) {
    std::fprintf(stderr, "v4agent sandbox run: no command given after --\n%s\n", kUsage);
    return 2;
  }
  std::error_code ec;
  const auto ws = std::filesystem::canonical(flags->GetOr("workspace", "."), ec);
  if (ec) {
    std::fprintf(stderr, "v4agent sandbox run: --workspace %s: %s\n",
                 flags->GetOr("workspace", ".").c_str(), ec.message().c_str());
    return 2;
  }
  sandbox::Profile profile = sandbox::DefaultProfile(ws.string());
  if (auto file = flags->Get("profile")) {
    auto p = sandbox::LoadProfileFile(*file, ws.string());
    if (!p.ok()) {
      std::fprintf(stderr, "v4agent sandbox run: %s\n", p.status().ToString().c_str());
      return 2;
    }
    profile = std::move(p).value();
  }
  if (auto net = flags->Get("network")) {
    if (*net == "none") {
      profile.network = sandbox::NetworkMode::kNone;
    } else if (*net == "loopback") {
      profile.network = sandbox::NetworkMode::kLoopback;
    } else if (*net == "host") {
      profile.network = sandbox::NetworkMode::kHost;
    } else {
      std::fprintf(stderr, "--network must be none, loopback or host\n%s\n", kUsage);
      return 2;
    }
  }
  auto timeout = flags->GetDouble("timeout", profile.timeout_seconds);
  auto memory = flags->GetInt("memory", static_cast<int64_t>(profile.cgroup.memory_bytes >> 20));
  auto pids = flags->GetInt("pids", static_cast<int64_t>(profile.cgroup.pids));
  for (const Status& s : {timeout.status(), memory.status(), pids.status()}) {
    if (!s.ok()) {
      std::fprintf(stderr, "%s\n%s\n", s.message().c_str(), kUsage);
      return 2;
    }
  }
  if (*timeout < 0 || *memory < 0 || *pids < 0) {
    std::fprintf(stderr, "--timeout, --memory and --pids must not be negative\n");
    return 2;
  }
  profile.timeout_seconds = *timeout;
  // The sandbox enforces these with a cgroup where it can, else with the fallbacks its
  // report names.
  profile.cgroup.memory_bytes = static_cast<uint64_t>(*memory) << 20;
  profile.cgroup.pids = static_cast<uint64_t>(*pids);
  if (!isatty(STDIN_FILENO)) {
    auto in = ReadFile("/dev/stdin");
    if (in.ok()) profile.stdin_data = std::move(in).value();
  }
  sandbox::RunOptions options;
  options.on_output = [](int stream, std::string_view data) {
    FILE* f = stream == 1 ? stdout : stderr;
    std::fwrite(data.data(), 1, data.size(), f);
    std::fflush(f);
  };
  auto report = sandbox::Run(profile, flags->rest(), options);
  if (!report.ok()) {
    std::fprintf(stderr, "v4agent sandbox run: %s\n", report.status().ToString().c_str());
    return 125;
  }
  if (report->setup_failed()) {
    std::fprintf(stderr, "v4agent sandbox run: setup step %s failed: %s%s%s\n",
                 report->failed_step.c_str(), std::strerror(report->failed_errno),
                 report->failure_detail.empty() ? "" : " - ", report->failure_detail.c_str());
  }
  if (auto path = flags->Get("report")) {
    const std::string json = DumpJson(sandbox::ReportToJson(*report), 2) + "\n";
    if (*path == "-") {
      std::fputs(json.c_str(), stderr);
    } else if (Status s = WriteFile(*path, json); !s.ok()) {
      std::fprintf(stderr, "v4agent sandbox run: --report: %s\n", s.ToString().c_str());
    }
  }
  return report->ShellExitCode();
}

CommandRegistrar registrar(Command{
    "sandbox", "run a command in the sandbox",
    "usage: v4agent sandbox run [...] -- CMD [ARGS...] "
    "(v4agent sandbox run --help)",
    [](const std::vector<std::string>& args) { return RunGroup("sandbox", args); }});
SubcommandRegistrar run_registrar("sandbox",
                                  Command{"run", "run one command sandboxed", kUsage, Run});

}  // namespace
}  // namespace v4agent::apps
