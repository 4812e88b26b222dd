// The host-side tools on real files in a temporary workspace: view, create, str_replace,
// insert, apply_patch, search, list, every error path, and the path attacks of peers spec
// §9 F (absolute paths, "..", symlinked parents and targets, protected and hidden paths).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/tools/tools_harness.h"

namespace v4agent::tools {
namespace {

using testing::Workspace;

TEST(ToolSchemaTest, EveryToolHasAnObjectSchemaAndTheRegistryFollowsThePolicy) {
  Registry r = Registry::Default();
  auto ww = policies::BuiltinPolicy("workspace-write");
  Json schemas = r.Schemas(*ww);
  EXPECT_EQ(schemas.size(), 9u);
  for (const auto& s : schemas) {
    EXPECT_EQ(s["type"], "function");
    EXPECT_EQ(s["function"]["parameters"]["type"], "object");
    EXPECT_FALSE(s["function"]["description"].get<std::string>().empty());
  }
  auto ro = policies::BuiltinPolicy("read-only");
  EXPECT_EQ(r.Schemas(*ro).size(), 5u);  // bash, view, search, list, submit
}

TEST(InvokeTest, BadCallsAreToolErrorsNamingTheField) {
  Workspace ws;
  EXPECT_NE(ws.CallRaw("teleport", "{}").text.find("unknown tool \"teleport\""), std::string::npos);
  ToolResult r = ws.CallRaw("view", "{\"path\": ");
  EXPECT_EQ(r.kind, ToolResult::kToolError);
  EXPECT_NE(r.text.find("not valid JSON"), std::string::npos);
  r = ws.Call("view", Json::object());
  EXPECT_NE(r.text.find("missing required parameter \"path\""), std::string::npos);
  r = ws.Call("view", {{"path", 3}});
  EXPECT_NE(r.text.find("\"path\" must be string, not integer"), std::string::npos);
  r = ws.Call("view", {{"path", "."}, {"colour", "red"}});
  EXPECT_NE(r.text.find("unknown parameter \"colour\""), std::string::npos);
  r = ws.CallRaw("view", std::string("{\"path\": \"\xff\xfe\"}"));
  EXPECT_EQ(r.kind, ToolResult::kToolError);
}

TEST(ViewTest, NumberedLinesRangesDirectoriesAndRefusals) {
  Workspace ws;
  ws.Write("a.txt", "one\ntwo\nthree\nfour\n");
  ToolResult r = ws.Call("view", {{"path", "a.txt"}});
  EXPECT_EQ(r.kind, ToolResult::kOk);
  EXPECT_EQ(r.text, "     1\tone\n     2\ttwo\n     3\tthree\n     4\tfour\n");
  r = ws.Call("view", {{"path", "a.txt"}, {"view_range", {2, 3}}});
  EXPECT_EQ(r.text, "     2\ttwo\n     3\tthree\n");
  r = ws.Call("view", {{"path", ws.path() + "/a.txt"}, {"view_range", {3, -1}}});
  EXPECT_EQ(r.text, "     3\tthree\n     4\tfour\n");
  EXPECT_NE(ws.Call("view", {{"path", "a.txt"}, {"view_range", {9, 10}}}).text.find("outside"),
            std::string::npos);
  ws.Write("bin.dat", std::string("\x7f"
                                  "ELF\0\0\0\1",
                                  8));
  r = ws.Call("view", {{"path", "bin.dat"}});
  EXPECT_EQ(r.kind, ToolResult::kToolError);
  EXPECT_NE(r.text.find("binary file"), std::string::npos);
  ws.Write("src/x/y.c", "int y;\n");
  r = ws.Call("view", {{"path", "src"}});
  EXPECT_EQ(r.text, "src/\n  x/\n    y.c\n");
  EXPECT_EQ(ws.Call("view", {{"path", "nope.txt"}}).kind, ToolResult::kToolError);
  // Large files are paged with a hint.
  std::string big;
  for (int i = 0; i < 5000; ++i) big += StrCat("line ", i, " of a long file\n");
  ws.Write("big.txt", big);
  r = ws.Call("view", {{"path", "big.txt"}});
  EXPECT_LT(r.text.size(), ws.ctx().output_budget + 200);
  EXPECT_NE(r.text.find("use view_range"), std::string::npos);
}

TEST(EditTest, CreateStrReplaceInsert) {
  Workspace ws;
  ToolResult r = ws.Call("create", {{"path", "pkg/new.py"}, {"file_text", "x = 1\ny = 2\n"}});
  ASSERT_EQ(r.kind, ToolResult::kOk) << r.text;
  EXPECT_EQ(ws.Read("pkg/new.py"), "x = 1\ny = 2\n");
  // Overwrite keeps the mode.
  chmod((ws.path() + "/pkg/new.py").c_str(), 0755);
  ws.Call("create", {{"path", "pkg/new.py"}, {"file_text", "x = 3\n"}});
  struct stat st;
  stat((ws.path() + "/pkg/new.py").c_str(), &st);
  EXPECT_EQ(st.st_mode & 0777, 0755u);
  ws.Write("m.py", "a = 1\nb = 2\na = 1\n");
  r = ws.Call("str_replace", {{"path", "m.py"}, {"old_str", "a = 1"}, {"new_str", "a = 9"}});
  EXPECT_EQ(r.kind, ToolResult::kToolError);
  EXPECT_NE(r.text.find("appears 2 times"), std::string::npos);
  EXPECT_NE(r.text.find("lines 1, 3"), std::string::npos);
  r = ws.Call("str_replace", {{"path", "m.py"}, {"old_str", "c = 3"}, {"new_str", ""}});
  EXPECT_NE(r.text.find("does not appear"), std::string::npos);
  r = ws.Call("str_replace",
              {{"path", "m.py"}, {"old_str", "b = 2\na = 1"}, {"new_str", "b = 2\na = 7"}});
  ASSERT_EQ(r.kind, ToolResult::kOk) << r.text;
  EXPECT_EQ(ws.Read("m.py"), "a = 1\nb = 2\na = 7\n");
  r = ws.Call("insert", {{"path", "m.py"}, {"insert_line", 1}, {"text", "import os\n"}});
  ASSERT_EQ(r.kind, ToolResult::kOk) << r.text;
  EXPECT_EQ(ws.Read("m.py"), "a = 1\nimport os\nb = 2\na = 7\n");
  EXPECT_EQ(ws.Call("insert", {{"path", "m.py"}, {"insert_line", 99}, {"text", "x"}}).kind,
            ToolResult::kToolError);
  ws.Call("insert", {{"path", "m.py"}, {"insert_line", 0}, {"text", "# top"}});
  EXPECT_EQ(ws.Read("m.py").substr(0, 6), "# top\n");
}

TEST(ApplyPatchTest, AddUpdateMoveDeleteAtomically) {
  Workspace ws;
  ws.Write("a.py", "def f():\n    return 1\n\n\ndef g():\n    return 2\n");
  ws.Write("old.txt", "bye\n");
  ws.Write("m.txt", "keep\nchange me\n");
  const std::string patch =
      "*** Begin Patch\n"
      "*** Add File: docs/new.md\n+# New\n+text\n"
      "*** Update File: a.py\n@@ def g():\n-    return 2\n+    return 3\n"
      "*** Delete File: old.txt\n"
      "*** Update File: m.txt\n*** Move to: moved/m.txt\n keep\n-change me  \n+changed\n"
      "*** End Patch\n";
  ToolResult r = ws.Call("apply_patch", {{"patch", patch}});
  ASSERT_EQ(r.kind, ToolResult::kOk) << r.text;
  EXPECT_EQ(ws.Read("docs/new.md"), "# New\ntext\n");
  EXPECT_EQ(ws.Read("a.py"), "def f():\n    return 1\n\n\ndef g():\n    return 3\n");
  EXPECT_FALSE(ws.Exists("old.txt"));
  EXPECT_FALSE(ws.Exists("m.txt"));
  EXPECT_EQ(ws.Read("moved/m.txt"), "keep\nchanged\n");
  // A patch whose second hunk does not match changes nothing at all.
  const std::string bad =
      "*** Begin Patch\n*** Update File: a.py\n-    return 1\n+    return 10\n"
      "*** Update File: docs/new.md\n-not there\n+x\n*** End Patch";
  r = ws.Call("apply_patch", {{"patch", bad}});
  EXPECT_EQ(r.kind, ToolResult::kToolError);
  EXPECT_NE(r.text.find("does not match"), std::string::npos);
  EXPECT_NE(r.text.find("nothing was changed"), std::string::npos);
  EXPECT_EQ(ws.Read("a.py"), "def f():\n    return 1\n\n\ndef g():\n    return 3\n");
  for (const char* broken : {"no header", "*** Begin Patch\n*** Frobnicate: x\n*** End Patch",
                             "*** Begin Patch\n*** Add File: y\nno plus\n*** End Patch",
                             "*** Begin Patch\n*** Update File: a.py\n*** End Patch"}) {
    EXPECT_EQ(ws.Call("apply_patch", {{"patch", broken}}).kind, ToolResult::kToolError) << broken;
  }
  r = ws.Call("apply_patch", {{"patch",
                               "*** Begin Patch\n*** Add File: ../escape.txt\n+x\n"
                               "*** End Patch"}});
  EXPECT_EQ(r.kind, ToolResult::kDenied) << r.text;
}

TEST(SearchListTest, RegexGitignoreGlobAndLimits) {
  Workspace ws;
  ws.Write("src/a.c", "int main() { return 0; }\n// TODO: fix\n");
  ws.Write("src/b.h", "#define TODO 1\n");
  ws.Write("build/gen.c", "// TODO generated\n");
  ws.Write("notes.log", "TODO in a log\n");
  ws.Write(".gitignore", "build/\n*.log\n");
  ws.Sh("git init -q . && mkdir -p .git/x && echo TODO > .git/x/y");
  ToolResult r = ws.Call("search", {{"pattern", "TODO"}});
  ASSERT_EQ(r.kind, ToolResult::kOk) << r.text;
  EXPECT_EQ(r.text, "src/a.c:2: // TODO: fix\nsrc/b.h:1: #define TODO 1\n");
  r = ws.Call("search", {{"pattern", "todo"}, {"ignore_case", true}, {"glob", "*.c"}});
  EXPECT_EQ(r.text, "src/a.c:2: // TODO: fix\n");
  r = ws.Call("search", {{"pattern", "("}});
  EXPECT_EQ(r.kind, ToolResult::kToolError);
  EXPECT_NE(r.text.find("bad pattern"), std::string::npos);
  for (int i = 0; i < 30; ++i) ws.Write(StrCat("many/f", i, ".txt"), "hit\n");
  r = ws.Call("search", {{"pattern", "hit"}, {"max_results", 5}});
  EXPECT_NE(r.text.find("25 more matches"), std::string::npos) << r.text;
  r = ws.Call("list", {{"path", "."}, {"depth", 1}});
  EXPECT_NE(r.text.find("  src/\n"), std::string::npos) << r.text;
  EXPECT_EQ(r.text.find("build"), std::string::npos);
  EXPECT_EQ(r.text.find(".git/"), std::string::npos);
  EXPECT_EQ(r.text.find("gen.c"), std::string::npos);
  r = ws.Call("list", {{"max_entries", 3}});
  EXPECT_NE(r.text.find("stopped after 3 entries"), std::string::npos) << r.text;
}

TEST(PathAttackTest, NothingLeavesTheWorkspace) {
  Workspace ws;
  const std::string outside = ScopedTempDir().path();
  ToolResult r = ws.Call("create", {{"path", "/etc/v4-escape"}, {"file_text", "x"}});
  EXPECT_EQ(r.kind, ToolResult::kDenied) << r.text;
  EXPECT_NE(r.text.find("outside the workspace"), std::string::npos);
  r = ws.Call("create", {{"path", "../../v4-escape"}, {"file_text", "x"}});
  EXPECT_EQ(r.kind, ToolResult::kDenied) << r.text;
  r = ws.Call("view", {{"path", "/etc/passwd"}});
  EXPECT_EQ(r.kind, ToolResult::kDenied);
  // A symlinked parent pointing outside: neither read nor written through.
  ASSERT_EQ(ws.Sh("ln -s /etc etc && ln -s /etc/hostname host"), 0);
  r = ws.Call("create", {{"path", "etc/v4-escape"}, {"file_text", "x"}});
  EXPECT_EQ(r.kind, ToolResult::kDenied) << r.text;
  r = ws.Call("view", {{"path", "etc/hostname"}});
  EXPECT_EQ(r.kind, ToolResult::kDenied) << r.text;
  r = ws.Call("view", {{"path", "host"}});
  EXPECT_EQ(r.kind, ToolResult::kDenied) << r.text;
  // A symlink to a file outside that exists and contains the text to replace.
  ScopedTempDir out_dir;
  ASSERT_TRUE(WriteFile(out_dir.path() + "/target.txt", "a b a\n").ok());
  ASSERT_EQ(ws.Sh("ln -s " + out_dir.path() + "/target.txt outlink.txt"), 0);
  r = ws.Call("str_replace", {{"path", "outlink.txt"}, {"old_str", "b"}, {"new_str", "X"}});
  EXPECT_EQ(r.kind, ToolResult::kDenied) << r.text;
  EXPECT_EQ(*ReadFile(out_dir.path() + "/target.txt"), "a b a\n");
  r = ws.Call("view", {{"path", "outlink.txt"}});
  EXPECT_EQ(r.kind, ToolResult::kDenied) << r.text;
  // A symlink target inside the workspace is not written through either.
  ws.Write("real.txt", "content\n");
  ASSERT_EQ(ws.Sh("ln -s real.txt link.txt"), 0);
  r = ws.Call("create", {{"path", "link.txt"}, {"file_text", "changed"}});
  EXPECT_EQ(r.kind, ToolResult::kDenied) << r.text;
  EXPECT_EQ(ws.Read("real.txt"), "content\n");
  EXPECT_FALSE(PathExists("/etc/v4-escape"));
}

TEST(PathAttackTest, PolicyProtectsAndHides) {
  Workspace ws;
  ws.Sh("git init -q .");
  ToolResult r = ws.Call("create", {{"path", ".git/hooks/pre-commit"}, {"file_text", "evil"}});
  EXPECT_EQ(r.kind, ToolResult::kDenied);
  EXPECT_NE(r.text.find("protected"), std::string::npos);
  r = ws.Call("apply_patch", {{"patch",
                               "*** Begin Patch\n*** Add File: .git/hooks/post-checkout\n"
                               "+evil\n*** End Patch"}});
  EXPECT_EQ(r.kind, ToolResult::kDenied);
  Workspace ro("read-only");
  ro.Write("f.txt", "x\n");
  r = ro.Call("str_replace", {{"path", "f.txt"}, {"old_str", "x"}, {"new_str", "y"}});
  EXPECT_EQ(r.kind, ToolResult::kDenied);
  EXPECT_NE(r.text.find("denied"), std::string::npos);
  EXPECT_EQ(ro.Read("f.txt"), "x\n");
}

TEST(PathAttackTest, HiddenKeyThatExistsIsDenied) {
  // A home with a real key: the policy hides ~/.ssh, so view is denied (not "no such file"),
  // directly, by absolute path and through a symlink in the workspace.
  ScopedTempDir home;
  ASSERT_EQ(std::system(("mkdir -p " + home.path() + "/.ssh && echo SECRET-KEY > " + home.path() +
                         "/.ssh/id_rsa")
                            .c_str()),
            0);
  const char* old_home = std::getenv("HOME");
  const std::string saved = old_home ? old_home : "";
  setenv("HOME", home.path().c_str(), 1);
  Workspace ws;
  if (!saved.empty()) setenv("HOME", saved.c_str(), 1);
  ASSERT_EQ(ws.Sh("ln -s " + home.path() + "/.ssh/id_rsa key"), 0);
  for (const std::string& path :
       {std::string("~/.ssh/id_rsa"), home.path() + "/.ssh/id_rsa", std::string("key")}) {
    ToolResult r = ws.Call("view", {{"path", path}});
    EXPECT_EQ(r.kind, ToolResult::kDenied) << path << ": " << r.text;
    EXPECT_EQ(r.text.find("SECRET-KEY"), std::string::npos) << r.text;
  }
}

}  // namespace
}  // namespace v4agent::tools
