// The agent's tools behind one interface: a name, a description and a JSON schema (rendered
// into the prompt by the DSML encoder), a neutral description of a call for the policy, and
// Run. Results are values: ok, a tool error the model can act on, denied (with the rule), or
// fatal (the environment is broken). Programs run only through the sandbox; host-side file
// tools resolve every path beneath the workspace (path_guard.h).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "common/unique_fd.h"
#include "policies/policy.h"
#include "sandbox/egress_proxy.h"
#include "sandbox/profile.h"

namespace v4agent::tools {

struct ToolResult {
  enum Kind { kOk, kToolError, kDenied, kFatal };
  Kind kind = kOk;
  std::string text;             // what the model sees
  Json extra = Json::object();  // exit_code, paths changed, bytes elided, rule, ...
  bool submitted = false;       // the run's final submission

  static ToolResult Ok(std::string text) { return {kOk, std::move(text)}; }
  static ToolResult Error(std::string text) { return {kToolError, std::move(text)}; }
};
const char* ToolResultKindName(ToolResult::Kind kind);

// A policy decision of "ask" put to the user (on a terminal), and the answer.
struct ApprovalRequest {
  std::string tool;
  std::string action;  // the command line or "write PATH" / "read PATH" / "use TOOL"
  std::string rule;
  std::string reason;
};
enum class ApprovalAnswer { kDeny, kOnce, kSession };
const char* ApprovalAnswerName(ApprovalAnswer a);
using Approver = std::function<ApprovalAnswer(const ApprovalRequest&)>;

// Everything a call may touch. One per agent run; tools keep their own state (bash's cwd).
struct ToolContext {
  std::string workspace;  // absolute, canonical
  UniqueFd workspace_fd;  // O_PATH|O_DIRECTORY of it: every host-side path resolves beneath
  policies::Policy policy;
  sandbox::Profile profile;          // built from the policy for this workspace
  size_t output_budget = 16 * 1024;  // bytes of tool output the model sees per call
  // Set when someone can answer "ask" decisions (a terminal); without one, ask means deny.
  Approver approver;
  // "Allow for this session" answers: rule + "\n" + action. Restored on resume.
  std::set<std::string> session_approvals;
  const std::atomic<bool>* cancel = nullptr;
  std::string submission;  // set by submit
  // The egress proxy when the policy allows some hosts, and its decisions not yet reported
  // (the bash tool attaches them to the call that made them).
  std::unique_ptr<sandbox::EgressProxy> egress;
  std::mutex egress_mu;
  std::vector<sandbox::EgressDecision> egress_log;
};

Result<std::unique_ptr<ToolContext>> MakeContext(const std::string& workspace,
                                                 const policies::Policy& policy);

class Tool {
 public:
  virtual ~Tool() = default;
  virtual std::string name() const = 0;
  virtual std::string description() const = 0;
  // JSON Schema of the arguments object.
  virtual Json parameters() const = 0;
  // No side effects: the loop may run several such calls at once.
  virtual bool read_only() const = 0;
  // Defined by the user in a YAML file (tools/yaml_tool.h), not built in.
  virtual bool declared() const { return false; }
  // The actions the call would take, for the policy (a file write, a command, ...).
  virtual std::vector<policies::Action> Describe(const Json& args, const ToolContext& ctx) const;
  virtual ToolResult Run(const Json& args, ToolContext& ctx) = 0;
};

// {"type": "function", "function": {"name", "description", "parameters"}}.
Json ToolSchema(const Tool& tool);

}  // namespace v4agent::tools
