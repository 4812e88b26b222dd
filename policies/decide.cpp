#include <algorithm>
#include <cctype>

#include "common/strings.h"
#include "policies/policy.h"

namespace v4agent::policies {
namespace {

int Strictness(Verdict v) { return v == Verdict::kDeny ? 2 : v == Verdict::kAsk ? 1 : 0; }

bool PrefixMatches(const std::vector<std::string>& prefix, const std::vector<std::string>& argv) {
  if (prefix.size() > argv.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (prefix[i] != "*" && prefix[i] != argv[i]) return false;
  }
  return true;
}

// The program's name without its directory: rules about "rm" also catch "/bin/rm".
std::vector<std::string> Normalize(std::vector<std::string> argv) {
  if (!argv.empty()) {
    const size_t slash = argv[0].rfind('/');
    if (slash != std::string::npos && slash + 1 < argv[0].size()) {
      argv[0] = argv[0].substr(slash + 1);
    }
  }
  return argv;
}

bool IsShell(const std::string& prog) {
  return prog == "sh" || prog == "bash" || prog == "dash" || prog == "zsh";
}

// Path `p` (workspace-relative or absolute) is `q` or under it.
bool PathUnder(const std::string& p, const std::string& q) {
  std::string a = p, b = q;
  while (a.size() > 1 && a.back() == '/') a.pop_back();
  while (b.size() > 1 && b.back() == '/') b.pop_back();
  if (StartsWith(a, "./")) a = a.substr(2);
  if (StartsWith(b, "./")) b = b.substr(2);
  return a == b || StartsWith(a, b + "/");
}

std::string ExpandHome(const std::string& p) {
  if (StartsWith(p, "~/") || p == "~") {
    const char* home = std::getenv("HOME");
    return std::string(home ? home : "") + p.substr(1);
  }
  return p;
}

}  // namespace

const char* SandboxModeName(SandboxMode m) {
  switch (m) {
    case SandboxMode::kReadOnly:
      return "read-only";
    case SandboxMode::kWorkspaceWrite:
      return "workspace-write";
    case SandboxMode::kFullAccess:
      return "full-access";
  }
  return "?";
}

const char* ApprovalName(Approval a) {
  switch (a) {
    case Approval::kNever:
      return "never";
    case Approval::kOnRequest:
      return "on-request";
    case Approval::kUntrusted:
      return "untrusted";
  }
  return "?";
}

const char* VerdictName(Verdict v) {
  switch (v) {
    case Verdict::kAllow:
      return "allow";
    case Verdict::kAsk:
      return "ask";
    case Verdict::kDeny:
      return "deny";
  }
  return "?";
}

Result<std::vector<std::vector<std::string>>> SplitShell(const std::string& s) {
  std::vector<std::vector<std::string>> commands(1);
  std::string word;
  bool in_word = false;
  auto end_word = [&] {
    if (in_word) commands.back().push_back(word);
    word.clear();
    in_word = false;
  };
  auto end_command = [&] {
    end_word();
    if (!commands.back().empty()) commands.emplace_back();
  };
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '\\') {
      if (i + 1 < s.size()) {
        if (s[i + 1] != '\n') {
          word.push_back(s[i + 1]);
          in_word = true;
        }
        ++i;
      }
      continue;
    }
    if (c == '\'') {
      const size_t end = s.find('\'', i + 1);
      if (end == std::string::npos) return InvalidArgumentError("unbalanced single quote");
      word += s.substr(i + 1, end - i - 1);
      in_word = true;
      i = end;
      continue;
    }
    if (c == '"') {
      size_t j = i + 1;
      for (; j < s.size() && s[j] != '"'; ++j) {
        if (s[j] == '\\' && j + 1 < s.size()) {
          word.push_back(s[++j]);
        } else if (s[j] == '`' || (s[j] == '$' && j + 1 < s.size() && s[j + 1] == '(')) {
          return InvalidArgumentError("command substitution inside double quotes");
        } else {
          word.push_back(s[j]);
        }
      }
      if (j >= s.size()) return InvalidArgumentError("unbalanced double quote");
      in_word = true;
      i = j;
      continue;
    }
    if (c == '`' || (c == '$' && i + 1 < s.size() && s[i + 1] == '(')) {
      return InvalidArgumentError("command substitution");
    }
    if (c == '<' && i + 1 < s.size() && s[i + 1] == '<') {
      return InvalidArgumentError("here-document");
    }
    if (c == ';' || c == '&' || c == '|' || c == '\n' || c == '(' || c == ')') {
      end_command();
      continue;
    }
    if (c == '#' && !in_word) {
      while (i < s.size() && s[i] != '\n') ++i;
      end_command();
      continue;
    }
    if (std::isspace(static_cast<unsigned char>(c))) {
      end_word();
      continue;
    }
    word.push_back(c);
    in_word = true;
  }
  end_word();
  if (commands.back().empty()) commands.pop_back();
  // Leading variable assignments (FOO=1 make) and redirections are not the program.
  for (auto& cmd : commands) {
    size_t k = 0;
    while (k < cmd.size() && cmd[k].find('=') != std::string::npos &&
           std::isalpha(static_cast<unsigned char>(cmd[k][0]))) {
      ++k;
    }
    cmd.erase(cmd.begin(), cmd.begin() + static_cast<long>(k));
    std::vector<std::string> kept;
    for (size_t i = 0; i < cmd.size(); ++i) {
      const std::string& w = cmd[i];
      size_t d = 0;
      while (d < w.size() && std::isdigit(static_cast<unsigned char>(w[d]))) ++d;
      const std::string op = w.substr(d);
      const bool redirect = !op.empty() && (op[0] == '>' || op[0] == '<' || StartsWith(op, "&>"));
      if (!redirect) {
        kept.push_back(w);
        continue;
      }
      // "> file" names its target in the next word; ">file" and ">&2" carry it along.
      const std::string bare = op.substr(op[0] == '&' ? 1 : 0);
      if (bare == ">" || bare == ">>" || bare == "<" || bare == ">|") ++i;
    }
    cmd = std::move(kept);
  }
  std::erase_if(commands, [](const auto& c) { return c.empty(); });
  return commands;
}

bool IsKnownSafeCommand(const std::vector<std::string>& raw) {
  const auto argv = Normalize(raw);
  if (argv.empty()) return true;
  static const char* const kReadOnly[] = {
      "ls",       "cat",    "head",  "tail",      "wc",       "grep",    "rg",       "pwd",
      "echo",     "true",   "false", "nl",        "file",     "stat",    "du",       "df",
      "which",    "whoami", "id",    "uname",     "date",     "tree",    "diff",     "cmp",
      "sort",     "uniq",   "cut",   "tr",        "basename", "dirname", "realpath", "readlink",
      "printf",   "test",   "[",     "sha256sum", "md5sum",   "less",    "more",     "env",
      "printenv", "type",   "cd"};
  const std::string& p = argv[0];
  for (const char* safe : kReadOnly) {
    if (p == safe) {
      // A few read-only programs can still write or run things with some flags.
      for (const auto& a : argv) {
        if (a == "-delete" || a == "-exec" || a == "-execdir" || a == "-fprint" || a == "-o" ||
            StartsWith(a, "--output")) {
          return false;
        }
      }
      return true;
    }
  }
  if (p == "find") {
    for (const auto& a : argv) {
      if (a == "-delete" || a == "-exec" || a == "-execdir" || a == "-ok" || a == "-fprint" ||
          a == "-fprintf" || a == "-fls") {
        return false;
      }
    }
    return true;
  }
  if (p == "sed") {
    for (const auto& a : argv) {
      if (StartsWith(a, "-i") || a == "--in-place") return false;
    }
    return true;
  }
  if (p == "git" && argv.size() >= 2) {
    static const char* const kGitRead[] = {"status",    "log",      "diff",  "show", "branch",
                                           "rev-parse", "ls-files", "blame", "grep"};
    for (const char* g : kGitRead) {
      if (argv[1] == g) {
        for (const auto& a : argv) {
          if (a == "--output" || StartsWith(a, "--output=") || a == "-D" || a == "-d" ||
              a == "--delete" || a == "-m" || a == "-M") {
            return false;
          }
        }
        return true;
      }
    }
  }
  return false;
}

bool RuleMatches(const CommandRule& r, const std::vector<std::string>& argv) {
  const auto norm = Normalize(argv);
  return r.regex ? std::regex_search(StrJoin(norm, " "), *r.regex) : PrefixMatches(r.prefix, norm);
}

bool RuleMatchesExample(const CommandRule& r, const std::string& example) {
  auto split = SplitShell(example);
  if (!split.ok()) return r.regex && std::regex_search(example, *r.regex);
  for (const auto& cmd : *split) {
    if (RuleMatches(r, cmd)) return true;
  }
  return false;
}

namespace {

// The strictest rule verdict for one simple command; `matched` says whether any rule applied.
Verdict RulesFor(const Policy& policy, const std::vector<std::string>& argv, Decision* d,
                 bool* matched) {
  const auto norm = Normalize(argv);
  const std::string line = StrJoin(norm, " ");
  Verdict best = Verdict::kAllow;
  *matched = false;
  for (const CommandRule& r : policy.rules) {
    if (!RuleMatches(r, norm)) continue;
    d->trace.push_back(
        StrCat("rule ", r.id, " (", VerdictName(r.decision), ") matches \"", line, "\""));
    if (!*matched || Strictness(r.decision) > Strictness(best)) {
      best = r.decision;
      if (Strictness(r.decision) >= Strictness(d->verdict) || d->rule.empty()) {
        d->rule = r.id;
        d->reason = r.reason;
      }
    }
    *matched = true;
  }
  return best;
}

Decision Finish(Decision d, bool interactive) {
  if (d.verdict == Verdict::kAsk && !interactive) {
    d.verdict = Verdict::kDeny;
    d.asked_as_denied = true;
    d.reason = StrCat(d.reason.empty() ? "this needs approval" : d.reason,
                      " (approval is needed and nobody can give it in a non-interactive run)");
    d.trace.push_back("ask -> deny: non-interactive");
  }
  return d;
}

}  // namespace

Decision Decide(const Policy& policy, const Action& action, bool interactive) {
  Decision d;
  switch (action.kind) {
    case Action::kTool: {
      const auto& allowed = policy.tools_allowed;
      if (!allowed.empty() &&
          std::find(allowed.begin(), allowed.end(), action.tool) == allowed.end()) {
        d.verdict = Verdict::kDeny;
        d.rule = "tools.allow";
        d.reason = StrCat("the tool \"", action.tool, "\" is not allowed by this policy (",
                          StrJoin(allowed, ", "), ")");
      } else {
        d.rule = "tools.allow";
        d.reason = "the tool is allowed";
      }
      d.trace.push_back(d.reason);
      return d;
    }
    case Action::kRead:
    case Action::kWrite: {
      for (const auto& h : policy.hidden_paths) {
        if (PathUnder(ExpandHome(action.path), ExpandHome(h))) {
          d.verdict = Verdict::kDeny;
          d.rule = "sandbox.hidden_paths";
          d.reason = StrCat(action.path, " is hidden by the policy");
          d.trace.push_back(d.reason);
          return d;
        }
      }
      if (action.kind == Action::kRead) {
        d.rule = "read";
        d.reason = "reading is allowed";
        return d;
      }
      if (policy.mode == SandboxMode::kReadOnly) {
        d.verdict = Verdict::kDeny;
        d.rule = "sandbox.mode";
        d.reason = "the policy is read-only: no file may be written";
        d.trace.push_back(d.reason);
        return d;
      }
      for (const auto& p : policy.protected_paths) {
        if (PathUnder(action.path, p) || PathUnder(action.path, ExpandHome(p))) {
          d.verdict = Verdict::kDeny;
          d.rule = "sandbox.protected_paths";
          d.reason = StrCat(action.path, " is protected (", p, "): it may not be written");
          d.trace.push_back(d.reason);
          return d;
        }
      }
      d.rule = StrCat("sandbox.mode=", SandboxModeName(policy.mode));
      d.reason = "writing in the workspace is allowed";
      return d;
    }
    case Action::kExec:
      break;
  }
  // Commands: each simple command of a shell script is decided; the strictest wins.
  std::vector<std::vector<std::string>> commands;
  bool parsed = true;
  const auto norm = Normalize(action.argv);
  if (norm.size() >= 3 && IsShell(norm[0]) && (norm[1] == "-c" || norm[1] == "-lc")) {
    auto split = SplitShell(norm[2]);
    if (split.ok()) {
      commands = std::move(split).value();
    } else {
      parsed = false;
      d.trace.push_back(
          StrCat("script not split (", split.status().message(), "): rules see it whole"));
      commands.push_back({norm[2]});
    }
  } else {
    commands.push_back(action.argv);
  }
  Verdict overall = Verdict::kAllow;
  std::string fallback_rule, fallback_reason;
  for (const auto& cmd : commands) {
    bool matched = false;
    Decision sub;
    Verdict v = RulesFor(policy, cmd, &sub, &matched);
    for (auto& t : sub.trace) d.trace.push_back(std::move(t));
    if (!matched) {
      switch (policy.approval) {
        case Approval::kNever:
        case Approval::kOnRequest:
          v = Verdict::kAllow;
          sub.rule = StrCat("approval=", ApprovalName(policy.approval));
          sub.reason = "no rule matched; the sandbox confines the command";
          break;
        case Approval::kUntrusted:
          if (parsed && IsKnownSafeCommand(cmd)) {
            v = Verdict::kAllow;
            sub.rule = "approval=untrusted";
            sub.reason = "a known read-only command";
          } else {
            v = Verdict::kAsk;
            sub.rule = "approval=untrusted";
            sub.reason = parsed ? StrCat("\"", StrJoin(Normalize(cmd), " "),
                                         "\" is not a known read-only command")
                                : "the script could not be checked command by command";
          }
          break;
      }
      d.trace.push_back(StrCat(sub.rule, ": ", VerdictName(v), " \"", StrJoin(cmd, " "), "\""));
    }
    if (d.rule.empty() || Strictness(v) > Strictness(overall)) {
      overall = v;
      d.rule = sub.rule;
      d.reason = sub.reason;
    }
  }
  d.verdict = overall;
  return Finish(std::move(d), interactive);
}

}  // namespace v4agent::policies
