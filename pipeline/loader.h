// Reads a pipeline file and checks everything that can be checked before running: keys and
// types, step ids, `${{ }}` references (inputs that exist, steps that exist and come earlier,
// fields a step of that kind has), tools and their parameters, policies, called pipeline files
// (and cycles between them), and the inputs a call passes. Every error is collected, each at
// file:line:col, so `pipeline check` shows them all at once. Never runs anything.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "pipeline/pipeline.h"

namespace v4agent::pipeline {

struct LoadResult {
  std::shared_ptr<Pipeline> pipeline;  // null when there are errors
  std::vector<std::string> errors;     // "file:line:col: message", in file order
};

LoadResult LoadPipeline(const std::string& path);

// The first error as a Status, for callers that stop at one.
Result<std::shared_ptr<Pipeline>> LoadPipelineOrError(const std::string& path);

}  // namespace v4agent::pipeline
