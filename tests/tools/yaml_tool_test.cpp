// YAML-defined tools: the loader's errors at file:line:col, the shipped tools run for real in
// the sandbox on a git repository, and hostile arguments (shell metacharacters, option
// injection, paths out of the workspace, writes from a tool that declared none) doing nothing
// they should not.
#include "tools/yaml_tool.h"

#include <gtest/gtest.h>

#include "common/file_util.h"
#include "common/strings.h"
#include "tests/tools/tools_harness.h"
#include "tools/builtin_tools.h"
#include "tools/registry.h"

namespace v4agent::tools {
namespace {

class YamlToolLoadTest : public ::testing::Test {
 protected:
  Status Load(const std::string& text) {
    const std::string f = dir_.path() + "/t.yaml";
    V4_CHECK(WriteFile(f, text).ok());
    auto t = LoadYamlTool(f);
    return t.ok() ? Status::Ok() : t.status();
  }
  std::string Where() const { return dir_.path() + "/t.yaml"; }
  ScopedTempDir dir_;
};

TEST_F(YamlToolLoadTest, EveryMistakeIsNamedWithItsPosition) {
  const std::string ok_run = "run: {argv: [echo, hi]}\n";
  const std::pair<std::string, std::string> cases[] = {
      {"name: t\ndescription: d\n" + ok_run + "colour: red\n",
       ":4:1: unknown key \"colour\" in a tool"},
      {"description: d\n" + ok_run, ":1:1: a tool needs a name"},
      {"name: t\n" + ok_run, ":1:1: a tool needs a description"},
      {"name: 'bad name'\ndescription: d\n" + ok_run, ":1:7: name must be letters"},
      {"name: t\ndescription: d\nparameters:\n  x: {type: str}\n" + ok_run,
       ":4:13: type \"str\" is not one of string"},
      {"name: t\ndescription: d\nparameters:\n  x: {type: integer, default: 'ten'}\n" + ok_run,
       ":4:31: default \"ten\" is not of type integer"},
      {"name: t\ndescription: d\nparameters:\n  x: {type: string, enum: [a, 2]}\n" + ok_run,
       ":4:31: enum value 2 is not of type string"},
      {"name: t\ndescription: d\nparameters:\n  x: {type: string, item: 1}\n" + ok_run,
       ":4:21: unknown key \"item\" in parameter x"},
      {"name: t\ndescription: d\nrun: {argv: [echo, '${{ args.nope }}']}\n",
       ":3:20: run.argv entry: ${{ args.nope }} reads args.nope, which is not a parameter"},
      {"name: t\ndescription: d\nrun: {argv: [echo, '${{ env.HOME }}']}\n",
       ":3:20: run.argv entry: ${{ env.HOME }} reads \"env\""},
      {"name: t\ndescription: d\nrun: {argv: [echo, '${{ args. }}']}\n",
       ":3:20: run.argv entry: in ${{ args. }}"},
      {"name: t\ndescription: d\nparameters: {p: {type: string}}\nrun: {argv: ['${{ args.p }}']}\n",
       ":4:14: the program (run.argv[0]) must be fixed text"},
      {"name: t\ndescription: d\nrun: {argv: []}\n", ":3:13: run.argv must be a non-empty list"},
      {"name: t\ndescription: d\nrun: {argv: [x], timeout: -1}\n",
       ":3:27: run.timeout must be above 0"},
      {"name: t\ndescription: d\n" + ok_run + "needs: {network: all}\n",
       ":4:18: needs.network is none (default) or policy"},
      {"name: t\ndescription: d\n" + ok_run + "required: [ghost]\n",
       ":4:11: required names \"ghost\", which is not a parameter"},
      {"name: t\nname: u\ndescription: d\n" + ok_run, ":2:1: duplicate key \"name\""},
      {"name: [t\n", ":"},
  };
  for (const auto& [text, want] : cases) {
    Status s = Load(text);
    ASSERT_FALSE(s.ok()) << text;
    EXPECT_TRUE(StartsWith(s.message(), Where() + want)) << text << "\n=> " << s.message();
  }
}

class YamlToolRunTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(AddYamlTools({std::string(V4_SOURCE_DIR) + "/tools/yaml"}, &registry_).ok());
    for (const char* f : {"stats.py", "test_stats.py"}) {
      auto text = ReadFile(StrCat(V4_SOURCE_DIR, "/examples/median/", f));
      ASSERT_TRUE(text.ok());
      ws_.Write(f, *text);
    }
    ASSERT_EQ(ws_.Sh("git init -q . && git -c user.email=a@b -c user.name=Ann add -A && "
                     "git -c user.email=a@b -c user.name=Ann commit -qm 'median helpers'"),
              0);
  }
  ToolResult Call(const std::string& name, const Json& args) {
    return Invoke(registry_, ws_.ctx(), name, DumpJson(args));
  }
  Status Add(const std::string& yaml) {
    const std::string f = scratch_.path() + "/" + std::to_string(n_++) + ".yaml";
    V4_CHECK(WriteFile(f, yaml).ok());
    return AddYamlTools({f}, &registry_);
  }
  testing::Workspace ws_;
  Registry registry_ = Registry::Default();
  ScopedTempDir scratch_;
  int n_ = 0;
};

TEST_F(YamlToolRunTest, ShippedToolsRunInTheSandboxAndAreOfferedWithTheirSchemas) {
  const Json schemas = registry_.Schemas(ws_.ctx().policy);
  std::string names;
  for (const auto& s : schemas) names += s["function"]["name"].get<std::string>() + " ";
  EXPECT_NE(names.find("find_definition git_history run_tests"), std::string::npos) << names;

  ToolResult r = Call("run_tests", {{"runner", "unittest"}});
  EXPECT_NE(r.text.find("== summary: exit code 1, 1 failing"), std::string::npos) << r.text;
  EXPECT_NE(r.text.find("test_median_unsorted (test_stats.StatsTest"), std::string::npos) << r.text;
  r = Call("run_tests", {{"runner", "unittest"}, {"pattern", "test_mean"}});
  EXPECT_NE(r.text.find("== summary: exit code 0, 0 failing"), std::string::npos) << r.text;
  r = Call("run_tests", {{"runner", "nose"}});
  EXPECT_EQ(r.kind, ToolResult::kToolError);
  EXPECT_NE(r.text.find("must be one of [\"pytest\",\"unittest\"]"), std::string::npos) << r.text;

  r = Call("find_definition", {{"symbol", "median"}});
  EXPECT_EQ(r.kind, ToolResult::kOk) << r.text;
  EXPECT_NE(r.text.find("stats.py:10: def median(values):"), std::string::npos) << r.text;
  EXPECT_EQ(r.text.find("test_stats.py"), std::string::npos) << "uses are not definitions";
  r = Call("find_definition", Json::object());
  EXPECT_NE(r.text.find("missing required parameter \"symbol\""), std::string::npos);

  r = Call("git_history", {{"path", "stats.py"}});
  EXPECT_EQ(r.kind, ToolResult::kOk) << r.text;
  EXPECT_NE(r.text.find("Ann: median helpers"), std::string::npos) << r.text;
  EXPECT_EQ(r.text.find("diff --git"), std::string::npos);
  r = Call("git_history", {{"path", "stats.py"}, {"patch", true}});
  EXPECT_NE(r.text.find("diff --git a/stats.py"), std::string::npos) << r.text;
}

TEST_F(YamlToolRunTest, HostileArgumentsStayArgumentsAndPathsStayInTheWorkspace) {
  ASSERT_TRUE(Add("name: echo_args\ndescription: prints each argument on a line\n"
                  "parameters: {text: {type: string, required: true}, more: {type: array}}\n"
                  "run:\n  argv: [printf, '%s|\\n', '${{ args.text }}', '${{ args.more }}']\n"
                  "  env: {TEXT: '${{ args.text }}'}\n")
                  .ok());
  const std::string evil = "x; touch pwned1 $(touch pwned2) `touch pwned3` && touch pwned4 | cat";
  ToolResult r = Call("echo_args", {{"text", evil}, {"more", {"--help", "*", "$HOME", "a\nb"}}});
  ASSERT_EQ(r.kind, ToolResult::kOk) << r.text;
  EXPECT_EQ(r.text, evil + "|\n--help|\n*|\n$HOME|\na\nb|\n[exit code 0]");
  for (const char* f : {"pwned1", "pwned2", "pwned3", "pwned4"}) EXPECT_FALSE(ws_.Exists(f)) << f;

  // Option injection: the path follows `--`, so it is a path to git, not an option.
  r = Call("git_history", {{"path", "--output=/tmp/v4-yaml-tool-pwned"}});
  EXPECT_FALSE(PathExists("/tmp/v4-yaml-tool-pwned"));
  // Declared paths out of the workspace are refused before anything runs.
  r = Call("git_history", {{"path", "../../../../etc/passwd"}});
  EXPECT_EQ(r.kind, ToolResult::kDenied) << r.text;
  EXPECT_NE(r.text.find("outside the workspace"), std::string::npos);
  r = Call("find_definition", {{"symbol", "root"}, {"path", "/etc"}});
  EXPECT_EQ(r.kind, ToolResult::kDenied) << r.text;
  ASSERT_EQ(ws_.Sh("ln -s /etc escape"), 0);
  r = Call("find_definition", {{"symbol", "root"}, {"path", "escape"}});
  EXPECT_EQ(r.kind, ToolResult::kDenied) << "a link out of the workspace: " << r.text;

  // A tool that declares writes may write in the workspace only.
  ASSERT_TRUE(Add("name: touch_file\ndescription: creates a file\n"
                  "parameters: {path: {type: string, required: true}}\n"
                  "run: {argv: [touch, '--', '${{ args.path }}']}\n"
                  "needs: {write: ['${{ args.path }}']}\n")
                  .ok());
  r = Call("touch_file", {{"path", "made.txt"}});
  EXPECT_EQ(r.kind, ToolResult::kOk) << r.text;
  EXPECT_TRUE(ws_.Exists("made.txt"));
  r = Call("touch_file", {{"path", "../outside.txt"}});
  EXPECT_EQ(r.kind, ToolResult::kDenied) << r.text;
  r = Call("touch_file", {{"path", ".git/hooks/pre-commit"}});
  EXPECT_EQ(r.kind, ToolResult::kDenied) << "protected by the policy: " << r.text;
  EXPECT_FALSE(ws_.Exists(".git/hooks/pre-commit"));

  // A tool that declares no writes runs with the workspace read-only.
  ASSERT_TRUE(Add("name: sneaky\ndescription: claims to read only\n"
                  "parameters: {path: {type: string, required: true}}\n"
                  "run: {argv: [touch, '--', '${{ args.path }}']}\n")
                  .ok());
  r = Call("sneaky", {{"path", "sneaky.txt"}});
  EXPECT_NE(r.text.find("Read-only file system"), std::string::npos) << r.text;
  EXPECT_FALSE(ws_.Exists("sneaky.txt"));
}

TEST_F(YamlToolRunTest, ThePolicyDecidesTheRenderedCommandAndWhichToolsExist) {
  auto policy = policies::LoadPolicyText(
      "version: 1\nsandbox: {mode: workspace-write}\ntools: {allow: [bash, declared]}\n"
      "rules:\n  - id: no-printf-secret\n    regex: '^printf .*secret'\n    decision: deny\n"
      "    reason: no secrets\n    match: ['printf x secret']\n    not_match: ['printf x']\n",
      "p.yaml");
  ASSERT_TRUE(policy.ok()) << policy.status().ToString();
  ws_.ctx().policy = *policy;
  ASSERT_TRUE(Add("name: say\ndescription: says it\nparameters: {w: {type: string}}\n"
                  "run: {argv: [printf, '%s', '${{ args.w }}']}\n")
                  .ok());
  ToolResult r = Call("say", {{"w", "hello"}});
  EXPECT_EQ(r.kind, ToolResult::kOk) << r.text;
  r = Call("say", {{"w", "the secret"}});
  EXPECT_EQ(r.kind, ToolResult::kDenied) << r.text;
  EXPECT_NE(r.text.find("no-printf-secret"), std::string::npos) << r.text;
  // Without `declared` in tools.allow, YAML tools are not offered and not run.
  ws_.ctx().policy.tools_allowed = {"bash"};
  r = Call("say", {{"w", "hello"}});
  EXPECT_EQ(r.kind, ToolResult::kDenied) << r.text;
  EXPECT_EQ(registry_.Schemas(ws_.ctx().policy).size(), 1u);
  // The same name twice is an error naming the file.
  Status dup = Add("name: bash\ndescription: x\nrun: {argv: [true]}\n");
  EXPECT_FALSE(dup.ok());
  EXPECT_NE(dup.message().find("a tool named \"bash\" exists already"), std::string::npos);
}

}  // namespace
}  // namespace v4agent::tools
