#include <algorithm>
#include <cctype>

#include "common/strings.h"
#include "policies/policy.h"
#include "policies/safe_commands.h"
#include "policies/shell_syntax.h"

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

Result<std::vector<std::vector<std::string>>> SplitShell(const std::string& script) {
  ShellAnalysis a = AnalyzeShell(script);
  if (!a.complete) {
    return InvalidArgumentError(
        StrCat("the script cannot be fully analysed: ", StrJoin(a.problems, "; ")));
  }
  std::vector<std::vector<std::string>> out;
  for (const ShellCommand& c : a.commands) {
    if (!c.words.empty()) out.push_back(c.Argv());
  }
  return out;
}

bool IsKnownSafeCommand(const std::vector<std::string>& argv) {
  CommandView v;
  for (const auto& a : argv) v.words.push_back(ShellWord{a, true, false, a});
  return NotKnownSafeReason(v).empty();
}

bool RuleMatches(const CommandRule& r, const std::vector<std::string>& argv) {
  for (bool expand : {false, true}) {
    const auto norm = RuleArgv(argv, expand);
    if (!r.regex) {
      if (PrefixMatches(r.prefix, norm)) return true;
      continue;
    }
    const Result<bool> found = r.regex->Search(StrJoin(norm, " "));
    // A pattern that cannot be decided within its limits counts as a match for rules that
    // ask or deny and as no match for rules that allow: it never lets a command through.
    if (!found.ok()) return r.decision != Verdict::kAllow;
    if (*found) return true;
  }
  return false;
}

namespace {

// The strictest rule verdict for one command; `matched` says whether any rule applied.
Verdict RulesFor(const Policy& policy, const std::vector<std::string>& argv, Decision* d,
                 bool* matched) {
  const std::string line = StrJoin(RuleArgv(argv, false), " ");
  Verdict best = Verdict::kAllow;
  *matched = false;
  for (const CommandRule& r : policy.rules) {
    if (!RuleMatches(r, argv)) continue;
    d->trace.push_back(
        StrCat("rule ", r.id, " (", VerdictName(r.decision), ") matches \"", line, "\""));
    if (!*matched || Strictness(r.decision) > Strictness(best)) {
      best = r.decision;
      d->rule = r.id;
      d->reason = r.reason;
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

// Every command bash could run for one action, unwrapped and with nested scripts read.
struct Found {
  CommandView view;
  std::string where;         // "" at the top; "$(...)", "via env", "in bash -c" ...
  bool runs_others = false;  // a wrapper or a shell: decided by what it runs
  bool wrapper_safe = true;  // the wrapper's own options are harmless
};
struct Collected {
  std::vector<Found> commands;
  std::vector<std::string> not_understood;  // why the script cannot be fully analysed
};

CommandView ViewOf(const ShellCommand& c) {
  return CommandView{c.words, c.assignments, c.redirects};
}

void Collect(const CommandView& v, const std::string& where, int depth, Collected* out) {
  if (depth > 12) {
    out->not_understood.push_back("wrappers and nested scripts too deep");
    return;
  }
  const size_t index = out->commands.size();
  out->commands.push_back(Found{v, where});
  if (!v.words.empty() && !v.words[0].known) {
    out->not_understood.push_back(
        StrCat("the program \"", v.words[0].source, "\" is not known before the command runs"));
  }
  if (auto nested = NestedShellScript(v)) {
    out->commands[index].runs_others = true;
    if (!nested->known) {
      out->not_understood.push_back(
          StrCat(v.words[0].text, " runs a script that is not known before it runs"));
      return;
    }
    ShellAnalysis a = AnalyzeShell(nested->text);
    if (!a.complete) {
      for (const auto& p : a.problems) out->not_understood.push_back(p);
    }
    for (const ShellCommand& c : a.commands) {
      Collect(ViewOf(c), StrCat("in ", v.words[0].text, " script"), depth + 1, out);
    }
    return;
  }
  if (auto u = Unwrap(v)) {
    out->commands[index].runs_others = true;
    out->commands[index].wrapper_safe = u->wrapper_safe;
    Collect(u->inner, StrCat("via ", u->wrapper), depth + 1, out);
  }
}

std::string Describe(const CommandView& v) {
  std::vector<std::string> parts;
  for (const auto& [n, value] : v.assignments) parts.push_back(n + "=" + value.source);
  for (const auto& w : v.words) parts.push_back(w.known ? w.text : w.source);
  return StrJoin(parts, " ");
}

std::vector<std::string> Texts(const CommandView& v) {
  std::vector<std::string> out;
  for (const auto& w : v.words) out.push_back(w.text);
  return out;
}

Decision DecideExec(const Policy& policy, const std::vector<std::string>& argv, bool interactive) {
  Decision d;
  Collected found;
  CommandView top;
  for (const auto& a : argv) top.words.push_back(ShellWord{a, true, false, a});
  Collect(top, "", 0, &found);
  // Each command: the rules first (at any depth, after the same normalisation), then the
  // approval mode for commands no rule matched. The strictest verdict wins.
  Verdict overall = Verdict::kAllow;
  bool have = false;
  auto consider = [&](Verdict v, const std::string& rule, const std::string& reason) {
    if (!have || Strictness(v) > Strictness(overall)) {
      overall = v;
      d.rule = rule;
      d.reason = reason;
      have = true;
    }
  };
  for (const Found& f : found.commands) {
    const CommandView& v = f.view;
    const std::string shown = Describe(v);
    if (v.words.empty()) {
      // Assignments or redirections alone: a write through a redirection, or a variable that
      // later commands may see.
      std::string why;
      for (const auto& r : v.redirects) {
        if (r.Writes())
          why = StrCat("the redirection ", r.op, " ", r.target.source, " writes a file");
      }
      for (const auto& [name, value] : v.assignments) {
        const bool lower = !name.empty() && std::islower(static_cast<unsigned char>(name[0]));
        if (!lower && !IsHarmlessVariable(name)) {
          why = StrCat("setting ", name, " can change what later commands run");
        }
      }
      if (!why.empty() && policy.approval == Approval::kUntrusted) {
        d.trace.push_back(StrCat("approval=untrusted: ask \"", shown, "\": ", why));
        consider(Verdict::kAsk, "approval=untrusted", why);
      }
      continue;
    }
    bool matched = false;
    Decision sub;
    const Verdict v_rules = RulesFor(policy, Texts(v), &sub, &matched);
    for (auto& t : sub.trace) d.trace.push_back(StrCat(t, f.where.empty() ? "" : " ", f.where));
    if (matched) {
      consider(v_rules, sub.rule, sub.reason);
      continue;
    }
    switch (policy.approval) {
      case Approval::kNever:
      case Approval::kOnRequest:
        consider(Verdict::kAllow, StrCat("approval=", ApprovalName(policy.approval)),
                 "no rule matched; the sandbox confines the command");
        break;
      case Approval::kUntrusted: {
        std::string why;
        if (f.runs_others) {
          // Decided by what it runs (listed separately); its own options must be harmless,
          // and redirections and assignments on it count like on any command.
          if (!f.wrapper_safe) why = StrCat("\"", v.words[0].text, "\" with these options");
          CommandView bare = v;
          bare.words.resize(1);
          bare.words[0] = ShellWord{"true", true, false, "true"};
          if (why.empty()) why = NotKnownSafeReason(bare);
        } else {
          why = NotKnownSafeReason(v);
        }
        if (why.empty()) {
          d.trace.push_back(StrCat("approval=untrusted: known safe \"", shown, "\"",
                                   f.where.empty() ? "" : " ", f.where));
          // A wrapper or shell is as safe as what it runs, which decides (and names the rule).
          if (!f.runs_others)
            consider(Verdict::kAllow, "approval=untrusted", "a known read-only command");
        } else {
          d.trace.push_back(StrCat("approval=untrusted: ask \"", shown, "\": ", why));
          consider(Verdict::kAsk, "approval=untrusted",
                   StrCat("\"", shown, "\" is not a known read-only command: ", why));
        }
        break;
      }
    }
  }
  if (!found.not_understood.empty()) {
    // Fail closed: whatever rule could apply to what we cannot see applies; at least ask.
    Verdict strictest = Verdict::kAsk;
    std::string rule = "unanalysable script";
    for (const CommandRule& r : policy.rules) {
      if (Strictness(r.decision) > Strictness(strictest)) {
        strictest = r.decision;
        rule = r.id;
      }
    }
    const std::string why = StrJoin(found.not_understood, "; ");
    d.trace.push_back(StrCat("not fully understood (", why, "): ", VerdictName(strictest)));
    consider(strictest, rule,
             StrCat("the command cannot be checked completely (", why,
                    "), so the strictest rule that could apply decides"));
  }
  if (!have) {
    d.rule = StrCat("approval=", ApprovalName(policy.approval));
    d.reason = "nothing in the command needs a decision";
  }
  d.verdict = overall;
  return Finish(std::move(d), interactive);
}

}  // namespace

CommandList ListCommands(const std::vector<std::string>& argv) {
  Collected found;
  CommandView top;
  for (const auto& a : argv) top.words.push_back(ShellWord{a, true, false, a});
  Collect(top, "", 0, &found);
  CommandList out;
  out.understood = found.not_understood.empty();
  out.problems = found.not_understood;
  for (const Found& f : found.commands) {
    bool known = true;
    for (const auto& w : f.view.words) known = known && w.known;
    out.commands.push_back(Texts(f.view));
    out.known.push_back(known);
  }
  return out;
}

// Examples are read as decisions read commands: every command at any depth, unwrapped.
bool RuleMatchesExample(const CommandRule& r, const std::string& example) {
  Collected found;
  CommandView top;
  for (const char* a : {"bash", "-c"}) top.words.push_back(ShellWord{a, true, false, a});
  top.words.push_back(ShellWord{example, true, false, example});
  Collect(top, "", 0, &found);
  for (size_t i = 1; i < found.commands.size(); ++i) {
    const CommandView& v = found.commands[i].view;
    if (!v.words.empty() && RuleMatches(r, Texts(v))) return true;
  }
  return false;
}

Decision Decide(const Policy& policy, const Action& action, bool interactive) {
  Decision d;
  switch (action.kind) {
    case Action::kTool: {
      const auto& allowed = policy.tools_allowed;
      const auto listed = [&](const std::string& n) {
        return std::find(allowed.begin(), allowed.end(), n) != allowed.end();
      };
      if (!allowed.empty() && !listed(action.tool) && !(action.declared && listed("declared"))) {
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
  return DecideExec(policy, action.argv, interactive);
}

}  // namespace v4agent::policies
