// `v4agent batch` and `v4agent batch merge`: the agent over SWE-bench-style instances
// (batch/batch_run.h, docs/batch.md).
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <mutex>

#include "agent/tool_registry_executor.h"
#include "apps/command.h"
#include "apps/flags.h"
#include "apps/progress_line.h"
#include "apps/shared_engine.h"
#include "batch/batch_config.h"
#include "batch/batch_run.h"
#include "common/strings.h"
#include "policies/policy.h"
#include "tools/registry.h"
#include "tools/yaml_tool.h"

namespace v4agent::apps {
namespace {

constexpr char kUsage[] =
    "usage: v4agent batch --instances F --repos DIR --out DIR\n"
    "         (--model DIR [--numerics fast|exact|fast-bf16] [--threads N] | --endpoint URL "
    "--model-name N\n"
    "          [--api-key-env VAR] | --scripted FILE)\n"
    "         [--workers N] [--policy FILE] [--max-steps N] [--max-turn-tokens N]\n"
    "         [--max-wall S] [--hints] [--task-template TEXT] [--model-label NAME]\n"
    "         [--filter RE] [--slice A:B] [--shard K/N] [--config FILE] [--tools F[,F...]]\n"
    "       v4agent batch merge --out DIR SHARD_DIR...\n"
    "Runs the agent on each instance (JSONL or JSON list, SWE-bench fields) in a fresh workspace\n"
    "at its base commit from the git mirror in --repos (owner__name.git): the agent sees the\n"
    "problem statement (and with --hints the hints), never the patches or test lists. Writes\n"
    "OUT/preds.jsonl for `v4agent evaluate`, OUT/instances/ID/{trajectory.jsonl,status.json}\n"
    "and OUT/summary.json. Run it again with the same --out to finish a killed batch: finished\n"
    "instances are skipped. --shard K/N runs a deterministic part (N machines, disjoint);\n"
    "`batch merge` joins the parts. In-process, the model is loaded once, turns of the workers\n"
    "take the engine in turn, and the system prompt and tools block come from a prefix store\n"
    "in OUT/.prefix-cache after the first instance. --config FILE (YAML: task_template,\n"
    "include_hints, workers, policy, budgets, model; docs/batch.md) sets the same things; flags\n"
    "given here win over the file.";

std::atomic<bool> g_cancel{false};
void OnSignal(int) { g_cancel.store(true); }

int Fail(const std::string& m) {
  std::fprintf(stderr, "v4agent batch: %s\n", m.c_str());
  return 1;
}

int Merge(const std::vector<std::string>& args) {
  auto flags = Flags::Parse(args, FlagSpec{{"out"}, {}});
  if (!flags.ok() || !flags->Has("out") || flags->positional().empty()) {
    std::fprintf(stderr, "usage: v4agent batch merge --out DIR SHARD_DIR...\n");
    return 2;
  }
  auto s = batch::MergeBatches(flags->positional(), *flags->Get("out"));
  if (!s.ok()) return Fail(s.status().ToString());
  std::printf("%s\n", DumpJson(*s, 2).c_str());
  return 0;
}

int Run(const std::vector<std::string>& args) {
  if (!args.empty() && args[0] == "merge") {
    return Merge(std::vector<std::string>(args.begin() + 1, args.end()));
  }
  auto flags = Flags::Parse(
      args, FlagSpec{{"instances",     "repos",       "out",        "model",           "numerics",
                      "threads",       "endpoint",    "model-name", "api-key-env",     "scripted",
                      "workers",       "policy",      "max-steps",  "max-turn-tokens", "max-wall",
                      "task-template", "model-label", "filter",     "slice",           "shard",
                      "config",        "tools"},
                     {"hints", "no-thinking"}});
  if (!flags.ok()) {
    std::fprintf(stderr, "v4agent batch: %s\n%s\n", flags.status().message().c_str(), kUsage);
    return 2;
  }
  for (const char* f : {"instances", "repos", "out"}) {
    if (!flags->Has(f)) {
      std::fprintf(stderr, "v4agent batch: --%s is required\n%s\n", f, kUsage);
      return 2;
    }
  }
  const int clients = flags->Has("model") + flags->Has("endpoint") + flags->Has("scripted");
  if (clients != 1) {
    std::fprintf(stderr, "v4agent batch: exactly one of --model, --endpoint, --scripted\n%s\n",
                 kUsage);
    return 2;
  }
  batch::BatchConfig config;
  if (auto file = flags->Get("config")) {
    auto c = batch::LoadBatchConfig(*file);
    if (!c.ok()) return Fail(c.status().ToString());
    config = std::move(c).value();
  }
  auto workers = flags->GetInt("workers", config.workers.value_or(1));
  auto max_steps = flags->GetInt("max-steps", config.max_steps.value_or(50));
  auto max_turn = flags->GetInt("max-turn-tokens", config.max_turn_tokens.value_or(4096));
  auto max_wall = flags->GetDouble("max-wall", config.max_wall_seconds.value_or(3600));
  if (!workers.ok() || !max_steps.ok() || !max_turn.ok() || !max_wall.ok() || *workers < 1) {
    std::fprintf(stderr, "v4agent batch: numeric flags must be numbers (--workers >= 1)\n");
    return 2;
  }
  auto instances = batch::LoadInstances(*flags->Get("instances"));
  if (!instances.ok()) return Fail(instances.status().ToString());
  auto selected =
      batch::Select(std::move(instances).value(),
                    batch::Selection{flags->GetOr("filter", ""), flags->GetOr("slice", ""),
                                     flags->GetOr("shard", "")});
  if (!selected.ok()) return Fail(selected.status().ToString());

  batch::BatchOptions o;
  o.repos_dir = *flags->Get("repos");
  o.out_dir = *flags->Get("out");
  o.workers = static_cast<int>(*workers);
  o.include_hints = flags->Has("hints") || config.include_hints.value_or(false);
  o.task_template = flags->GetOr("task-template", config.task_template.value_or(""));
  o.thinking = !flags->Has("no-thinking") && config.thinking.value_or(true);
  o.effort = config.effort.value_or("high");
  o.yaml_tools = config.tools;
  if (auto t = flags->Get("tools")) o.yaml_tools = StrSplit(*t, ',');
  {
    // Checked once here, so a broken tool file stops the batch before any instance runs.
    tools::Registry probe = tools::Registry::Default();
    if (Status s = tools::AddYamlTools(o.yaml_tools, &probe); !s.ok()) return Fail(s.ToString());
  }
  o.cancel = &g_cancel;
  auto policy = policies::BuiltinPolicy("workspace-write");
  std::optional<std::string> policy_file = config.policy;
  if (auto file = flags->Get("policy")) policy_file = *file;
  if (auto file = policy_file) {
    policy = policies::LoadPolicySpec(*file);
  }
  if (!policy.ok()) return Fail(policy.status().ToString());
  o.policy = *policy;
  o.budgets = agent::BudgetsFromPolicy(*policy);
  o.budgets.max_steps = static_cast<int>(*max_steps);
  o.budgets.max_wall_seconds = *max_wall;
  if (config.max_generated_tokens) o.budgets.max_generated_tokens = *config.max_generated_tokens;
  if (config.max_context_tokens) o.budgets.max_context_tokens = *config.max_context_tokens;
  if (config.command_timeout_seconds) {
    o.budgets.command_timeout_seconds = *config.command_timeout_seconds;
  }
  o.max_tokens_per_turn = static_cast<int>(*max_turn);

  auto setup =
      ClientsFromFlags(*flags, (std::filesystem::path(o.out_dir) / ".prefix-cache").string());
  if (!setup.ok()) return Fail(setup.status().ToString());
  o.model_name = setup->label;
  if (setup->max_context > 0) {
    const int64_t context = setup->max_context;
    o.max_tokens_per_turn = static_cast<int>(
        std::min<int64_t>(o.max_tokens_per_turn, std::max<int64_t>(context / 4, 64)));
    o.budgets.max_context_tokens =
        std::min<int64_t>(o.budgets.max_context_tokens, context - o.max_tokens_per_turn);
  }
  o.make_client = [&setup](int) { return setup->make(); };

  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  ProgressLine progress(stderr, isatty(STDERR_FILENO));
  auto summary =
      batch::RunBatch(*selected, o, [&](const batch::InstanceOutcome& r, int done, int total) {
        progress.Update(done, total, r.instance_id, r.status, r.detail, r.reused);
      });
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  if (!summary.ok()) return Fail(summary.status().ToString());
  std::printf("%s\n", DumpJson(*summary, 2).c_str());
  return g_cancel.load() ? 130 : 0;
}

CommandRegistrar registrar(Command{"batch", "run the agent over SWE-bench-style instances", kUsage,
                                   Run});

}  // namespace
}  // namespace v4agent::apps
