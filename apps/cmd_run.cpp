// `v4agent run`: one autonomous agent run over a workspace. Wires a model client (in-process
// engine, OpenAI-compatible endpoint, or the scripted test double), the DSML codec, the tool
// registry under a policy, and the loop; shows a live progress line on a terminal and prints a
// summary (or one JSON object with --json). All the work happens in agent/; this file only
// turns flags into those objects.
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <memory>
#include <mutex>

#include "agent/agent_loop.h"
#include "agent/constrained_decoding.h"
#include "agent/dsml_renderer.h"
#include "agent/inprocess_client.h"
#include "agent/openai_client.h"
#include "agent/scripted_client.h"
#include "agent/tool_registry_executor.h"
#include "agent/trajectory.h"
#include "apps/command.h"
#include "apps/endpoint_flags.h"
#include "apps/flags.h"
#include "common/file_util.h"
#include "common/stopwatch.h"
#include "common/strings.h"
#include "dsml/markers.h"
#include "engine/model/model.h"
#include "engine/tokenizer/tokenizer.h"
#include "policies/policy.h"

namespace v4agent::apps {
namespace {

constexpr char kUsage[] =
    "usage: v4agent run (--task TEXT | --task-file FILE) [--workspace DIR] [--policy FILE]\n"
    "         [--tools FILE_OR_DIR[,...]]  (YAML-defined tools, docs/pipelines.md)\n"
    "         [--model DIR [--tokenizer PATH] [--threads N] [--numerics fast|exact|fast-bf16]\n"
    "                      [--cache-dir DIR [--cache-budget BYTES]] |\n"
    "          --endpoint URL --model-name NAME [--api-key-env VAR] |\n"
    "          --scripted FILE]\n"
    "         [--thinking | --no-thinking] [--effort high|max] [--max-steps N]\n"
    "         [--max-tokens N] [--max-turn-tokens N] [--max-wall SECONDS] [--constrained]\n"
    "         [--temperature T] [--top-p P] [--seed S] [--trajectory FILE] [--resume FILE]\n"
    "         [--json] [--quiet] [--no-approval]\n"
    "Runs an agent on the task over the workspace (default: the current directory) until it\n"
    "submits or a budget ends the run. --model runs the built-in V4 engine on a checkpoint\n"
    "directory (tokenizer: DIR/tokenizer.json unless --tokenizer; --numerics: fast, the\n"
    "default, or exact, the fp32 oracle: docs/engine.md); --endpoint talks to an\n"
    "OpenAI-compatible server (vLLM, SGLang, DeepSeek's API) with the key read from the\n"
    "environment variable named by --api-key-env; --scripted replays completions from a JSONL\n"
    "file (a test double). --constrained (in-process only) masks every token that would break\n"
    "the DSML tool-call grammar. The policy (default: the built-in workspace-write policy)\n"
    "decides what tools and commands may run; commands run in the sandbox. The trajectory\n"
    "(default: $XDG_STATE_HOME/v4agent/runs/, else ~/.local/state/v4agent/runs/) gets one\n"
    "JSONL record per event; --resume FILE continues a killed run from it. When the policy\n"
    "says \"ask\" and stdin is a terminal, the action, rule and reason are shown and one answer\n"
    "is read (y: once, a: for this session, n: deny; recorded, and re-applied on resume);\n"
    "elsewhere, or with --no-approval, ask means deny. In-process runs save the session beside\n"
    "the trajectory (FILE.v4s) after every turn, and --resume restores it instead of\n"
    "prefilling the conversation again; --cache-dir keeps sessions keyed by token prefix, so\n"
    "the system prompt and tools block (or a whole earlier prompt) are loaded, not prefilled\n"
    "(docs/sessions.md; budget default 16G, least recently used evicted). Exit code: 0\n"
    "submitted, 3 a budget ran out, 4 an error, 130 interrupted, 2 bad usage.";

std::atomic<bool> g_interrupted{false};

void OnSignal(int) { g_interrupted.store(true); }

std::string DefaultTrajectoryPath() {
  std::string base;
  if (const char* x = std::getenv("XDG_STATE_HOME"); x && *x) {
    base = x;
  } else if (const char* h = std::getenv("HOME"); h && *h) {
    base = std::string(h) + "/.local/state";
  } else {
    base = "/tmp";
  }
  char stamp[32];
  std::time_t now = std::time(nullptr);
  std::tm tm_utc{};
  gmtime_r(&now, &tm_utc);
  std::strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm_utc);
  return StrCat(base, "/v4agent/runs/run-", stamp, "-", static_cast<int64_t>(getpid()), ".jsonl");
}

// One line, rewritten in place on a terminal: what the loop is doing right now.
class ProgressLine {
 public:
  explicit ProgressLine(bool enabled) : enabled_(enabled) {}
  void Update(const agent::LoopProgress& p, int64_t cache_tokens) {
    if (!enabled_) return;
    std::string line = StrCat("step ", p.step, " | ", p.phase);
    if (p.phase == "tool" && !p.tool.empty()) line += StrCat(" ", p.tool);
    if (p.tokens_per_second > 0) {
      char buf[32];
      std::snprintf(buf, sizeof(buf), " | %.1f tok/s", p.tokens_per_second);
      line += buf;
    }
    line += StrCat(" | generated ", p.tokens_generated, " | context ",
                   std::max<int64_t>(p.context_tokens, cache_tokens), " tok");
    std::fprintf(stderr, "\r\033[K%s", line.c_str());
    std::fflush(stderr);
    shown_ = true;
  }
  void Clear() {
    if (enabled_ && shown_) std::fprintf(stderr, "\r\033[K");
    shown_ = false;
  }

 private:
  bool enabled_;
  bool shown_ = false;
};

// Puts a policy's "ask" to the user on the terminal: the action, the rule and its reason; one
// line back (y: once, a: for this session, anything else or end of input: deny).
tools::ApprovalAnswer AskOnTerminal(const tools::ApprovalRequest& r, ProgressLine* line) {
  static std::mutex mu;  // read-only calls may run in parallel
  std::lock_guard<std::mutex> lock(mu);
  line->Clear();
  std::fprintf(stderr,
               "\n\033[1mapproval needed\033[0m (%s, rule %s): %s\n  %s\n"
               "allow? [y] once  [a] for this session  [n] deny: ",
               r.tool.c_str(), r.rule.c_str(), r.reason.c_str(), r.action.c_str());
  std::fflush(stderr);
  char buf[256];
  if (!std::fgets(buf, sizeof(buf), stdin)) return tools::ApprovalAnswer::kDeny;
  const std::string answer(StripWhitespace(buf));
  if (answer == "y" || answer == "yes") return tools::ApprovalAnswer::kOnce;
  if (answer == "a" || answer == "always") return tools::ApprovalAnswer::kSession;
  return tools::ApprovalAnswer::kDeny;
}

void PrintSummary(const agent::RunSummary& s) {
  std::fprintf(stderr, "status:      %s%s%s\n", agent::ExitStatusName(s.status),
               s.detail.empty() ? "" : " - ", s.detail.c_str());
  std::fprintf(stderr, "steps:       %d (tool calls run %d, replayed %d)\n", s.steps,
               s.tool_calls_executed, s.tool_calls_replayed);
  std::fprintf(stderr,
               "tokens:      prefilled %lld, reused from cache %lld (from store %lld), generated "
               "%lld\n",
               static_cast<long long>(s.tokens_prefilled), static_cast<long long>(s.tokens_reused),
               static_cast<long long>(s.tokens_from_store),
               static_cast<long long>(s.tokens_generated));
  std::fprintf(stderr, "cache:       %d rewinds, %d format errors, %d stuck warnings\n", s.rewinds,
               s.format_errors, s.stuck_warnings);
  std::fprintf(stderr, "time:        model %.1f s, tools %.1f s, total %.1f s\n", s.seconds_model,
               s.seconds_tools, s.seconds_total);
  if (s.seconds_prefill > 0 || s.seconds_generate > 0) {
    std::fprintf(stderr, "speed:       prefill %.1f tok/s, decode %.1f tok/s\n",
                 s.seconds_prefill > 0 ? s.tokens_prefilled / s.seconds_prefill : 0.0,
                 s.seconds_generate > 0 ? s.tokens_generated / s.seconds_generate : 0.0);
  }
  if (!s.submission.empty()) {
    std::string head = s.submission.substr(0, 2000);
    std::fprintf(stderr, "%s:\n%s%s\n", s.autosubmitted ? "autosubmitted diff" : "submission",
                 head.c_str(), head.size() < s.submission.size() ? "\n[... truncated ...]" : "");
  }
  std::fprintf(stderr, "trajectory:  %s\n", s.trajectory.c_str());
}

int Fail(const std::string& message) {
  std::fprintf(stderr, "v4agent run: %s\n", message.c_str());
  return 4;
}

int Usage(const std::string& message) {
  std::fprintf(stderr, "v4agent run: %s\n%s\n", message.c_str(), kUsage);
  return 2;
}

int Run(const std::vector<std::string>& args) {
  auto flags = Flags::Parse(
      args,
      FlagSpec{
          {"task",    "task-file", "workspace",  "policy",          "model",     "tokenizer",
           "threads", "endpoint",  "model-name", "api-key-env",     "numerics",  "scripted",
           "effort",  "max-steps", "max-tokens", "max-turn-tokens", "max-wall",  "temperature",
           "top-p",   "seed",      "trajectory", "resume",          "cache-dir", "cache-budget",
           "tools"},
          {"thinking", "no-thinking", "constrained", "json", "quiet", "no-approval"}});
  if (!flags.ok()) return Usage(flags.status().message());
  const int clients = (flags->Has("model") ? 1 : 0) + (flags->Has("endpoint") ? 1 : 0) +
                      (flags->Has("scripted") ? 1 : 0);
  if (clients != 1) return Usage("exactly one of --model, --endpoint and --scripted is required");
  if (flags->Has("thinking") && flags->Has("no-thinking")) {
    return Usage("--thinking and --no-thinking exclude each other");
  }
  if ((flags->Has("cache-dir") || flags->Has("cache-budget")) && !flags->Has("model")) {
    return Usage("--cache-dir needs the in-process engine (--model)");
  }
  if (flags->Has("constrained") && !flags->Has("model")) {
    return Usage("--constrained needs the in-process engine (--model)");
  }
  const bool resume = flags->Has("resume");
  if (resume && flags->Has("trajectory")) {
    return Usage("--resume FILE is the trajectory to continue; drop --trajectory");
  }

  // Task.
  std::string task;
  if (flags->Has("task") == flags->Has("task-file") && !resume) {
    return Usage("exactly one of --task and --task-file is required");
  }
  if (auto t = flags->Get("task")) task = *t;
  if (auto f = flags->Get("task-file")) {
    auto text = ReadFile(*f);
    if (!text.ok()) return Fail(text.status().ToString());
    task = *text;
  }

  // Workspace and policy.
  std::error_code ec;
  std::string workspace = flags->GetOr("workspace", ".");
  auto abs = std::filesystem::canonical(workspace, ec);
  if (ec || !std::filesystem::is_directory(abs)) {
    return Fail(StrCat("--workspace ", workspace, ": not a directory"));
  }
  workspace = abs.string();
  Result<policies::Policy> policy = policies::BuiltinPolicy("workspace-write");
  if (auto file = flags->Get("policy")) {
    policy = policies::LoadPolicySpec(*file);
  }
  if (!policy.ok()) return Fail(policy.status().ToString());

  // Budgets: the policy's, narrowed by flags.
  agent::LoopOptions options;
  options.budgets = agent::BudgetsFromPolicy(*policy);
  auto max_steps = flags->GetInt("max-steps", options.budgets.max_steps);
  auto max_tokens = flags->GetInt("max-tokens", options.budgets.max_generated_tokens);
  auto max_turn = flags->GetInt("max-turn-tokens", options.max_tokens_per_turn);
  auto max_wall = flags->GetDouble("max-wall", options.budgets.max_wall_seconds);
  auto temperature = flags->GetDouble("temperature", 0.6);
  auto top_p = flags->GetDouble("top-p", 0.95);
  auto seed = flags->GetInt("seed", 0);
  auto threads = flags->GetInt("threads", 0);
  for (const Status& s :
       {max_steps.status(), max_tokens.status(), max_turn.status(), max_wall.status(),
        temperature.status(), top_p.status(), seed.status(), threads.status()}) {
    if (!s.ok()) return Usage(s.message());
  }
  options.budgets.max_steps = static_cast<int>(*max_steps);
  options.budgets.max_generated_tokens = *max_tokens;
  options.budgets.max_wall_seconds = *max_wall;
  options.max_tokens_per_turn = static_cast<int>(*max_turn);
  options.thinking = !flags->Has("no-thinking");
  options.effort = flags->GetOr("effort", "high");
  if (options.effort != "high" && options.effort != "max" && options.effort != "none") {
    return Usage("--effort must be high, max or none");
  }
  options.task = task;
  options.workspace = workspace;
  options.interrupt = &g_interrupted;
  options.resume = resume;
  options.trajectory_path =
      resume ? *flags->Get("resume") : flags->GetOr("trajectory", DefaultTrajectoryPath());
  std::filesystem::create_directories(
      std::filesystem::path(options.trajectory_path).parent_path().empty()
          ? std::filesystem::path(".")
          : std::filesystem::path(options.trajectory_path).parent_path(),
      ec);

  // Tools under the policy.
  std::vector<std::string> yaml_tools;
  if (auto t = flags->Get("tools")) yaml_tools = StrSplit(*t, ',');
  auto executor = agent::RegistryExecutor::Create(workspace, *policy, &g_interrupted, yaml_tools);
  if (!executor.ok()) return Fail(executor.status().ToString());
  options.system_prompt = agent::DefaultSystemPrompt(workspace);

  // Model client.
  agent::DsmlRenderer renderer(
      agent::DsmlRendererOptions{options.thinking, options.effort, /*drop_thinking=*/false});
  std::unique_ptr<engine::Model> model;
  std::unique_ptr<engine::Tokenizer> tokenizer;
  std::unique_ptr<agent::TokenCodec> codec;
  std::unique_ptr<agent::ModelClient> client;
  agent::InProcessClient* in_process = nullptr;
  std::unique_ptr<engine::PrefixStore> store;
  Stopwatch load;
  if (auto dir = flags->Get("model")) {
    engine::ModelOptions mo;
    mo.num_threads = static_cast<int>(*threads);
    auto numerics = engine::ParseNumerics(flags->GetOr("numerics", "fast"));
    if (!numerics.ok()) return Usage(numerics.status().message());
    mo.numerics = *numerics;
    auto m = engine::Model::Load(*dir, mo);
    if (!m.ok()) return Fail(m.status().ToString());
    model = std::move(m).value();
    auto tok = engine::Tokenizer::Load(flags->GetOr("tokenizer", *dir));
    if (!tok.ok()) {
      return Fail(StrCat("the in-process engine needs a tokenizer (", *dir,
                         "/tokenizer.json or --tokenizer): ", tok.status().ToString()));
    }
    tokenizer = std::move(tok).value();
    if (tokenizer->vocab_size() > model->config().vocab_size) {
      return Fail(StrCat("tokenizer has ", tokenizer->vocab_size(), " tokens but the model only ",
                         model->config().vocab_size));
    }
    codec = std::make_unique<agent::EngineTokenCodec>(tokenizer.get());
    agent::InProcessOptions io;
    io.sampler.temperature = static_cast<float>(*temperature);
    io.sampler.top_p = static_cast<float>(*top_p);
    io.sampler.seed = static_cast<uint64_t>(*seed);
    auto eos = tokenizer->TokenId(dsml::kEos);
    if (!eos) return Fail("the tokenizer has no end-of-sentence token");
    io.stop_ids = {*eos};
    // A turn's budget that fits the model: unless given, at most a quarter of its context.
    const int64_t context = model->max_context();
    if (!flags->Has("max-turn-tokens")) {
      options.max_tokens_per_turn = static_cast<int>(
          std::min<int64_t>(options.max_tokens_per_turn, std::max<int64_t>(context / 4, 64)));
    }
    // The first prompt (system, tools, task) and one turn must fit, or nothing can run.
    {
      std::vector<agent::ChatMessage> first = {
          agent::ChatMessage{"system", options.system_prompt, "", {}, ""},
          agent::ChatMessage{"user", options.task, "", {}, ""}};
      auto text = renderer.Render(first, (*executor)->Specs(), options.thinking);
      if (!text.ok()) return Fail(text.status().ToString());
      const int64_t prompt = static_cast<int64_t>(codec->Encode(*text).size());
      if (prompt + options.max_tokens_per_turn > context) {
        return Fail(StrCat("the first prompt (system prompt, tools and task: ", prompt,
                           " tokens) plus one turn (--max-turn-tokens ",
                           options.max_tokens_per_turn, ") does not fit the model's context of ",
                           context, " tokens; shorten the task or lower --max-turn-tokens",
                           prompt < context ? StrCat(" to at most ", context - prompt) : ""));
      }
    }
    // The run ends with context_limit before a turn could overflow the model's context.
    options.budgets.max_context_tokens = std::min<int64_t>(options.budgets.max_context_tokens,
                                                           context - options.max_tokens_per_turn);
    if (flags->Has("constrained")) {
      // Free text (reasoning, content, string values) gets a share of the turn's tokens, so
      // the call itself still fits when every token is a single byte.
      agent::TokenConstraintOptions co;
      co.grammar.reasoning_budget = std::min(1500, options.max_tokens_per_turn / 3);
      co.grammar.content_budget = std::min(400, options.max_tokens_per_turn / 12);
      co.grammar.string_budget = std::min(600, options.max_tokens_per_turn / 4);
      co.grammar.json_budget = std::min(160, options.max_tokens_per_turn / 8);
      auto c = agent::TokenConstraint::Create(*tokenizer, co);
      if (!c.ok()) return Fail(c.status().ToString());
      io.constraint = std::move(c).value();
    }
    if (auto cache_dir = flags->Get("cache-dir")) {
      engine::PrefixStoreOptions so;
      if (auto budget = flags->Get("cache-budget")) {
        if (!ParseByteSize(*budget, &so.budget_bytes)) {
          return Usage(StrCat("--cache-budget: '", *budget, "' is not a size (4096, 512M, 16G)"));
        }
      }
      auto s = engine::PrefixStore::Open(*cache_dir, model.get(), so);
      if (!s.ok()) return Fail(s.status().ToString());
      store = std::move(s).value();
      io.store = store.get();
    }
    io.session_path = options.trajectory_path + ".v4s";
    auto ipc = std::make_unique<agent::InProcessClient>(model.get(), codec.get(), &renderer, io);
    in_process = ipc.get();
    client = std::move(ipc);
  } else if (flags->Has("endpoint")) {
    auto endpoint = EndpointOptionsFromFlags(*flags);
    if (!endpoint.ok()) {
      return endpoint.status().message().find("--model-name") != std::string::npos
                 ? Usage(endpoint.status().message())
                 : Fail(endpoint.status().message());
    }
    client = std::make_unique<agent::OpenAIClient>(*endpoint);
  } else {
    auto sc = agent::ScriptedClient::FromFile(*flags->Get("scripted"));
    if (!sc.ok()) return Fail(sc.status().ToString());
    client = std::make_unique<agent::ScriptedClient>(std::move(sc).value());
  }

  const bool quiet = flags->Has("quiet");
  const bool json = flags->Has("json");
  if (!quiet) {
    std::fprintf(stderr, "v4agent run: %s, workspace %s, policy %s%s\n", client->Name().c_str(),
                 workspace.c_str(), policy->source.c_str(),
                 model ? StrCat(", model loaded in ",
                                static_cast<int64_t>(load.ElapsedSeconds() * 1000), " ms")
                             .c_str()
                       : "");
    std::fprintf(stderr, "trajectory:  %s\n", options.trajectory_path.c_str());
  }
  ProgressLine line(!quiet && isatty(STDERR_FILENO));
  // On a terminal, "ask" decisions go to the user; elsewhere they are denials.
  if (isatty(STDIN_FILENO) && isatty(STDERR_FILENO) && !flags->Has("no-approval")) {
    (*executor)->context().approver = [&line](const tools::ApprovalRequest& r) {
      return AskOnTerminal(r, &line);
    };
  }
  if (resume) {
    auto records = agent::ReadTrajectory(options.trajectory_path);
    if (records.ok()) (*executor)->RestoreSessionApprovals(*records);
  }
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  auto summary = agent::RunAgent(*client, **executor, options, [&](const agent::LoopProgress& p) {
    line.Update(p, in_process ? in_process->session().length() : 0);
  });
  line.Clear();
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  if (!summary.ok()) return Fail(summary.status().ToString());
  if (resume && in_process != nullptr && !quiet) {
    if (in_process->resume_restored_tokens() > 0) {
      std::fprintf(stderr, "session:     %lld tokens restored from %s.v4s (not prefilled)\n",
                   static_cast<long long>(in_process->resume_restored_tokens()),
                   options.trajectory_path.c_str());
    } else if (!in_process->resume_fallback_reason().empty()) {
      std::fprintf(stderr, "session:     rebuilt from the trajectory's ids (%s)\n",
                   in_process->resume_fallback_reason().c_str());
    }
  }
  if (json) {
    std::printf("%s\n", DumpJson(agent::RunSummaryToJson(*summary)).c_str());
  }
  if (!quiet) PrintSummary(*summary);
  return agent::ExitStatusCode(summary->status);
}

CommandRegistrar registrar(Command{"run", "run an autonomous coding agent on a task", kUsage, Run});

}  // namespace
}  // namespace v4agent::apps
