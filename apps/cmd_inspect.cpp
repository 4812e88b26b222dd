// `v4agent inspect`: a readable replay of a run in the terminal, or one HTML page for a run or
// a whole batch (batch/html_report.h).
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "agent/trajectory.h"
#include "agent/trajectory_view.h"
#include "apps/command.h"
#include "apps/flags.h"
#include "batch/html_report.h"
#include "common/file_util.h"
#include "common/strings.h"

namespace v4agent::apps {
namespace {

constexpr char kUsage[] =
    "usage: v4agent inspect TRAJECTORY|RUN_DIR [--full] [--color|--no-color]\n"
    "       v4agent inspect --html OUT.html BATCH_DIR|RUN_DIR|TRAJECTORY [--eval SUMMARY.json]\n"
    "The first prints the run step by step: thinking, tool calls and their results, nudges,\n"
    "and the tokens each turn prefilled, reused and generated (--full: tool outputs unclipped).\n"
    "The second writes one self-contained page; for a batch directory it has a table of the\n"
    "instances (status, resolution when an evaluation summary is found in the directory or\n"
    "given with --eval, tokens, time) linking to each replay.";

int Run(const std::vector<std::string>& args) {
  auto flags = Flags::Parse(args, FlagSpec{{"html", "eval"}, {"full", "color", "no-color"}});
  if (!flags.ok() || flags->positional().size() != 1) {
    std::fprintf(stderr, "%s%s\n", flags.ok() ? "" : (flags.status().message() + "\n").c_str(),
                 kUsage);
    return 2;
  }
  std::string path = flags->positional()[0];
  if (auto out = flags->Get("html")) {
    auto page = batch::HtmlReport(path, batch::HtmlReportOptions{flags->GetOr("eval", "")});
    if (!page.ok()) {
      std::fprintf(stderr, "v4agent inspect: %s\n", page.status().ToString().c_str());
      return 1;
    }
    if (Status s = WriteFile(*out, *page); !s.ok()) {
      std::fprintf(stderr, "v4agent inspect: %s\n", s.ToString().c_str());
      return 1;
    }
    std::fprintf(stderr, "wrote %s (%zu bytes)\n", out->c_str(), page->size());
    return 0;
  }
  if (std::filesystem::is_directory(path)) path += "/trajectory.jsonl";
  auto records = agent::ReadTrajectory(path);
  if (!records.ok()) {
    std::fprintf(stderr, "v4agent inspect: %s\n", records.status().ToString().c_str());
    return 1;
  }
  agent::ReplayStyle style;
  style.color = flags->Has("color") || (!flags->Has("no-color") && isatty(STDOUT_FILENO));
  if (flags->Has("full")) style.max_output_lines = 0;
  const std::string text = agent::ReplayText(*records, style);
  std::fwrite(text.data(), 1, text.size(), stdout);
  return 0;
}

CommandRegistrar registrar(Command{"inspect", "replay a run, or write an HTML page for a batch",
                                   kUsage, Run});

}  // namespace
}  // namespace v4agent::apps
