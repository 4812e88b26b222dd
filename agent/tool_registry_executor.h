// RegistryExecutor: the agent loop's ToolExecutor over the real tool registry, a policy and
// the sandbox (tools/). Also the default system prompt of a coding run.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "agent/agent_loop.h"
#include "tools/registry.h"

namespace v4agent::agent {

class RegistryExecutor : public ToolExecutor {
 public:
  static Result<std::unique_ptr<RegistryExecutor>> Create(
      const std::string& workspace, const policies::Policy& policy,
      const std::atomic<bool>* cancel = nullptr,
      const std::vector<std::string>& yaml_tools = {});  // files or directories of YAML tools
  std::vector<ToolSpec> Specs() const override;
  ToolOutcome Execute(const ToolCall& call, double timeout_seconds) override;
  tools::ToolContext& context() { return *ctx_; }
  // Re-applies the "allow for this session" answers recorded in a trajectory (on resume).
  void RestoreSessionApprovals(const std::vector<Json>& records);

 private:
  tools::Registry registry_ = tools::Registry::Default();
  std::unique_ptr<tools::ToolContext> ctx_;
};

// Budgets of a run as a policy sets them.
Budgets BudgetsFromPolicy(const policies::Policy& policy);

// The system prompt for a coding task in `workspace`.
std::string DefaultSystemPrompt(const std::string& workspace);

}  // namespace v4agent::agent
