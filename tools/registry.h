// The tool registry and the one entry point the agent calls: Invoke() checks the arguments
// against the tool's schema, asks the policy about every action the call would take (denied
// calls never run), then runs the tool.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tools/tool.h"

namespace v4agent::tools {

class Registry {
 public:
  // bash, view, create, str_replace, insert, apply_patch, search, list, submit.
  static Registry Default();
  void Add(std::unique_ptr<Tool> tool);
  Tool* Find(const std::string& name) const;
  // The tools the policy allows, in registration order.
  std::vector<Tool*> Allowed(const policies::Policy& policy) const;
  // Their OpenAI tool schemas, for the prompt.
  Json Schemas(const policies::Policy& policy) const;

 private:
  std::vector<std::unique_ptr<Tool>> tools_;
};

// Parses `arguments_json`, checks it against the schema (unknown tool, bad JSON, missing or
// unknown parameter, wrong type: tool errors naming the field), decides with the policy, runs.
ToolResult Invoke(const Registry& registry, ToolContext& ctx, const std::string& name,
                  const std::string& arguments_json);

// Checks an arguments object against a tool's parameters schema (object with properties,
// required, and scalar/array/object types); the error names the field.
Status CheckArguments(const Json& schema, const Json& args);

}  // namespace v4agent::tools
