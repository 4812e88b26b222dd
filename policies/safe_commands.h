// Known-safe commands: the ones `approval: untrusted` runs without asking. Each is an
// allow-list of harmless flags and operands per program (as Codex keeps them), never a list
// of forbidden flags: an option we do not know, a word whose value is not known statically
// (an expansion, a glob) where it could be read as an option, a prefix assignment of a
// variable outside a short list of harmless ones, or an output redirection makes a command
// not known safe. Wrappers (env, nice, timeout, xargs, stdbuf, nohup, command, exec, ...) are
// unwrapped by Unwrap() and decided by the command they run. Pure functions.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "policies/shell_syntax.h"

namespace v4agent::policies {

// A command as decided: words with their known-ness, the assignments in effect for it and
// its redirections.
struct CommandView {
  std::vector<ShellWord> words;
  std::vector<std::pair<std::string, ShellWord>> assignments;
  std::vector<ShellRedirect> redirects;
};

// Why a command is not known safe, or "" when it is.
std::string NotKnownSafeReason(const CommandView& cmd);

// When `cmd` runs another command (env X=1 cmd, nice -n5 cmd, timeout 5 cmd, xargs cmd,
// sudo cmd, command cmd, exec cmd, find ... -exec cmd ... \;), that command; its words keep
// their known-ness (xargs adds an unknown operand). nullopt when it is not a wrapper or runs
// nothing. `wrapper_safe` tells whether the wrapper's own options are harmless.
struct Unwrapped {
  CommandView inner;
  bool wrapper_safe = true;
  std::string wrapper;
};
std::optional<Unwrapped> Unwrap(const CommandView& cmd);

// When `cmd` hands a script to a shell (sh/bash/dash/zsh -c SCRIPT, eval WORDS...): the
// script text; `known` false when it is built from expansions.
struct NestedScript {
  std::string text;
  bool known = true;
};
std::optional<NestedScript> NestedShellScript(const CommandView& cmd);

// The argv used for rule matching: the program's base name, git's global options removed
// (-C, -c, --git-dir, --no-pager, ...); with `expand_flags`, single-dash option clusters
// written apart (git clean -fdx -> git clean -f -d -x).
std::vector<std::string> RuleArgv(const std::vector<std::string>& argv, bool expand_flags);

// Environment variables a prefix assignment may set without making a command unsafe.
bool IsHarmlessVariable(const std::string& name);

}  // namespace v4agent::policies
