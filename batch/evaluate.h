// Evaluation of predictions the way the SWE-bench harness does it, without Docker or a network:
// per instance a fresh worktree at base_commit from a local mirror, the model patch applied
// (git apply, then --3way, then patch --fuzz), the test files reset and test_patch applied,
// the repository's test command run in our sandbox, the log parsed and graded. Output in the
// harness's layout: logs/run_evaluation/<run_id>/<model>/<instance_id>/{report.json,
// test_output.txt,patch.diff} and the summary <model>.<run_id>.json. Resumable: an instance
// with a report.json is not run again.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "batch/eval_spec.h"
#include "batch/instance.h"
#include "common/json.h"
#include "common/status.h"

namespace v4agent::batch {

struct EvalOptions {
  std::string repos_dir;
  std::string out_dir = ".";
  std::string run_id;
  int workers = 1;
  double timeout_seconds = 1800;  // per instance, the test command
  const std::atomic<bool>* cancel = nullptr;
};

// One instance's outcome.
struct EvalResult {
  std::string instance_id;
  std::string outcome;  // resolved | unresolved | empty_patch | error
  std::string detail;   // for error: why
  bool reused = false;  // read from an earlier run's report.json
};

using EvalProgress = std::function<void(const EvalResult&, int done, int total)>;

// Evaluates `predictions` (keyed by instance id; instances without one are not submitted)
// and returns the summary object (also written to OUT/<model>.<run_id>.json).
Result<Json> Evaluate(const std::vector<Instance>& instances,
                      const std::map<std::string, Prediction>& predictions, const EvalSpecs& specs,
                      const EvalOptions& options, const EvalProgress& progress = nullptr);

}  // namespace v4agent::batch
