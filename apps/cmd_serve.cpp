// `v4agent serve`: the OpenAI-compatible server over the in-process engine (server/,
// docs/server.md).
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "apps/command.h"
#include "apps/flags.h"
#include "common/strings.h"
#include "engine/model/model.h"
#include "engine/tokenizer/tokenizer.h"
#include "server/chat_service.h"
#include "server/http_server.h"

namespace v4agent::apps {
namespace {

constexpr char kUsage[] =
    "usage: v4agent serve --model DIR [--tokenizer PATH] [--host 127.0.0.1] [--port 8000]\n"
    "         [--numerics fast|exact|fast-bf16] [--threads N] [--max-sessions N] [--cache-memory "
    "MB]\n"
    "         [--cache-dir DIR] [--max-tokens N]"
    " [--served-name NAME] [--api-key-env VAR] [--max-body-mb N] [--cors]\n"
    "Serves POST /v1/chat/completions and /v1/completions (JSON or streamed), GET /v1/models,\n"
    "/health and /metrics. A request that repeats a conversation the server holds prefills only\n"
    "its new part (usage.prompt_tokens_details.cached_tokens says how much was reused); up to\n"
    "--max-sessions conversations and --cache-memory MB of caches stay in memory (least\n"
    "recently used go first: saved to the prefix store in --cache-dir when given, which later\n"
    "requests and later servers start from).\n"
    "Concurrent requests are decoded together in one batch, bit for bit as each alone.\n"
    "The model name is the checkpoint directory's unless --served-name is given.\n"
    "--api-key-env VAR requires `Authorization: Bearer $VAR`. SIGINT/SIGTERM: stop accepting,\n"
    "finish the requests in flight, exit.";

int Fail(const std::string& m) {
  std::fprintf(stderr, "v4agent serve: %s\n", m.c_str());
  return 1;
}

int Run(const std::vector<std::string>& args) {
  auto flags =
      Flags::Parse(args, FlagSpec{{"model", "tokenizer", "host", "port", "numerics", "threads",
                                   "max-sessions", "max-tokens", "served-name", "api-key-env",
                                   "max-body-mb", "cache-memory", "cache-dir"},
                                  {"cors"}});
  if (!flags.ok() || !flags->Has("model")) {
    std::fprintf(stderr, "v4agent serve: %s\n%s\n",
                 flags.ok() ? "--model is required" : flags.status().message().c_str(), kUsage);
    return 2;
  }
  auto port = flags->GetInt("port", 8000);
  auto threads = flags->GetInt("threads", 0);
  auto sessions = flags->GetInt("max-sessions", 16);
  auto cap = flags->GetInt("max-tokens", 0);
  auto body_mb = flags->GetInt("max-body-mb", 8);
  auto cache_mb = flags->GetInt("cache-memory", 0);
  auto numerics = engine::ParseNumerics(flags->GetOr("numerics", "fast"));
  if (!port.ok() || !threads.ok() || !sessions.ok() || !cap.ok() || !body_mb.ok() ||
      !numerics.ok() || !cache_mb.ok() || *cache_mb < 0 || *port < 0 || *port > 65535 ||
      *sessions < 1 || *body_mb < 1) {
    std::fprintf(stderr, "v4agent serve: a numeric flag is not valid\n%s\n", kUsage);
    return 2;
  }
  const std::string dir = *flags->Get("model");
  std::string api_key;
  if (auto var = flags->Get("api-key-env")) {
    const char* v = std::getenv(var->c_str());
    if (v == nullptr || *v == '\0')
      return Fail(StrCat("--api-key-env ", *var, ": the variable is unset"));
    api_key = v;
  }
  engine::ModelOptions mo;
  mo.num_threads = static_cast<int>(*threads);
  mo.numerics = *numerics;
  auto model = engine::Model::Load(dir, mo);
  if (!model.ok()) return Fail(model.status().ToString());
  auto tokenizer = engine::Tokenizer::Load(flags->GetOr("tokenizer", dir));
  if (!tokenizer.ok()) return Fail(tokenizer.status().ToString());

  server::ServiceOptions so;
  so.served_name = flags->GetOr("served-name",
                                std::filesystem::path(dir).lexically_normal().filename().string());
  if (so.served_name.empty()) so.served_name = std::filesystem::path(dir).parent_path().filename();
  so.scheduler.max_sessions = static_cast<int>(*sessions);
  so.max_tokens_cap = *cap;
  so.scheduler.cache_bytes = *cache_mb << 20;
  so.scheduler.cache_dir = flags->GetOr("cache-dir", "");
  server::ChatService service(model->get(), tokenizer->get(), so);
  if (!service.setup_status().ok()) return Fail(service.setup_status().ToString());

  // Signals go to one waiting thread, not to whichever thread they land on.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);

  server::HttpOptions ho;
  ho.host = flags->GetOr("host", "127.0.0.1");
  ho.port = static_cast<int>(*port);
  ho.api_key = api_key;
  ho.max_body_bytes = static_cast<size_t>(*body_mb) << 20;
  ho.cors = flags->Has("cors");
  auto http = server::HttpServer::Start(&service, ho);
  if (!http.ok()) return Fail(http.status().ToString());
  std::fprintf(stderr, "v4agent serve: %s on http://%s:%d/v1 (context %lld tokens)\n",
               so.served_name.c_str(), ho.host.c_str(), (*http)->port(),
               static_cast<long long>((*model)->max_context()));
  std::fflush(stderr);
  int sig = 0;
  sigwait(&set, &sig);
  std::fprintf(stderr, "v4agent serve: signal %d: finishing the requests in flight\n", sig);
  (*http)->Stop();
  return 0;
}

CommandRegistrar registrar(Command{"serve", "an OpenAI-compatible server over the engine", kUsage,
                                   Run});

}  // namespace
}  // namespace v4agent::apps
