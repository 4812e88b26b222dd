// `v4agent pipeline check FILE...` and `v4agent pipeline run FILE ...`: YAML tool pipelines
// (pipeline/, docs/pipelines.md).
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>

#include "apps/command.h"
#include "apps/flags.h"
#include "apps/progress_line.h"
#include "apps/shared_engine.h"
#include "apps/step_tree.h"
#include "common/hash.h"
#include "common/strings.h"
#include "pipeline/loader.h"
#include "pipeline/runner.h"

namespace v4agent::apps {
namespace {

constexpr char kUsage[] =
    "usage: v4agent pipeline check FILE...\n"
    "       v4agent pipeline run FILE --workspace DIR [--input NAME=VALUE ...] [--run-dir DIR]\n"
    "         [--resume|--fresh] [--json] [--model DIR [--numerics fast|exact|fast-bf16] "
    "[--threads N] |\n"
    "          --endpoint URL --model-name N [--api-key-env VAR] | --scripted FILE]\n"
    "check reports every error of a pipeline file and the files it calls, each at\n"
    "file:line:col. run runs the steps in the workspace (commands and tools in the sandbox\n"
    "under the pipeline's policy, agent steps with the one model given), journaling each\n"
    "finished step in the run directory (default: ~/.cache/v4agent/pipelines/NAME-HASH, one per\n"
    "pipeline and workspace); --resume continues a killed run there without re-running\n"
    "finished steps, --fresh discards it (a finished run is replaced). --json prints the\n"
    "summary (status, each\n"
    "step's outcome and outputs, the pipeline's outputs). Exit status 0 when the pipeline\n"
    "succeeded, 1 when a step failed, 2 for usage errors, 130 when interrupted.";

std::atomic<bool> g_cancel{false};
void OnSignal(int) { g_cancel.store(true); }

int Check(const std::vector<std::string>& files) {
  if (files.empty()) {
    std::fprintf(stderr, "%s\n", kUsage);
    return 2;
  }
  int bad = 0;
  for (const auto& f : files) {
    pipeline::LoadResult r = pipeline::LoadPipeline(f);
    for (const auto& e : r.errors) std::printf("%s\n", e.c_str());
    if (r.errors.empty()) {
      std::printf("%s: ok (%zu steps)\n", f.c_str(), r.pipeline->steps.size());
    } else {
      ++bad;
      std::printf("%s: %zu error%s\n", f.c_str(), r.errors.size(), r.errors.size() == 1 ? "" : "s");
    }
  }
  return bad ? 1 : 0;
}

bool HasAgentSteps(const std::vector<pipeline::Step>& steps) {
  for (const auto& s : steps) {
    if (s.kind == pipeline::Step::Kind::kAgent) return true;
    if (HasAgentSteps(s.steps)) return true;
    if (s.called && HasAgentSteps(s.called->steps)) return true;
  }
  return false;
}

int RunCmd(std::vector<std::string> args) {
  // --input may repeat; the flag parser keeps one value per flag, so take them out first.
  std::map<std::string, std::string> inputs;
  for (size_t i = 0; i < args.size();) {
    std::string kv;
    if (args[i] == "--input" && i + 1 < args.size()) {
      kv = args[i + 1];
      args.erase(args.begin() + i, args.begin() + i + 2);
    } else if (StartsWith(args[i], "--input=")) {
      kv = args[i].substr(8);
      args.erase(args.begin() + i);
    } else {
      ++i;
      continue;
    }
    const size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::fprintf(stderr, "v4agent pipeline: --input takes NAME=VALUE, not \"%s\"\n", kv.c_str());
      return 2;
    }
    inputs[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  auto flags = Flags::Parse(args, FlagSpec{{"workspace", "run-dir", "model", "numerics", "threads",
                                            "endpoint", "model-name", "api-key-env", "scripted"},
                                           {"resume", "fresh", "json"}});
  if (!flags.ok() || flags->positional().size() != 1 || !flags->Has("workspace")) {
    std::fprintf(stderr, "v4agent pipeline: %s\n%s\n",
                 flags.ok() ? "run needs FILE and --workspace" : flags.status().message().c_str(),
                 kUsage);
    return 2;
  }
  const std::string file = flags->positional()[0];
  pipeline::LoadResult loaded = pipeline::LoadPipeline(file);
  if (!loaded.errors.empty()) {
    for (const auto& e : loaded.errors) std::fprintf(stderr, "%s\n", e.c_str());
    return 2;
  }
  const pipeline::Pipeline& p = *loaded.pipeline;
  pipeline::RunOptions o;
  o.workspace = *flags->Get("workspace");
  if (auto dir = flags->Get("run-dir")) {
    o.run_dir = *dir;
  } else {
    // One place per (pipeline, workspace), outside the workspace, so --resume finds it.
    std::error_code ec;
    const std::string ws = std::filesystem::weakly_canonical(o.workspace, ec).string();
    const char* home = std::getenv("HOME");
    char hash[17];
    std::snprintf(hash, sizeof(hash), "%016llx", static_cast<unsigned long long>(Hash64(ws)));
    o.run_dir = StrCat(home ? home : "/tmp", "/.cache/v4agent/pipelines/", p.name, "-",
                       std::string(hash).substr(0, 12));
  }
  o.inputs = inputs;
  o.resume = flags->Has("resume");
  o.fresh = flags->Has("fresh");
  if (o.resume && o.fresh) {
    std::fprintf(stderr, "v4agent pipeline: --resume and --fresh exclude each other\n");
    return 2;
  }
  o.cancel = &g_cancel;
  ClientSetup setup;
  const bool any_client = flags->Has("model") || flags->Has("endpoint") || flags->Has("scripted");
  if (any_client) {
    auto s = ClientsFromFlags(*flags, o.run_dir + "/.prefix-cache");
    if (!s.ok()) {
      std::fprintf(stderr, "v4agent pipeline: %s\n", s.status().ToString().c_str());
      return 2;
    }
    setup = std::move(s).value();
    o.make_client = setup.make;
    o.max_context = setup.max_context;
  } else if (HasAgentSteps(p.steps)) {
    std::fprintf(stderr,
                 "v4agent pipeline: %s has agent steps: give --model DIR, --endpoint URL or "
                 "--scripted FILE\n",
                 file.c_str());
    return 2;
  }
  std::vector<std::string> top;
  for (const auto& s : p.steps) top.push_back(s.id);
  auto tree = std::make_unique<StepTree>(stderr, isatty(STDERR_FILENO), top);
  o.on_event = [&tree](const pipeline::StepEvent& e) {
    tree->Event(e.path, e.depth, e.state, e.seconds, e.detail);
  };
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  auto summary = pipeline::RunPipeline(p, o);
  tree.reset();  // the final tree before the summary
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  if (!summary.ok()) {
    std::fprintf(stderr, "v4agent pipeline: %s\n", summary.status().ToString().c_str());
    return 2;
  }
  const std::string status = (*summary)["status"].get<std::string>();
  if (summary->contains("journal_error")) {
    std::fprintf(stderr,
                 "v4agent pipeline: warning: the journal could not be written (%s); "
                 "this run cannot be resumed\n",
                 (*summary)["journal_error"].get<std::string>().c_str());
  }
  if (flags->Has("json")) {
    std::printf("%s\n", DumpJson(*summary, 2).c_str());
  } else {
    std::fprintf(stderr, "pipeline %s: %s in %s; summary %s/summary.json\n", p.name.c_str(),
                 status.c_str(),
                 ProgressLine::Duration((*summary)["seconds"].get<double>()).c_str(),
                 (*summary)["run_dir"].get<std::string>().c_str());
    for (const auto& [k, v] : (*summary)["outputs"].items()) {
      std::string text = v.is_string() ? v.get<std::string>() : DumpJson(v);
      if (text.size() > 400) text = text.substr(0, 400) + "...";
      std::printf("%s: %s\n", k.c_str(), text.c_str());
    }
  }
  return status == "success" ? 0 : status == "cancelled" ? 130 : 1;
}

int Run(const std::vector<std::string>& args) {
  if (args.empty()) {
    std::fprintf(stderr, "%s\n", kUsage);
    return 2;
  }
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (args[0] == "check") return Check(rest);
  if (args[0] == "run") return RunCmd(rest);
  std::fprintf(stderr, "v4agent pipeline: unknown subcommand \"%s\"\n%s\n", args[0].c_str(),
               kUsage);
  return 2;
}

CommandRegistrar registrar(Command{"pipeline", "check or run a YAML tool pipeline", kUsage, Run});

}  // namespace
}  // namespace v4agent::apps
