// Reading a trajectory back as a story: the run's steps in order (thinking, the assistant's
// text, each tool call with its arguments, decision and output, nudges, resumes) and the
// totals (tokens prefilled, reused from the cache or the prefix store, generated). One model
// of a replay, two renderings: terminal text for `v4agent inspect`, HTML for the batch page.
// Never changes a trajectory; tolerates records it does not know (shown by type).
#pragma once

#include <string>
#include <vector>

#include "common/json.h"

namespace v4agent::agent {

struct ReplayStyle {
  bool color = false;         // ANSI colours for a terminal
  int max_output_lines = 40;  // a tool output longer than this shows its head and tail
};

std::string ReplayText(const std::vector<Json>& records, const ReplayStyle& style = {});

// An HTML fragment (no <html> wrapper): everything escaped, no script.
std::string ReplayHtml(const std::vector<Json>& records);

// "&<>\"'" escaped for HTML text and attribute values.
std::string HtmlEscape(const std::string& text);

}  // namespace v4agent::agent
