// `v4agent batch`: the agent over many task instances. Per instance a fresh workspace at the
// base commit (batch/checkout.h), the agent loop with the instance's problem statement (never
// its patch, test patch or test lists), and the workspace diff appended to preds.jsonl in the
// harness's format. Output directory:
//   preds.jsonl                      {"instance_id","model_name_or_path","model_patch"} lines
//   instances/<id>/trajectory.jsonl  the run
//   instances/<id>/status.json       exit status, tokens, time (written last: "done")
//   summary.json                     counts by status, tokens, cache reuse, time
// Killed at any moment and run again: finished instances are skipped, preds.jsonl gets no
// duplicate and loses nothing (a torn last line is dropped and its instance rerun), unfinished
// instances restart clean.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "agent/agent_loop.h"
#include "agent/model_client.h"
#include "batch/instance.h"
#include "common/json.h"
#include "policies/policy.h"

namespace v4agent::batch {

struct BatchOptions {
  std::string repos_dir;
  std::string out_dir;
  int workers = 1;
  std::string model_name = "v4agent";  // model_name_or_path in preds.jsonl
  // The task text; {problem_statement}, {hints_text}, {repo}, {instance_id}, {base_commit}
  // and {version} are replaced. Empty: the problem statement with short instructions.
  std::string task_template;
  bool include_hints = false;
  policies::Policy policy;
  agent::Budgets budgets;
  int max_tokens_per_turn = 4096;
  bool thinking = true;
  std::string effort = "high";
  std::vector<std::string> yaml_tools;  // files or directories of YAML-defined tools
  // A fresh client for each instance, called on the worker's thread (`worker` < workers).
  std::function<Result<std::unique_ptr<agent::ModelClient>>(int worker)> make_client;
  const std::atomic<bool>* cancel = nullptr;
};

struct InstanceOutcome {
  std::string instance_id;
  std::string status;  // the run's exit status (submitted, ...) or "error"
  std::string detail;
  bool reused = false;  // finished by an earlier run
  int64_t tokens_prefilled = 0, tokens_reused = 0, tokens_from_store = 0, tokens_generated = 0;
  double seconds = 0;
  size_t patch_bytes = 0;
};

using BatchProgress = std::function<void(const InstanceOutcome&, int done, int total)>;

// Runs the instances not finished yet and returns the summary (also written to summary.json).
Result<Json> RunBatch(const std::vector<Instance>& instances, const BatchOptions& options,
                      const BatchProgress& progress = nullptr);

// The task text an instance's agent sees (template applied).
std::string TaskText(const Instance& instance, const BatchOptions& options);

// Joins the output directories of shards into `out`: preds.jsonl (one line per instance),
// the instances' directories and a summary over all of them.
Result<Json> MergeBatches(const std::vector<std::string>& shard_dirs, const std::string& out);

}  // namespace v4agent::batch
