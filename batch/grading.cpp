#include "batch/grading.h"

namespace v4agent::batch {
namespace {

bool Passed(const TestStatusMap& m, const std::string& t) {
  auto it = m.find(t);
  return it != m.end() && (it->second == TestStatus::kPassed || it->second == TestStatus::kXfail);
}
bool Failed(const TestStatusMap& m, const std::string& t) {
  auto it = m.find(t);
  return it == m.end() || it->second == TestStatus::kFailed || it->second == TestStatus::kError;
}

}  // namespace

Grade GradeInstance(const Instance& instance, const TestStatusMap& statuses, int exit_code) {
  Grade g;
  for (const std::string& t : instance.fail_to_pass) {
    (Passed(statuses, t) ? g.fail_to_pass.success : g.fail_to_pass.failure).push_back(t);
  }
  for (const std::string& t : instance.pass_to_pass) {
    if (Passed(statuses, t)) {
      g.pass_to_pass.success.push_back(t);
    } else if (Failed(statuses, t)) {
      g.pass_to_pass.failure.push_back(t);
    }
  }
  bool any_failing = false;
  for (const auto& [name, s] : statuses) {
    any_failing = any_failing || s == TestStatus::kFailed || s == TestStatus::kError;
  }
  if (statuses.empty()) {
    g.invalid = "the test log holds no test results (the suite never ran)";
  } else if (exit_code != 0 && !any_failing) {
    g.invalid = "the test command exited with status " + std::to_string(exit_code) +
                " but the log shows no failing test";
  }
  g.resolved =
      g.invalid.empty() && g.fail_to_pass.failure.empty() && g.pass_to_pass.failure.empty();
  return g;
}

Json TestsStatusJson(const Grade& g) {
  auto group = [](const TestGroup& t) {
    return Json{{"success", t.success}, {"failure", t.failure}};
  };
  TestGroup empty;
  return Json{{"FAIL_TO_PASS", group(g.fail_to_pass)},
              {"PASS_TO_PASS", group(g.pass_to_pass)},
              {"FAIL_TO_FAIL", group(empty)},
              {"PASS_TO_FAIL", group(empty)}};
}

}  // namespace v4agent::batch
