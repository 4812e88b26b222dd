#include "agent/budgets.h"

#include <array>
#include <utility>

namespace v4agent::agent {
namespace {

constexpr std::array<std::pair<ExitStatus, const char*>, 9> kNames = {{
    {ExitStatus::kSubmitted, "submitted"},
    {ExitStatus::kStepLimit, "step_limit"},
    {ExitStatus::kTokenLimit, "token_limit"},
    {ExitStatus::kContextLimit, "context_limit"},
    {ExitStatus::kTimeLimit, "time_limit"},
    {ExitStatus::kFormatError, "format_error"},
    {ExitStatus::kModelError, "model_error"},
    {ExitStatus::kToolFatal, "tool_fatal"},
    {ExitStatus::kInterrupted, "interrupted"},
}};

}  // namespace

const char* ExitStatusName(ExitStatus status) {
  for (const auto& [s, name] : kNames) {
    if (s == status) return name;
  }
  return "unknown";
}

std::optional<ExitStatus> ExitStatusFromName(const std::string& name) {
  for (const auto& [s, n] : kNames) {
    if (name == n) return s;
  }
  return std::nullopt;
}

int ExitStatusCode(ExitStatus status) {
  switch (status) {
    case ExitStatus::kSubmitted:
      return 0;
    case ExitStatus::kStepLimit:
    case ExitStatus::kTokenLimit:
    case ExitStatus::kContextLimit:
    case ExitStatus::kTimeLimit:
      return 3;
    case ExitStatus::kInterrupted:
      return 130;
    default:
      return 4;
  }
}

std::optional<ExitStatus> ExceededBudget(const Budgets& b, const BudgetUsage& u) {
  if (u.steps >= b.max_steps) return ExitStatus::kStepLimit;
  if (u.generated_tokens >= b.max_generated_tokens) return ExitStatus::kTokenLimit;
  if (u.context_tokens >= b.max_context_tokens) return ExitStatus::kContextLimit;
  if (u.wall_seconds >= b.max_wall_seconds) return ExitStatus::kTimeLimit;
  return std::nullopt;
}

bool StuckDetector::Observe(const std::string& call_key, const std::string& result) {
  std::string key = call_key;
  key.push_back('\0');
  key += result;
  if (key == last_) {
    ++repeats_;
  } else {
    last_ = std::move(key);
    repeats_ = 1;
  }
  return repeats_ == threshold_;
}

}  // namespace v4agent::agent
