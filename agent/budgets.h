// Run budgets and exit statuses of the agent loop, plus stuck detection (the same call with the
// same result over and over). Owns only the arithmetic of limits; never runs tools or models.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>

namespace v4agent::agent {

enum class ExitStatus {
  kSubmitted,
  kStepLimit,
  kTokenLimit,
  kContextLimit,
  kTimeLimit,
  kFormatError,
  kModelError,
  kToolFatal,
  kInterrupted,
};

// "submitted", "step_limit", ... as printed by `v4agent run` and stored in trajectories.
const char* ExitStatusName(ExitStatus status);
std::optional<ExitStatus> ExitStatusFromName(const std::string& name);
// Process exit code for `v4agent run`: 0 submitted, 3 for limits, 4 for errors, 130 interrupted.
int ExitStatusCode(ExitStatus status);

struct Budgets {
  int max_steps = 50;
  int64_t max_generated_tokens = 1'000'000;
  int64_t max_context_tokens = 1'000'000;
  double max_wall_seconds = 3600;
  double command_timeout_seconds = 120;
  int max_format_errors_in_a_row = 3;
};

struct BudgetUsage {
  int steps = 0;
  int64_t generated_tokens = 0;
  int64_t context_tokens = 0;
  double wall_seconds = 0;
};

// The first exceeded limit, checked in the order steps, tokens, context, time.
std::optional<ExitStatus> ExceededBudget(const Budgets& budgets, const BudgetUsage& usage);

// Flags a loop: `threshold` consecutive identical (call, result) pairs.
class StuckDetector {
 public:
  explicit StuckDetector(int threshold = 3) : threshold_(threshold) {}
  // Returns true when this observation completes a run of `threshold` identical ones.
  bool Observe(const std::string& call_key, const std::string& result);
  int repeats() const { return repeats_; }

 private:
  int threshold_;
  std::string last_;
  int repeats_ = 0;
};

}  // namespace v4agent::agent
