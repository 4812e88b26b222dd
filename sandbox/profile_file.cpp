#include "sandbox/profile_file.h"

#include "common/strings.h"

namespace v4agent::sandbox {
namespace {

std::string Expand(std::string s, const std::string& workspace) {
  const std::string key = "${WORKSPACE}";
  for (size_t at = s.find(key); at != std::string::npos; at = s.find(key, at + workspace.size())) {
    s.replace(at, key.size(), workspace);
  }
  return s;
}

Status Bad(const std::string& source, const std::string& key, const std::string& what) {
  return InvalidArgumentError(StrCat(source, ": \"", key, "\": ", what));
}

Result<std::vector<std::string>> Strings(const Json& v, const std::string& source,
                                         const std::string& key, const std::string& ws) {
  if (!v.is_array()) return Bad(source, key, "must be a list of strings");
  std::vector<std::string> out;
  for (const auto& x : v) {
    if (!x.is_string()) return Bad(source, key, "must be a list of strings");
    out.push_back(Expand(x.get<std::string>(), ws));
  }
  return out;
}

Result<uint64_t> Count(const Json& v, const std::string& source, const std::string& key) {
  if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<int64_t>() >= 0)) {
    return Bad(source, key, "must be a non-negative integer");
  }
  return v.get<uint64_t>();
}

}  // namespace

Result<Profile> ProfileFromJson(const Json& j, const std::string& source,
                                const std::string& workspace) {
  if (!j.is_object()) return InvalidArgumentError(source + ": a profile is a JSON object");
  Profile p;
  p.binds.clear();
  p.cwd = workspace;
  for (const auto& [key, v] : j.items()) {
    if (key == "rootfs") {
      if (!v.is_string()) return Bad(source, key, "must be a string");
      p.rootfs = Expand(v, workspace);
    } else if (key == "root_writable") {
      if (!v.is_boolean()) return Bad(source, key, "must be true or false");
      p.root_writable = v.get<bool>();
    } else if (key == "binds") {
      if (!v.is_array()) return Bad(source, key, "must be a list");
      for (const auto& b : v) {
        if (!b.is_object() || !b.contains("source") || !b["source"].is_string()) {
          return Bad(source, key, "each bind needs a string \"source\"");
        }
        Bind bind;
        bind.source = Expand(b["source"], workspace);
        if (b.contains("target")) bind.target = Expand(b["target"].get<std::string>(), workspace);
        bind.writable = b.value("writable", false);
        p.binds.push_back(bind);
      }
    } else if (key == "protected_paths") {
      V4_ASSIGN_OR_RETURN(p.protected_paths, Strings(v, source, key, workspace));
    } else if (key == "hidden_paths") {
      V4_ASSIGN_OR_RETURN(p.hidden_paths, Strings(v, source, key, workspace));
    } else if (key == "env_allowlist") {
      V4_ASSIGN_OR_RETURN(p.env_allowlist, Strings(v, source, key, workspace));
    } else if (key == "env") {
      V4_ASSIGN_OR_RETURN(p.env, Strings(v, source, key, workspace));
    } else if (key == "network") {
      if (v == "none") {
        p.network = NetworkMode::kNone;
      } else if (v == "loopback") {
        p.network = NetworkMode::kLoopback;
      } else if (v == "host") {
        p.network = NetworkMode::kHost;
      } else {
        return Bad(source, key, "must be \"none\", \"loopback\" or \"host\"");
      }
    } else if (key == "seccomp") {
      if (v == "deny-list") {
        p.seccomp = SeccompMode::kDenyList;
      } else if (v == "allow-list") {
        p.seccomp = SeccompMode::kAllowList;
      } else if (v == "off") {
        p.seccomp = SeccompMode::kOff;
      } else {
        return Bad(source, key, "must be \"deny-list\", \"allow-list\" or \"off\"");
      }
    } else if (key == "tmp_size_bytes") {
      V4_ASSIGN_OR_RETURN(p.tmp_size_bytes, Count(v, source, key));
    } else if (key == "timeout_seconds") {
      if (!v.is_number() || v.get<double>() < 0) return Bad(source, key, "must be >= 0");
      p.timeout_seconds = v.get<double>();
    } else if (key == "capture_bytes") {
      V4_ASSIGN_OR_RETURN(p.capture_bytes, Count(v, source, key));
    } else if (key == "cwd") {
      if (!v.is_string()) return Bad(source, key, "must be a string");
      p.cwd = Expand(v, workspace);
    } else if (key == "uid" || key == "gid") {
      V4_ASSIGN_OR_RETURN(uint64_t id, Count(v, source, key));
      (key == "uid" ? p.uid : p.gid) = static_cast<uint32_t>(id);
    } else if (key == "hostname") {
      if (!v.is_string()) return Bad(source, key, "must be a string");
      p.hostname = v;
    } else if (key == "rlimits" || key == "cgroup") {
      if (!v.is_object()) return Bad(source, key, "must be an object");
      for (const auto& [k, x] : v.items()) {
        V4_ASSIGN_OR_RETURN(uint64_t n, Count(x, source, key + "." + k));
        if (key == "rlimits" && k == "cpu_seconds") {
          p.rlimits.cpu_seconds = n;
        } else if (key == "rlimits" && k == "address_space") {
          p.rlimits.address_space = n;
        } else if (key == "rlimits" && k == "processes") {
          p.rlimits.processes = n;
        } else if (key == "rlimits" && k == "open_files") {
          p.rlimits.open_files = n;
        } else if (key == "rlimits" && k == "file_size") {
          p.rlimits.file_size = n;
        } else if (key == "cgroup" && k == "memory_bytes") {
          p.cgroup.memory_bytes = n;
        } else if (key == "cgroup" && k == "pids") {
          p.cgroup.pids = n;
        } else if (key == "cgroup" && k == "cpu_percent") {
          p.cgroup.cpu_percent = static_cast<uint32_t>(n);
        } else {
          return Bad(source, key + "." + k, "unknown key");
        }
      }
    } else {
      return Bad(source, key, "unknown key");
    }
  }
  return p;
}

Result<Profile> LoadProfileFile(const std::string& path, const std::string& workspace) {
  V4_ASSIGN_OR_RETURN(Json j, ReadJsonFile(path));
  return ProfileFromJson(j, path, workspace);
}

}  // namespace v4agent::sandbox
