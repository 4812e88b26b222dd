// Over-blocking: the toolchains agents run every day must work inside the sandbox under the
// shipped policies (through the bash tool, so the policy-to-sandbox mapping is what runs):
// Python multiprocessing (needs /dev/shm), node (reserves far more address space than it
// uses), gcc + make, git, a pty program, and a pytest run that uses tmp_path. A protection
// that breaks one of these is a bug as real as an escape.
#include <gtest/gtest.h>

#include "tests/tools/tools_harness.h"

namespace v4agent::tools {
namespace {

using testing::Workspace;

struct Toolchain {
  const char* id;
  const char* command;
  const char* expect;  // the whole output, exit code line included (pytest: a part of it)
};

const Toolchain kToolchains[] = {
    {"python_pool",
     "/usr/bin/python3 -c 'from multiprocessing import Pool\n"
     "if __name__ == \"__main__\":\n"
     "    with Pool(2) as p: print(sum(p.map(abs, range(-10, 0))))'",
     "55\n[exit code 0]"},
    {"python_process_pool",
     "/usr/bin/python3 -c 'from concurrent.futures import ProcessPoolExecutor as E\n"
     "if __name__ == \"__main__\":\n"
     "    with E(2) as e: print(list(e.map(pow, [2, 3], [5, 2])))'",
     "[32, 9]\n[exit code 0]"},
    {"node", "node -e 'console.log([1,2,3].map(x => x * 7).join(\",\"))'",
     "7,14,21\n[exit code 0]"},
    {"gcc_make",
     "mkdir -p /tmp/b && cd /tmp/b && printf 'int main(void){return 0;}\\n' > m.c && "
     "printf 'm: m.c\\n\\tcc -O2 -o m m.c\\n' > Makefile && make -s && ./m && echo built",
     "built\n[exit code 0]"},
    {"git",
     "cd /tmp && git init -q g && cd g && echo a > a && git add a && "
     "git -c user.email=a@b -c user.name=n commit -qm one && git log --format=%s",
     "one\n[exit code 0]"},
    {"pty_script", "script -qc 'tty' /dev/null | tr -d '\\r'", "/dev/pts/0\n[exit code 0]"},
    {"pty_python",
     "/usr/bin/python3 -c 'import os, pty\nm, s = pty.openpty()\nos.write(s, b\"ping\\n\")\n"
     "print(os.read(m, 64).decode().strip(), os.ttyname(s))'",
     "ping /dev/pts/0\n[exit code 0]"},
    {"pytest_tmp_path", "python3 -m pytest -q -p no:cacheprovider tests_overblock", "2 passed"},
};

constexpr char kPytestFile[] =
    "import multiprocessing\n"
    "def test_tmp_path(tmp_path):\n"
    "    (tmp_path / 'x.txt').write_text('hi')\n"
    "    assert (tmp_path / 'x.txt').read_text() == 'hi'\n"
    "def test_multiprocessing():\n"
    "    with multiprocessing.Pool(2) as p:\n"
    "        assert p.map(abs, [-1, -2]) == [1, 2]\n";

// Debian's python3 (with python3-pytest from scripts/setup.sh), whatever else PATH has first.
void UseSystemPath() { setenv("PATH", "/usr/bin:/bin", 1); }

class OverblockingTest : public ::testing::TestWithParam<std::tuple<std::string, Toolchain>> {};

TEST_P(OverblockingTest, ToolchainWorks) {
  UseSystemPath();
  const auto& [policy, tc] = GetParam();
  Workspace ws(policy);
  ws.Write("tests_overblock/test_x.py", kPytestFile);
  ws.Sh("chmod -R a+rwX .");
  ToolResult r = ws.Call("bash", {{"command", tc.command}});
  if (std::string(tc.id) == "pytest_tmp_path") {
    EXPECT_EQ(r.kind, ToolResult::kOk) << r.text;
    EXPECT_NE(r.text.find(tc.expect), std::string::npos) << r.text;
    EXPECT_NE(r.text.find("[exit code 0]"), std::string::npos) << r.text;
  } else {
    EXPECT_EQ(r.text, tc.expect) << tc.id << " under " << policy;
  }
}

std::vector<std::tuple<std::string, Toolchain>> Rows() {
  std::vector<std::tuple<std::string, Toolchain>> rows;
  for (const char* policy : {"workspace-write", "full-access"}) {
    for (const Toolchain& tc : kToolchains) rows.emplace_back(policy, tc);
  }
  // read-only allows the test runners only; they must work without writing the workspace.
  rows.emplace_back("read-only", kToolchains[7]);
  return rows;
}

INSTANTIATE_TEST_SUITE_P(Shipped, OverblockingTest, ::testing::ValuesIn(Rows()),
                         [](const auto& info) {
                           std::string name =
                               std::get<0>(info.param) + "_" + std::get<1>(info.param).id;
                           for (char& c : name) {
                             if (c == '-') c = '_';
                           }
                           return name;
                         });

TEST(ReadOnlyPolicyTest, AnAllowedTestRunWritingTheWorkspaceGetsEROFS) {
  // The read-only policy allows test runners; the sandbox must still keep the workspace
  // read-only for them (the tool's own check cannot see what a test writes).
  UseSystemPath();
  Workspace ws("read-only");
  ws.Write("test_writes.py",
           "import unittest\n"
           "class T(unittest.TestCase):\n"
           "    def test_write(self):\n"
           "        try:\n"
           "            open('written.txt', 'w').write('x')\n"
           "            print('WROTE')\n"
           "        except OSError as e:\n"
           "            print('errno', e.errno)\n");
  ws.Sh("chmod -R a+rwX .");
  ToolResult r = ws.Call("bash", {{"command", "python3 -m unittest test_writes"}});
  EXPECT_EQ(r.kind, ToolResult::kOk) << r.text;
  EXPECT_NE(r.text.find("errno 30"), std::string::npos) << r.text;  // EROFS
  EXPECT_FALSE(ws.Exists("written.txt"));
  // Control: the same run under workspace-write writes the file.
  Workspace rw("workspace-write");
  rw.Write("test_writes.py", *ReadFile(ws.path() + "/test_writes.py"));
  rw.Sh("chmod -R a+rwX .");
  r = rw.Call("bash", {{"command", "python3 -m unittest test_writes"}});
  EXPECT_NE(r.text.find("WROTE"), std::string::npos) << r.text;
  EXPECT_TRUE(rw.Exists("written.txt"));
}

}  // namespace
}  // namespace v4agent::tools
