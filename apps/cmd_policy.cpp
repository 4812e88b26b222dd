// `v4agent policy check|explain`: validate a policy file, or show how it decides a command.
#include <cstdio>

#include "apps/command.h"
#include "apps/flags.h"
#include "common/json.h"
#include "common/strings.h"
#include "policies/policy.h"

namespace v4agent::apps {
namespace {

constexpr char kCheckUsage[] =
    "usage: v4agent policy check FILE\n"
    "Loads FILE (or builtin:NAME for a shipped policy) and checks every rule's match and\n"
    "not_match examples. Prints a summary, or the errors as FILE:LINE:COLUMN: message and\n"
    "exits 1.";
constexpr char kExplainUsage[] =
    "usage: v4agent policy explain FILE [--json] [--interactive] -- CMD [ARGS...]\n"
    "Prints the decision (allow, ask, deny) for CMD under the policy, the rule that decided\n"
    "and why, and the steps that led there. A shell script is given as: -- sh -c 'SCRIPT'.\n"
    "Exit code 0 allow, 1 deny, 3 ask.";

Result<policies::Policy> Load(const std::string& file) { return policies::LoadPolicySpec(file); }

int Check(const std::vector<std::string>& args) {
  auto flags = Flags::Parse(args, FlagSpec{{}, {}});
  if (!flags.ok() || flags->positional().size() != 1) {
    std::fprintf(stderr, "%s\n", kCheckUsage);
    return 2;
  }
  auto p = Load(flags->positional()[0]);
  if (!p.ok()) {
    std::fprintf(stderr, "%s\n", std::string(p.status().message()).c_str());
    return 1;
  }
  size_t examples = 0;
  for (const auto& r : p->rules) examples += r.match.size() + r.not_match.size();
  std::printf("%s: ok (mode %s, network %s, approval %s, %zu rules, %zu examples checked)\n",
              p->source.c_str(), policies::SandboxModeName(p->mode), p->network ? "on" : "off",
              policies::ApprovalName(p->approval), p->rules.size(), examples);
  return 0;
}

int Explain(const std::vector<std::string>& args) {
  auto flags = Flags::Parse(args, FlagSpec{{}, {"json", "interactive"}});
  if (!flags.ok() || flags->positional().size() != 1 || flags->rest().empty()) {
    std::fprintf(stderr, "%s\n", kExplainUsage);
    return 2;
  }
  auto p = Load(flags->positional()[0]);
  if (!p.ok()) {
    std::fprintf(stderr, "%s\n", std::string(p.status().message()).c_str());
    return 1;
  }
  policies::Action a;
  a.kind = policies::Action::kExec;
  a.tool = "bash";
  a.argv = flags->rest();
  policies::Decision d = policies::Decide(*p, a, flags->Has("interactive"));
  if (flags->Has("json")) {
    Json j{{"decision", policies::VerdictName(d.verdict)},
           {"rule", d.rule},
           {"reason", d.reason},
           {"asked_as_denied", d.asked_as_denied},
           {"trace", d.trace}};
    std::printf("%s\n", DumpJson(j).c_str());
  } else {
    std::printf("decision: %s\nrule:     %s\nreason:   %s\n", policies::VerdictName(d.verdict),
                d.rule.c_str(), d.reason.c_str());
    for (const auto& t : d.trace) std::printf("  - %s\n", t.c_str());
  }
  return d.verdict == policies::Verdict::kAllow ? 0 : d.verdict == policies::Verdict::kDeny ? 1 : 3;
}

CommandRegistrar registrar(Command{
    "policy", "check policy files and explain their decisions",
    "usage: v4agent policy check|explain ... (v4agent policy --help)",
    [](const std::vector<std::string>& args) { return RunGroup("policy", args); }});
SubcommandRegistrar check_registrar("policy",
                                    Command{"check", "validate a policy file", kCheckUsage, Check});
SubcommandRegistrar explain_registrar("policy",
                                      Command{"explain", "show the decision for a command",
                                              kExplainUsage, Explain});

}  // namespace
}  // namespace v4agent::apps
