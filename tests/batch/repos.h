// Task instances for the batch tests, built from repositories made here: a Python module
// with a bug, a test patch that adds the failing test, the gold fix, a patch that fixes the
// bug but breaks a PASS_TO_PASS test, and an upstream commit + tag after the base commit
// that must never reach a workspace. Mirrored as bare repositories under `repos`.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "batch/instance.h"
#include "common/file_util.h"
#include "common/strings.h"
#include "common/subprocess.h"

namespace v4agent::batch::testing {

inline std::string Sh(const std::string& dir, const std::string& cmd) {
  ProcessOptions o;
  o.cwd = dir;
  o.env = {"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t",
           "GIT_COMMITTER_EMAIL=t@t", "GIT_CONFIG_NOSYSTEM=1"};
  auto r = RunProcess({"/bin/bash", "-c", cmd}, o);
  EXPECT_TRUE(r.ok() && r->ok()) << cmd << "\n" << (r.ok() ? r->err : r.status().message());
  return r.ok() ? std::string(StripWhitespace(r->out)) : "";
}

inline void Put(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  ASSERT_TRUE(WriteFile(path, text).ok());
}

struct Built {
  Instance instance;
  std::string break_patch;   // fixes the bug but breaks a PASS_TO_PASS test
  std::string later_commit;  // in the mirror after base_commit
};

// A repository `name` with a bug, its fix and the test that shows it, mirrored under `repos`.
inline Built MakeRepo(const std::string& root, const std::string& repos, const std::string& name,
                      bool pytest) {
  const std::string src = root + "/src-" + name;
  std::filesystem::create_directories(src);
  Sh(src, "git init -q -b main .");
  Put(src + "/calc.py", "def add(a, b):\n    return a - b\n\n\ndef sub(a, b):\n    return a - b\n");
  Put(src + "/tests/__init__.py", "");
  const std::string old_test =
      pytest ? "from calc import sub\n\n\ndef test_sub():\n    assert sub(5, 3) == 2\n"
             : "import unittest\nfrom calc import sub\n\n\nclass TestCalc(unittest.TestCase):\n"
               "    def test_sub(self):\n        self.assertEqual(sub(5, 3), 2)\n";
  Put(src + "/tests/test_calc.py", old_test);
  Put(src + "/conftest.py", "");
  Sh(src, "git add -A && git commit -qm base");
  Built b;
  b.instance.base_commit = Sh(src, "git rev-parse HEAD");
  // The test patch adds the failing test.
  const std::string new_test =
      pytest ? old_test + "\n\ndef test_add():\n    assert add(2, 3) == 5\n"
             : old_test + "\n    def test_add(self):\n        self.assertEqual(add(2, 3), 5)\n";
  Put(src + "/tests/test_calc.py",
      (pytest ? "from calc import add\n" : "from calc import add\n") + new_test);
  b.instance.test_patch = Sh(src, "git diff") + "\n";
  Sh(src, "git checkout -q -- .");
  // Gold: fix add.
  Put(src + "/calc.py", "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n");
  b.instance.patch = Sh(src, "git diff") + "\n";
  Put(src + "/calc.py", "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a + b\n");
  b.break_patch = Sh(src, "git diff") + "\n";
  Sh(src, "git checkout -q -- .");
  // Upstream later fixes it and tags a release: none of it may reach a workspace.
  Put(src + "/calc.py",
      "def add(a, b):\n    return a + b  # upstream fix\n\n\ndef sub(a, b):\n    return a - b\n");
  Sh(src, "git commit -qam 'upstream fix' && git tag v1.0");
  b.later_commit = Sh(src, "git rev-parse HEAD");
  Sh(root, "git clone -q --bare src-" + name + " " + repos + "/acme__" + name + ".git");
  b.instance.id = "acme__" + name + "-1";
  b.instance.repo = "acme/" + name;
  b.instance.version = "1.0";
  b.instance.problem_statement = "add() subtracts";
  if (pytest) {
    b.instance.fail_to_pass = {"tests/test_calc.py::test_add"};
    b.instance.pass_to_pass = {"tests/test_calc.py::test_sub"};
  } else {
    b.instance.fail_to_pass = {"test_add (tests.test_calc.TestCalc)"};
    b.instance.pass_to_pass = {"test_sub (tests.test_calc.TestCalc)"};
  }
  return b;
}

inline constexpr char kSpecs[] =
    "acme/ucalc:\n"
    "  \"*\":\n"
    "    test_cmd: /usr/bin/python3 -m unittest -v\n"
    "    parser: unittest\n"
    "acme/pcalc:\n"
    "  \"1.0\":\n"
    "    pre_test: [\"rm -rf .pytest_cache\"]\n"
    "    test_cmd: /usr/bin/python3 -m pytest -rA -p no:cacheprovider\n"
    "    env: {PYTHONDONTWRITEBYTECODE: \"1\"}\n"
    "    parser: pytest\n"
    "acme/qcalc:\n"
    "  \"*\":\n"
    "    test_cmd: /usr/bin/python3 -m pytest -rA -p no:cacheprovider\n"
    "    parser: pytest\n";

}  // namespace v4agent::batch::testing
