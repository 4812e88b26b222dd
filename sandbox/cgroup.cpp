#include "sandbox/cgroup.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <thread>

#include "common/file_util.h"
#include "common/strings.h"

namespace v4agent::sandbox {
namespace {

namespace fs = std::filesystem;

struct CgroupMount {
  std::string root;   // the mount's root within the hierarchy (mountinfo field 4)
  std::string point;  // where it is mounted
};

// The mount of the cgroup2 hierarchy (controller "") or of the v1 hierarchy carrying
// `controller`, from /proc/self/mountinfo.
bool FindMount(const std::string& controller, CgroupMount* out) {
  auto info = ReadFile("/proc/self/mountinfo");
  if (!info.ok()) return false;
  for (const auto& line : StrSplit(*info, '\n')) {
    const size_t dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    const auto after = StrSplit(line.substr(dash + 3), ' ');
    const auto before = StrSplit(line.substr(0, dash), ' ');
    if (after.size() < 3 || before.size() < 5) continue;
    bool match = false;
    if (controller.empty()) {
      match = after[0] == "cgroup2";
    } else if (after[0] == "cgroup") {
      for (const auto& opt : StrSplit(after[2], ',')) match = match || opt == controller;
    }
    if (match) {
      *out = CgroupMount{before[3], before[4]};
      return true;
    }
  }
  return false;
}

// Our group in the hierarchy named by `key` ("" for v2's "0::" line, else the controller).
std::string OwnGroup(const std::string& key) {
  auto self = ReadFile("/proc/self/cgroup");
  if (!self.ok()) return "";
  for (const auto& line : StrSplit(*self, '\n')) {
    const auto parts = StrSplit(line, ':');
    if (parts.size() < 3) continue;
    const std::string path = line.substr(parts[0].size() + parts[1].size() + 2);
    if (key.empty() ? parts[0] == "0" && parts[1].empty() : false) return path;
    for (const auto& c : StrSplit(parts[1], ',')) {
      if (!key.empty() && c == key) return path;
    }
  }
  return "";
}

std::string GroupDir(const CgroupMount& m, const std::string& group) {
  // A mount whose root is a subgroup (a cgroup namespace or a bind) shows that subgroup at
  // its mount point.
  std::string rel = group;
  if (m.root != "/" && StartsWith(rel, m.root)) rel = rel.substr(m.root.size());
  if (rel == "/") rel.clear();
  return m.point + rel;
}

std::string V1Dir(const std::string& controller, std::vector<std::string>* reasons) {
  CgroupMount m;
  if (!FindMount(controller, &m)) {
    reasons->push_back(StrCat("no cgroup v1 hierarchy with the ", controller, " controller"));
    return "";
  }
  const std::string dir = GroupDir(m, OwnGroup(controller));
  if (access(dir.c_str(), W_OK) != 0) {
    reasons->push_back(StrCat("cgroup v1 ", controller, " group ", dir, " is not writable"));
    return "";
  }
  return dir;
}

Result<std::string> V2Dir() {
  CgroupMount m;
  if (!FindMount("", &m)) return UnavailableError("no cgroup2 hierarchy is mounted");
  const std::string dir = GroupDir(m, OwnGroup(""));
  auto controllers = ReadFile(dir + "/cgroup.controllers");
  if (!controllers.ok())
    return UnavailableError(StrCat("cannot read ", dir, "/cgroup.controllers"));
  for (const char* c : {"memory", "pids"}) {
    bool found = false;
    for (const auto& x : StrSplit(std::string(StripWhitespace(*controllers)), ' ')) {
      found = found || x == c;
    }
    if (!found) {
      return UnavailableError(StrCat("the cgroup2 hierarchy at ", m.point, " has no ", c,
                                     " controller (controllers: \"", StripWhitespace(*controllers),
                                     "\")"));
    }
  }
  if (access(dir.c_str(), W_OK) != 0) {
    return UnavailableError(StrCat("cgroup ", dir, " is not writable by this user"));
  }
  return dir;
}

// A value from a "key value" lines file (memory.events, pids.events, memory.oom_control).
int64_t EventCount(const std::string& file, const std::string& key) {
  auto text = ReadFile(file);
  if (!text.ok()) return -1;
  for (const auto& line : StrSplit(*text, '\n')) {
    if (StartsWith(line, key + " ")) return std::atoll(line.c_str() + key.size() + 1);
  }
  return -1;
}

int64_t ReadNumber(const std::string& file) {
  auto text = ReadFile(file);
  if (!text.ok()) return -1;
  return std::atoll(text->c_str());
}

std::string NewGroupName() {
  static std::atomic<int> counter{0};
  return StrCat("v4agent-", static_cast<int64_t>(getpid()), "-", counter++);
}

}  // namespace

CgroupSupport ProbeCgroups() {
  CgroupSupport s;
  auto v2 = V2Dir();
  if (v2.ok()) {
    s.v2_dir = *v2;
    return s;
  }
  s.reasons.push_back(StrCat("cgroup v2: ", v2.status().message()));
  s.v1_pids = V1Dir("pids", &s.reasons);
  s.v1_memory = V1Dir("memory", &s.reasons);
  return s;
}

Result<std::string> FindWritableCgroup() { return V2Dir(); }

Result<std::unique_ptr<CgroupScope>> CgroupScope::Create(const CgroupLimits& limits) {
  const CgroupSupport support = ProbeCgroups();
  auto scope = std::unique_ptr<CgroupScope>(new CgroupScope());
  auto make = [&](const std::string& parent) -> Result<std::string> {
    const std::string dir = parent + "/" + NewGroupName();
    std::error_code ec;
    if (!fs::create_directory(dir, ec)) {
      return UnavailableError(StrCat("cannot create ", dir, ": ", ec.message()));
    }
    scope->dirs_.push_back(dir);
    return dir;
  };
  auto set = [&](const std::string& dir, const char* file, const std::string& value,
                 const char* mechanism) -> Status {
    Status s = WriteFile(dir + "/" + file, value);
    if (s.ok()) scope->applied_.push_back(StrCat(mechanism, " ", file, "=", value));
    return s;
  };
  if (!support.v2_dir.empty()) {
    scope->v2_ = true;
    V4_ASSIGN_OR_RETURN(std::string dir, make(support.v2_dir));
    scope->memory_dir_ = scope->pids_dir_ = dir;
    if (limits.memory_bytes) {
      V4_RETURN_IF_ERROR(set(dir, "memory.max", StrCat(limits.memory_bytes), "cgroup2"));
      (void)set(dir, "memory.swap.max", "0", "cgroup2");
      // The whole sandbox goes when one of it is out of memory: a half-killed build is worse.
      (void)set(dir, "memory.oom.group", "1", "cgroup2");
      scope->limits_memory_ = true;
    }
    if (limits.pids) {
      V4_RETURN_IF_ERROR(set(dir, "pids.max", StrCat(limits.pids), "cgroup2"));
      scope->limits_pids_ = true;
    }
    if (limits.cpu_percent) {
      if (set(dir, "cpu.max", StrCat(limits.cpu_percent * 1000, " 100000"), "cgroup2").ok()) {
        scope->limits_cpu_ = true;
      } else {
        scope->unavailable_.push_back("cpu: the cgroup2 group has no cpu controller");
      }
    }
    return scope;
  }
  const std::string reasons = StrJoin(support.reasons, "; ");
  if (limits.pids) {
    if (support.v1_pids.empty()) {
      scope->unavailable_.push_back(StrCat("pids (cgroup): ", reasons));
    } else {
      V4_ASSIGN_OR_RETURN(scope->pids_dir_, make(support.v1_pids));
      V4_RETURN_IF_ERROR(set(scope->pids_dir_, "pids.max", StrCat(limits.pids), "cgroup-v1"));
      scope->limits_pids_ = true;
    }
  }
  if (limits.memory_bytes) {
    if (support.v1_memory.empty()) {
      scope->unavailable_.push_back(StrCat("memory (cgroup): ", reasons));
    } else {
      V4_ASSIGN_OR_RETURN(scope->memory_dir_, make(support.v1_memory));
      V4_RETURN_IF_ERROR(set(scope->memory_dir_, "memory.limit_in_bytes",
                             StrCat(limits.memory_bytes), "cgroup-v1"));
      // memory+swap equal to memory: no swapping past the limit (absent without swap
      // accounting; the limit then still holds for resident memory).
      if (PathExists(scope->memory_dir_ + "/memory.memsw.limit_in_bytes")) {
        (void)set(scope->memory_dir_, "memory.memsw.limit_in_bytes", StrCat(limits.memory_bytes),
                  "cgroup-v1");
      }
      scope->limits_memory_ = true;
    }
  }
  if (limits.cpu_percent) scope->unavailable_.push_back("cpu: only with cgroup v2");
  if (scope->dirs_.empty()) return UnavailableError(reasons);
  return scope;
}

CgroupScope::~CgroupScope() {
  // The tree is dead once the init was reaped, but the kernel may still be releasing the
  // group's last references for a moment.
  for (auto it = dirs_.rbegin(); it != dirs_.rend(); ++it) {
    for (int attempt = 0; attempt < 200; ++attempt) {
      if (rmdir(it->c_str()) == 0 || errno == ENOENT) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
}

Status CgroupScope::AddProcess(int pid) {
  for (const auto& dir : dirs_) {
    V4_RETURN_IF_ERROR(WriteFile(dir + "/cgroup.procs", StrCat(static_cast<int64_t>(pid))));
  }
  return Status::Ok();
}

void CgroupScope::Collect(RunReport* report) const {
  if (!memory_dir_.empty()) {
    const int64_t oom = v2_ ? EventCount(memory_dir_ + "/memory.events", "oom_kill")
                            : EventCount(memory_dir_ + "/memory.oom_control", "oom_kill");
    if (oom > 0) {
      report->out_of_memory = true;
      report->limits_applied.push_back(StrCat("cgroup_oom_kills=", oom));
    }
    const int64_t peak = v2_ ? ReadNumber(memory_dir_ + "/memory.peak")
                             : ReadNumber(memory_dir_ + "/memory.max_usage_in_bytes");
    if (peak >= 0) report->memory_peak_bytes = peak;
  }
  if (!pids_dir_.empty()) {
    const int64_t refused = EventCount(pids_dir_ + "/pids.events", "max");
    if (refused > 0) report->forks_refused = refused;
  }
}

}  // namespace v4agent::sandbox
