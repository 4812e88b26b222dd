#include "agent/tool_registry_executor.h"

#include <algorithm>

#include "common/strings.h"
#include "tools/yaml_tool.h"

namespace v4agent::agent {

Result<std::unique_ptr<RegistryExecutor>> RegistryExecutor::Create(
    const std::string& workspace, const policies::Policy& policy, const std::atomic<bool>* cancel,
    const std::vector<std::string>& yaml_tools) {
  auto e = std::unique_ptr<RegistryExecutor>(new RegistryExecutor());
  V4_RETURN_IF_ERROR(tools::AddYamlTools(yaml_tools, &e->registry_));
  V4_ASSIGN_OR_RETURN(e->ctx_, tools::MakeContext(workspace, policy));
  e->ctx_->cancel = cancel;
  return e;
}

std::vector<ToolSpec> RegistryExecutor::Specs() const {
  std::vector<ToolSpec> out;
  for (tools::Tool* t : registry_.Allowed(ctx_->policy)) {
    out.push_back(ToolSpec{t->name(), t->description(), t->parameters(), t->read_only()});
  }
  return out;
}

ToolOutcome RegistryExecutor::Execute(const ToolCall& call, double timeout_seconds) {
  // The loop's per-command budget narrows the policy's default (never past its maximum).
  auto& b = ctx_->policy.budgets;
  const double saved = b.command_timeout_default;
  if (timeout_seconds > 0)
    b.command_timeout_default = std::min(timeout_seconds, b.command_timeout_max);
  tools::ToolResult r = tools::Invoke(registry_, *ctx_, call.name, call.arguments);
  b.command_timeout_default = saved;
  ToolOutcome o;
  o.output = r.text;
  o.ok = r.kind == tools::ToolResult::kOk;
  o.fatal = r.kind == tools::ToolResult::kFatal;
  o.submitted = r.submitted;
  for (const char* key : {"network", "protected_changes", "out_of_memory", "approval"}) {
    if (r.extra.contains(key)) o.details[key] = r.extra[key];
  }
  if (r.submitted) o.output = ctx_->submission.empty() ? r.text : ctx_->submission;
  o.decision = r.kind == tools::ToolResult::kDenied
                   ? StrCat("deny: ", r.extra.value("rule", std::string("policy")))
                   : "allow";
  return o;
}

void RegistryExecutor::RestoreSessionApprovals(const std::vector<Json>& records) {
  for (const Json& r : records) {
    if (r.value("type", "") != "tool_result" || !r.contains("details")) continue;
    const Json& d = r["details"];
    if (!d.contains("approval") || !d["approval"].is_array()) continue;
    for (const Json& a : d["approval"]) {
      if (a.value("answer", "") == "session") {
        ctx_->session_approvals.insert(a.value("rule", "") + "\n" + a.value("action", ""));
      }
    }
  }
}

Budgets BudgetsFromPolicy(const policies::Policy& p) {
  Budgets b;
  b.max_steps = p.budgets.max_steps;
  b.max_generated_tokens = p.budgets.max_tokens;
  b.max_wall_seconds = p.budgets.max_wall_seconds;
  b.command_timeout_seconds = p.budgets.command_timeout_default;
  return b;
}

std::string DefaultSystemPrompt(const std::string& workspace) {
  return StrCat(
      "You are a software engineering agent working in the repository at ", workspace,
      ". Solve the task by inspecting files, editing them and running commands with the tools. "
      "Commands run in a sandbox: the workspace is writable, the rest of the machine is "
      "read-only and there is no network. Work in small steps: look before you change, run the "
      "tests after changing, and call submit once the task is done and checked.");
}

}  // namespace v4agent::agent
