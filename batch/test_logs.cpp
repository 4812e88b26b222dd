#include "batch/test_logs.h"

#include <cstring>
#include <optional>
#include <regex>

#include "common/strings.h"

namespace v4agent::batch {
namespace {

std::string FirstToken(std::string_view s) {
  s = StripWhitespace(s);
  const size_t sp = s.find_first_of(" \t");
  return std::string(sp == std::string_view::npos ? s : s.substr(0, sp));
}

TestStatusMap ParsePytest(const std::string& log) {
  TestStatusMap out;
  static const std::pair<const char*, TestStatus> kStatuses[] = {{"PASSED", TestStatus::kPassed},
                                                                 {"FAILED", TestStatus::kFailed},
                                                                 {"SKIPPED", TestStatus::kSkipped},
                                                                 {"ERROR", TestStatus::kError},
                                                                 {"XFAIL", TestStatus::kXfail}};
  for (std::string line : StrSplit(log, '\n')) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    for (const auto& [word, status] : kStatuses) {
      const std::string prefix = std::string(word) + " ";
      if (StartsWith(line, prefix)) {
        std::string rest = line.substr(prefix.size());
        if (status == TestStatus::kFailed) {
          // "FAILED test_x - AssertionError: ..." : the harness replaces " - " by " ".
          const size_t dash = rest.find(" - ");
          if (dash != std::string::npos) rest.replace(dash, 3, " ");
        }
        const std::string name = FirstToken(rest);
        if (status == TestStatus::kSkipped && StartsWith(name, "[")) break;  // "[1] file:line"
        if (!name.empty()) out[name] = status;
        break;
      }
      // "name STATUS" (pytest -v lines).
      const std::string suffix = std::string(" ") + word;
      if (EndsWith(line, suffix) && line.find("::") != std::string::npos) {
        const std::string name = FirstToken(line);
        if (!name.empty()) out[name] = status;
        break;
      }
    }
  }
  return out;
}

// unittest / Django verbosity 2: "test_x (mod.Class) ... ok", "... FAIL", "... ERROR",
// "... skipped 'why'", "... expected failure"; a result on the next line when the test printed.
TestStatusMap ParseUnittest(const std::string& log) {
  TestStatusMap out;
  const std::vector<std::string> lines = StrSplit(log, '\n');
  std::string pending;
  auto status_of = [](std::string_view tail) -> std::optional<TestStatus> {
    tail = StripWhitespace(tail);
    if (tail == "ok") return TestStatus::kPassed;
    if (tail == "FAIL") return TestStatus::kFailed;
    if (tail == "ERROR") return TestStatus::kError;
    if (StartsWith(tail, "skipped")) return TestStatus::kSkipped;
    if (tail == "expected failure") return TestStatus::kXfail;
    if (tail == "unexpected success") return TestStatus::kFailed;
    return std::nullopt;
  };
  // Python 3.11+ prints "test_x (pkg.Class.test_x)" where records made on 3.8/3.9 say
  // "test_x (pkg.Class)": both spellings are recorded.
  static const std::regex kNew(R"(^(\w+) \((.+)\.\1\)$)");
  auto put = [&](const std::string& name, TestStatus s) {
    out[name] = s;
    std::smatch m;
    if (std::regex_match(name, m, kNew)) out[m[1].str() + " (" + m[2].str() + ")"] = s;
  };
  for (std::string line : lines) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const size_t dots = line.find(" ... ");
    if (dots != std::string::npos) {
      const std::string name(StripWhitespace(line.substr(0, dots)));
      if (auto s = status_of(line.substr(dots + 5))) {
        put(name, *s);
        pending.clear();
      } else {
        pending = name;
      }
      continue;
    }
    if (EndsWith(line, " ...")) {
      pending = std::string(StripWhitespace(line.substr(0, line.size() - 4)));
      continue;
    }
    if (!pending.empty()) {
      if (auto s = status_of(line)) {
        put(pending, *s);
        pending.clear();
      }
    }
    for (const char* word : {"FAIL: ", "ERROR: "}) {
      if (StartsWith(line, word)) {
        const std::string name(StripWhitespace(line.substr(std::strlen(word))));
        put(name, word[0] == 'F' ? TestStatus::kFailed : TestStatus::kError);
      }
    }
  }
  return out;
}

TestStatusMap ParseSympy(const std::string& log) {
  TestStatusMap out;
  for (std::string line : StrSplit(log, '\n')) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!StartsWith(line, "test_")) continue;
    const std::string name = FirstToken(line);
    if (EndsWith(line, " ok")) {
      out[name] = TestStatus::kPassed;
    } else if (EndsWith(line, " F")) {
      out[name] = TestStatus::kFailed;
    } else if (EndsWith(line, " E")) {
      out[name] = TestStatus::kError;
    }
  }
  return out;
}

}  // namespace

const char* TestStatusName(TestStatus s) {
  switch (s) {
    case TestStatus::kPassed:
      return "PASSED";
    case TestStatus::kFailed:
      return "FAILED";
    case TestStatus::kSkipped:
      return "SKIPPED";
    case TestStatus::kError:
      return "ERROR";
    case TestStatus::kXfail:
      return "XFAIL";
  }
  return "?";
}

const std::vector<std::string>& TestLogParsers() {
  static const std::vector<std::string> kNames = {"pytest", "unittest", "django", "sympy"};
  return kNames;
}

Result<TestStatusMap> ParseTestLog(const std::string& parser, const std::string& log) {
  if (parser == "pytest") return ParsePytest(log);
  if (parser == "unittest" || parser == "django") return ParseUnittest(log);
  if (parser == "sympy") return ParseSympy(log);
  return InvalidArgumentError(StrCat("unknown test-log parser '", parser,
                                     "' (known: ", StrJoin(TestLogParsers(), ", "), ")"));
}

std::vector<std::string> TestDirectives(const std::string& parser,
                                        const std::vector<std::string>& files) {
  std::vector<std::string> out;
  // As the harness does: data files that a test patch adds are not test targets.
  static const char* kNonTest[] = {".json", ".png", "csv",  ".txt",  ".md",  ".jpg",
                                   ".jpeg", ".pkl", ".yml", ".yaml", ".toml"};
  for (const std::string& f : files) {
    bool data = false;
    for (const char* ext : kNonTest) data = data || EndsWith(f, ext);
    if (data) continue;
    if (parser != "django") {
      out.push_back(f);
      continue;
    }
    std::string m = f;
    if (StartsWith(m, "tests/")) m = m.substr(6);
    if (EndsWith(m, ".py")) m.resize(m.size() - 3);
    for (char& c : m) c = c == '/' ? '.' : c;
    out.push_back(m);
  }
  return out;
}

}  // namespace v4agent::batch
