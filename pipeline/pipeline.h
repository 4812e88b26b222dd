// A pipeline as data: inputs, environment, steps (run, tool, agent, foreach, pipeline) with
// their conditions, limits and templates, and the pipeline's outputs. Built and checked by
// loader.h, run by runner.h; this header holds no behaviour. Format: docs/pipelines.md.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/expr.h"
#include "common/json.h"

namespace v4agent::pipeline {

// A template with where it was written, for run-time errors.
struct Text {
  expr::Template t;
  std::string where;  // file:line:col
};

struct Input {
  std::string name, type = "string", description;
  std::optional<Json> default_value;
  bool required = false;
};

struct Pipeline;

struct Step {
  enum class Kind { kRun, kTool, kAgent, kForeach, kPipeline };
  Kind kind = Kind::kRun;
  std::string id, name, where;
  std::shared_ptr<expr::Expression> condition;  // `if:`; none: success()
  bool continue_on_error = false;
  int retries = 0;
  double timeout = 0;  // seconds; 0: the policy's maximum command time (run), the tool's own
                       // (tool), the policy's wall-clock budget (agent)
  std::vector<std::pair<std::string, Text>> env;
  std::vector<Text> artifacts;  // workspace paths or globs copied into the run directory

  // kRun
  std::optional<Text> script;
  std::optional<Text> cwd;
  // kTool
  std::string tool;
  std::vector<std::pair<std::string, Text>> with;  // also kPipeline's inputs
  // kAgent
  std::optional<Text> task;
  std::string policy;              // "builtin:NAME" or a file; empty: the pipeline's
  std::vector<std::string> tools;  // YAML tools beyond the pipeline's
  int max_steps = 30;
  int max_turn_tokens = 4096;
  // Either may be written as an expression (`${{ inputs.agent_steps }}`), read at run time.
  std::optional<Text> max_steps_expr, max_turn_tokens_expr;
  bool thinking = true;
  // kForeach
  std::optional<Text> items;  // a list
  std::optional<Text> lines;  // a workspace file whose non-empty lines are the items
  std::optional<Text> glob;   // workspace paths matching it
  std::string as = "item";
  int parallel = 1;
  std::vector<Step> steps;
  // kPipeline
  std::string file;
  std::shared_ptr<Pipeline> called;
};

struct Pipeline {
  std::string file, name, description;
  std::vector<Input> inputs;
  std::vector<std::pair<std::string, Text>> env;
  std::string policy = "builtin:workspace-write";
  std::vector<std::string> tools;  // YAML tool files or directories (absolute)
  std::vector<Step> steps;
  std::vector<std::pair<std::string, Text>> outputs;
  std::string digest;  // of this file and the files it calls, for --resume
};

const char* StepKindName(Step::Kind kind);

}  // namespace v4agent::pipeline
