#include "sandbox/cgroup.h"

#include <unistd.h>

#include <atomic>
#include <filesystem>

#include "common/file_util.h"
#include "common/strings.h"

namespace v4agent::sandbox {
namespace {

namespace fs = std::filesystem;

// The cgroup2 mount point from /proc/self/mountinfo, or "".
std::string Cgroup2Mount() {
  auto info = ReadFile("/proc/self/mountinfo");
  if (!info.ok()) return "";
  for (const auto& line : StrSplit(*info, '\n')) {
    const size_t dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    auto after = StrSplit(line.substr(dash + 3), ' ');
    if (after.empty() || after[0] != "cgroup2") continue;
    auto before = StrSplit(line.substr(0, dash), ' ');
    if (before.size() >= 5) return before[4];
  }
  return "";
}

}  // namespace

Result<std::string> FindWritableCgroup() {
  const std::string mount = Cgroup2Mount();
  if (mount.empty()) return UnavailableError("no cgroup2 hierarchy is mounted");
  auto self = ReadFile("/proc/self/cgroup");
  std::string rel;
  if (self.ok()) {
    for (const auto& line : StrSplit(*self, '\n')) {
      if (StartsWith(line, "0::")) rel = line.substr(3);
    }
  }
  const std::string dir = mount + rel;
  auto controllers = ReadFile(dir + "/cgroup.controllers");
  if (!controllers.ok())
    return UnavailableError(StrCat("cannot read ", dir, "/cgroup.controllers"));
  for (const char* c : {"memory", "pids"}) {
    if (controllers->find(c) == std::string::npos) {
      return UnavailableError(StrCat("the cgroup2 hierarchy at ", mount, " has no ", c,
                                     " controller (controllers: \"", StripWhitespace(*controllers),
                                     "\")"));
    }
  }
  if (access(dir.c_str(), W_OK) != 0) {
    return UnavailableError(StrCat("cgroup ", dir, " is not writable by this user"));
  }
  return dir;
}

Result<std::unique_ptr<CgroupScope>> CgroupScope::Create(const CgroupLimits& limits) {
  V4_ASSIGN_OR_RETURN(std::string base, FindWritableCgroup());
  static std::atomic<int> counter{0};
  auto scope = std::unique_ptr<CgroupScope>(new CgroupScope());
  scope->dir_ = StrCat(base, "/v4agent-", static_cast<int64_t>(getpid()), "-", counter++);
  std::error_code ec;
  if (!fs::create_directory(scope->dir_, ec)) {
    return UnavailableError(StrCat("cannot create ", scope->dir_, ": ", ec.message()));
  }
  auto set = [&](const char* file, const std::string& value) -> Status {
    Status s = WriteFile(scope->dir_ + "/" + file, value);
    if (s.ok()) scope->applied_.push_back(StrCat("cgroup_", file, "=", value));
    return s;
  };
  if (limits.memory_bytes) {
    V4_RETURN_IF_ERROR(set("memory.max", StrCat(limits.memory_bytes)));
    (void)set("memory.swap.max", "0");
  }
  if (limits.pids) V4_RETURN_IF_ERROR(set("pids.max", StrCat(limits.pids)));
  if (limits.cpu_percent) {
    V4_RETURN_IF_ERROR(set("cpu.max", StrCat(limits.cpu_percent * 1000, " 100000")));
  }
  return scope;
}

CgroupScope::~CgroupScope() {
  if (!dir_.empty()) rmdir(dir_.c_str());
}

Status CgroupScope::AddProcess(int pid) {
  return WriteFile(dir_ + "/cgroup.procs", StrCat(static_cast<int64_t>(pid)));
}

void CgroupScope::Collect(RunReport* report) const {
  auto events = ReadFile(dir_ + "/memory.events");
  if (events.ok()) {
    for (const auto& line : StrSplit(*events, '\n')) {
      if (StartsWith(line, "oom_kill ") && line != "oom_kill 0") {
        report->limits_applied.push_back("cgroup_oom_kill=" + line.substr(9));
      }
    }
  }
}

}  // namespace v4agent::sandbox
