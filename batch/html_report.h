// `v4agent inspect --html`: one self-contained HTML page (inline CSS and a small script, no
// external resource) for a batch output directory or a single trajectory. A batch page has a
// table of instances (status, resolution when an evaluation summary is found, steps, tokens,
// time, patch size) that links to each instance's replay on the same page. Reads only.
#pragma once

#include <string>

#include "common/status.h"

namespace v4agent::batch {

struct HtmlReportOptions {
  // An evaluation summary (<model>.<run_id>.json); empty: the first such file found in the
  // batch directory, if any.
  std::string eval_summary;
};

// `path`: a batch output directory (summary.json, instances/), a directory holding a
// trajectory.jsonl, or a trajectory file.
Result<std::string> HtmlReport(const std::string& path, const HtmlReportOptions& options = {});

}  // namespace v4agent::batch
