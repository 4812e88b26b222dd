// Policies: what an agent run may do, loaded from YAML (docs/policies.md). Policies decide;
// the sandbox enforces. A Policy is plain data; Decide() maps a neutral Action (run a
// command, read or write a path, use a tool) to allow / ask / deny with the rule that decided.
// Never runs anything and knows nothing of tools' internals or of the sandbox.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/regex.h"
#include "common/status.h"

namespace v4agent::policies {

enum class SandboxMode { kReadOnly, kWorkspaceWrite, kFullAccess };
enum class Approval { kNever, kOnRequest, kUntrusted };
enum class Verdict { kAllow, kAsk, kDeny };

const char* SandboxModeName(SandboxMode m);
const char* ApprovalName(Approval a);
const char* VerdictName(Verdict v);

struct CommandRule {
  std::string id;
  // Exactly one of: argv prefix (tokens; "*" matches any one token) or a regex searched in
  // the command line (tokens joined by single spaces).
  std::vector<std::string> prefix;
  std::string regex_text;
  std::optional<Regex> regex;
  Verdict decision = Verdict::kAsk;
  std::string reason;
  std::vector<std::string> match, not_match;  // examples checked at load
  int line = 0;                               // where it was defined
};

struct Limits {
  uint64_t memory_mb = 2048;
  uint64_t pids = 256;
  uint64_t cpu_seconds = 0;
  uint64_t file_size_mb = 1024;
  uint64_t open_files = 1024;
  uint64_t tmp_mb = 256;
};

struct PolicyBudgets {
  int max_steps = 50;
  int64_t max_tokens = 1'000'000;
  double max_wall_seconds = 3600;
  double command_timeout_default = 120;
  double command_timeout_max = 600;
};

struct Policy {
  std::string source;  // file the policy came from ("<builtin:workspace-write>" for defaults)
  SandboxMode mode = SandboxMode::kWorkspaceWrite;
  bool network = false;  // the host's network (true) or none
  // Instead: no network but these hosts through the egress proxy ("pypi.org",
  // "*.pythonhosted.org", "host:port"); YAML `network: {allow: [...]}`.
  std::vector<std::string> network_allow;
  std::vector<std::string> writable_roots;  // besides the workspace
  // The sandbox's default list (sandbox/launcher.cpp DefaultProtectedPaths), repeated here
  // because policies know nothing of the sandbox; tests/policies checks they agree.
  std::vector<std::string> protected_paths = {
      ".git/hooks",   ".git/config", ".bashrc", ".bash_profile", ".bash_login",
      ".bash_logout", ".profile",    ".zshrc",  ".zshenv",       ".zprofile",
      ".zlogin",      ".envrc",      ".vscode"};
  std::vector<std::string> hidden_paths;  // "~" is the user's home
  // Secret files by glob ("**/.env"), masked by the sandbox in the workspace and under
  // secret_roots ("~" is the user's home) as each command starts.
  std::vector<std::string> secrets;
  std::vector<std::string> secret_roots;
  std::vector<std::string> env_allowlist = {"PATH", "LANG", "LC_ALL", "TERM", "TZ"};
  Limits limits;
  Approval approval = Approval::kNever;
  std::vector<std::string> tools_allowed;  // empty: every tool; "declared": every YAML tool
  PolicyBudgets budgets;
  std::vector<CommandRule> rules;
};

struct Action {
  enum Kind { kExec, kRead, kWrite, kTool };
  Kind kind = kExec;
  std::string tool;               // the tool asking (kTool: the tool itself)
  std::vector<std::string> argv;  // kExec: a program and its arguments, or {"sh","-c",script}
  std::string path;               // kRead / kWrite: relative to the workspace or absolute
  // kTool: a tool the user declared in a YAML file (`--tools`), allowed by the name or by the
  // entry "declared" in tools.allow.
  bool declared = false;
};

struct Decision {
  Verdict verdict = Verdict::kAllow;
  bool asked_as_denied = false;    // "ask" in a non-interactive run
  std::string rule;                // id of the deciding rule, or the setting ("approval=untrusted")
  std::string reason;              // for the model and the user
  std::vector<std::string> trace;  // how it was reached, one line per step (explain)
};

Result<Policy> LoadPolicyFile(const std::string& path);
// `source_name` is used in error messages as the file name.
Result<Policy> LoadPolicyText(const std::string& text, const std::string& source_name);
// The shipped policies by name ("read-only", "workspace-write", "full-access").
Result<Policy> BuiltinPolicy(const std::string& name);
// "builtin:NAME" for a shipped policy, anything else a policy file (what --policy takes).
Result<Policy> LoadPolicySpec(const std::string& spec);

Decision Decide(const Policy& policy, const Action& action, bool interactive = false);

// Every simple command of a shell script as bash would run it (policies/shell_syntax.h: all
// quoting, substitutions, here-documents, compound commands, brace expansion), in source
// order. Error when the script cannot be fully analysed.
Result<std::vector<std::vector<std::string>>> SplitShell(const std::string& script);

// Every command Decide() looks at for `argv` (a program and its arguments, or sh -c SCRIPT):
// at any depth, wrappers unwrapped (env, nice, timeout, xargs, sudo, ...), nested scripts
// (sh -c, eval, env -S) read. `known[i]`: every word of command i is known statically.
// `understood` false: part of it could not be analysed (Decide then fails closed).
struct CommandList {
  std::vector<std::vector<std::string>> commands;
  std::vector<bool> known;
  bool understood = true;
  std::vector<std::string> problems;  // why not understood
};
CommandList ListCommands(const std::vector<std::string>& argv);

// Whether `rule` matches the command `argv` (a program and its arguments) or, for a shell
// script example, any of its simple commands.
bool RuleMatches(const CommandRule& rule, const std::vector<std::string>& argv);
bool RuleMatchesExample(const CommandRule& rule, const std::string& example);

// Commands that only read (ls, cat, grep, git status ...), auto-allowed when untrusted.
bool IsKnownSafeCommand(const std::vector<std::string>& argv);

}  // namespace v4agent::policies
