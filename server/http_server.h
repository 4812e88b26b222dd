// The HTTP side of `v4agent serve` (Boost.Beast stays in http_server.cpp): an accept loop on
// one address and a thread per connection with keep-alive, a request body limit, optional
// Bearer authentication, and routes to the chat service: POST /v1/chat/completions and
// POST /v1/completions (JSON or server-sent events), GET /v1/models, GET /health,
// GET /metrics. A client that goes away
// mid-stream stops its generation at the next token. Stop() closes the listener, lets
// requests in flight finish, and returns when every connection is done.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "common/status.h"
#include "server/chat_service.h"

namespace v4agent::server {

struct HttpOptions {
  std::string host = "127.0.0.1";
  int port = 8000;      // 0: any free port (see port())
  std::string api_key;  // empty: no authentication
  size_t max_body_bytes = 8 << 20;
  bool cors = false;  // Access-Control-Allow-Origin: * when set
};

class HttpServer {
 public:
  static Result<std::unique_ptr<HttpServer>> Start(ChatService* service, HttpOptions options);
  ~HttpServer();
  int port() const;
  void Stop();

 private:
  struct Impl;
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace v4agent::server
