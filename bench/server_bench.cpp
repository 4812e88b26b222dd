// bench_server: `v4agent serve` over loopback HTTP, measured in one run.
//   1. Throughput: N clients streaming at once (N = 1, 2, 4, 8) against the same requests one
//      at a time; aggregate generated tokens per second and the ratio to one at a time.
//   2. Time to first token of a follow-up request that repeats a long first message and adds
//      one, with the first turn kept by the server (only the new part prefilled) against a
//      server that holds nothing (everything prefilled); the ratio is the reuse's gain.
// Usage: bench_server --model DIR [--tokens N] [--history-tokens N] [--numerics
// exact|fast|fast-bf16] (DIR: a checkpoint with the V4 tokenizer, e.g.
// build/example/mini-flash-v4vocab from scripts/run_example.sh.)
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "common/json.h"
#include "common/strings.h"
#include "engine/model/model.h"
#include "engine/tokenizer/tokenizer.h"
#include "server/chat_service.h"
#include "server/http_server.h"

using namespace v4agent;
using Clock = std::chrono::steady_clock;

namespace {

[[noreturn]] void Die(const std::string& m) {
  std::fprintf(stderr, "bench_server: %s\n", m.c_str());
  std::exit(1);
}

int ConnectLoopback(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) Die("connect");
  return fd;
}

struct Reply {
  int64_t tokens = 0;
  double first_token_seconds = 0;  // first reasoning/content delta after sending
  double seconds = 0;
};

// One streamed chat completion on a fresh connection.
Reply Stream(int port, const Json& body) {
  const std::string b = DumpJson(body);
  const std::string req = StrCat(
      "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: ", b.size(), "\r\n\r\n", b);
  const int fd = ConnectLoopback(port);
  const auto start = Clock::now();
  (void)!send(fd, req.data(), req.size(), MSG_NOSIGNAL);
  std::string got;
  Reply r;
  char buf[8192];
  for (;;) {
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
    if (r.first_token_seconds == 0 && (got.find("\"reasoning_content\":") != std::string::npos ||
                                       got.find("\"content\":\"") != std::string::npos)) {
      // The role chunk carries "content":"" — a delta with text is what counts.
      const size_t role = got.find("\"role\":\"assistant\"");
      const size_t after = role == std::string::npos ? 0 : got.find("\n\n", role);
      if (after != std::string::npos && got.find("data: {", after) != std::string::npos) {
        r.first_token_seconds = std::chrono::duration<double>(Clock::now() - start).count();
      }
    }
  }
  close(fd);
  r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  const size_t u = got.rfind("\"completion_tokens\":");
  if (u != std::string::npos) r.tokens = std::atoll(got.c_str() + u + 20);
  return r;
}

Json Request(const std::string& text, int tokens) {
  return Json{{"model", "bench"},
              {"messages", Json::array({Json{{"role", "user"}, {"content", text}}})},
              {"max_tokens", tokens},
              {"seed", 1},
              {"stream", true},
              {"stream_options", {{"include_usage", true}}}};
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir;
  int tokens = 32, history = 2000;
  std::string numerics = "fast";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--model"))
      dir = argv[i + 1];
    else if (!std::strcmp(argv[i], "--tokens"))
      tokens = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--history-tokens"))
      history = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--numerics"))
      numerics = argv[i + 1];
    else
      Die(StrCat("unknown flag ", argv[i]));
  }
  if (dir.empty()) {
    Die("usage: bench_server --model DIR [--tokens N] [--history-tokens N] "
        "[--numerics exact|fast|fast-bf16]");
  }
  engine::ModelOptions mo;
  auto parsed = engine::ParseNumerics(numerics);
  if (!parsed.ok()) Die(parsed.status().ToString());
  mo.numerics = *parsed;
  auto model = engine::Model::Load(dir, mo);
  if (!model.ok()) Die(model.status().ToString());
  auto tok = engine::Tokenizer::Load(dir);
  if (!tok.ok()) Die(tok.status().ToString());
  server::ServiceOptions so;
  so.served_name = "bench";
  so.scheduler.max_sessions = 64;
  auto start_server = [&](server::ChatService* s) {
    server::HttpOptions ho;
    ho.port = 0;
    auto h = server::HttpServer::Start(s, ho);
    if (!h.ok()) Die(h.status().ToString());
    return std::move(h).value();
  };
  server::ChatService service(model->get(), tok->get(), so);
  auto http = start_server(&service);
  const int port = http->port();
  std::printf("bench_server: %s, %s numerics, %d tokens per request, context %lld\n", dir.c_str(),
              numerics.c_str(), tokens, static_cast<long long>((*model)->max_context()));

  // 1. Throughput.
  std::printf("\n%-12s %14s %14s %10s\n", "streams", "tok/s at once", "tok/s serial", "ratio");
  for (int n : {1, 2, 4, 8}) {
    auto run = [&](bool together) {
      std::vector<Reply> replies(n);
      const auto t0 = Clock::now();
      if (together) {
        std::vector<std::thread> ts;
        for (int i = 0; i < n; ++i) {
          ts.emplace_back([&, i] {
            replies[i] = Stream(port, Request(StrCat("Question ", i, " of ", n, "."), tokens));
          });
        }
        for (auto& t : ts) t.join();
      } else {
        for (int i = 0; i < n; ++i) {
          replies[i] = Stream(port, Request(StrCat("Question ", i, " of ", n, "."), tokens));
        }
      }
      int64_t total = 0;
      for (const auto& r : replies) total += r.tokens;
      return total / std::chrono::duration<double>(Clock::now() - t0).count();
    };
    const double serial = run(false);
    const double together = run(true);
    std::printf("%-12d %14.1f %14.1f %9.2fx\n", n, together, serial, together / serial);
  }

  // 2. Follow-up time to first token, with and without the conversation kept.
  std::string long_text;
  while (static_cast<int>((*tok)->Encode(long_text, true).size()) < history) {
    long_text += "The quick brown fox jumps over the lazy dog while the stats module sorts. ";
  }
  // The first turn, kept by the server; then the follow-up a client sends: the history, the
  // assistant's answer as it came back, a new message.
  Json first{{"model", "bench"},
             {"messages", Json::array({Json{{"role", "user"}, {"content", long_text}}})},
             {"max_tokens", tokens},
             {"seed", 1}};
  const std::string fb = DumpJson(first);
  const std::string fr = StrCat(
      "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: "
      "close\r\nContent-Length: ",
      fb.size(), "\r\n\r\n", fb);
  std::string answer;
  {
    const int fd = ConnectLoopback(port);
    (void)!send(fd, fr.data(), fr.size(), MSG_NOSIGNAL);
    char buf[8192];
    for (ssize_t n; (n = recv(fd, buf, sizeof buf, 0)) > 0;) answer.append(buf, n);
    close(fd);
  }
  auto reply = ParseJson(answer.substr(answer.find("\r\n\r\n") + 4), "reply");
  if (!reply.ok()) Die("the first turn failed: " + answer.substr(0, 300));
  Json follow = Request(long_text, tokens);
  follow["messages"].push_back((*reply)["choices"][0]["message"]);
  follow["messages"].push_back(Json{{"role", "user"}, {"content", "And then?"}});
  const Reply kept = Stream(port, follow);
  server::ChatService cold_service(model->get(), tok->get(), so);
  auto cold_http = start_server(&cold_service);
  const Reply cold = Stream(cold_http->port(), follow);
  std::printf("\nfollow-up after %d history tokens: first token %.3f s kept, %.3f s cold, %.1fx\n",
              history, kept.first_token_seconds, cold.first_token_seconds,
              cold.first_token_seconds / std::max(kept.first_token_seconds, 1e-9));
  return 0;
}
