// The log parsers produce the ids the harness's parsers produce, on logs in each runner's
// real format, and grading follows the harness's rules.
#include "batch/test_logs.h"

#include <gtest/gtest.h>

#include "batch/grading.h"

namespace v4agent::batch {
namespace {

TEST(TestLogsTest, PytestSummaryLines) {
  const std::string log =
      "============ short test summary info ============\n"
      "PASSED tests/test_a.py::test_one\n"
      "PASSED tests/test_a.py::test_param[a b]\n"
      "FAILED tests/test_a.py::test_two - AssertionError: assert 1 == 2\n"
      "SKIPPED [1] tests/test_a.py:10: no network\n"
      "XFAIL tests/test_a.py::test_known - reason\n"
      "ERROR tests/test_b.py::test_setup\n";
  auto m = ParseTestLog("pytest", log);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->at("tests/test_a.py::test_one"), TestStatus::kPassed);
  EXPECT_EQ(m->at("tests/test_a.py::test_param[a"), TestStatus::kPassed);  // cut at the space
  EXPECT_EQ(m->at("tests/test_a.py::test_two"), TestStatus::kFailed);
  EXPECT_EQ(m->at("tests/test_a.py::test_known"), TestStatus::kXfail);
  EXPECT_EQ(m->at("tests/test_b.py::test_setup"), TestStatus::kError);
  EXPECT_EQ(m->count("[1]"), 0u);
}

TEST(TestLogsTest, UnittestAndDjangoVerboseLines) {
  const std::string log =
      "test_add (tests.test_calc.TestCalc.test_add) ... ok\n"
      "test_sub (tests.test_calc.TestCalc) ... FAIL\n"
      "test_noisy (tests.test_calc.TestCalc) ...\nsome output\nok\n"
      "test_skip (tests.test_calc.TestCalc) ... skipped 'later'\n"
      "test_bad (tests.test_calc.TestCalc) ... ERROR\n"
      "======================================================================\n"
      "FAIL: test_sub (tests.test_calc.TestCalc)\n";
  auto m = ParseTestLog("unittest", log);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->at("test_add (tests.test_calc.TestCalc.test_add)"), TestStatus::kPassed);
  EXPECT_EQ(m->at("test_add (tests.test_calc.TestCalc)"), TestStatus::kPassed);  // 3.8 spelling
  EXPECT_EQ(m->at("test_sub (tests.test_calc.TestCalc)"), TestStatus::kFailed);
  EXPECT_EQ(m->at("test_noisy (tests.test_calc.TestCalc)"), TestStatus::kPassed);
  EXPECT_EQ(m->at("test_skip (tests.test_calc.TestCalc)"), TestStatus::kSkipped);
  EXPECT_EQ(m->at("test_bad (tests.test_calc.TestCalc)"), TestStatus::kError);
  EXPECT_FALSE(ParseTestLog("nose", log).ok());
}

TEST(TestLogsTest, SympyLines) {
  auto m = ParseTestLog("sympy", "test_a ok\ntest_b F\ntest_c E\nnot_a_test ok\n");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->size(), 3u);
  EXPECT_EQ(m->at("test_b"), TestStatus::kFailed);
}

TEST(TestLogsTest, DjangoDirectivesAreModules) {
  EXPECT_EQ(TestDirectives("django", {"tests/admin_views/tests.py", "docs/x.txt"}),
            (std::vector<std::string>{"admin_views.tests"}));
  EXPECT_EQ(TestDirectives("pytest", {"tests/test_a.py", "tests/data.json"}),
            (std::vector<std::string>{"tests/test_a.py"}));
}

TEST(GradingTest, HarnessRules) {
  Instance in;
  in.fail_to_pass = {"f1", "f2"};
  in.pass_to_pass = {"p1", "p2"};
  TestStatusMap all_pass = {{"f1", TestStatus::kPassed},
                            {"f2", TestStatus::kXfail},
                            {"p1", TestStatus::kPassed},
                            {"p2", TestStatus::kSkipped}};  // a skipped P2P is not a failure
  EXPECT_TRUE(GradeInstance(in, all_pass, 0).resolved);
  TestStatusMap f2p_skipped = all_pass;
  f2p_skipped["f1"] = TestStatus::kSkipped;  // a skipped F2P is
  EXPECT_FALSE(GradeInstance(in, f2p_skipped, 0).resolved);
  TestStatusMap p2p_missing = all_pass;
  p2p_missing.erase("p1");  // missing from the log: failed
  Grade g = GradeInstance(in, p2p_missing, 1);
  EXPECT_FALSE(g.resolved);
  EXPECT_EQ(g.pass_to_pass.failure, (std::vector<std::string>{"p1"}));
  // A non-zero exit with nothing failing in the log, and an empty log, are not gradable.
  EXPECT_FALSE(GradeInstance(in, all_pass, 2).invalid.empty());
  EXPECT_FALSE(GradeInstance(in, all_pass, 2).resolved);
  EXPECT_FALSE(GradeInstance(in, {}, 0).invalid.empty());
}

}  // namespace
}  // namespace v4agent::batch
