// Per-repository test specifications for evaluation (docs/batch.md), read from YAML:
//
//   owner/name:              # an instance's `repo`
//     "*":                   # or a `version` value such as "1.7"; the exact version wins
//       install: [cmd, ...]  # optional, run once per worktree before the patches
//       pre_test: [cmd, ...] # optional, run after the patches, before the tests
//       test_cmd: "cmd"      # the test files test_patch touches are appended
//       env: {KEY: value}    # optional
//       parser: pytest       # pytest | unittest | django | sympy
//
// Errors name file:line:column. yaml-cpp stays in eval_spec.cpp.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/status.h"

namespace v4agent::batch {

struct TestSpec {
  std::vector<std::string> install, pre_test;
  std::string test_cmd;
  std::vector<std::string> env;  // NAME=value
  std::string parser;
  std::string where;  // file:line of the entry, for messages
};

class EvalSpecs {
 public:
  static Result<EvalSpecs> Load(const std::string& path);
  // The spec for `repo` at `version` (exact version, else "*"); the error names the file.
  Result<TestSpec> Find(const std::string& repo, const std::string& version) const;

 private:
  std::string path_;
  std::map<std::string, std::map<std::string, TestSpec>> specs_;
};

}  // namespace v4agent::batch
