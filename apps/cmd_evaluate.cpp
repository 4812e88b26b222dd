// `v4agent evaluate`: grades predictions on SWE-bench-style instances in our sandbox, with
// the harness's output layout and rules (batch/evaluate.h, docs/batch.md).
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>

#include "apps/command.h"
#include "apps/flags.h"
#include "apps/progress_line.h"
#include "batch/evaluate.h"
#include "common/strings.h"

namespace v4agent::apps {
namespace {

constexpr char kUsage[] =
    "usage: v4agent evaluate --instances F --predictions P|gold --repos DIR --specs FILE\n"
    "                        --run-id ID [--out DIR] [--workers N] [--timeout S]\n"
    "                        [--filter RE] [--slice A:B] [--shard K/N]\n"
    "Evaluates predictions (JSONL, a JSON list or an {id: prediction} dict; `gold` for the\n"
    "instances' own patches) as the SWE-bench harness does, without Docker or a network: per\n"
    "instance a fresh worktree at base_commit from the git mirror in DIR (owner__name.git),\n"
    "the patch applied (git apply, --3way, patch --fuzz), test_patch applied, the test command\n"
    "of the specs file run in the sandbox, the log parsed and graded. Writes\n"
    "OUT/logs/run_evaluation/ID/MODEL/INSTANCE/{report.json,test_output.txt} and\n"
    "OUT/MODEL.ID.json. Run again with the same run id to finish an interrupted evaluation.";

std::atomic<bool> g_cancel{false};
void OnSignal(int) { g_cancel.store(true); }

int Run(const std::vector<std::string>& args) {
  auto flags =
      Flags::Parse(args, FlagSpec{{"instances", "predictions", "repos", "specs", "run-id", "out",
                                   "workers", "timeout", "filter", "slice", "shard"},
                                  {}});
  if (!flags.ok()) {
    std::fprintf(stderr, "v4agent evaluate: %s\n%s\n", flags.status().message().c_str(), kUsage);
    return 2;
  }
  for (const char* f : {"instances", "predictions", "repos", "specs", "run-id"}) {
    if (!flags->Has(f)) {
      std::fprintf(stderr, "v4agent evaluate: --%s is required\n%s\n", f, kUsage);
      return 2;
    }
  }
  auto workers = flags->GetInt("workers", 1);
  auto timeout = flags->GetDouble("timeout", 1800);
  if (!workers.ok() || !timeout.ok() || *workers < 1) {
    std::fprintf(stderr, "v4agent evaluate: --workers must be >= 1 and --timeout a number\n");
    return 2;
  }
  auto fail = [](const Status& s) {
    std::fprintf(stderr, "v4agent evaluate: %s\n", s.ToString().c_str());
    return 1;
  };
  auto instances = batch::LoadInstances(*flags->Get("instances"));
  if (!instances.ok()) return fail(instances.status());
  auto selected =
      batch::Select(std::move(instances).value(),
                    batch::Selection{flags->GetOr("filter", ""), flags->GetOr("slice", ""),
                                     flags->GetOr("shard", "")});
  if (!selected.ok()) return fail(selected.status());
  auto predictions = batch::LoadPredictions(*flags->Get("predictions"), *selected);
  if (!predictions.ok()) return fail(predictions.status());
  auto specs = batch::EvalSpecs::Load(*flags->Get("specs"));
  if (!specs.ok()) return fail(specs.status());
  batch::EvalOptions o;
  o.repos_dir = *flags->Get("repos");
  o.out_dir = flags->GetOr("out", ".");
  o.run_id = *flags->Get("run-id");
  o.workers = static_cast<int>(*workers);
  o.timeout_seconds = *timeout;
  o.cancel = &g_cancel;
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  ProgressLine progress(stderr, isatty(STDERR_FILENO));
  auto summary = batch::Evaluate(
      *selected, *predictions, *specs, o, [&](const batch::EvalResult& r, int done, int total) {
        progress.Update(done, total, r.instance_id, r.outcome, r.detail, r.reused);
      });
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  if (!summary.ok()) return fail(summary.status());
  std::fprintf(
      stderr,
      "\ntotal %d, submitted %d, completed %d, resolved %d, unresolved %d, empty patch "
      "%d, error %d\nsummary: %s\n",
      (*summary)["total_instances"].get<int>(), (*summary)["submitted_instances"].get<int>(),
      (*summary)["completed_instances"].get<int>(), (*summary)["resolved_instances"].get<int>(),
      (*summary)["unresolved_instances"].get<int>(), (*summary)["empty_patch_instances"].get<int>(),
      (*summary)["error_instances"].get<int>(),
      (*summary)["summary_path"].get<std::string>().c_str());
  return g_cancel.load() ? 130 : 0;
}

CommandRegistrar registrar(Command{
    "evaluate", "grade predictions on SWE-bench-style instances in the sandbox", kUsage, Run});

}  // namespace
}  // namespace v4agent::apps
