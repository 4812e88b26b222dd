// `pipeline run` on a terminal: the step tree is drawn in place (cursor moved up, lines
// rewritten), every top-level step is listed from the start, and the final tree shows each
// step's state; without a terminal the same run prints plain lines.
#include <gtest/gtest.h>

#include "common/file_util.h"
#include "common/strings.h"
#include "tests/cli/cli_util.h"
#include "tests/cli/tty_util.h"

namespace v4agent {
namespace {

TEST(PipelineTtyTest, TheStepTreeIsRedrawnInPlace) {
  ScopedTempDir dir;
  ASSERT_EQ(std::system(StrCat("mkdir -p ", dir.path(), "/ws").c_str()), 0);
  const std::string file = dir.path() + "/p.yaml";
  ASSERT_TRUE(WriteFile(file,
                        "steps:\n  - id: first\n    run: sleep 1.2\n"
                        "  - id: each\n    foreach:\n      items: '${{ fromJSON(\"[1, 2]\") }}'\n"
                        "      steps:\n        - id: inner\n          run: 'true'\n"
                        "  - id: never\n    if: failure()\n    run: 'true'\n")
                  .ok());
  TtyRun r = RunOnTty(
      {"pipeline", "run", file, "--workspace", dir.path() + "/ws", "--run-dir", dir.path() + "/rd"},
      {});
  EXPECT_EQ(r.code, 0) << r.screen;
  // All three top-level steps are on screen before the first one ends, the first as running.
  EXPECT_NE(r.screen.find("never"), std::string::npos);
  EXPECT_LT(r.screen.find("never"), r.screen.find("[ok]")) << r.screen;
  EXPECT_NE(r.screen.find("[run]  first"), std::string::npos) << r.screen;
  EXPECT_NE(r.screen.find("\033[3A"), std::string::npos) << "never redrawn in place";
  // The final tree: the items' steps under the foreach, the skipped step marked.
  EXPECT_NE(r.screen.find("[ok]     0/inner"), std::string::npos) << r.screen;
  EXPECT_NE(r.screen.find("[ok]     1/inner"), std::string::npos) << r.screen;
  EXPECT_NE(r.screen.find("[skip] never"), std::string::npos) << r.screen;

  auto plain = cli_testing::Exec(StrCat("pipeline run ", file, " --workspace ", dir.path(),
                                        "/ws --run-dir ", dir.path(), "/rd2"));
  EXPECT_EQ(plain.code, 0) << plain.out;
  EXPECT_EQ(plain.out.find("\033["), std::string::npos) << plain.out;
  EXPECT_NE(plain.out.find("first  success"), std::string::npos) << plain.out;
  EXPECT_NE(plain.out.find("  each/1/inner  success"), std::string::npos) << plain.out;
}

}  // namespace
}  // namespace v4agent
