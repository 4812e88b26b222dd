// Tools defined in YAML files (`--tools FILE_OR_DIR`): a name, a description, parameters in
// the JSON Schema subset the DSML encoder renders, and how the tool runs: an argv template
// executed in the same sandbox as bash. Arguments reach the program only as separate argv
// entries, environment variables or stdin, never pasted into a shell string, so a value with
// shell metacharacters is just text. The policy sees the rendered command and the paths the
// tool declares it reads or writes; a tool that declares no writes runs with the workspace
// read-only, and with no network unless it asks for the policy's. Format: docs/pipelines.md.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "tools/tool.h"

namespace v4agent::tools {

class Registry;

// One file's tool; errors name file:line:col (unknown keys, types, template references to
// parameters that do not exist, defaults of the wrong type).
Result<std::unique_ptr<Tool>> LoadYamlTool(const std::string& path);

// A file, or every *.yaml / *.yml file of a directory (sorted by name).
Result<std::vector<std::unique_ptr<Tool>>> LoadYamlTools(const std::string& path);

// Loads each path and adds the tools to `registry`; a name already there is an error naming
// both.
Status AddYamlTools(const std::vector<std::string>& paths, Registry* registry);

}  // namespace v4agent::tools
