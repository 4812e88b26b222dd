// v4agent: the single executable. Dispatches to the subcommands registered by cmd_*.cpp.
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

int RunGroup(const std::string& group, const std::vector<std::string>& args) {
  auto table = GroupTable(group);
  std::sort(table.begin(), table.end(),
            [](const Command& a, const Command& b) { return a.name < b.name; });
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    std::printf("usage: v4agent %s SUBCOMMAND [ARGS...]\n\nsubcommands:\n", group.c_str());
    for (const auto& c : table) std::printf("  %-12s %s\n", c.name.c_str(), c.summary.c_str());
    return args.empty() ? 2 : 0;
  }
  for (const auto& c : table) {
    if (c.name != args[0]) continue;
    std::vector<std::string> rest(args.begin() + 1, args.end());
    if (!rest.empty() && (rest[0] == "--help" || rest[0] == "-h")) {
      std::printf("%s\n", c.usage.c_str());
      return 0;
    }
    return c.run(rest);
  }
  std::fprintf(stderr, "v4agent %s: unknown subcommand '%s'\n", group.c_str(), args[0].c_str());
  return 2;
}

namespace {

void PrintHelp() {
  std::printf(
      "v4agent: an agent execution runtime with a built-in DeepSeek-V4 engine\n\n"
      "usage: v4agent COMMAND [ARGS...]\n\ncommands:\n");
  auto table = CommandTable();
  std::sort(table.begin(), table.end(),
            [](const Command& a, const Command& b) { return a.name < b.name; });
  for (const auto& c : table) std::printf("  %-12s %s\n", c.name.c_str(), c.summary.c_str());
  std::printf("\n`v4agent COMMAND --help` shows a command's usage.\n");
}

}  // namespace
}  // namespace v4agent::apps

int main(int argc, char** argv) {
  using v4agent::apps::CommandTable;
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    v4agent::apps::PrintHelp();
    return args.empty() ? 2 : 0;
  }
  for (const auto& c : CommandTable()) {
    if (c.name != args[0]) continue;
    std::vector<std::string> rest(args.begin() + 1, args.end());
    if (!rest.empty() && (rest[0] == "--help" || rest[0] == "-h")) {
      std::printf("%s\n", c.usage.c_str());
      return 0;
    }
    return c.run(rest);
  }
  std::fprintf(stderr, "v4agent: unknown command '%s' (see v4agent --help)\n", args[0].c_str());
  return 2;
}
