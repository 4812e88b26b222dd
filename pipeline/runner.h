// Runs a checked pipeline (loader.h) against a workspace: steps in order, `if:` conditions,
// retries, timeouts, continue-on-error, foreach with parallel iterations, called pipelines,
// artifacts, and the pipeline's outputs. Every finished step is journaled (JSONL, fsync'd) in
// the run directory, so a killed run continues with `resume` without re-running what
// finished. Commands and tools run in the sandbox under the policy; agent steps drive the
// agent loop with a client the caller makes (one model shared by all agent steps).
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "agent/model_client.h"
#include "common/json.h"
#include "common/status.h"
#include "pipeline/pipeline.h"

namespace v4agent::pipeline {

struct StepEvent {
  std::string path;  // "test", "each/2/lint", "call/inner"
  std::string name;
  int depth = 0;
  std::string state;  // started | success | failure | skipped | reused | cancelled
  double seconds = 0;
  std::string detail;  // exit code, agent status, error
};

struct RunOptions {
  std::string workspace;  // a directory
  std::string run_dir;    // journal, step logs, trajectories, artifacts, summary.json
  std::map<std::string, std::string> inputs;  // as given on the command line (typed here)
  // An unfinished run in run_dir: continue it (resume), discard it (fresh), or refuse. A
  // finished one is replaced.
  bool resume = false;
  bool fresh = false;
  // A fresh client per agent step; unset: agent steps fail with a clear message.
  std::function<Result<std::unique_ptr<agent::ModelClient>>()> make_client;
  // The in-process model's context in tokens (0: unknown, e.g. an endpoint): agent steps keep
  // their turn and context budgets inside it.
  int64_t max_context = 0;
  std::function<void(const StepEvent&)> on_event;  // called from worker threads, serialized
  const std::atomic<bool>* cancel = nullptr;
};

// The summary: {"pipeline","status","run_dir","seconds","inputs","steps":{path: result},
// "outputs"}; also written to RUN_DIR/summary.json. Errors only for what stops the run before
// it starts (bad inputs, a journal of another pipeline, an unwritable run directory).
Result<Json> RunPipeline(const Pipeline& pipeline, const RunOptions& options);

// Typed inputs: declared types applied, defaults filled, unknown and missing ones named.
Result<Json> ResolveInputs(const Pipeline& pipeline,
                           const std::map<std::string, std::string>& given);

}  // namespace v4agent::pipeline
