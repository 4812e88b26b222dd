// `v4agent batch --config FILE`: a YAML file with the settings of a batch (task template,
// hints, policy, budgets, model settings, workers) so a team keeps one file per experiment.
// Loading checks every key and type and names file:line:col; flags given on the command line
// override the file. Knows nothing of how a batch runs (batch_run.h applies the result).
//
//   task_template: |            # {problem_statement} {hints_text} {repo} {instance_id}
//     Fix this: {problem_statement}   # {base_commit} {version}
//   include_hints: false
//   workers: 2
//   policy: workspace-write     # a builtin name or a policy file (relative to this file)
//   budgets: {max_steps: 50, max_wall_seconds: 3600, max_generated_tokens: 200000,
//             max_context_tokens: 120000, command_timeout_seconds: 120}
//   model: {max_turn_tokens: 4096, thinking: true, effort: high}
//   tools: [tools/yaml]         # YAML-defined tools: files or directories (relative to this file)
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace v4agent::batch {

struct BatchConfig {
  std::string path;
  std::optional<std::string> task_template;
  std::optional<bool> include_hints;
  std::optional<int> workers;
  std::optional<std::string> policy;  // "builtin:NAME" or an absolute path
  std::optional<int> max_steps;
  std::optional<double> max_wall_seconds;
  std::optional<int64_t> max_generated_tokens;
  std::optional<int64_t> max_context_tokens;
  std::optional<double> command_timeout_seconds;
  std::optional<int> max_turn_tokens;
  std::optional<bool> thinking;
  std::optional<std::string> effort;
  std::vector<std::string> tools;  // paths of YAML tool files or directories
};

Result<BatchConfig> LoadBatchConfig(const std::string& path);
Result<BatchConfig> ParseBatchConfig(const std::string& text, const std::string& path);

}  // namespace v4agent::batch
