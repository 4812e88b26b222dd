// Constructors of the built-in tools (one file each: bash_tool.cpp, file_tools.cpp,
// apply_patch.cpp, search_tool.cpp, submit_tool.cpp).
#pragma once

#include <memory>

#include "tools/tool.h"

namespace v4agent::tools {

class Registry;
void AddBuiltinTools(Registry* registry);

std::unique_ptr<Tool> MakeBashTool();
std::unique_ptr<Tool> MakeViewTool();
std::unique_ptr<Tool> MakeCreateTool();
std::unique_ptr<Tool> MakeStrReplaceTool();
std::unique_ptr<Tool> MakeInsertTool();
std::unique_ptr<Tool> MakeApplyPatchTool();
std::unique_ptr<Tool> MakeSearchTool();
std::unique_ptr<Tool> MakeListTool();
std::unique_ptr<Tool> MakeSubmitTool();

}  // namespace v4agent::tools
