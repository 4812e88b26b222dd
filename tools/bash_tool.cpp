// bash: one fresh sandboxed process per call. The working directory persists in the tool's
// own state (read back from a marker the wrapper prints), not in a long-lived shell.
#include <algorithm>
#include <cstring>

#include "common/strings.h"
#include "sandbox/launcher.h"
#include "tools/builtin_tools.h"
#include "tools/output_budget.h"
#include "tools/registry.h"

namespace v4agent::tools {
namespace {

constexpr char kCwdMarker[] = "\x1eV4CWD:";

class BashTool : public Tool {
 public:
  std::string name() const override { return "bash"; }
  std::string description() const override {
    return "Run a shell command (bash) in the workspace, sandboxed: no network unless the "
           "policy allows it, the workspace writable, the rest of the machine read-only. Each "
           "call is a fresh process; the working directory carries over between calls. Output "
           "is cut to its head and tail when long: redirect to a file and search it instead.";
  }
  Json parameters() const override {
    return Json{{"type", "object"},
                {"properties",
                 {{"command", {{"type", "string"}, {"description", "the command to run"}}},
                  {"timeout",
                   {{"type", "integer"},
                    {"description",
                     "seconds before the command is killed (default and maximum "
                     "set by the policy)"}}}}},
                {"required", Json::array({"command"})}};
  }
  bool read_only() const override { return false; }

  std::vector<policies::Action> Describe(const Json& args, const ToolContext&) const override {
    policies::Action a;
    a.kind = policies::Action::kExec;
    a.argv = {"bash", "-c", args.value("command", std::string())};
    return {a};
  }

  ToolResult Run(const Json& args, ToolContext& ctx) override {
    const std::string command = args["command"].get<std::string>();
    if (StripWhitespace(command).empty()) return ToolResult::Error("bash: the command is empty");
    const auto& b = ctx.policy.budgets;
    double timeout = b.command_timeout_default;
    if (args.contains("timeout")) {
      timeout = args["timeout"].get<double>();
      if (timeout <= 0) return ToolResult::Error("bash: timeout must be positive");
      timeout = std::min(timeout, b.command_timeout_max);
    }
    sandbox::Profile prof = ctx.profile;
    prof.timeout_seconds = timeout;
    const std::string cwd = cwd_.empty() ? ctx.workspace : cwd_;
    prof.env.push_back("V4_CWD=" + cwd);
    prof.env.push_back("V4_CMD=" + command);
    // The command runs in this shell (eval) so `cd` sticks; the marker reports where it ended.
    const std::string script =
        StrCat("cd -- \"$V4_CWD\" 2>/dev/null || cd -- \"", ctx.workspace,
               "\"; unset V4_CWD; __v4_cmd=$V4_CMD; unset V4_CMD; eval \"$__v4_cmd\"; "
               "__v4_status=$?; printf '\\n",
               kCwdMarker, "%s\\n' \"$PWD\" >&2; exit $__v4_status");
    sandbox::RunOptions opts;
    opts.cancel = ctx.cancel;
    auto report = launcher_.Run(prof, {"/bin/bash", "-c", script}, opts);
    if (!report.ok()) {
      return ToolResult{ToolResult::kFatal,
                        StrCat("bash: the sandbox failed: ", report.status().message())};
    }
    std::string err = report->err.Text();
    // Take the cwd marker out of what the model sees.
    const size_t at = err.rfind(kCwdMarker);
    if (at != std::string::npos) {
      std::string dir = err.substr(at + std::strlen(kCwdMarker));
      dir = std::string(StripWhitespace(dir));
      if (dir == ctx.workspace || StartsWith(dir, ctx.workspace + "/")) cwd_ = dir;
      err.erase(at > 0 && err[at - 1] == '\n' ? at - 1 : at);
    }
    std::string out = sandbox::SanitizeForModel(report->out.Text());
    err = sandbox::SanitizeForModel(err);
    ToolResult r;
    r.extra["exit_code"] = report->exit_code;
    r.extra["wall_seconds"] = report->wall_seconds;
    r.extra["stdout_bytes"] = report->out.total_bytes;
    r.extra["stderr_bytes"] = report->err.total_bytes;
    {
      // What the command asked of the network through the egress proxy, for the trajectory.
      std::lock_guard<std::mutex> lock(ctx.egress_mu);
      for (const auto& d : ctx.egress_log) {
        r.extra["network"].push_back(Json{{"method", d.method},
                                          {"host", d.host},
                                          {"port", d.port},
                                          {"allowed", d.allowed},
                                          {"reason", d.reason}});
      }
      ctx.egress_log.clear();
    }
    if (report->out_of_memory) r.extra["out_of_memory"] = true;
    if (!report->protected_changes.empty())
      r.extra["protected_changes"] = report->protected_changes;
    if (report->setup_failed()) {
      return ToolResult{ToolResult::kFatal,
                        StrCat("bash: the sandbox could not start (step ", report->failed_step,
                               ": ", std::strerror(report->failed_errno), ")")};
    }
    std::string text;
    const size_t half = ctx.output_budget / 2;
    const std::string hint = "redirect the output to a file and search or view parts of it";
    if (!out.empty()) text += HeadTail(out, err.empty() ? ctx.output_budget : half, hint);
    if (!err.empty()) {
      if (!text.empty() && text.back() != '\n') text += "\n";
      text += StrCat("[stderr]\n", HeadTail(err, out.empty() ? ctx.output_budget : half, hint));
    }
    if (!text.empty() && text.back() != '\n') text += "\n";
    if (report->timed_out) {
      text += StrCat("[killed after ", timeout, " s: the command timed out]\n");
      r.kind = ToolResult::kToolError;
    } else if (report->cancelled) {
      text += "[cancelled]\n";
      r.kind = ToolResult::kToolError;
    } else if (report->signal) {
      text += StrCat("[killed by signal ", report->signal, "]\n");
    }
    if (report->out_of_memory) text += "[out of memory: the sandbox's memory limit was reached]\n";
    for (const auto& change : report->protected_changes) {
      text += StrCat("[protected path: ", change, "]\n");
    }
    text += StrCat("[exit code ", report->ShellExitCode(), "]");
    r.text = std::move(text);
    return r;
  }

 private:
  std::string cwd_;  // where the last call ended, inside the workspace
  // Keeps the next sandbox set up while the model thinks, so a call only sends its command.
  sandbox::Launcher launcher_;
};

}  // namespace

std::unique_ptr<Tool> MakeBashTool() { return std::make_unique<BashTool>(); }

void AddBuiltinTools(Registry* r) {
  r->Add(MakeBashTool());
  r->Add(MakeViewTool());
  r->Add(MakeCreateTool());
  r->Add(MakeStrReplaceTool());
  r->Add(MakeInsertTool());
  r->Add(MakeApplyPatchTool());
  r->Add(MakeSearchTool());
  r->Add(MakeListTool());
  r->Add(MakeSubmitTool());
}

}  // namespace v4agent::tools
