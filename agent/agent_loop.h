// The agent loop: asks the model client for a turn, runs the tool calls it made through a
// ToolExecutor, appends results, repeats until submit or a budget/exit condition. Writes every
// event to the trajectory and resumes from one without re-running finished tool calls.
// Never executes anything itself: tools run only through the executor (sandbox + policy).
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "agent/budgets.h"
#include "agent/model_client.h"
#include "common/json.h"
#include "common/status.h"

namespace v4agent::agent {

struct ToolOutcome {
  std::string output;              // what the model sees
  bool ok = true;                  // false: the tool reported an error (the model sees it)
  bool fatal = false;              // the environment is broken; the run ends with tool_fatal
  bool submitted = false;          // the call was the final submission
  std::string decision = "allow";  // policy decision recorded in the trajectory
  Json details = Json::object();   // recorded too: network decisions, approvals, sandbox events
};

// The seam to tools/ + policies/: adapters wrap the tool registry behind this.
class ToolExecutor {
 public:
  virtual ~ToolExecutor() = default;
  virtual std::vector<ToolSpec> Specs() const = 0;
  virtual ToolOutcome Execute(const ToolCall& call, double timeout_seconds) = 0;
};

struct LoopOptions {
  std::string system_prompt;
  std::string task;
  bool thinking = true;
  std::string effort = "high";
  int max_tokens_per_turn = 4096;
  Budgets budgets;
  std::string trajectory_path;  // required
  bool resume = false;          // continue trajectory_path instead of starting fresh
  std::string workspace;        // for autosubmit of the git diff on abnormal exits
  const std::atomic<bool>* interrupt = nullptr;
};

struct LoopProgress {
  int step = 0;
  std::string phase;  // "model", "tool", "done"
  std::string tool;   // tool running, when phase == "tool"
  int64_t tokens_generated = 0;
  int64_t context_tokens = 0;
  double tokens_per_second = 0;
};
using ProgressCallback = std::function<void(const LoopProgress&)>;

struct RunSummary {
  ExitStatus status = ExitStatus::kModelError;
  std::string detail;  // why it ended (error text, limit hit)
  int steps = 0;
  int64_t tokens_prefilled = 0;
  int64_t tokens_reused = 0;
  int64_t tokens_from_store = 0;  // of tokens_reused: loaded from the prefix store (--cache-dir)
  int64_t tokens_generated = 0;
  int rewinds = 0;
  int format_errors = 0;
  int stuck_warnings = 0;
  int tool_calls_executed = 0;  // in this process (resume does not re-run finished ones)
  int tool_calls_replayed = 0;  // taken from the trajectory on resume
  double seconds_model = 0;
  double seconds_prefill = 0;   // of seconds_model: computing prompt tokens (0 if unknown)
  double seconds_generate = 0;  // of seconds_model: generating tokens (0 if unknown)
  double seconds_tools = 0;
  double seconds_total = 0;
  std::string submission;  // submit output, or the autosubmitted diff
  bool autosubmitted = false;
  std::string trajectory;
};

Json RunSummaryToJson(const RunSummary& summary);

// A client with state across turns implements this to pick up a resumed run: the completions
// of the turns already in the trajectory, in order.
class ResumableClient {
 public:
  virtual ~ResumableClient() = default;
  virtual Status ResumeFrom(const std::vector<Completion>& turns) = 0;
};

// Errors only for setup failures (trajectory unwritable or unreadable); every run that starts
// returns a summary with its exit status.
Result<RunSummary> RunAgent(ModelClient& client, ToolExecutor& tools, const LoopOptions& options,
                            const ProgressCallback& progress = nullptr);

}  // namespace v4agent::agent
