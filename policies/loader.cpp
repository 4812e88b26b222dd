// The YAML adapter: yaml-cpp stays in this file; its exceptions never leave it.
#include <yaml-cpp/yaml.h>

#include <set>

#include "common/file_util.h"
#include "common/strings.h"
#include "policies/policy.h"

namespace v4agent::policies {
namespace {

// An error at a node: "file:line:column: message".
struct Loader {
  std::string file;

  Status At(const YAML::Node& n, const std::string& msg) const {
    const YAML::Mark m = n.Mark();
    if (m.line < 0) return InvalidArgumentError(StrCat(file, ": ", msg));
    return InvalidArgumentError(StrCat(file, ":", m.line + 1, ":", m.column + 1, ": ", msg));
  }

  Status Keys(const YAML::Node& map, const std::string& where,
              std::initializer_list<const char*> allowed) const {
    if (!map.IsMap()) return At(map, StrCat(where, " must be a mapping"));
    for (const auto& kv : map) {
      const std::string key = kv.first.Scalar();
      bool ok = false;
      for (const char* a : allowed) ok = ok || key == a;
      if (!ok) {
        std::vector<std::string> names(allowed.begin(), allowed.end());
        return At(kv.first, StrCat("unknown key \"", key, "\" in ", where,
                                   " (known: ", StrJoin(names, ", "), ")"));
      }
    }
    return Status::Ok();
  }

  Result<std::string> Str(const YAML::Node& n, const std::string& what) const {
    if (!n.IsScalar()) return At(n, StrCat(what, " must be a string"));
    return n.Scalar();
  }

  Result<bool> Bool(const YAML::Node& n, const std::string& what) const {
    if (n.IsScalar()) {
      const std::string v = n.Scalar();
      if (v == "true" || v == "yes" || v == "on") return true;
      if (v == "false" || v == "no" || v == "off") return false;
    }
    return At(n, StrCat(what, " must be true or false"));
  }

  Result<double> Number(const YAML::Node& n, const std::string& what, double min) const {
    double v = 0;
    if (!n.IsScalar() || !ParseDouble(n.Scalar(), &v) || v < min) {
      return At(n, StrCat(what, " must be a number >= ", min));
    }
    return v;
  }

  Result<uint64_t> Count(const YAML::Node& n, const std::string& what) const {
    int64_t v = 0;
    if (!n.IsScalar() || !ParseInt64(n.Scalar(), &v) || v < 0) {
      return At(n, StrCat(what, " must be a non-negative integer"));
    }
    return static_cast<uint64_t>(v);
  }

  Result<std::vector<std::string>> Strings(const YAML::Node& n, const std::string& what) const {
    if (!n.IsSequence()) return At(n, StrCat(what, " must be a list of strings"));
    std::vector<std::string> out;
    for (const auto& x : n) {
      V4_ASSIGN_OR_RETURN(std::string s, Str(x, StrCat("each entry of ", what)));
      out.push_back(std::move(s));
    }
    return out;
  }

  Result<Verdict> ParseVerdict(const YAML::Node& n) const {
    V4_ASSIGN_OR_RETURN(std::string v, Str(n, "decision"));
    if (v == "allow") return Verdict::kAllow;
    if (v == "ask") return Verdict::kAsk;
    if (v == "deny") return Verdict::kDeny;
    return At(n, StrCat("decision must be allow, ask or deny, not \"", v, "\""));
  }

  Status Sandbox(const YAML::Node& n, Policy* p) const {
    V4_RETURN_IF_ERROR(Keys(n, "sandbox",
                            {"mode", "network", "writable_roots", "protected_paths", "hidden_paths",
                             "secrets", "secret_roots", "env_allowlist", "limits"}));
    if (auto m = n["mode"]) {
      V4_ASSIGN_OR_RETURN(std::string mode, Str(m, "sandbox.mode"));
      if (mode == "read-only") {
        p->mode = SandboxMode::kReadOnly;
      } else if (mode == "workspace-write") {
        p->mode = SandboxMode::kWorkspaceWrite;
      } else if (mode == "full-access") {
        p->mode = SandboxMode::kFullAccess;
      } else {
        return At(m, StrCat("sandbox.mode must be read-only, workspace-write or full-access, "
                            "not \"",
                            mode, "\""));
      }
    }
    if (auto x = n["network"]) {
      if (x.IsMap()) {
        V4_RETURN_IF_ERROR(Keys(x, "sandbox.network", {"allow"}));
        if (!x["allow"]) return At(x, "sandbox.network: a map needs an allow list");
        V4_ASSIGN_OR_RETURN(p->network_allow, Strings(x["allow"], "sandbox.network.allow"));
        if (p->network_allow.empty()) {
          return At(x["allow"], "sandbox.network.allow: an empty allowlist; say false instead");
        }
        for (size_t i = 0; i < p->network_allow.size(); ++i) {
          const std::string& h = p->network_allow[i];
          bool ok = !h.empty() && h.find_first_of(" /@\t") == std::string::npos;
          if (!ok) {
            return At(x["allow"][i], StrCat("sandbox.network.allow: \"", h,
                                            "\" is not a host, *.domain or host:port"));
          }
        }
        p->network = false;
      } else {
        V4_ASSIGN_OR_RETURN(p->network, Bool(x, "sandbox.network"));
      }
    }
    if (auto x = n["writable_roots"]) {
      V4_ASSIGN_OR_RETURN(p->writable_roots, Strings(x, "sandbox.writable_roots"));
      for (size_t i = 0; i < p->writable_roots.size(); ++i) {
        if (p->writable_roots[i].empty() || p->writable_roots[i][0] != '/') {
          return At(x[i], "sandbox.writable_roots entries must be absolute paths");
        }
      }
    }
    if (auto x = n["protected_paths"]) {
      V4_ASSIGN_OR_RETURN(p->protected_paths, Strings(x, "sandbox.protected_paths"));
    }
    if (auto x = n["hidden_paths"]) {
      V4_ASSIGN_OR_RETURN(p->hidden_paths, Strings(x, "sandbox.hidden_paths"));
    }
    if (auto x = n["secrets"]) {
      V4_ASSIGN_OR_RETURN(p->secrets, Strings(x, "sandbox.secrets"));
    }
    if (auto x = n["secret_roots"]) {
      V4_ASSIGN_OR_RETURN(p->secret_roots, Strings(x, "sandbox.secret_roots"));
    }
    if (auto x = n["env_allowlist"]) {
      V4_ASSIGN_OR_RETURN(p->env_allowlist, Strings(x, "sandbox.env_allowlist"));
    }
    if (auto l = n["limits"]) {
      V4_RETURN_IF_ERROR(
          Keys(l, "sandbox.limits",
               {"memory_mb", "pids", "cpu_seconds", "file_size_mb", "open_files", "tmp_mb"}));
      struct F {
        const char* key;
        uint64_t* field;
      } fields[] = {
          {"memory_mb", &p->limits.memory_mb},     {"pids", &p->limits.pids},
          {"cpu_seconds", &p->limits.cpu_seconds}, {"file_size_mb", &p->limits.file_size_mb},
          {"open_files", &p->limits.open_files},   {"tmp_mb", &p->limits.tmp_mb}};
      for (const F& f : fields) {
        if (auto x = l[f.key]) {
          V4_ASSIGN_OR_RETURN(*f.field, Count(x, StrCat("limits.", f.key)));
        }
      }
    }
    return Status::Ok();
  }

  Status Budgets(const YAML::Node& n, Policy* p) const {
    V4_RETURN_IF_ERROR(
        Keys(n, "budgets", {"max_steps", "max_tokens", "max_wall_seconds", "command_timeout"}));
    if (auto x = n["max_steps"]) {
      V4_ASSIGN_OR_RETURN(uint64_t v, Count(x, "budgets.max_steps"));
      p->budgets.max_steps = static_cast<int>(v);
    }
    if (auto x = n["max_tokens"]) {
      V4_ASSIGN_OR_RETURN(uint64_t v, Count(x, "budgets.max_tokens"));
      p->budgets.max_tokens = static_cast<int64_t>(v);
    }
    if (auto x = n["max_wall_seconds"]) {
      V4_ASSIGN_OR_RETURN(p->budgets.max_wall_seconds, Number(x, "budgets.max_wall_seconds", 0));
    }
    if (auto t = n["command_timeout"]) {
      V4_RETURN_IF_ERROR(Keys(t, "budgets.command_timeout", {"default", "max"}));
      if (auto x = t["default"]) {
        V4_ASSIGN_OR_RETURN(p->budgets.command_timeout_default,
                            Number(x, "command_timeout.default", 0.001));
      }
      if (auto x = t["max"]) {
        V4_ASSIGN_OR_RETURN(p->budgets.command_timeout_max,
                            Number(x, "command_timeout.max", 0.001));
      }
      if (p->budgets.command_timeout_default > p->budgets.command_timeout_max) {
        return At(t, "command_timeout.default must not exceed command_timeout.max");
      }
    }
    return Status::Ok();
  }

  Status Rule(const YAML::Node& n, size_t index, Policy* p) const {
    V4_RETURN_IF_ERROR(Keys(n, StrCat("rules[", index, "]"),
                            {"id", "prefix", "regex", "decision", "reason", "match", "not_match"}));
    CommandRule r;
    r.line = n.Mark().line + 1;
    r.id = StrCat("rules[", index, "]");
    if (auto x = n["id"]) {
      V4_ASSIGN_OR_RETURN(r.id, Str(x, "id"));
    }
    if (!n["decision"]) return At(n, StrCat("rule ", r.id, " needs a decision"));
    V4_ASSIGN_OR_RETURN(r.decision, ParseVerdict(n["decision"]));
    if (auto x = n["reason"]) {
      V4_ASSIGN_OR_RETURN(r.reason, Str(x, "reason"));
    }
    if (r.reason.empty()) r.reason = StrCat("rule ", r.id);
    const bool has_prefix = static_cast<bool>(n["prefix"]),
               has_regex = static_cast<bool>(n["regex"]);
    if (has_prefix == has_regex) {
      return At(n, StrCat("rule ", r.id, " needs exactly one of prefix and regex"));
    }
    if (has_prefix) {
      const YAML::Node x = n["prefix"];
      if (x.IsScalar()) {
        auto split = SplitShell(x.Scalar());
        if (!split.ok() || split->size() != 1) {
          return At(x, StrCat("rule ", r.id, ": prefix must be one simple command"));
        }
        r.prefix = (*split)[0];
      } else {
        V4_ASSIGN_OR_RETURN(r.prefix, Strings(x, "prefix"));
      }
      if (r.prefix.empty()) return At(x, StrCat("rule ", r.id, ": empty prefix"));
    } else {
      V4_ASSIGN_OR_RETURN(r.regex_text, Str(n["regex"], "regex"));
      auto re = Regex::Compile(r.regex_text);
      if (!re.ok()) return At(n["regex"], StrCat("rule ", r.id, ": ", re.status().message()));
      r.regex = std::move(re).value();
    }
    if (auto x = n["match"]) {
      V4_ASSIGN_OR_RETURN(r.match, Strings(x, "match"));
    }
    if (auto x = n["not_match"]) {
      V4_ASSIGN_OR_RETURN(r.not_match, Strings(x, "not_match"));
    }
    // The rule's own examples must behave as written.
    for (auto [list, want, key] :
         {std::tuple{&r.match, true, "match"}, std::tuple{&r.not_match, false, "not_match"}}) {
      for (size_t i = 0; i < list->size(); ++i) {
        const std::string& ex = (*list)[i];
        if (RuleMatchesExample(r, ex) != want) {
          return At(n[key][i], StrCat("rule ", r.id, ": example \"", ex, "\" ",
                                      want ? "does not match the rule" : "matches the rule",
                                      " (listed under ", key, ")"));
        }
      }
    }
    p->rules.push_back(std::move(r));
    return Status::Ok();
  }

  Result<Policy> Load(const std::string& text) const {
    Policy p;
    p.source = file;
    YAML::Node root;
    try {
      root = YAML::Load(text);
    } catch (const YAML::ParserException& e) {
      return InvalidArgumentError(
          StrCat(file, ":", e.mark.line + 1, ":", e.mark.column + 1, ": ", e.msg));
    } catch (const YAML::Exception& e) {
      return InvalidArgumentError(StrCat(file, ": ", e.what()));
    }
    if (root.IsNull()) return InvalidArgumentError(file + ": the policy is empty");
    try {
      V4_RETURN_IF_ERROR(Keys(root, "the policy",
                              {"version", "sandbox", "approval", "tools", "budgets", "rules"}));
      if (auto v = root["version"]) {
        V4_ASSIGN_OR_RETURN(uint64_t version, Count(v, "version"));
        if (version != 1) return At(v, "only version 1 is known");
      }
      if (auto s = root["sandbox"]) V4_RETURN_IF_ERROR(Sandbox(s, &p));
      if (auto a = root["approval"]) {
        V4_ASSIGN_OR_RETURN(std::string v, Str(a, "approval"));
        if (v == "never") {
          p.approval = Approval::kNever;
        } else if (v == "on-request") {
          p.approval = Approval::kOnRequest;
        } else if (v == "untrusted") {
          p.approval = Approval::kUntrusted;
        } else {
          return At(a, StrCat("approval must be never, on-request or untrusted, not \"", v, "\""));
        }
      }
      if (auto t = root["tools"]) {
        V4_RETURN_IF_ERROR(Keys(t, "tools", {"allow"}));
        if (auto a = t["allow"]) {
          V4_ASSIGN_OR_RETURN(p.tools_allowed, Strings(a, "tools.allow"));
        }
      }
      if (auto b = root["budgets"]) V4_RETURN_IF_ERROR(Budgets(b, &p));
      if (auto rules = root["rules"]) {
        if (!rules.IsSequence()) return At(rules, "rules must be a list");
        std::set<std::string> ids;
        for (size_t i = 0; i < rules.size(); ++i) {
          V4_RETURN_IF_ERROR(Rule(rules[i], i, &p));
          if (!ids.insert(p.rules.back().id).second) {
            return At(rules[i], StrCat("duplicate rule id \"", p.rules.back().id, "\""));
          }
        }
      }
    } catch (const YAML::Exception& e) {
      return InvalidArgumentError(
          StrCat(file, ":", e.mark.line + 1, ":", e.mark.column + 1, ": ", e.msg));
    }
    return p;
  }
};

}  // namespace

Result<Policy> LoadPolicyText(const std::string& text, const std::string& source_name) {
  return Loader{source_name}.Load(text);
}

Result<Policy> LoadPolicySpec(const std::string& spec) {
  if (StartsWith(spec, "builtin:")) return BuiltinPolicy(spec.substr(8));
  return LoadPolicyFile(spec);
}

Result<Policy> LoadPolicyFile(const std::string& path) {
  V4_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  return LoadPolicyText(text, path);
}

}  // namespace v4agent::policies
