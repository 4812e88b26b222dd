// The YAML adapter of evaluation specs: yaml-cpp stays in this file; its exceptions never
// leave it.
#include "batch/eval_spec.h"

#include <yaml-cpp/yaml.h>

#include "batch/test_logs.h"
#include "common/file_util.h"
#include "common/strings.h"

namespace v4agent::batch {
namespace {

Status At(const std::string& file, const YAML::Node& n, const std::string& msg) {
  const YAML::Mark m = n.Mark();
  if (m.line < 0) return InvalidArgumentError(StrCat(file, ": ", msg));
  return InvalidArgumentError(StrCat(file, ":", m.line + 1, ":", m.column + 1, ": ", msg));
}

Result<std::vector<std::string>> StrList(const std::string& file, const YAML::Node& n,
                                         const std::string& what) {
  std::vector<std::string> out;
  if (n.IsScalar()) return std::vector<std::string>{n.Scalar()};
  if (!n.IsSequence()) return At(file, n, StrCat(what, " must be a list of commands"));
  for (const auto& item : n) {
    if (!item.IsScalar()) return At(file, item, StrCat(what, " entries must be strings"));
    out.push_back(item.Scalar());
  }
  return out;
}

Result<TestSpec> ReadSpec(const std::string& file, const YAML::Node& n, const std::string& what) {
  if (!n.IsMap()) return At(file, n, StrCat(what, " must be a mapping"));
  TestSpec s;
  s.where = StrCat(file, ":", n.Mark().line + 1);
  for (const auto& kv : n) {
    const std::string key = kv.first.Scalar();
    const YAML::Node& v = kv.second;
    if (key == "install") {
      V4_ASSIGN_OR_RETURN(s.install, StrList(file, v, what + ".install"));
    } else if (key == "pre_test") {
      V4_ASSIGN_OR_RETURN(s.pre_test, StrList(file, v, what + ".pre_test"));
    } else if (key == "test_cmd") {
      if (!v.IsScalar()) return At(file, v, what + ".test_cmd must be a string");
      s.test_cmd = v.Scalar();
    } else if (key == "parser") {
      if (!v.IsScalar()) return At(file, v, what + ".parser must be a string");
      s.parser = v.Scalar();
      bool known = false;
      for (const auto& p : TestLogParsers()) known = known || p == s.parser;
      if (!known) {
        return At(file, v,
                  StrCat("unknown parser \"", s.parser,
                         "\" (known: ", StrJoin(TestLogParsers(), ", "), ")"));
      }
    } else if (key == "env") {
      if (!v.IsMap()) return At(file, v, what + ".env must be a mapping of NAME: value");
      for (const auto& e : v) {
        if (!e.second.IsScalar()) return At(file, e.second, "env values must be strings");
        s.env.push_back(e.first.Scalar() + "=" + e.second.Scalar());
      }
    } else {
      return At(file, kv.first,
                StrCat("unknown key \"", key, "\" in ", what,
                       " (known: install, pre_test, test_cmd, env, parser)"));
    }
  }
  if (s.test_cmd.empty()) return At(file, n, what + ": test_cmd is required");
  if (s.parser.empty()) return At(file, n, what + ": parser is required");
  return s;
}

}  // namespace

Result<EvalSpecs> EvalSpecs::Load(const std::string& path) {
  V4_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  EvalSpecs specs;
  specs.path_ = path;
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return InvalidArgumentError(
        StrCat(path, ":", e.mark.line + 1, ":", e.mark.column + 1, ": ", e.msg));
  }
  if (!root.IsMap()) return At(path, root, "expected a mapping of owner/name: {version: spec}");
  for (const auto& repo : root) {
    const std::string name = repo.first.Scalar();
    if (name.find('/') == std::string::npos) {
      return At(path, repo.first, StrCat("\"", name, "\" is not owner/name"));
    }
    if (!repo.second.IsMap()) {
      return At(path, repo.second, StrCat(name, " must map versions (or \"*\") to specs"));
    }
    for (const auto& ver : repo.second) {
      const std::string version = ver.first.Scalar();
      V4_ASSIGN_OR_RETURN(TestSpec s,
                          ReadSpec(path, ver.second, StrCat(name, "[\"", version, "\"]")));
      specs.specs_[name][version] = std::move(s);
    }
  }
  return specs;
}

Result<TestSpec> EvalSpecs::Find(const std::string& repo, const std::string& version) const {
  auto r = specs_.find(repo);
  if (r == specs_.end()) {
    return NotFoundError(StrCat(path_, ": no test spec for ", repo));
  }
  if (auto v = r->second.find(version); v != r->second.end()) return v->second;
  if (auto v = r->second.find("*"); v != r->second.end()) return v->second;
  return NotFoundError(
      StrCat(path_, ": no test spec for ", repo, " version \"", version, "\" and no \"*\" entry"));
}

}  // namespace v4agent::batch
