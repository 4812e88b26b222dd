// bash and submit through the real sandbox: exit codes, the working directory carried across
// calls, timeouts, output floods cut to head+tail, policy denials, and the submitted diff.
#include <gtest/gtest.h>

#include "tests/sandbox/host_server.h"
#include "tests/tools/tools_harness.h"

namespace v4agent::tools {
namespace {

using testing::Workspace;

TEST(BashToolTest, RunsInTheWorkspaceAndReportsTheExitCode) {
  Workspace ws;
  ToolResult r = ws.Call("bash", {{"command", "echo hello > f.txt && cat f.txt; exit 3"}});
  EXPECT_EQ(r.kind, ToolResult::kOk);
  EXPECT_EQ(r.text, "hello\n[exit code 3]");
  EXPECT_EQ(r.extra["exit_code"], 3);
  EXPECT_EQ(ws.Read("f.txt"), "hello\n");
  r = ws.Call("bash", {{"command", "echo out; echo err >&2"}});
  EXPECT_EQ(r.text, "out\n[stderr]\nerr\n[exit code 0]");
}

TEST(BashToolTest, WorkingDirectoryPersistsButNotOutsideTheWorkspace) {
  Workspace ws;
  ws.Write("sub/dir/x.txt", "x\n");
  ws.Call("bash", {{"command", "cd sub/dir"}});
  ToolResult r = ws.Call("bash", {{"command", "ls; pwd"}});
  EXPECT_EQ(r.text, "x.txt\n" + ws.path() + "/sub/dir\n[exit code 0]");
  ws.Call("bash", {{"command", "cd /usr"}});
  r = ws.Call("bash", {{"command", "pwd"}});
  EXPECT_EQ(r.text, ws.path() + "/sub/dir\n[exit code 0]") << "left the workspace";
}

TEST(BashToolTest, TimeoutAndFloods) {
  Workspace ws;
  ToolResult r = ws.Call("bash", {{"command", "echo before; sleep 30"}, {"timeout", 1}});
  EXPECT_EQ(r.kind, ToolResult::kToolError);
  EXPECT_NE(r.text.find("before\n"), std::string::npos);
  EXPECT_NE(r.text.find("timed out"), std::string::npos);
  EXPECT_NE(r.text.find("[exit code 124]"), std::string::npos);
  r = ws.Call("bash", {{"command", "seq 1 200000; printf '\\033[31mred\\033[0m\\n'"}});
  EXPECT_LT(r.text.size(), ws.ctx().output_budget + 300);
  EXPECT_NE(r.text.find("bytes elided"), std::string::npos);
  EXPECT_EQ(r.text.rfind("1\n2\n3\n", 0), 0u);
  EXPECT_EQ(r.text.find("\033"), std::string::npos) << "ANSI escapes reach the model";
  EXPECT_NE(r.text.find("red\n[exit code 0]"), std::string::npos);
  EXPECT_EQ(ws.Call("bash", {{"command", "  "}}).kind, ToolResult::kToolError);
}

TEST(BashToolTest, PolicyRulesAndTheSandboxBothApply) {
  Workspace ws;
  ToolResult r = ws.Call("bash", {{"command", "git init -q . && git push origin main"}});
  EXPECT_EQ(r.kind, ToolResult::kDenied);
  EXPECT_NE(r.text.find("no-git-push"), std::string::npos);
  EXPECT_FALSE(ws.Exists(".git")) << "a denied call must not run at all";
  r = ws.Call("bash", {{"command", "echo x > /usr/v4-escape"}});
  EXPECT_NE(r.text.find("Read-only file system"), std::string::npos) << r.text;
  r = ws.Call("bash", {{"command", "python3 -c 'import socket; socket.socket()'"}});
  EXPECT_NE(r.text.find("Permission denied"), std::string::npos) << r.text;
  Workspace ro("read-only");
  r = ro.Call("bash", {{"command", "ls && touch x"}});
  EXPECT_EQ(r.kind, ToolResult::kDenied) << r.text;
  r = ro.Call("bash", {{"command", "ls -a"}});
  EXPECT_EQ(r.kind, ToolResult::kOk) << r.text;
}

TEST(BashToolTest, NetworkAllowlistReachesOnlyListedHostsAndRecordsDecisions) {
  sandbox::testing::HostServer allowed("ok"), other("other");
  auto policy = policies::LoadPolicyText(
      StrCat("sandbox:\n  mode: workspace-write\n  network: {allow: [\"localhost:", allowed.port(),
             "\"]}\n"),
      "egress.yaml");
  ASSERT_TRUE(policy.ok()) << policy.status().ToString();
  Workspace ws(*policy);
  auto fetch = [](int port) {
    return StrCat("python3 -c \"import urllib.request as u\ntry: print(u.urlopen('http://",
                  "localhost.:", port,
                  "/').read().decode())\nexcept Exception as e: print('no', e)\"");
  };
  ToolResult r = ws.Call("bash", {{"command", fetch(allowed.port()) + "; " + fetch(other.port())}});
  EXPECT_EQ(r.text.substr(0, r.text.find('\n')), "hello-ok") << r.text;
  EXPECT_NE(r.text.find("no HTTP Error 403"), std::string::npos) << r.text;
  EXPECT_EQ(allowed.hits(), 1);
  EXPECT_EQ(other.hits(), 0);
  ASSERT_EQ(r.extra["network"].size(), 2u) << DumpJson(r.extra);
  EXPECT_TRUE(r.extra["network"][0]["allowed"].get<bool>());
  EXPECT_FALSE(r.extra["network"][1]["allowed"].get<bool>());
  EXPECT_EQ(r.extra["network"][1]["reason"], "not in the policy's network allowlist");
}

TEST(SubmitToolTest, SubmitsTheAnswerAndTheDiff) {
  Workspace ws;
  ws.Write("a.txt", "one\n");
  ASSERT_EQ(ws.Sh("git init -q . && git add a.txt && git -c user.email=a@b -c user.name=n "
                  "commit -qm init"),
            0);
  ws.Call("str_replace", {{"path", "a.txt"}, {"old_str", "one"}, {"new_str", "two"}});
  ws.Call("create", {{"path", "b.txt"}, {"file_text", "new\n"}});
  ToolResult r = ws.Call("submit", {{"answer", "changed a, added b"}});
  EXPECT_TRUE(r.submitted);
  const std::string& s = ws.ctx().submission;
  EXPECT_EQ(s.rfind("changed a, added b\n\n", 0), 0u);
  EXPECT_NE(s.find("-one\n+two"), std::string::npos) << s;
  EXPECT_NE(s.find("+new"), std::string::npos) << s;
}

}  // namespace
}  // namespace v4agent::tools
