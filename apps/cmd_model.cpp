// `v4agent model ...`: the group whose subcommands live in apps/model_*.cpp.
#include "apps/command.h"

namespace v4agent::apps {
namespace {

CommandRegistrar registrar(Command{
    "model", "inspect, create, run and score V4 checkpoints",
    "usage: v4agent model SUBCOMMAND [ARGS...] (v4agent model --help lists them)",
    [](const std::vector<std::string>& args) { return RunGroup("model", args); }});

}  // namespace
}  // namespace v4agent::apps
