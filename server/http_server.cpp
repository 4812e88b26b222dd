#include "server/http_server.h"

#include <sys/socket.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

#include "common/strings.h"

namespace v4agent::server {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

struct Reply {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
};

Reply JsonReply(int status, const Json& j) {
  return Reply{status, "application/json", DumpJson(j)};
}
Reply ErrorReply(const ApiError& e) { return JsonReply(e.http_status, e.ToJson()); }

}  // namespace

struct HttpServer::Impl {
  ChatService* service;
  HttpOptions options;
  asio::io_context io;
  std::unique_ptr<tcp::acceptor> acceptor;
  std::thread accept_thread;
  std::atomic<bool> stopping{false};
  std::mutex mu;
  std::condition_variable cv;
  int connections = 0;
  std::set<int> fds;  // open connections, so Stop() can end idle keep-alive reads

  void AcceptLoop() {
    while (!stopping) {
      tcp::socket socket(io);
      beast::error_code ec;
      acceptor->accept(socket, ec);
      if (ec) {
        if (stopping) break;
        continue;
      }
      std::lock_guard<std::mutex> lock(mu);
      ++connections;
      const int fd = socket.native_handle();
      fds.insert(fd);
      std::thread([this, fd, s = std::move(socket)]() mutable {
        try {
          Serve(s);
        } catch (const std::exception& e) {
          // A bug in one request must not take the server down: answer 500 if we can.
          ApiError err;
          err.http_status = 500;
          err.type = "server_error";
          err.message = StrCat("internal error: ", e.what());
          Write(s, ErrorReply(err), false);
        }
        std::lock_guard<std::mutex> lock(mu);
        fds.erase(fd);
        beast::error_code ec;
        s.close(ec);
        --connections;
        cv.notify_all();
      }).detach();
    }
  }

  bool Authorized(const http::request<http::string_body>& req) const {
    if (options.api_key.empty()) return true;
    const auto it = req.find(http::field::authorization);
    return it != req.end() && std::string(it->value()) == "Bearer " + options.api_key;
  }

  void Serve(tcp::socket& socket) {
    beast::flat_buffer buffer;
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(options.max_body_bytes);
      beast::error_code ec;
      http::read(socket, buffer, parser, ec);
      if (ec == http::error::body_limit) {
        ApiError e;
        e.http_status = 413;
        e.message = StrCat("the request body is larger than ", options.max_body_bytes, " bytes");
        const std::string target(parser.get().target());
        service->CountRequest(target.substr(0, target.find('?')), 413, 0);
        Write(socket, ErrorReply(e), false);
        return;
      }
      if (ec) return;  // closed, or not HTTP
      auto req = parser.release();
      const bool keep = req.keep_alive() && !stopping;
      const auto start = std::chrono::steady_clock::now();
      const std::string target(req.target());
      const std::string route = target.substr(0, target.find('?'));
      auto count = [&](int status) {
        if ((route != "/v1/chat/completions" && route != "/v1/completions") || status != 200) {
          service->CountRequest(
              route, status,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
        }
      };
      if (req.method() == http::verb::options && options.cors) {
        Write(socket, Reply{204, "text/plain", ""}, keep);
        if (!keep) return;
        continue;
      }
      if (route == "/health" && req.method() == http::verb::get) {
        count(200);
        if (!Write(socket, JsonReply(200, Json{{"status", "ok"}}), keep) || !keep) return;
        continue;
      }
      if (!Authorized(req)) {
        ApiError e;
        e.http_status = 401;
        e.type = "invalid_request_error";
        e.code = "invalid_api_key";
        e.message = "missing or wrong API key (Authorization: Bearer ...)";
        count(401);
        if (!Write(socket, ErrorReply(e), keep) || !keep) return;
        continue;
      }
      if (route == "/metrics" && req.method() == http::verb::get) {
        count(200);
        if (!Write(socket, Reply{200, "text/plain; version=0.0.4", service->MetricsText()}, keep) ||
            !keep) {
          return;
        }
        continue;
      }
      if (route == "/v1/models" && req.method() == http::verb::get) {
        count(200);
        Json models{{"object", "list"},
                    {"data", Json::array({Json{{"id", service->served_name()},
                                               {"object", "model"},
                                               {"created", 0},
                                               {"owned_by", "v4agent"},
                                               {"max_model_len", service->max_context()}}})}};
        if (!Write(socket, JsonReply(200, models), keep) || !keep) return;
        continue;
      }
      if ((route == "/v1/chat/completions" || route == "/v1/completions") &&
          req.method() == http::verb::post) {
        if (!Generate(socket, req, route == "/v1/completions", keep, count) || !keep) return;
        continue;
      }
      ApiError e;
      e.http_status = 404;
      e.message = StrCat("no route ", std::string(req.method_string()), " ", route);
      count(404);
      if (!Write(socket, ErrorReply(e), keep) || !keep) return;
    }
  }

  // Both completion routes: the body checked, then one JSON reply or a stream of events.
  bool Generate(tcp::socket& socket, const http::request<http::string_body>& req, bool text,
                bool keep, const std::function<void(int)>& count) {
    auto body = ParseJson(req.body(), "request body");
    if (!body.ok()) {
      ApiError e;
      e.message = StrCat("the body is not valid JSON: ", body.status().message());
      count(400);
      return Write(socket, ErrorReply(e), keep);
    }
    using Emit = std::function<bool(const Json&)>;
    std::function<std::variant<Json, ApiError>(const Emit&)> run;
    bool stream = false;
    std::variant<ChatRequest, ApiError> chat_parsed = ApiError{};
    std::variant<TextRequest, ApiError> text_parsed = ApiError{};
    if (text) {
      text_parsed = ParseTextRequest(*body, service->vocab_size());
      if (auto* t = std::get_if<TextRequest>(&text_parsed)) {
        stream = t->stream;
        run = [this, t](const Emit& emit) { return service->CompleteText(*t, emit); };
      }
    } else {
      chat_parsed = ParseChatRequest(*body, nullptr);
      if (auto* c = std::get_if<ChatRequest>(&chat_parsed)) {
        stream = c->stream;
        run = [this, c](const Emit& emit) { return service->Complete(*c, emit); };
      }
    }
    if (!run) {
      const ApiError& e = text ? std::get<ApiError>(text_parsed) : std::get<ApiError>(chat_parsed);
      count(e.http_status);
      return Write(socket, ErrorReply(e), keep);
    }
    if (!stream) {
      auto out = run(nullptr);
      if (auto* e = std::get_if<ApiError>(&out)) {
        count(e->http_status);
        return Write(socket, ErrorReply(*e), keep);
      }
      return Write(socket, JsonReply(200, std::get<Json>(out)), keep);
    }
    // Server-sent events. The status line waits for the engine, so a request that fails
    // before generating still gets a plain JSON error. Chunks go through a bounded queue that
    // a writer thread drains: the engine never waits on a slow reader, and a reader that
    // falls more than kMaxQueued bytes behind is treated as gone (its generation stops).
    constexpr size_t kMaxQueued = 4 << 20;
    std::mutex qmu;
    std::condition_variable qcv;
    std::string queued;
    bool header_sent = false, done = false, alive = true;
    std::thread writer([&] {
      std::unique_lock<std::mutex> lock(qmu);
      for (;;) {
        qcv.wait(lock, [&] { return done || !queued.empty(); });
        if (queued.empty() && done) return;
        std::string out;
        out.swap(queued);
        lock.unlock();
        beast::error_code ec;
        asio::write(socket, asio::buffer(out), ec);
        lock.lock();
        if (ec) {
          alive = false;
          queued.clear();
          if (done) return;
        }
      }
    });
    auto send = [&](const std::string& data) {
      std::lock_guard<std::mutex> lock(qmu);
      if (!alive) return false;
      if (!header_sent) {
        queued +=
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
            "Connection: close\r\n";
        if (options.cors) queued += "Access-Control-Allow-Origin: *\r\n";
        queued += "\r\n";
        header_sent = true;
      }
      queued += data;
      if (queued.size() > kMaxQueued) alive = false;
      qcv.notify_one();
      return alive;
    };
    auto finish = [&] {
      {
        std::lock_guard<std::mutex> lock(qmu);
        done = true;
      }
      qcv.notify_one();
      writer.join();
    };
    auto out =
        run([&](const Json& chunk) { return send(StrCat("data: ", DumpJson(chunk), "\n\n")); });
    if (auto* e = std::get_if<ApiError>(&out)) {
      count(e->http_status);
      bool sent;
      {
        std::lock_guard<std::mutex> lock(qmu);
        sent = header_sent;
      }
      if (!sent) {
        finish();
        return Write(socket, ErrorReply(*e), keep);
      }
      send(StrCat("data: ", DumpJson(e->ToJson()), "\n\n"));
    }
    send("data: [DONE]\n\n");
    finish();
    beast::error_code ec;
    socket.shutdown(tcp::socket::shutdown_send, ec);
    return false;  // the stream ends the connection
  }

  bool Write(tcp::socket& socket, const Reply& r, bool keep) {
    http::response<http::string_body> res{static_cast<http::status>(r.status), 11};
    res.set(http::field::server, "v4agent");
    res.set(http::field::content_type, r.content_type);
    if (options.cors) res.set(http::field::access_control_allow_origin, "*");
    res.keep_alive(keep);
    res.body() = r.body;
    res.prepare_payload();
    beast::error_code ec;
    http::write(socket, res, ec);
    return !ec;
  }
};

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<HttpServer>> HttpServer::Start(ChatService* service, HttpOptions options) {
  auto impl = std::make_unique<Impl>();
  impl->service = service;
  impl->options = std::move(options);
  beast::error_code ec;
  const auto address = asio::ip::make_address(impl->options.host, ec);
  if (ec) return InvalidArgumentError(StrCat("--host ", impl->options.host, ": ", ec.message()));
  impl->acceptor = std::make_unique<tcp::acceptor>(impl->io);
  const tcp::endpoint ep(address, static_cast<unsigned short>(impl->options.port));
  impl->acceptor->open(ep.protocol(), ec);
  if (!ec) impl->acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor->bind(ep, ec);
  if (!ec) impl->acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return FailedPreconditionError(StrCat("cannot listen on ", impl->options.host, ":",
                                          impl->options.port, ": ", ec.message()));
  }
  Impl* raw = impl.get();
  impl->accept_thread = std::thread([raw] { raw->AcceptLoop(); });
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

int HttpServer::port() const { return impl_->acceptor->local_endpoint().port(); }

void HttpServer::Stop() {
  if (impl_->stopping.exchange(true)) return;
  beast::error_code ec;
  // Closing the acceptor from here does not wake a blocked accept() reliably: shut the
  // socket down, which does.
  ::shutdown(impl_->acceptor->native_handle(), SHUT_RDWR);
  if (impl_->accept_thread.joinable()) impl_->accept_thread.join();
  impl_->acceptor->close(ec);
  std::unique_lock<std::mutex> lock(impl_->mu);
  // Idle keep-alive connections see the end of input; requests in flight finish first
  // (their reads are done, their writes go on).
  for (int fd : impl_->fds) ::shutdown(fd, SHUT_RD);
  impl_->cv.wait_for(lock, std::chrono::seconds(60), [this] { return impl_->connections == 0; });
}

HttpServer::~HttpServer() { Stop(); }

}  // namespace v4agent::server
