// Differential test of the policy's shell front end against bash itself. Scripts are generated
// from a grammar of the constructs that hide commands (quoting of every kind, line
// continuations, brace expansion, substitutions, process substitution, here-documents,
// compound commands, functions, eval, nested shells, wrappers) and run by bash in the sandbox
// with a PATH of logging stand-ins: every program bash really executed is logged with its
// arguments. Each one must be among the commands ListCommands() reported, with the same
// arguments wherever the front end claims to know them. A command the front end missed, or
// read with other arguments, is a failure. V4_SHELL_DIFF_SCRIPTS sets how many scripts (a
// longer campaign by hand); V4_SHELL_DIFF_SEED the seed.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>

#include "common/file_util.h"
#include "common/strings.h"
#include "policies/policy.h"
#include "sandbox/launcher.h"

namespace v4agent::policies {
namespace {

const char* const kPrograms[] = {"touch", "rm", "git", "ls", "cat", "grep", "sort", "mkdir"};

class Generator {
 public:
  explicit Generator(uint64_t seed) : rng_(seed) {}

  std::string Script(int depth = 0) {
    std::string s = Stmt(depth);
    const int n = Pick(3);
    for (int i = 0; i < n; ++i) {
      static const char* const kSeps[] = {"; ", " && ", " || ", "\n", " | ", " ;\n"};
      s += kSeps[Pick(6)];
      s += Stmt(depth);
    }
    return s;
  }

 private:
  int Pick(int n) { return static_cast<int>(rng_() % static_cast<uint64_t>(n)); }

  // A word as bash reads it, in one of many spellings.
  std::string Word(const std::string& w) {
    switch (Pick(9)) {
      case 0:
        return "'" + w + "'";
      case 1:
        return "\"" + w + "\"";
      case 2: {  // $'...' with a hex escape for the first letter
        char buf[8];
        std::snprintf(buf, sizeof(buf), "\\x%02x", static_cast<unsigned char>(w[0]));
        return "$'" + std::string(buf) + w.substr(1) + "'";
      }
      case 3:
        return w.size() > 1 ? w.substr(0, 1) + "\\" + w.substr(1) : w;
      case 4:
        return w.size() > 2 ? "'" + w.substr(0, 2) + "'\"" + w.substr(2) + "\"" : w;
      case 5:
        return w.size() > 1 ? w.substr(0, 1) + "\\\n" + w.substr(1) : w;  // continuation
      case 6:
        return w + "\"\"";
      default:
        return w;
    }
  }

  std::string Arg() {
    static const char* const kArgs[] = {"a",     "b c",      "-f", "--force", "x.txt",
                                        "-rf",   "{p,q}",    "$x", "*.none",  "'q'",
                                        "a\\ b", "$'t\\tu'", "-",  "--"};
    const std::string a = kArgs[Pick(14)];
    if (a == "b c") return "'b c'";
    if (a[0] == '$' || a[0] == '{' || a[0] == '*' || a[0] == '\'' ||
        a.find('\\') != std::string::npos) {
      return a;
    }
    return Word(a);
  }

  std::string Simple() {
    std::string s;
    if (Pick(5) == 0) s += "A=1 ";
    if (Pick(8) == 0) s += std::string(kPrograms[Pick(8)]) == "git" ? "env " : "nice ";
    s += Word(kPrograms[Pick(8)]);
    const int n = Pick(4);
    for (int i = 0; i < n; ++i) s += " " + Arg();
    if (Pick(6) == 0) s += " 2>/dev/null";
    return s;
  }

  std::string Stmt(int depth) {
    if (depth >= 2) return Simple();
    switch (Pick(16)) {
      case 0:
        return "( " + Script(depth + 1) + " )";
      case 1:
        return "{ " + Script(depth + 1) + "; }";
      case 2:
        return "if " + Simple() + "; then " + Script(depth + 1) + "; else " + Simple() + "; fi";
      case 3:
        return "for i in 1 2; do " + Script(depth + 1) + "; done";
      case 4:
        return "case k in k) " + Script(depth + 1) + ";; *) " + Simple() + ";; esac";
      case 5:
        return "f" + std::to_string(depth) + "() { " + Script(depth + 1) + "; }; f" +
               std::to_string(depth);
      case 6:
        return "echo $(" + Script(depth + 1) + ")";
      case 7:
        return "echo \"$(" + Simple() + ")\"";
      case 8:
        return "echo `" + Simple() + "`";
      case 9:
        return "cat <(" + Simple() + ")";
      case 10:  // the body follows the line the here-document starts on
        return "cat <<EOF && " + Simple() + "\nline $(" + Simple() + ")\nEOF\ntrue";
      case 11:
        return "cat <<'EOF'\n$(touch not-run)\nEOF\ntrue";
      case 12:
        return "eval '" + Simple() + "'";
      case 13:
        return "bash -c '" + Simple() + "'";
      case 14:
        return Simple() + " # $(touch not-run)";
      default:
        return Simple();
    }
  }

  std::mt19937_64 rng_;
};

struct Executed {
  std::vector<std::string> argv;
};

TEST(ShellDifferentialTest, EveryProgramBashRunsIsReported) {
  const int count =
      std::getenv("V4_SHELL_DIFF_SCRIPTS") ? std::atoi(std::getenv("V4_SHELL_DIFF_SCRIPTS")) : 300;
  const uint64_t seed = std::getenv("V4_SHELL_DIFF_SEED")
                            ? std::strtoull(std::getenv("V4_SHELL_DIFF_SEED"), nullptr, 10)
                            : 20261130;
  ScopedTempDir dir;
  chmod(dir.path().c_str(), 0777);
  const std::string ws = dir.path();
  // The stand-ins: each logs its name and arguments (separated by \x1f, one line per run).
  std::filesystem::create_directories(ws + "/bin");
  ASSERT_TRUE(WriteFile(ws + "/bin/logger",
                        "#!/bin/sh\n"
                        // One write per line: pipeline members run at the same time.
                        "l=\"${0##*/}\"; s=$(printf '\\037'); for a in \"$@\"; do l=\"$l$s$a\"; "
                        "done; printf '%s\\n' \"$l\" >> \"$LOG\"\n")
                  .ok());
  chmod((ws + "/bin/logger").c_str(), 0755);
  for (const char* p : kPrograms) {
    ASSERT_EQ(symlink((ws + "/bin/logger").c_str(), (ws + "/bin/" + p).c_str()), 0);
  }
  // Real shells for the nested scripts, real wrappers so what they run is logged too.
  for (const char* real : {"/bin/bash", "/bin/sh", "/usr/bin/env", "/usr/bin/nice"}) {
    const std::string name = real + std::string(real).rfind('/') + 1;
    ASSERT_EQ(symlink(real, (ws + "/bin/" + name).c_str()), 0);
  }
  Generator gen(seed);
  std::vector<std::string> scripts;
  std::string driver = "cd \"$1\"\n";
  for (int i = 0; i < count; ++i) {
    scripts.push_back(gen.Script());
    ASSERT_TRUE(WriteFile(StrCat(ws, "/s", i, ".sh"), scripts.back()).ok());
    driver += StrCat("LOG=", ws, "/log", i, " PATH=", ws, "/bin /usr/bin/timeout 5 /bin/bash s", i,
                     ".sh </dev/null >/dev/null 2>&1\n");
  }
  ASSERT_TRUE(WriteFile(ws + "/driver.sh", driver).ok());
  sandbox::Profile p = sandbox::DefaultProfile(ws);
  p.timeout_seconds = 600;
  auto report = sandbox::Run(p, {"/bin/bash", ws + "/driver.sh", ws});
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  ASSERT_EQ(report->exit_code, 0) << report->err.Text();

  int executed = 0, matched_args = 0, not_understood = 0;
  std::map<std::string, int> problems;
  for (int i = 0; i < count; ++i) {
    const CommandList listed = ListCommands({"bash", "-c", scripts[i]});
    if (!listed.understood) {
      ++not_understood;
      for (const auto& why : listed.problems) ++problems[why];
    }
    const std::string log = ReadFile(StrCat(ws, "/log", i)).value_or("");
    for (const std::string& line : StrSplit(log, '\n')) {
      if (line.empty()) continue;
      ++executed;
      const std::vector<std::string> ran = StrSplit(line, '\x1f');
      bool name_seen = false, args_seen = false, any_known = false;
      for (size_t k = 0; k < listed.commands.size(); ++k) {
        const auto& c = listed.commands[k];
        if (c.empty()) continue;
        const std::string prog = c[0].substr(c[0].rfind('/') + 1);
        if (prog != ran[0]) continue;
        name_seen = true;
        if (listed.known[k]) {
          any_known = true;
          std::vector<std::string> args(c.begin() + 1, c.end());
          std::vector<std::string> ran_args(ran.begin() + 1, ran.end());
          args_seen = args_seen || args == ran_args;
        } else {
          args_seen = true;  // the front end said it does not know them: not a claim
        }
      }
      EXPECT_TRUE(name_seen || !listed.understood)
          << "bash ran \"" << ran[0] << "\" which the front end did not report, in script " << i
          << ":\n"
          << scripts[i];
      EXPECT_TRUE(args_seen || !any_known)
          << "bash ran \"" << line << "\" but the front end read other arguments, in script " << i
          << ":\n"
          << scripts[i];
      matched_args += args_seen;
    }
  }
  std::printf(
      "[ report ] %d scripts, %d programs executed, %d matched with arguments, %d "
      "scripts not fully understood (decided fail-closed)\n",
      count, executed, matched_args, not_understood);
  for (const auto& [why, n] : problems) std::printf("[ report ]   %4d x %s\n", n, why.c_str());
  EXPECT_GT(executed, count / 2);
}

}  // namespace
}  // namespace v4agent::policies
