// apply_patch scenarios, our own, for the places where Codex's semantics are what models that
// learned the grammar expect (docs/tools.md): whitespace around marker lines, Add File and
// Move to over existing files, hunks of only + lines appended at the end, a trailing empty
// context line for the final newline, typographic punctuation, End of File. Each row: the
// files before, the patch, the files after (or the tool error and an unchanged tree).
#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "tests/tools/tools_harness.h"

namespace v4agent::tools {
namespace {

using Tree = std::map<std::string, std::string>;

struct Scenario {
  const char* id;
  Tree before;
  const char* patch;
  Tree after;  // empty: the patch must fail and `before` stay as it was
};

const Scenario kScenarios[] = {
    {"pure_addition_is_appended",
     {{"a.txt", "one\ntwo\n"}},
     "*** Begin Patch\n*** Update File: a.txt\n@@\n+three\n+four\n*** End Patch\n",
     {{"a.txt", "one\ntwo\nthree\nfour\n"}}},
    {"pure_addition_after_a_header_is_appended_too",
     {{"a.txt", "def f():\n    pass\n\ndef g():\n    pass\n"}},
     "*** Begin Patch\n*** Update File: a.txt\n@@ def f():\n+# end\n*** End Patch\n",
     {{"a.txt", "def f():\n    pass\n\ndef g():\n    pass\n# end\n"}}},
    {"pure_addition_without_a_final_newline",
     {{"a.txt", "one"}},
     "*** Begin Patch\n*** Update File: a.txt\n+two\n*** End Patch\n",
     {{"a.txt", "one\ntwo\n"}}},
    {"update_adds_a_final_newline",
     {{"n.txt", "no newline at end"}},
     "*** Begin Patch\n*** Update File: n.txt\n-no newline at end\n+first line\n+second line\n"
     "*** End Patch\n",
     {{"n.txt", "first line\nsecond line\n"}}},
    {"padded_file_header",
     {{"foo.txt", "old\n"}},
     "*** Begin Patch\n  *** Update File: foo.txt  \n@@\n-old\n+new\n*** End Patch\n",
     {{"foo.txt", "new\n"}}},
    {"padded_begin_and_end_markers",
     {{"file.txt", "one\n"}},
     "*** Begin Patch \n*** Update File: file.txt\n@@\n-one\n+two\n *** End Patch\n",
     {{"file.txt", "two\n"}}},
    {"padded_add_delete_and_move_headers",
     {{"x.txt", "x\n"}, {"y.txt", "y\n"}},
     "*** Begin Patch\n\t*** Add File: n.txt\n+n\n  *** Delete File: x.txt \n"
     " *** Update File: y.txt\n  *** Move to: z.txt  \n-y\n+z\n*** End Patch\n",
     {{"n.txt", "n\n"}, {"z.txt", "z\n"}}},
    {"add_file_replaces_an_existing_file",
     {{"duplicate.txt", "old content\n"}},
     "*** Begin Patch\n*** Add File: duplicate.txt\n+new content\n*** End Patch\n",
     {{"duplicate.txt", "new content\n"}}},
    {"move_replaces_an_existing_destination",
     {{"old/name.txt", "from\n"}, {"renamed/name.txt", "was here\n"}},
     "*** Begin Patch\n*** Update File: old/name.txt\n*** Move to: renamed/name.txt\n@@\n-from\n"
     "+new\n*** End Patch\n",
     {{"renamed/name.txt", "new\n"}}},
    {"trailing_empty_context_line_is_the_final_newline",
     {{"a.txt", "a\nb"}},
     "*** Begin Patch\n*** Update File: a.txt\n a\n-b\n+c\n \n*** End Patch\n",
     {{"a.txt", "a\nc\n"}}},
    {"typographic_punctuation_matches_ascii",
     {{"q.py",
       "msg = \xE2\x80\x9C"
       "a \xE2\x80\x93 b\xE2\x80\x9D\n"}},
     "*** Begin Patch\n*** Update File: q.py\n-msg = \"a - b\"\n+msg = \"a to b\"\n*** End Patch\n",
     {{"q.py", "msg = \"a to b\"\n"}}},
    {"end_of_file_matches_only_at_the_end",
     {{"t.txt", "x\ny\nx\n"}},
     "*** Begin Patch\n*** Update File: t.txt\n-x\n+z\n*** End of File\n*** End Patch\n",
     {{"t.txt", "x\ny\nz\n"}}},
    {"deletion_only",
     {{"l.txt", "1\n2\n3\n"}},
     "*** Begin Patch\n*** Update File: l.txt\n 1\n-2\n 3\n*** End Patch\n",
     {{"l.txt", "1\n3\n"}}},
    {"unicode_lines",
     {{"u.txt", "h\xC3\xA9llo\nw\xC3\xB6rld\n"}},
     "*** Begin Patch\n*** Update File: u.txt\n-w\xC3\xB6rld\n+\xE4\xB8\x96\xE7\x95\x8C\n"
     "*** End Patch\n",
     {{"u.txt", "h\xC3\xA9llo\n\xE4\xB8\x96\xE7\x95\x8C\n"}}},
    // Our one difference from Codex: nothing changes when any hunk fails (Codex keeps the
    // files before the failing one).
    {"failure_after_a_good_file_changes_nothing",
     {{"a.txt", "a\n"}, {"b.txt", "b\n"}},
     "*** Begin Patch\n*** Add File: created.txt\n+c\n*** Update File: a.txt\n-a\n+A\n"
     "*** Update File: b.txt\n-not there\n+x\n*** End Patch\n",
     {}},
    {"missing_file_for_update",
     {{"foo.txt", "foo\n"}},
     "*** Begin Patch\n*** Update File: missing.txt\n-x\n+y\n*** End Patch\n",
     {}},
    {"missing_file_for_delete",
     {{"foo.txt", "foo\n"}},
     "*** Begin Patch\n*** Delete File: missing.txt\n*** End Patch\n",
     {}},
};

Tree ReadTree(const std::string& root) {
  Tree t;
  for (const auto& e : std::filesystem::recursive_directory_iterator(root)) {
    if (!e.is_regular_file()) continue;
    t[std::filesystem::relative(e.path(), root).string()] = *ReadFile(e.path().string());
  }
  return t;
}

class ApplyPatchScenarioTest : public ::testing::TestWithParam<Scenario> {};

TEST_P(ApplyPatchScenarioTest, ResultingTree) {
  const Scenario& sc = GetParam();
  testing::Workspace ws;
  for (const auto& [path, text] : sc.before) ws.Write(path, text);
  ToolResult r = ws.Call("apply_patch", {{"patch", sc.patch}});
  if (sc.after.empty()) {
    EXPECT_EQ(r.kind, ToolResult::kToolError) << r.text;
    EXPECT_EQ(ReadTree(ws.path()), sc.before);
  } else {
    EXPECT_EQ(r.kind, ToolResult::kOk) << r.text;
    EXPECT_EQ(ReadTree(ws.path()), sc.after);
  }
}

INSTANTIATE_TEST_SUITE_P(Codex, ApplyPatchScenarioTest, ::testing::ValuesIn(kScenarios),
                         [](const auto& info) { return std::string(info.param.id); });

}  // namespace
}  // namespace v4agent::tools
