#include "agent/agent_loop.h"

#include <cstdio>
#include <map>
#include <set>
#include <thread>

#include "agent/trajectory.h"
#include "common/file_util.h"
#include "common/logging.h"
#include "common/stopwatch.h"
#include "common/strings.h"

namespace v4agent::agent {
namespace {

constexpr char kNoToolCallNudge[] =
    "Your reply contained no tool call. Continue the task by calling one of the tools, or call "
    "submit when you are done.";
constexpr char kStuckWarning[] =
    "You have made the same tool call with the same result several times in a row. It will not "
    "give a different result; try something else.";

// The current diff of a git workspace, so an abnormal exit still hands back the work done.
std::optional<std::string> GitDiff(const std::string& workspace) {
  if (workspace.empty() || !PathExists(workspace + "/.git")) return std::nullopt;
  std::string cmd = StrCat("git -C ", ShellQuote(workspace), " diff 2>/dev/null");
  FILE* pipe = ::popen(cmd.c_str(), "r");
  if (pipe == nullptr) return std::nullopt;
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
  if (::pclose(pipe) != 0) return std::nullopt;
  return out;
}

// Returns the model-facing problem with a call, or "" when it is well formed.
std::string CheckCall(const ToolCall& call, const std::set<std::string>& tool_names) {
  if (tool_names.count(call.name) == 0) {
    return StrCat("Unknown tool \"", call.name, "\". Available tools: ",
                  StrJoin(std::vector<std::string>(tool_names.begin(), tool_names.end()), ", "),
                  ".");
  }
  auto args = ParseJson(call.arguments, "arguments");
  if (!args.ok()) {
    return StrCat("The arguments of your call to ", call.name,
                  " are not valid JSON: ", args.status().message());
  }
  if (!args->is_object()) {
    return StrCat("The arguments of your call to ", call.name, " must be a JSON object.");
  }
  return "";
}

ChatMessage AssistantMessage(const Completion& c) {
  ChatMessage m;
  m.role = "assistant";
  m.content = c.content;
  m.reasoning_content = c.reasoning_content;
  m.tool_calls = c.tool_calls;
  m.raw = c.raw;
  return m;
}

ChatMessage ToolMessage(const ToolCall& call, const std::string& output) {
  ChatMessage m;
  m.role = "tool";
  m.content = output;
  m.tool_call_id = call.id;
  return m;
}

ChatMessage UserMessage(std::string text) {
  ChatMessage m;
  m.role = "user";
  m.content = std::move(text);
  return m;
}

Json BudgetsToJson(const Budgets& b) {
  return Json{{"max_steps", b.max_steps},
              {"max_generated_tokens", b.max_generated_tokens},
              {"max_context_tokens", b.max_context_tokens},
              {"max_wall_seconds", b.max_wall_seconds},
              {"command_timeout_seconds", b.command_timeout_seconds}};
}

// State rebuilt from a trajectory on --resume.
struct ResumeState {
  std::vector<ChatMessage> messages;
  int steps = 0;
  std::vector<ToolCall> pending_calls;  // of the last turn, not yet executed
  int pending_step = 0;
  bool submitted = false;
  std::string submission;
  RunSummary totals;
  int format_errors_in_a_row = 0;
  std::vector<Completion> turns;
};

Result<ResumeState> Rebuild(const std::vector<Json>& records, const std::string& path) {
  ResumeState st;
  if (records.empty() || records.front().value("type", "") != "start") {
    return DataLossError(StrCat(path, ": no start record; cannot resume"));
  }
  const Json& start = records.front();
  if (std::string sys = start.value("system_prompt", ""); !sys.empty()) {
    st.messages.push_back(ChatMessage{"system", sys, "", {}, ""});
  }
  st.messages.push_back(UserMessage(start.value("task", "")));
  std::map<std::string, bool> done_ids;
  for (size_t i = 1; i < records.size(); ++i) {
    const Json& r = records[i];
    std::string type = r.value("type", "");
    std::string where = StrCat(path, " record ", i + 1);
    if (type == "end") {
      return FailedPreconditionError(
          StrCat(path, ": the run already ended with status ", r.value("status", "?")));
    }
    if (type == "turn") {
      if (!r.contains("completion"))
        return DataLossError(StrCat(where, ": turn without completion"));
      V4_ASSIGN_OR_RETURN(Completion c, CompletionFromJson(r["completion"], where));
      st.steps = r.value("step", st.steps + 1);
      st.totals.tokens_prefilled += c.tokens_prefilled;
      st.totals.tokens_reused += c.tokens_reused;
      st.totals.tokens_from_store += c.tokens_from_store;
      st.totals.tokens_generated += c.tokens_generated;
      st.totals.seconds_model += c.seconds_prefill + c.seconds_generate;
      st.totals.seconds_prefill += c.seconds_prefill;
      st.totals.seconds_generate += c.seconds_generate;
      st.messages.push_back(AssistantMessage(c));
      st.turns.push_back(c);
      bool bad = r.value("format_error", "") != "";
      st.pending_calls = bad ? std::vector<ToolCall>{} : c.tool_calls;
      st.pending_step = st.steps;
      st.format_errors_in_a_row = bad ? st.format_errors_in_a_row + 1 : 0;
      if (bad) ++st.totals.format_errors;
    } else if (type == "tool_result") {
      if (st.pending_calls.empty()) {
        return DataLossError(StrCat(where, ": tool result without a pending call"));
      }
      ToolCall call = st.pending_calls.front();
      st.pending_calls.erase(st.pending_calls.begin());
      st.messages.push_back(ToolMessage(call, r.value("output", "")));
      ++st.totals.tool_calls_replayed;
      st.totals.seconds_tools += r.value("seconds", 0.0);
      if (r.value("submitted", false)) {
        st.submitted = true;
        st.submission = r.value("output", "");
      }
    } else if (type == "message") {
      V4_ASSIGN_OR_RETURN(ChatMessage m, ChatMessageFromJson(r["message"], where));
      st.messages.push_back(std::move(m));
    } else if (type == "rewind") {
      ++st.totals.rewinds;
    }
  }
  return st;
}

}  // namespace

Json RunSummaryToJson(const RunSummary& s) {
  return Json{{"status", ExitStatusName(s.status)},
              {"detail", s.detail},
              {"steps", s.steps},
              {"tokens_prefilled", s.tokens_prefilled},
              {"tokens_reused", s.tokens_reused},
              {"tokens_from_store", s.tokens_from_store},
              {"tokens_generated", s.tokens_generated},
              {"rewinds", s.rewinds},
              {"format_errors", s.format_errors},
              {"stuck_warnings", s.stuck_warnings},
              {"tool_calls_executed", s.tool_calls_executed},
              {"tool_calls_replayed", s.tool_calls_replayed},
              {"seconds_model", s.seconds_model},
              {"seconds_prefill", s.seconds_prefill},
              {"seconds_generate", s.seconds_generate},
              {"seconds_tools", s.seconds_tools},
              {"seconds_total", s.seconds_total},
              {"submission", s.submission},
              {"autosubmitted", s.autosubmitted},
              {"trajectory", s.trajectory}};
}

Result<RunSummary> RunAgent(ModelClient& client, ToolExecutor& tools, const LoopOptions& options,
                            const ProgressCallback& progress) {
  Stopwatch wall;
  if (options.trajectory_path.empty()) {
    return InvalidArgumentError("agent loop: a trajectory path is required");
  }
  std::vector<ToolSpec> specs = tools.Specs();
  std::set<std::string> tool_names;
  std::set<std::string> read_only;
  for (const auto& s : specs) {
    tool_names.insert(s.name);
    if (s.read_only) read_only.insert(s.name);
  }

  ResumeState st;
  if (options.resume) {
    V4_ASSIGN_OR_RETURN(auto records, ReadTrajectory(options.trajectory_path));
    V4_ASSIGN_OR_RETURN(st, Rebuild(records, options.trajectory_path));
    if (auto* resumable = dynamic_cast<ResumableClient*>(&client)) {
      V4_RETURN_IF_ERROR(resumable->ResumeFrom(st.turns));
    }
  } else {
    if (PathExists(options.trajectory_path)) {
      return AlreadyExistsError(
          StrCat("trajectory ", options.trajectory_path, " exists; pass --resume to continue it"));
    }
    if (!options.system_prompt.empty()) {
      st.messages.push_back(ChatMessage{"system", options.system_prompt, "", {}, ""});
    }
    st.messages.push_back(UserMessage(options.task));
  }
  V4_ASSIGN_OR_RETURN(TrajectoryWriter traj, TrajectoryWriter::Open(options.trajectory_path));
  if (options.resume) {
    V4_RETURN_IF_ERROR(traj.Append(Json{
        {"type", "resume"}, {"at_step", st.steps}, {"pending_calls", st.pending_calls.size()}}));
  } else {
    V4_RETURN_IF_ERROR(traj.Append(Json{{"type", "start"},
                                        {"task", options.task},
                                        {"system_prompt", options.system_prompt},
                                        {"client", client.Name()},
                                        {"thinking", options.thinking},
                                        {"effort", options.effort},
                                        {"workspace", options.workspace},
                                        {"budgets", BudgetsToJson(options.budgets)}}));
  }

  RunSummary sum = st.totals;
  sum.trajectory = options.trajectory_path;
  sum.steps = st.steps;
  StuckDetector stuck;
  int format_errors_in_a_row = st.format_errors_in_a_row;
  std::optional<ExitStatus> status;
  if (st.submitted) {
    status = ExitStatus::kSubmitted;
    sum.submission = st.submission;
  }
  int64_t context_tokens = 0;
  auto report = [&](const std::string& phase, const std::string& tool, double tps) {
    if (progress) {
      progress(LoopProgress{sum.steps, phase, tool, sum.tokens_generated, context_tokens, tps});
    }
  };
  auto interrupted = [&] {
    return options.interrupt != nullptr && options.interrupt->load(std::memory_order_relaxed);
  };

  // Runs the calls of one turn in order; sets status on submit or fatal.
  // Records one finished call; sets status on submit or fatal.
  bool stuck_now = false;
  auto record = [&](int step, const ToolCall& call, const ToolOutcome& out, double secs) -> Status {
    sum.seconds_tools += secs;
    ++sum.tool_calls_executed;
    Json rec{{"type", "tool_result"},
             {"step", step},
             {"call_id", call.id},
             {"name", call.name},
             {"arguments", call.arguments},
             {"decision", out.decision},
             {"ok", out.ok},
             {"fatal", out.fatal},
             {"submitted", out.submitted},
             {"output", out.output},
             {"seconds", secs}};
    if (!out.details.empty()) rec["details"] = out.details;
    V4_RETURN_IF_ERROR(traj.Append(rec));
    st.messages.push_back(ToolMessage(call, out.output));
    if (out.submitted) {
      status = ExitStatus::kSubmitted;
      sum.submission = out.output;
    } else if (out.fatal) {
      status = ExitStatus::kToolFatal;
      sum.detail = StrCat("tool ", call.name, " failed fatally: ", out.output);
    } else if (stuck.Observe(StrCat(call.name, "\n", call.arguments), out.output)) {
      stuck_now = true;
    }
    return Status::Ok();
  };

  // Runs the calls of one turn in order. Consecutive read-only calls run in parallel; their
  // results are still recorded in call order.
  auto run_calls = [&](int step, const std::vector<ToolCall>& calls) -> Status {
    stuck_now = false;
    size_t i = 0;
    while (i < calls.size() && !status.has_value()) {
      if (interrupted()) {
        status = ExitStatus::kInterrupted;
        break;
      }
      size_t j = i;
      while (j < calls.size() && read_only.count(calls[j].name) > 0) ++j;
      if (j - i >= 2) {
        report("tool", StrCat(j - i, " read-only calls"), 0);
        std::vector<ToolOutcome> outs(j - i);
        std::vector<double> secs(j - i);
        std::vector<std::thread> workers;
        for (size_t k = i; k < j; ++k) {
          workers.emplace_back([&, k] {
            Stopwatch sw;
            outs[k - i] = tools.Execute(calls[k], options.budgets.command_timeout_seconds);
            secs[k - i] = sw.ElapsedSeconds();
          });
        }
        for (auto& w : workers) w.join();
        for (size_t k = i; k < j && !status.has_value(); ++k) {
          V4_RETURN_IF_ERROR(record(step, calls[k], outs[k - i], secs[k - i]));
        }
        i = j;
        continue;
      }
      report("tool", calls[i].name, 0);
      Stopwatch sw;
      ToolOutcome out = tools.Execute(calls[i], options.budgets.command_timeout_seconds);
      V4_RETURN_IF_ERROR(record(step, calls[i], out, sw.ElapsedSeconds()));
      ++i;
    }
    // After all results of the turn: a user message between tool results would break the
    // tool-call/result pairing that chat templates and APIs require.
    if (stuck_now && !status.has_value()) {
      ++sum.stuck_warnings;
      ChatMessage warn = UserMessage(kStuckWarning);
      V4_RETURN_IF_ERROR(traj.Append(Json{{"type", "message"},
                                          {"step", step},
                                          {"reason", "stuck"},
                                          {"message", ChatMessageToJson(warn)}}));
      st.messages.push_back(std::move(warn));
    }
    return Status::Ok();
  };

  if (!status.has_value() && !st.pending_calls.empty()) {
    V4_RETURN_IF_ERROR(run_calls(st.pending_step, st.pending_calls));
  }

  while (!status.has_value()) {
    if (interrupted()) {
      status = ExitStatus::kInterrupted;
      break;
    }
    BudgetUsage usage{sum.steps, sum.tokens_generated, context_tokens, wall.ElapsedSeconds()};
    if (auto over = ExceededBudget(options.budgets, usage)) {
      status = over;
      sum.detail = StrCat("budget reached after ", sum.steps, " steps");
      break;
    }
    int step = sum.steps + 1;
    report("model", "", 0);
    CompletionRequest req{st.messages, specs, options.thinking, options.effort,
                          options.max_tokens_per_turn};
    Stopwatch sw;
    auto completion = client.Complete(req, nullptr);
    double secs = sw.ElapsedSeconds();
    if (!completion.ok()) {
      status = ExitStatus::kModelError;
      sum.detail = completion.status().ToString();
      V4_RETURN_IF_ERROR(
          traj.Append(Json{{"type", "model_error"}, {"step", step}, {"error", sum.detail}}));
      break;
    }
    Completion& c = *completion;
    sum.steps = step;
    sum.tokens_prefilled += c.tokens_prefilled;
    sum.tokens_reused += c.tokens_reused;
    sum.tokens_from_store += c.tokens_from_store;
    sum.tokens_generated += c.tokens_generated;
    sum.seconds_model += secs;
    sum.seconds_prefill += c.seconds_prefill;
    sum.seconds_generate += c.seconds_generate;
    if (c.context_tokens > 0) context_tokens = c.context_tokens;
    std::string problem = c.format_error;
    for (const ToolCall& call : c.tool_calls) {
      if (!problem.empty()) break;
      problem = CheckCall(call, tool_names);
    }
    Json turn{{"type", "turn"},
              {"step", step},
              {"seconds", secs},
              {"completion", CompletionToJson(c)},
              {"format_error", problem}};
    V4_RETURN_IF_ERROR(traj.Append(turn));
    report("model", "", secs > 0 ? c.tokens_generated / secs : 0);
    st.messages.push_back(AssistantMessage(c));
    if (!problem.empty()) {
      ++sum.format_errors;
      if (++format_errors_in_a_row >= options.budgets.max_format_errors_in_a_row) {
        status = ExitStatus::kFormatError;
        sum.detail = StrCat(format_errors_in_a_row, " malformed tool calls in a row: ", problem);
        break;
      }
      ChatMessage fix = UserMessage(problem);
      V4_RETURN_IF_ERROR(traj.Append(Json{{"type", "message"},
                                          {"step", step},
                                          {"reason", "format_error"},
                                          {"message", ChatMessageToJson(fix)}}));
      st.messages.push_back(std::move(fix));
      continue;
    }
    format_errors_in_a_row = 0;
    if (c.tool_calls.empty()) {
      ChatMessage nudge = UserMessage(kNoToolCallNudge);
      V4_RETURN_IF_ERROR(traj.Append(Json{{"type", "message"},
                                          {"step", step},
                                          {"reason", "no_tool_call"},
                                          {"message", ChatMessageToJson(nudge)}}));
      st.messages.push_back(std::move(nudge));
      continue;
    }
    V4_RETURN_IF_ERROR(run_calls(step, c.tool_calls));
  }

  sum.status = *status;
  if (sum.status != ExitStatus::kSubmitted) {
    if (auto diff = GitDiff(options.workspace); diff.has_value()) {
      sum.submission = *diff;
      sum.autosubmitted = true;
      V4_RETURN_IF_ERROR(traj.Append(Json{{"type", "autosubmit"}, {"diff", *diff}}));
    }
  }
  sum.seconds_total = wall.ElapsedSeconds();
  report("done", "", 0);
  Json end = RunSummaryToJson(sum);
  end["type"] = "end";
  V4_RETURN_IF_ERROR(traj.Append(end));
  return sum;
}

}  // namespace v4agent::agent
