// The v4agent CLI's subcommand registry. Each cmd_<name>.cpp registers one top-level command
// ("model", "tokenize", "sandbox", ...) with a static CommandRegistrar; main.cpp dispatches.
// Commands return the process exit code and print errors to stderr; they never call exit().
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace v4agent::apps {

struct Command {
  std::string name;
  std::string summary;  // one line for `v4agent --help`
  std::string usage;    // full usage text for `v4agent NAME --help`
  // args excludes the program and command names.
  std::function<int(const std::vector<std::string>& args)> run;
};

std::vector<Command>& CommandTable();

struct CommandRegistrar {
  explicit CommandRegistrar(Command command) { CommandTable().push_back(std::move(command)); }
};

// Second-level commands ("model inspect", "model generate"): files register into a group, and
// the group's top-level command calls RunGroup. Lets several files share one command word.
std::vector<Command>& GroupTable(const std::string& group);

struct SubcommandRegistrar {
  SubcommandRegistrar(const std::string& group, Command command) {
    GroupTable(group).push_back(std::move(command));
  }
};

// Dispatches args[0] to the group's subcommand; prints the group's help on none or --help.
int RunGroup(const std::string& group, const std::vector<std::string>& args);

}  // namespace v4agent::apps
