// Test-log parsers matching the SWE-bench harness's (swebench/harness/log_parsers), so the
// test ids they produce compare equal to the ids in instances' FAIL_TO_PASS / PASS_TO_PASS:
// pytest (-rA summary lines), unittest and Django (--verbosity 2 "name ... ok" lines), sympy
// (bin/test "test_x ok|F|E" lines). Pure text in, statuses out.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/status.h"

namespace v4agent::batch {

enum class TestStatus { kPassed, kFailed, kSkipped, kError, kXfail };
const char* TestStatusName(TestStatus s);
using TestStatusMap = std::map<std::string, TestStatus>;

// "pytest" | "unittest" | "django" | "sympy"; an unknown name is an error listing them.
Result<TestStatusMap> ParseTestLog(const std::string& parser, const std::string& log);
const std::vector<std::string>& TestLogParsers();

// Test files as the runner names them on its command line: paths, or for "django" dotted
// module names relative to tests/ ("tests/foo/test_bar.py" -> "foo.test_bar").
std::vector<std::string> TestDirectives(const std::string& parser,
                                        const std::vector<std::string>& files);

}  // namespace v4agent::batch
