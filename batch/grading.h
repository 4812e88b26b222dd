// Grading as the SWE-bench harness grades (swebench/harness/grading.py): a test passes when
// its status is PASSED or XFAIL and fails when it is FAILED, ERROR or missing from the log;
// a skipped test is neither. Resolved (RESOLVED_FULL) means every FAIL_TO_PASS test passes
// and no PASS_TO_PASS test fails. Pure: statuses in, verdict out.
#pragma once

#include <string>
#include <vector>

#include "batch/instance.h"
#include "batch/test_logs.h"
#include "common/json.h"

namespace v4agent::batch {

struct TestGroup {
  std::vector<std::string> success, failure;
};

struct Grade {
  TestGroup fail_to_pass, pass_to_pass;
  bool resolved = false;
  // Why the run cannot be graded at all (the suite never ran, or the runner exited non-zero
  // with no failing test to show for it); a graded run leaves it empty.
  std::string invalid;
};

// `exit_code` is the test command's.
Grade GradeInstance(const Instance& instance, const TestStatusMap& statuses, int exit_code);

// The harness's tests_status object: {"FAIL_TO_PASS": {"success": [...], "failure": [...]},
// "PASS_TO_PASS": ..., "FAIL_TO_FAIL": ..., "PASS_TO_FAIL": ...}.
Json TestsStatusJson(const Grade& grade);

}  // namespace v4agent::batch
