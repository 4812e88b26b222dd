// OpenAIClient against a real HTTP server on loopback. LoopbackChatServer is a TEST DOUBLE for
// a remote chat-completions API: it serves canned responses (SSE or JSON, or errors) in order
// and records the request bodies it received.
#include "agent/openai_client.h"

#include <gtest/gtest.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <mutex>
#include <thread>

#include "common/file_util.h"

namespace v4agent::agent {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

struct CannedResponse {
  int status = 200;
  std::string content_type = "text/event-stream";
  std::vector<std::string> chunks;  // written separately to exercise streaming
  bool content_length = false;      // send Content-Length (as most servers do) instead of close
};

class LoopbackChatServer {
 public:
  // With a certificate and key (PEM files) it speaks HTTPS.
  explicit LoopbackChatServer(std::vector<CannedResponse> responses, std::string cert = "",
                              std::string key = "")
      : responses_(std::move(responses)),
        acceptor_(ioc_, tcp::endpoint(tcp::v4(), 0)),
        tls_(asio::ssl::context::tls_server) {
    if (!cert.empty()) {
      tls_.use_certificate_chain_file(cert);
      tls_.use_private_key_file(key, asio::ssl::context::pem);
      use_tls_ = true;
    }
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this] { Serve(); });
  }
  ~LoopbackChatServer() {
    boost::system::error_code ec;
    stopping_ = true;
    // Wake the blocking accept with a throwaway connection.
    tcp::socket poke(ioc_);
    poke.connect(tcp::endpoint(asio::ip::address_v4::loopback(), port_), ec);
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1"; }
  std::string https_url() const { return "https://localhost:" + std::to_string(port_) + "/v1"; }
  std::vector<std::string> bodies() {
    std::lock_guard lock(mu_);
    return bodies_;
  }
  std::vector<std::string> targets() {
    std::lock_guard lock(mu_);
    return targets_;
  }

 private:
  void Serve() {
    size_t next = 0;
    while (!stopping_) {
      tcp::socket socket(ioc_);
      boost::system::error_code ec;
      acceptor_.accept(socket, ec);
      if (ec || stopping_) return;
      CannedResponse r = next < responses_.size() ? responses_[next++] : CannedResponse{500};
      if (use_tls_) {
        asio::ssl::stream<tcp::socket> stream(std::move(socket), tls_);
        stream.handshake(asio::ssl::stream_base::server, ec);
        if (ec) continue;
        Handle(stream, r);
        stream.shutdown(ec);
      } else {
        Handle(socket, r);
        socket.shutdown(tcp::socket::shutdown_both, ec);
      }
    }
  }

  template <class Stream>
  void Handle(Stream& socket, const CannedResponse& r) {
    boost::system::error_code ec;
    {
      beast::flat_buffer buf;
      http::request<http::string_body> req;
      http::read(socket, buf, req, ec);
      if (ec) return;
      {
        std::lock_guard lock(mu_);
        bodies_.push_back(req.body());
        targets_.push_back(std::string(req.target()));
        if (req[http::field::authorization] != "Bearer sk-test") {
          bodies_.back() = "MISSING AUTH";
        }
      }
      size_t length = 0;
      for (const auto& c : r.chunks) length += c.size();
      std::string head = "HTTP/1.1 " + std::to_string(r.status) +
                         " X\r\nContent-Type: " + r.content_type + "\r\nConnection: close\r\n" +
                         (r.content_length ? "Content-Length: " + std::to_string(length) + "\r\n"
                                           : std::string()) +
                         "\r\n";
      asio::write(socket, asio::buffer(head), ec);
      for (const auto& c : r.chunks) {
        asio::write(socket, asio::buffer(c), ec);
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
    }
  }

  std::vector<CannedResponse> responses_;
  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  asio::ssl::context tls_;
  bool use_tls_ = false;
  unsigned short port_ = 0;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::mutex mu_;
  std::vector<std::string> bodies_;
  std::vector<std::string> targets_;
};

std::string Sse(const Json& j) { return "data: " + j.dump() + "\n\n"; }

Json Delta(const Json& delta, const char* finish = nullptr) {
  Json choice{{"index", 0}, {"delta", delta}};
  choice["finish_reason"] = finish ? Json(finish) : Json(nullptr);
  return Json{{"object", "chat.completion.chunk"}, {"choices", Json::array({choice})}};
}

Json ToolDelta(int index, const char* id, const char* name, const char* args) {
  Json fn = Json::object();
  if (name) fn["name"] = name;
  fn["arguments"] = args;
  Json part{{"index", index}, {"function", fn}};
  if (id) {
    part["id"] = id;
    part["type"] = "function";
  }
  return Json{{"tool_calls", Json::array({part})}};
}

CannedResponse StreamingToolCall() {
  CannedResponse r;
  Json usage{{"prompt_tokens", 100},
             {"completion_tokens", 20},
             {"prompt_tokens_details", Json{{"cached_tokens", 64}}}};
  r.chunks = {Sse(Delta(Json{{"role", "assistant"}, {"reasoning_content", "Look at "}})),
              Sse(Delta(Json{{"reasoning_content", "the file."}})),
              Sse(Delta(Json{{"content", "Viewing."}})),
              Sse(Delta(ToolDelta(0, "call_a", "view", "{\"pa"))),
              Sse(Delta(ToolDelta(0, nullptr, nullptr, "th\":\"a.py\"}"))),
              Sse(Delta(ToolDelta(1, "call_b", "run_tests", "{}"), "tool_calls")),
              Sse(Json{{"choices", Json::array()}, {"usage", usage}}),
              "data: [DONE]\n\n"};
  return r;
}

OpenAIClientOptions Options(const std::string& url) {
  OpenAIClientOptions o;
  o.endpoint = url;
  o.model = "deepseek-v4";
  o.api_key = "sk-test";
  o.backoff_initial_ms = 10;
  o.timeout_seconds = 10;
  return o;
}

CompletionRequest Request() {
  CompletionRequest req;
  req.messages.push_back({"user", "fix the bug", "", {}, ""});
  ChatMessage a{"assistant", "", "I should look", {{"c0", "view", "{\"path\":\"x\"}"}}, ""};
  req.messages.push_back(a);
  req.messages.push_back({"tool", "contents", "", {}, "c0"});
  req.tools.push_back({"view", "View a file", Json{{"type", "object"}}});
  return req;
}

TEST(OpenAIClientTest, StreamsContentReasoningAndToolCalls) {
  LoopbackChatServer server({StreamingToolCall()});
  OpenAIClient client(Options(server.url()));
  std::string streamed;
  auto c = client.Complete(Request(), [&](const CompletionDelta& d) { streamed += d.text; });
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->reasoning_content, "Look at the file.");
  EXPECT_EQ(c->content, "Viewing.");
  ASSERT_EQ(c->tool_calls.size(), 2u);
  EXPECT_EQ(c->tool_calls[0].id, "call_a");
  EXPECT_EQ(c->tool_calls[0].name, "view");
  EXPECT_EQ(c->tool_calls[0].arguments, "{\"path\":\"a.py\"}");
  EXPECT_EQ(c->tool_calls[1].name, "run_tests");
  EXPECT_EQ(c->finish_reason, "tool_calls");
  EXPECT_EQ(c->tokens_prefilled, 36);
  EXPECT_EQ(c->tokens_reused, 64);
  EXPECT_EQ(c->tokens_generated, 20);
  EXPECT_NE(streamed.find("Look at the file.Viewing."), std::string::npos);

  ASSERT_EQ(server.bodies().size(), 1u);
  EXPECT_EQ(server.targets()[0], "/v1/chat/completions");
  auto body = Json::parse(server.bodies()[0]);
  EXPECT_EQ(body["model"], "deepseek-v4");
  EXPECT_EQ(body["stream"], true);
  EXPECT_EQ(body["tools"][0]["function"]["name"], "view");
  // The thinking of a tool-calling turn goes back as reasoning_content (DeepSeek API rule).
  EXPECT_EQ(body["messages"][1]["reasoning_content"], "I should look");
  EXPECT_EQ(body["messages"][1]["tool_calls"][0]["function"]["arguments"], "{\"path\":\"x\"}");
  EXPECT_EQ(body["messages"][2]["tool_call_id"], "c0");
}

TEST(OpenAIClientTest, RetriesServerErrorsWithBackoff) {
  CannedResponse busy{503, "application/json", {"{\"error\":\"overloaded\"}"}};
  CannedResponse limited{429, "application/json", {"{\"error\":\"slow down\"}"}};
  LoopbackChatServer server({busy, limited, StreamingToolCall()});
  OpenAIClient client(Options(server.url()));
  auto c = client.Complete(Request(), nullptr);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(client.attempts_last_call(), 3);
  EXPECT_EQ(c->tool_calls.size(), 2u);
}

TEST(OpenAIClientTest, ClientErrorsAreNotRetriedAndNameTheStatus) {
  CannedResponse bad{400, "application/json", {"{\"error\":{\"message\":\"bad model\"}}"}};
  LoopbackChatServer server({bad, StreamingToolCall()});
  OpenAIClient client(Options(server.url()));
  auto c = client.Complete(Request(), nullptr);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(client.attempts_last_call(), 1);
  EXPECT_NE(c.status().message().find("HTTP 400"), std::string::npos);
  EXPECT_NE(c.status().message().find("bad model"), std::string::npos);
}

TEST(OpenAIClientTest, GivesUpAfterMaxRetries) {
  CannedResponse busy{500, "text/plain", {"boom"}};
  LoopbackChatServer server({busy, busy, busy});
  auto o = Options(server.url());
  o.max_retries = 2;
  OpenAIClient client(o);
  auto c = client.Complete(Request(), nullptr);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(client.attempts_last_call(), 3);
  EXPECT_NE(c.status().message().find("HTTP 500"), std::string::npos);
}

TEST(OpenAIClientTest, TruncatedStreamIsRetried) {
  CannedResponse cut;
  cut.chunks = {Sse(Delta(Json{{"content", "partial"}}))};  // connection closes without [DONE]
  LoopbackChatServer server({cut, StreamingToolCall()});
  OpenAIClient client(Options(server.url()));
  auto c = client.Complete(Request(), nullptr);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(client.attempts_last_call(), 2);
  EXPECT_EQ(c->content, "Viewing.");
}

TEST(OpenAIClientTest, NonStreamedResponse) {
  Json resp{{"choices",
             {{{"index", 0},
               {"finish_reason", "stop"},
               {"message", {{"role", "assistant"}, {"content", "done"}}}}}},
            {"usage", {{"prompt_tokens", 10}, {"completion_tokens", 2}}}};
  LoopbackChatServer server({CannedResponse{200, "application/json", {resp.dump()}}});
  auto o = Options(server.url());
  o.stream = false;
  OpenAIClient client(o);
  auto c = client.Complete(Request(), nullptr);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->content, "done");
  EXPECT_EQ(c->tokens_prefilled, 10);
}

TEST(OpenAIClientTest, ResponsesWithContentLengthAreRead) {
  // Boost 1.74 rejects every Content-Length body when the parser's limit is "none"; servers
  // send one on JSON answers and errors, so both must come through.
  Json resp{{"choices",
             {{{"index", 0},
               {"finish_reason", "stop"},
               {"message", {{"role", "assistant"}, {"content", "sized"}}}}}}};
  CannedResponse ok{200, "application/json", {resp.dump()}, true};
  CannedResponse bad{400, "application/json", {R"({"error":"bad model"})"}, true};
  LoopbackChatServer server({ok, bad});
  auto o = Options(server.url());
  o.stream = false;
  OpenAIClient client(o);
  auto c = client.Complete(Request(), nullptr);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->content, "sized");
  auto e = client.Complete(Request(), nullptr);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("HTTP 400"), std::string::npos) << e.status().ToString();
  EXPECT_NE(e.status().message().find("bad model"), std::string::npos);
}

TEST(OpenAIClientTest, ConnectionRefusedIsAnError) {
  unsigned short port;
  {
    asio::io_context ioc;
    tcp::acceptor a(ioc, tcp::endpoint(tcp::v4(), 0));
    port = a.local_endpoint().port();
  }
  auto o = Options("http://127.0.0.1:" + std::to_string(port));
  o.max_retries = 1;
  OpenAIClient client(o);
  auto c = client.Complete(Request(), nullptr);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("connecting"), std::string::npos);
}

TEST(OpenAIClientTest, HttpsWithCertificateVerification) {
  ScopedTempDir dir;
  std::string cert = dir.path() + "/cert.pem", key = dir.path() + "/key.pem";
  std::string cmd =
      "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost "
      "-addext subjectAltName=DNS:localhost -keyout " +
      key + " -out " + cert + " >/dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << "openssl could not make a test certificate";
  LoopbackChatServer server({StreamingToolCall(), StreamingToolCall()}, cert, key);
  auto o = Options(server.https_url());
  o.ca_file = cert;
  OpenAIClient client(o);
  auto c = client.Complete(Request(), nullptr);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->tool_calls.size(), 2u);
  EXPECT_EQ(client.attempts_last_call(), 1);

  // Without trusting the certificate the handshake must fail, and is not retried.
  auto untrusted = Options(server.https_url());
  untrusted.max_retries = 0;
  OpenAIClient strict(untrusted);
  auto bad = strict.Complete(Request(), nullptr);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("TLS handshake"), std::string::npos)
      << bad.status().message();
}

TEST(OpenAIClientTest, HttpsRefusesACertificateForAnotherHost) {
  // A certificate the client trusts (it is its own CA file) but issued to another name: the
  // connection to localhost must fail on the name, not succeed because the chain verifies.
  ScopedTempDir dir;
  std::string cert = dir.path() + "/cert.pem", key = dir.path() + "/key.pem";
  std::string cmd =
      "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=other.example "
      "-addext subjectAltName=DNS:other.example -keyout " +
      key + " -out " + cert + " >/dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << "openssl could not make a test certificate";
  LoopbackChatServer server({StreamingToolCall(), StreamingToolCall()}, cert, key);
  auto o = Options(server.https_url());
  o.ca_file = cert;
  o.max_retries = 0;
  OpenAIClient client(o);
  auto c = client.Complete(Request(), nullptr);
  ASSERT_FALSE(c.ok()) << "accepted a certificate for other.example at localhost";
  EXPECT_NE(c.status().message().find("TLS handshake"), std::string::npos) << c.status().message();
}

TEST(OpenAIClientTest, ParsesUrls) {
  auto u = ParseHttpUrl("https://api.deepseek.com");
  ASSERT_TRUE(u.ok());
  EXPECT_TRUE(u->https);
  EXPECT_EQ(u->port, "443");
  EXPECT_EQ(u->path, "");
  u = ParseHttpUrl("http://[::1]:8000/v1/");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, "8000");
  EXPECT_EQ(u->path, "/v1");
  EXPECT_FALSE(ParseHttpUrl("ftp://x").ok());
  EXPECT_FALSE(ParseHttpUrl("http://host:99999").ok());
}

}  // namespace
}  // namespace v4agent::agent
