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

}  // namespace v4agent::apps
