// v4agent: the single executable. Dispatches to the commands registered by the other
// apps/*.cpp files, and to second-level commands through RunGroup.
#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "apps/command.h"

namespace v4agent::apps {

std::vector<Command>& CommandTable() {
  static std::vector<Command> table;
  return table;
}

std::vector<Command>& GroupTable(const std::string& group) {
  static std::map<std::string, std::vector<Command>> tables;
  return tables[group];
}

namespace {

bool IsHelp(const std::string& a) { return a == "--help" || a == "-h" || a == "help"; }

void PrintTable(std::vector<Command> table) {
  std::sort(table.begin(), table.end(),
            [](const Command& a, const Command& b) { return a.name < b.name; });
  for (const auto& c : table) std::printf("  %-12s %s\n", c.name.c_str(), c.summary.c_str());
}

// Runs the command named by args[0] from `table`; `prefix` names the level in messages.
int Dispatch(const std::vector<Command>& table, const std::vector<std::string>& args,
             const std::string& prefix) {
  for (const auto& c : table) {
    if (c.name != args[0]) continue;
    std::vector<std::string> rest(args.begin() + 1, args.end());
    if (!rest.empty() && IsHelp(rest[0])) {
      std::printf("%s\n", c.usage.c_str());
      return 0;
    }
    return c.run(rest);
  }
  std::fprintf(stderr, "%s: unknown command '%s' (see %s --help)\n", prefix.c_str(),
               args[0].c_str(), prefix.c_str());
  return 2;
}

}  // namespace

int RunGroup(const std::string& group, const std::vector<std::string>& args) {
  if (args.empty() || IsHelp(args[0])) {
    std::printf("usage: v4agent %s SUBCOMMAND [ARGS...]\n\nsubcommands:\n", group.c_str());
    PrintTable(GroupTable(group));
    return args.empty() ? 2 : 0;
  }
  return Dispatch(GroupTable(group), args, "v4agent " + group);
}

}  // namespace v4agent::apps

int main(int argc, char** argv) {
  using namespace v4agent::apps;
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || IsHelp(args[0])) {
    std::printf(
        "v4agent: an agent execution runtime with a built-in DeepSeek-V4 engine\n\n"
        "usage: v4agent COMMAND [ARGS...]\n\ncommands:\n");
    PrintTable(CommandTable());
    std::printf("\n`v4agent COMMAND --help` shows a command's usage.\n");
    return args.empty() ? 2 : 0;
  }
  return Dispatch(CommandTable(), args, "v4agent");
}
