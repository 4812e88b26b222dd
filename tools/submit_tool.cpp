// submit: ends the run with a final answer and, in a git workspace, the diff of the work.
#include "common/strings.h"
#include "sandbox/launcher.h"
#include "tools/builtin_tools.h"

namespace v4agent::tools {
namespace {

class SubmitTool : public Tool {
 public:
  std::string name() const override { return "submit"; }
  std::string description() const override {
    return "Finish the task. Give a short summary of what was done; in a git repository the "
           "diff of the workspace is submitted with it. Call it only when the work is complete "
           "and checked.";
  }
  Json parameters() const override {
    return Json{{"type", "object"},
                {"properties",
                 {{"answer", {{"type", "string"}, {"description", "summary or final answer"}}}}}};
  }
  bool read_only() const override { return false; }
  ToolResult Run(const Json& args, ToolContext& ctx) override {
    const std::string answer = args.value("answer", std::string());
    // The diff comes from git inside the sandbox (read-only view is enough).
    sandbox::Profile prof = ctx.profile;
    prof.timeout_seconds = 60;
    prof.binds.clear();
    prof.binds.push_back({ctx.workspace, ctx.workspace, false});
    std::string diff;
    // Tracked changes, then new files (untracked, not ignored) as additions.
    auto r = sandbox::Run(
        prof, {"/bin/sh", "-c",
               "git rev-parse --is-inside-work-tree >/dev/null 2>&1 || exit 3; "
               "git -c core.pager=cat diff --no-color HEAD -- . 2>/dev/null; "
               "git ls-files --others --exclude-standard -z | xargs -0 -r -n1 "
               "git -c core.pager=cat diff --no-color --no-index /dev/null 2>/dev/null; true"});
    if (r.ok() && r->exit_code == 0) diff = r->out.Text();
    ctx.submission = answer;
    if (!diff.empty()) ctx.submission += (answer.empty() ? "" : "\n\n") + diff;
    ToolResult res = ToolResult::Ok(
        diff.empty() ? "submitted" : StrCat("submitted with a diff of ", diff.size(), " bytes"));
    res.submitted = true;
    res.extra["diff_bytes"] = diff.size();
    return res;
  }
};

}  // namespace

std::unique_ptr<Tool> MakeSubmitTool() { return std::make_unique<SubmitTool>(); }

}  // namespace v4agent::tools
