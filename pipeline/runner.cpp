#include "pipeline/runner.h"

#include <glob.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <thread>

#include "agent/agent_loop.h"
#include "agent/tool_registry_executor.h"
#include "agent/trajectory.h"
#include "common/file_util.h"
#include "common/strings.h"
#include "common/subprocess.h"
#include "policies/policy.h"
#include "sandbox/launcher.h"
#include "tools/path_guard.h"
#include "tools/registry.h"
#include "tools/yaml_tool.h"

namespace v4agent::pipeline {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr size_t kKeptOutput = 256 * 1024;  // bytes of stdout/stderr kept in a result

std::string Keep(const std::string& s) {
  if (s.size() <= kKeptOutput) return s;
  return s.substr(0, kKeptOutput / 2) + StrCat("\n[... ", s.size() - kKeptOutput, " bytes ...]\n") +
         s.substr(s.size() - kKeptOutput / 2);
}

// The workspace's changes against HEAD, new files included, through a temporary index so the
// user's index is left as it was.
std::string WorkspacePatch(const std::string& ws, const std::string& scratch) {
  if (!PathExists(ws + "/.git")) return "";
  const std::string index = scratch + "/patch.index";
  ProcessOptions o;
  o.cwd = ws;
  o.env = {"GIT_INDEX_FILE=" + index};
  o.timeout_seconds = 120;
  auto read = RunProcess({"git", "read-tree", "HEAD"}, o);
  if (!read.ok() || !read->ok()) return "";
  auto add = RunProcess({"git", "add", "-A"}, o);
  if (!add.ok() || !add->ok()) return "";
  auto diff = RunProcess({"git", "diff", "--cached", "--binary", "HEAD"}, o);
  std::error_code ec;
  fs::remove(index, ec);
  return diff.ok() && diff->ok() ? diff->out : "";
}

class Runner {
 public:
  Runner(const Pipeline& p, const RunOptions& o) : top_(p), o_(o) {}

  Result<Json> Run() {
    std::error_code ec;
    workspace_ = fs::canonical(o_.workspace, ec).string();
    if (ec || !fs::is_directory(workspace_)) {
      return NotFoundError(StrCat("workspace ", o_.workspace, ": not a directory"));
    }
    fs::create_directories(o_.run_dir, ec);
    if (ec) return InvalidArgumentError(StrCat("run directory ", o_.run_dir, ": ", ec.message()));
    run_dir_ = fs::canonical(o_.run_dir).string();
    if (run_dir_ == workspace_ || StartsWith(run_dir_, workspace_ + "/")) {
      // The agent and the commands could rewrite the journal, and their diff would hold it.
      return InvalidArgumentError(StrCat("the run directory ", run_dir_,
                                         " is inside the workspace; choose one outside it"));
    }
    V4_ASSIGN_OR_RETURN(Json inputs, ResolveInputs(top_, o_.inputs));
    const std::string journal = run_dir_ + "/journal.jsonl";
    if (PathExists(journal) && !o_.resume) {
      V4_ASSIGN_OR_RETURN(std::vector<Json> records, agent::ReadTrajectory(journal));
      const bool finished = !records.empty() && records.back().value("type", "") == "end";
      if (!finished && !o_.fresh) {
        return FailedPreconditionError(
            StrCat(run_dir_,
                   " holds an unfinished run: pass --resume to continue it, or "
                   "--fresh to discard it"));
      }
      // A finished run (or one the user discards) makes way for this one.
      for (const char* old : {"journal.jsonl", "summary.json", "steps", "artifacts"}) {
        fs::remove_all(fs::path(run_dir_) / old, ec);
      }
    }
    if (PathExists(journal)) {
      V4_ASSIGN_OR_RETURN(std::vector<Json> records, agent::ReadTrajectory(journal));
      for (const Json& r : records) {
        const std::string type = r.value("type", "");
        if (type == "start") {
          if (r.value("digest", "") != top_.digest) {
            return FailedPreconditionError(StrCat(
                journal, ": written by another version of ", top_.file,
                " (or of a pipeline it calls); a changed pipeline starts in a new --run-dir"));
          }
          if (r.value("inputs", Json()) != inputs) {
            return FailedPreconditionError(StrCat(journal, ": the earlier run had inputs ",
                                                  DumpJson(r["inputs"]), ", not ",
                                                  DumpJson(inputs)));
          }
        } else if (type == "step") {
          done_[r.value("path", "")] = r.value("result", Json::object());
        }
      }
    }
    V4_ASSIGN_OR_RETURN(agent::TrajectoryWriter w, agent::TrajectoryWriter::Open(journal));
    journal_ = std::make_unique<agent::TrajectoryWriter>(std::move(w));
    V4_RETURN_IF_ERROR(journal_->Append(Json{{"type", done_.empty() ? "start" : "resume"},
                                             {"pipeline", top_.file},
                                             {"digest", top_.digest},
                                             {"inputs", inputs},
                                             {"workspace", workspace_}}));
    const auto start = Clock::now();
    Frame frame;
    frame.pipeline = &top_;
    frame.ctx = Json{{"inputs", inputs},
                     {"workspace", workspace_},
                     {"run_dir", run_dir_},
                     {"steps", Json::object()}};
    V4_RETURN_IF_ERROR(RenderEnv(&frame));
    RunSteps(top_.steps, "", 0, &frame);
    Json outputs = Outputs(top_, frame);
    const std::string status = Cancelled() ? "cancelled" : frame.failed ? "failure" : "success";
    Json steps = Json::object();
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& [path, r] : results_) steps[path] = Brief(r);
    }
    Json summary{{"pipeline", top_.name},
                 {"file", top_.file},
                 {"status", status},
                 {"run_dir", run_dir_},
                 {"workspace", workspace_},
                 {"inputs", inputs},
                 {"seconds", std::chrono::duration<double>(Clock::now() - start).count()},
                 {"steps", steps},
                 {"outputs", outputs}};
    if (!journal_error_.ok()) {
      // The run itself went on; what is lost is only the ability to resume it.
      summary["journal_error"] = std::string(journal_error_.message());
    }
    V4_RETURN_IF_ERROR(journal_->Append(Json{{"type", "end"}, {"status", status}}));
    V4_RETURN_IF_ERROR(WriteFile(run_dir_ + "/summary.json", DumpJson(summary, 2) + "\n"));
    return summary;
  }

 private:
  // What the steps of one list see: the context, and whether an earlier step failed.
  struct Frame {
    const Pipeline* pipeline = nullptr;
    Json ctx;
    std::vector<std::string> env;  // NAME=value for commands
    bool failed = false;
  };

  bool Cancelled() const { return o_.cancel && o_.cancel->load(); }

  static Json Brief(const Json& r) {
    Json b = Json::object();
    for (const char* k : {"outcome", "exit_code", "seconds", "attempts", "status", "error",
                          "outputs", "artifacts", "trajectory", "reused"}) {
      if (r.contains(k)) b[k] = r[k];
    }
    return b;
  }

  void Emit(const StepEvent& e) {
    if (!o_.on_event) return;
    std::lock_guard<std::mutex> lock(event_mu_);
    o_.on_event(e);
  }

  Status RenderEnv(Frame* f) {
    Json env = Json::object();
    for (const auto& [name, t] : f->pipeline->env) {
      f->ctx["env"] = env;
      auto v = t.t.Render(f->ctx);
      if (!v.ok()) return InvalidArgumentError(StrCat(t.where, ": ", v.status().message()));
      env[name] = *v;
      f->env.push_back(name + "=" + *v);
    }
    f->ctx["env"] = env;
    return Status::Ok();
  }

  void RunSteps(const std::vector<Step>& steps, const std::string& prefix, int depth, Frame* f) {
    for (const Step& s : steps) {
      const std::string path = prefix.empty() ? s.id : prefix + "/" + s.id;
      Json r = RunOne(s, path, depth, f);
      f->ctx["steps"][s.id] = r;
      if (r.value("outcome", "") == "failure" && !s.continue_on_error) f->failed = true;
    }
  }

  Json RunOne(const Step& s, const std::string& path, int depth, Frame* f) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (auto it = done_.find(path); it != done_.end()) {
        Json r = it->second;
        r["reused"] = true;
        results_[path] = r;
        Emit({path, s.name, depth, "reused", r.value("seconds", 0.0), r.value("outcome", "")});
        return r;
      }
    }
    const std::string status = Cancelled() ? "cancelled" : f->failed ? "failure" : "success";
    bool go = status == "success";
    std::string why;
    if (s.condition) {
      auto v = s.condition->Evaluate(f->ctx, status);
      if (!v.ok()) {
        go = false;
        why = StrCat(s.where, ": if: ", v.status().message());
      } else {
        go = expr::Truthy(*v) && !Cancelled();
      }
    }
    Json r;
    if (!why.empty()) {
      r = Json{{"outcome", "failure"}, {"error", why}, {"seconds", 0}};
    } else if (!go) {
      r = Json{{"outcome", Cancelled() ? "cancelled" : "skipped"}, {"seconds", 0}};
    } else {
      Emit({path, s.name, depth, "started", 0, StepKindName(s.kind)});
      const auto start = Clock::now();
      int attempts = 0;
      do {
        ++attempts;
        r = Execute(s, path, depth, f);
      } while (r.value("outcome", "") == "failure" && attempts <= s.retries && !Cancelled() &&
               s.kind != Step::Kind::kForeach && s.kind != Step::Kind::kPipeline);
      r["attempts"] = attempts;
      r["seconds"] = std::chrono::duration<double>(Clock::now() - start).count();
      if (Cancelled() && r.value("outcome", "") != "success") r["outcome"] = "cancelled";
      CopyArtifacts(s, path, f, &r);
    }
    const std::string outcome = r.value("outcome", "failure");
    std::string detail = r.contains("error") ? r.value("error", "") : "";
    if (detail.empty() && r.contains("exit_code")) detail = StrCat("exit ", r["exit_code"].dump());
    if (r.contains("status")) detail = r.value("status", "");
    Emit({path, s.name, depth, outcome, r.value("seconds", 0.0), detail});
    std::lock_guard<std::mutex> lock(mu_);
    results_[path] = r;
    // A cancelled step is not journaled: a resumed run runs it again.
    if (outcome != "cancelled") {
      Status w = journal_->Append(Json{{"type", "step"}, {"path", path}, {"result", r}});
      if (!w.ok()) journal_error_ = w;
    }
    return r;
  }

  std::string StepDir(const std::string& path) {
    const std::string d = run_dir_ + "/steps/" + path;
    std::error_code ec;
    fs::create_directories(d, ec);
    return d;
  }

  Json Failure(const std::string& error) { return Json{{"outcome", "failure"}, {"error", error}}; }

  Json Execute(const Step& s, const std::string& path, int depth, Frame* f) {
    switch (s.kind) {
      case Step::Kind::kRun:
        return RunCommand(s, path, f);
      case Step::Kind::kTool:
        return RunTool(s, f);
      case Step::Kind::kAgent:
        return RunAgentStep(s, path, f);
      case Step::Kind::kForeach:
        return RunForeach(s, path, depth, f);
      case Step::Kind::kPipeline:
        return RunCalled(s, path, depth, f);
    }
    return Failure("unknown step kind");
  }

  Result<tools::ToolContext*> Context(const std::string& policy_spec) {
    std::lock_guard<std::mutex> lock(ctx_mu_);
    auto it = contexts_.find(policy_spec);
    if (it != contexts_.end()) return it->second.get();
    V4_ASSIGN_OR_RETURN(policies::Policy p, policies::LoadPolicySpec(policy_spec));
    V4_ASSIGN_OR_RETURN(auto ctx, tools::MakeContext(workspace_, p));
    ctx->cancel = o_.cancel;
    tools::ToolContext* raw = ctx.get();
    contexts_[policy_spec] = std::move(ctx);
    return raw;
  }

  std::vector<std::string> StepEnv(const Step& s, Frame* f, Json* ctx, std::string* error) {
    std::vector<std::string> env = f->env;
    for (const auto& [name, t] : s.env) {
      auto v = t.t.Render(*ctx);
      if (!v.ok()) {
        *error = StrCat(t.where, ": ", v.status().message());
        return env;
      }
      env.push_back(name + "=" + *v);
      (*ctx)["env"][name] = *v;
    }
    return env;
  }

  Json RunCommand(const Step& s, const std::string& path, Frame* f) {
    Json ctx = f->ctx;
    std::string error;
    std::vector<std::string> env = StepEnv(s, f, &ctx, &error);
    if (!error.empty()) return Failure(error);
    std::string inlined;
    auto script = s.script->t.RenderForShell(ctx, "success", "V4_EXPR_", &env, &inlined);
    if (!script.ok()) return Failure(StrCat(s.script->where, ": ", script.status().message()));
    auto ctxp = Context(f->pipeline->policy);
    if (!ctxp.ok()) return Failure(std::string(ctxp.status().message()));
    tools::ToolContext& tc = **ctxp;
    // The policy judges the command as it would read with the values pasted in.
    policies::Action a;
    a.kind = policies::Action::kExec;
    a.argv = {"bash", "-c", inlined};
    const policies::Decision d = policies::Decide(tc.policy, a);
    if (d.verdict != policies::Verdict::kAllow) {
      return Failure(StrCat("denied by the policy (rule ", d.rule, "): ", d.reason));
    }
    sandbox::Profile prof = tc.profile;
    const auto& b = tc.policy.budgets;
    prof.timeout_seconds = s.timeout > 0 ? s.timeout : b.command_timeout_max;
    const std::string dir = StepDir(path);
    const std::string out_file = dir + "/outputs.env";
    std::error_code ec;
    fs::remove(out_file, ec);
    (void)WriteFile(out_file, "");
    prof.binds.push_back({dir, dir, true});
    prof.env = env;
    prof.env.push_back("V4_OUTPUT=" + out_file);
    prof.env.push_back("V4_STEP_DIR=" + dir);
    prof.env.push_back("V4_WORKSPACE=" + workspace_);
    prof.cwd = workspace_;
    if (s.cwd) {
      auto c = s.cwd->t.Render(ctx);
      if (!c.ok()) return Failure(StrCat(s.cwd->where, ": ", c.status().message()));
      if (!tools::ResolvesBeneath(workspace_, *c) || !fs::is_directory(fs::path(workspace_) / *c)) {
        return Failure(StrCat("cwd \"", *c, "\" is not a directory of the workspace"));
      }
      prof.cwd = fs::weakly_canonical(fs::path(workspace_) / *c).string();
    }
    sandbox::RunOptions ro;
    ro.cancel = o_.cancel;
    auto report = sandbox::Run(prof, {"/bin/bash", "-e", "-o", "pipefail", "-c", *script}, ro);
    if (!report.ok()) return Failure(StrCat("the sandbox failed: ", report.status().message()));
    if (report->setup_failed()) {
      return Failure(StrCat("the sandbox could not start (step ", report->failed_step, ")"));
    }
    const std::string out = report->out.Text(), err = report->err.Text();
    (void)WriteFile(dir + "/stdout.txt", out);
    (void)WriteFile(dir + "/stderr.txt", err);
    Json outputs = Json::object();
    if (auto text = ReadFile(out_file); text.ok()) {
      for (const std::string& line : StrSplit(*text, '\n')) {
        const size_t eq = line.find('=');
        if (eq != std::string::npos && eq > 0) outputs[line.substr(0, eq)] = line.substr(eq + 1);
      }
    }
    Json r{{"exit_code", report->ShellExitCode()},
           {"stdout", Keep(out)},
           {"stderr", Keep(err)},
           {"outputs", outputs}};
    if (report->timed_out) r["error"] = StrCat("timed out after ", prof.timeout_seconds, " s");
    r["outcome"] = report->ShellExitCode() == 0 && !report->timed_out ? "success" : "failure";
    return r;
  }

  Result<Json> Arguments(const Step& s, const tools::Tool& tool, const Json& ctx) {
    Json args = Json::object();
    const Json props = tool.parameters().value("properties", Json::object());
    for (const auto& [name, t] : s.with) {
      V4_ASSIGN_OR_RETURN(Json v, t.t.Evaluate(ctx));
      const std::string type = props.contains(name) ? props[name].value("type", "") : "";
      // A plain YAML scalar reaches us as text; give it the parameter's type.
      if (v.is_string() && type != "string") {
        const std::string text = v.get<std::string>();
        if (type == "integer" || type == "number" || type == "boolean" || type == "array" ||
            type == "object") {
          auto parsed = ParseJson(text, name);
          if (parsed.ok()) v = *parsed;
        }
      }
      args[name] = v;
    }
    return args;
  }

  Json RunTool(const Step& s, Frame* f) {
    tools::Registry registry = tools::Registry::Default();
    if (Status st = tools::AddYamlTools(f->pipeline->tools, &registry); !st.ok()) {
      return Failure(std::string(st.message()));
    }
    tools::Tool* tool = registry.Find(s.tool);
    if (!tool) return Failure(StrCat("there is no tool ", s.tool));
    auto args = Arguments(s, *tool, f->ctx);
    if (!args.ok()) return Failure(StrCat(s.where, ": ", args.status().message()));
    // A context of its own: tools keep state in it, and foreach items may run at once.
    auto policy = policies::LoadPolicySpec(f->pipeline->policy);
    if (!policy.ok()) return Failure(std::string(policy.status().message()));
    auto tc = tools::MakeContext(workspace_, *policy);
    if (!tc.ok()) return Failure(std::string(tc.status().message()));
    (*tc)->cancel = o_.cancel;
    tools::ToolResult tr = tools::Invoke(registry, **tc, s.tool, DumpJson(*args));
    Json r{{"output", Keep(tr.text)}, {"stdout", Keep(tr.text)}, {"outputs", tr.extra}};
    if (tr.extra.contains("exit_code")) r["exit_code"] = tr.extra["exit_code"];
    const bool ok = tr.kind == tools::ToolResult::kOk && r.value("exit_code", 0) == 0;
    r["outcome"] = ok ? "success" : "failure";
    if (tr.kind != tools::ToolResult::kOk) r["error"] = tr.text;
    return r;
  }

  Json RunAgentStep(const Step& s, const std::string& path, Frame* f) {
    if (!o_.make_client) {
      return Failure("agent steps need a model: run with --model, --endpoint or --scripted");
    }
    auto task = s.task->t.Render(f->ctx);
    if (!task.ok()) return Failure(StrCat(s.task->where, ": ", task.status().message()));
    const std::string policy_spec = s.policy.empty() ? f->pipeline->policy : s.policy;
    auto policy = policies::LoadPolicySpec(policy_spec);
    if (!policy.ok()) return Failure(std::string(policy.status().message()));
    std::vector<std::string> yaml_tools = f->pipeline->tools;
    yaml_tools.insert(yaml_tools.end(), s.tools.begin(), s.tools.end());
    auto executor = agent::RegistryExecutor::Create(workspace_, *policy, o_.cancel, yaml_tools);
    if (!executor.ok()) return Failure(std::string(executor.status().message()));
    auto client = o_.make_client();
    if (!client.ok()) return Failure(std::string(client.status().message()));
    const std::string dir = StepDir(path);
    const std::string traj = dir + "/trajectory.jsonl";
    std::error_code ec;
    fs::remove(traj, ec);  // an agent step killed midway starts over
    agent::LoopOptions lo;
    lo.system_prompt = agent::DefaultSystemPrompt(workspace_);
    lo.task = *task;
    lo.thinking = s.thinking;
    int max_steps = s.max_steps, max_turn_tokens = s.max_turn_tokens;
    for (auto [expr, out] : {std::pair{&s.max_steps_expr, &max_steps},
                             std::pair{&s.max_turn_tokens_expr, &max_turn_tokens}}) {
      if (!*expr) continue;
      auto v = (*expr)->t.Evaluate(f->ctx);
      std::optional<int64_t> n;
      if (v.ok() && v->is_number_integer()) n = v->get<int64_t>();
      if (v.ok() && v->is_string()) {
        auto parsed = ParseJson(v->get<std::string>(), "count");
        if (parsed.ok() && parsed->is_number_integer()) n = parsed->get<int64_t>();
      }
      if (!n || *n < 1) {
        return Failure(StrCat((*expr)->where, ": not a positive integer: ",
                              v.ok() ? DumpJson(*v) : std::string(v.status().message())));
      }
      *out = static_cast<int>(std::min<int64_t>(*n, 1 << 30));
    }
    lo.budgets = agent::BudgetsFromPolicy(*policy);
    if (o_.max_context > 0) {
      max_turn_tokens = static_cast<int>(
          std::min<int64_t>(max_turn_tokens, std::max<int64_t>(o_.max_context / 4, 64)));
      lo.budgets.max_context_tokens =
          std::min<int64_t>(lo.budgets.max_context_tokens, o_.max_context - max_turn_tokens);
    }
    lo.max_tokens_per_turn = max_turn_tokens;
    lo.budgets.max_steps = max_steps;
    if (s.timeout > 0) lo.budgets.max_wall_seconds = s.timeout;
    lo.trajectory_path = traj;
    lo.workspace = workspace_;
    lo.interrupt = o_.cancel;
    auto sum = agent::RunAgent(**client, **executor, lo);
    if (!sum.ok()) return Failure(std::string(sum.status().message()));
    const std::string status = agent::ExitStatusName(sum->status);
    Json r{{"status", status},
           {"detail", sum->detail},
           {"submission", Keep(sum->submission)},
           {"patch", Keep(WorkspacePatch(workspace_, dir))},
           {"steps", sum->steps},
           {"tokens_generated", sum->tokens_generated},
           {"trajectory", traj}};
    r["outcome"] = sum->status == agent::ExitStatus::kSubmitted ? "success" : "failure";
    if (r["outcome"] == "failure") r["error"] = StrCat(status, ": ", sum->detail);
    return r;
  }

  Result<Json> Items(const Step& s, const Json& ctx) {
    if (s.items) {
      V4_ASSIGN_OR_RETURN(Json v, s.items->t.Evaluate(ctx));
      if (v.is_null()) return Json::array();
      if (!v.is_array()) {
        return InvalidArgumentError(StrCat(s.items->where, ": foreach.items is a ",
                                           v.is_string() ? "string" : "value",
                                           ", not a list (lines(...) splits text)"));
      }
      return v;
    }
    if (s.lines) {
      V4_ASSIGN_OR_RETURN(std::string file, s.lines->t.Render(ctx));
      if (!tools::ResolvesBeneath(workspace_, file)) {
        return PermissionDeniedError(StrCat("foreach.lines: ", file, " is outside the workspace"));
      }
      V4_ASSIGN_OR_RETURN(std::string text, ReadFile((fs::path(workspace_) / file).string()));
      Json out = Json::array();
      for (std::string line : StrSplit(text, '\n')) {
        line = std::string(StripWhitespace(line));
        if (!line.empty() && line[0] != '#') out.push_back(line);
      }
      return out;
    }
    V4_ASSIGN_OR_RETURN(std::string pattern, s.glob->t.Render(ctx));
    if (pattern.empty() || pattern[0] == '/' || pattern.find("..") != std::string::npos) {
      return InvalidArgumentError(
          StrCat("foreach.glob: \"", pattern, "\" must be relative to the workspace, without .."));
    }
    glob_t g{};
    Json out = Json::array();
    const std::string full = workspace_ + "/" + pattern;
    if (glob(full.c_str(), 0, nullptr, &g) == 0) {
      for (size_t i = 0; i < g.gl_pathc; ++i) {
        const std::string p = g.gl_pathv[i];
        if (tools::ResolvesBeneath(workspace_, p)) out.push_back(p.substr(workspace_.size() + 1));
      }
    }
    globfree(&g);
    return out;
  }

  Json RunForeach(const Step& s, const std::string& path, int depth, Frame* f) {
    auto items = Items(s, f->ctx);
    if (!items.ok()) return Failure(std::string(items.status().message()));
    const size_t n = items->size();
    std::vector<Json> results(n);
    std::atomic<size_t> next{0};
    auto work = [&] {
      for (size_t i = next++; i < n && !Cancelled(); i = next++) {
        Frame iter;
        iter.pipeline = f->pipeline;
        iter.ctx = f->ctx;
        iter.env = f->env;
        iter.ctx[s.as] = (*items)[i];
        iter.ctx["loop"] = Json{{"index", i}, {"count", n}};
        RunSteps(s.steps, StrCat(path, "/", i), depth + 1, &iter);
        // Only this iteration's own steps; any failing one (continue-on-error or not) makes the
        // item a failure, while only a fatal one fails the foreach.
        Json own = Json::object();
        bool any_failure = false;
        for (const Step& inner : s.steps) {
          if (!iter.ctx["steps"].contains(inner.id)) continue;
          own[inner.id] = iter.ctx["steps"][inner.id];
          any_failure = any_failure || own[inner.id].value("outcome", "") == "failure";
        }
        results[i] = Json{{s.as, (*items)[i]},
                          {"outcome", any_failure ? "failure" : "success"},
                          {"fatal", iter.failed},
                          {"steps", own}};
      }
    };
    const int threads = std::min<int>(s.parallel, static_cast<int>(std::max<size_t>(n, 1)));
    std::vector<std::thread> pool;
    for (int t = 1; t < threads; ++t) pool.emplace_back(work);
    work();
    for (auto& t : pool) t.join();
    bool failed = false;
    int failures = 0;
    for (const Json& r : results) {
      failed = failed || r.value("fatal", true);
      failures += r.value("outcome", "failure") != "success";
    }
    return Json{{"outcome", failed ? "failure" : "success"},
                {"results", results},
                {"outputs", Json{{"count", n}, {"failures", failures}}}};
  }

  Json RunCalled(const Step& s, const std::string& path, int depth, Frame* f) {
    std::map<std::string, std::string> given;
    for (const auto& [name, t] : s.with) {
      auto v = t.t.Evaluate(f->ctx);
      if (!v.ok()) return Failure(StrCat(t.where, ": ", v.status().message()));
      given[name] = v->is_string() ? v->get<std::string>() : DumpJson(*v);
    }
    auto inputs = ResolveInputs(*s.called, given);
    if (!inputs.ok()) return Failure(std::string(inputs.status().message()));
    Frame inner;
    inner.pipeline = s.called.get();
    inner.ctx = Json{{"inputs", *inputs},
                     {"workspace", workspace_},
                     {"run_dir", run_dir_},
                     {"steps", Json::object()}};
    if (Status st = RenderEnv(&inner); !st.ok()) return Failure(std::string(st.message()));
    RunSteps(s.called->steps, path, depth + 1, &inner);
    return Json{{"outcome", inner.failed ? "failure" : "success"},
                {"outputs", Outputs(*s.called, inner)}};
  }

  Json Outputs(const Pipeline& p, const Frame& f) {
    Json out = Json::object();
    for (const auto& [name, t] : p.outputs) {
      auto v = t.t.Evaluate(f.ctx, "success");
      out[name] = v.ok() ? *v : Json(StrCat("<error: ", v.status().message(), ">"));
    }
    return out;
  }

  void CopyArtifacts(const Step& s, const std::string& path, Frame* f, Json* r) {
    if (s.artifacts.empty()) return;
    Json copied = Json::array();
    for (const Text& t : s.artifacts) {
      auto pattern = t.t.Render(f->ctx);
      if (!pattern.ok() || pattern->empty() || (*pattern)[0] == '/' ||
          pattern->find("..") != std::string::npos) {
        continue;
      }
      glob_t g{};
      if (glob((workspace_ + "/" + *pattern).c_str(), 0, nullptr, &g) == 0) {
        for (size_t i = 0; i < g.gl_pathc; ++i) {
          const std::string src = g.gl_pathv[i];
          if (!tools::ResolvesBeneath(workspace_, src) || !fs::is_regular_file(src)) continue;
          const std::string rel = src.substr(workspace_.size() + 1);
          const fs::path dst = fs::path(run_dir_) / "artifacts" / path / rel;
          std::error_code ec;
          fs::create_directories(dst.parent_path(), ec);
          fs::copy_file(src, dst, fs::copy_options::overwrite_existing, ec);
          if (!ec) copied.push_back(dst.string());
        }
      }
      globfree(&g);
    }
    (*r)["artifacts"] = copied;
  }

  const Pipeline& top_;
  const RunOptions& o_;
  std::string workspace_, run_dir_;
  std::unique_ptr<agent::TrajectoryWriter> journal_;
  std::mutex mu_, event_mu_, ctx_mu_;
  std::map<std::string, Json> done_;     // from the journal
  std::map<std::string, Json> results_;  // this run's, by path
  std::map<std::string, std::unique_ptr<tools::ToolContext>> contexts_;
  Status journal_error_;
};

}  // namespace

Result<Json> ResolveInputs(const Pipeline& p, const std::map<std::string, std::string>& given) {
  Json out = Json::object();
  for (const auto& [name, value] : given) {
    const Input* in = nullptr;
    for (const auto& i : p.inputs) {
      if (i.name == name) in = &i;
    }
    if (!in) {
      std::vector<std::string> names;
      for (const auto& i : p.inputs) names.push_back(i.name);
      return InvalidArgumentError(StrCat(p.file, ": no input \"", name, "\" (inputs: ",
                                         names.empty() ? "none" : StrJoin(names, ", "), ")"));
    }
    Json v = value;
    if (in->type == "integer" || in->type == "number" || in->type == "boolean") {
      auto parsed = ParseJson(value, name);
      const bool ok = parsed.ok() && (in->type == "boolean"   ? parsed->is_boolean()
                                      : in->type == "integer" ? parsed->is_number_integer()
                                                              : parsed->is_number());
      if (!ok) {
        return InvalidArgumentError(
            StrCat("input ", name, "=", value, " is not of type ", in->type));
      }
      v = *parsed;
    } else if (in->type == "array") {
      auto parsed = ParseJson(value, name);
      if (parsed.ok() && parsed->is_array()) {
        v = *parsed;
      } else {
        v = Json::array();
        for (const auto& part : StrSplit(value, ',')) {
          if (!StripWhitespace(part).empty()) v.push_back(std::string(StripWhitespace(part)));
        }
      }
    }
    out[name] = v;
  }
  for (const auto& in : p.inputs) {
    if (out.contains(in.name)) continue;
    if (in.default_value) {
      out[in.name] = *in.default_value;
    } else if (in.required) {
      return InvalidArgumentError(
          StrCat(p.file, ": input \"", in.name, "\" is required (--input ", in.name, "=...)"));
    } else {
      out[in.name] = nullptr;
    }
  }
  return out;
}

Result<Json> RunPipeline(const Pipeline& pipeline, const RunOptions& options) {
  Runner r(pipeline, options);
  return r.Run();
}

}  // namespace v4agent::pipeline
