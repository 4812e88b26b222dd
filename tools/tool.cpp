#include "tools/tool.h"

#include <fcntl.h>

#include <filesystem>

#include "common/strings.h"
#include "tools/output_budget.h"

namespace v4agent::tools {

const char* ToolResultKindName(ToolResult::Kind kind) {
  switch (kind) {
    case ToolResult::kOk:
      return "ok";
    case ToolResult::kToolError:
      return "tool_error";
    case ToolResult::kDenied:
      return "denied";
    case ToolResult::kFatal:
      return "fatal";
  }
  return "?";
}

std::vector<policies::Action> Tool::Describe(const Json&, const ToolContext&) const { return {}; }

Json ToolSchema(const Tool& tool) {
  return Json{{"type", "function"},
              {"function",
               {{"name", tool.name()},
                {"description", tool.description()},
                {"parameters", tool.parameters()}}}};
}

namespace {

// The sandbox profile a policy asks for in this workspace: policies decide, this only
// translates their words into the sandbox's.
sandbox::Profile ProfileFromPolicy(const policies::Policy& p, const std::string& ws) {
  sandbox::Profile prof = sandbox::DefaultProfile(ws);
  prof.binds.clear();
  prof.binds.push_back({ws, ws, p.mode != policies::SandboxMode::kReadOnly});
  for (const auto& root : p.writable_roots) prof.binds.push_back({root, root, true});
  prof.root_writable = p.mode == policies::SandboxMode::kFullAccess;
  prof.network = p.network ? sandbox::NetworkMode::kHost : sandbox::NetworkMode::kNone;
  prof.protected_paths = p.protected_paths;
  prof.hidden_paths.clear();
  const char* home = std::getenv("HOME");
  for (const auto& h : p.hidden_paths) {
    prof.hidden_paths.push_back(StartsWith(h, "~") ? std::string(home ? home : "") + h.substr(1)
                                                   : h);
  }
  prof.hidden_paths.push_back("/run");
  auto expand_home = [&](const std::string& x) {
    return StartsWith(x, "~") ? std::string(home ? home : "") + x.substr(1) : x;
  };
  prof.secret_patterns = p.secrets;
  for (const auto& r : p.secret_roots) prof.secret_roots.push_back(expand_home(r));
  prof.env_allowlist = p.env_allowlist;
  // Memory and processes are cgroup limits; the sandbox picks its fallbacks where none exists.
  prof.rlimits.cpu_seconds = p.limits.cpu_seconds;
  prof.rlimits.file_size = p.limits.file_size_mb << 20;
  prof.rlimits.open_files = p.limits.open_files;
  prof.cgroup.memory_bytes = p.limits.memory_mb << 20;
  prof.cgroup.pids = p.limits.pids;
  prof.tmp_size_bytes = p.limits.tmp_mb << 20;
  prof.timeout_seconds = p.budgets.command_timeout_default;
  prof.cwd = ws;
  return prof;
}

}  // namespace

Result<std::unique_ptr<ToolContext>> MakeContext(const std::string& workspace,
                                                 const policies::Policy& policy) {
  std::error_code ec;
  const auto canon = std::filesystem::canonical(workspace, ec);
  if (ec || !std::filesystem::is_directory(canon)) {
    return NotFoundError(StrCat("workspace ", workspace, ": not a directory"));
  }
  auto ctx = std::make_unique<ToolContext>();
  ctx->workspace = canon.string();
  ctx->workspace_fd = UniqueFd(open(ctx->workspace.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!ctx->workspace_fd.valid()) return ErrnoError("workspace " + ctx->workspace, errno);
  ctx->policy = policy;
  ctx->profile = ProfileFromPolicy(policy, ctx->workspace);
  if (!policy.network_allow.empty() && !policy.network) {
    V4_ASSIGN_OR_RETURN(sandbox::EgressAllowlist allow,
                        sandbox::EgressAllowlist::Parse(policy.network_allow));
    ToolContext* c = ctx.get();
    V4_ASSIGN_OR_RETURN(ctx->egress,
                        sandbox::EgressProxy::Start(std::move(allow), [c](const auto& d) {
                          std::lock_guard<std::mutex> lock(c->egress_mu);
                          c->egress_log.push_back(d);
                        }));
    ctx->profile.network = sandbox::NetworkMode::kProxy;
    ctx->profile.proxy_socket = ctx->egress->socket_path();
  }
  return ctx;
}

std::string HeadTail(const std::string& text, size_t budget, const std::string& hint) {
  if (text.size() <= budget) return text;
  const size_t head = budget * 2 / 3, tail = budget - head;
  // Cut at line boundaries when one is near, so lines are not split mid-way.
  size_t h = text.rfind('\n', head);
  if (h == std::string::npos || h < head / 2) h = head;
  size_t t = text.find('\n', text.size() - tail);
  if (t == std::string::npos || t > text.size() - tail / 2) t = text.size() - tail;
  return StrCat(text.substr(0, h), "\n[... ", t - h, " bytes elided", hint.empty() ? "" : "; ",
                hint, " ...]\n", text.substr(t));
}

}  // namespace v4agent::tools
