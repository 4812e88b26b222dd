#include "agent/openai_client.h"

#include <sys/socket.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <condition_variable>
#include <limits>
#include <mutex>
#include <thread>

#include "agent/sse_parser.h"
#include "common/logging.h"
#include "common/strings.h"

namespace v4agent::agent {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

// Shuts the socket down when the request outlives its deadline; blocking reads then return.
class Watchdog {
 public:
  Watchdog(int fd, double seconds) : fd_(fd) {
    thread_ = std::thread([this, seconds] {
      std::unique_lock lock(mu_);
      if (!cv_.wait_for(lock, std::chrono::duration<double>(seconds), [this] { return done_; })) {
        fired_ = true;
        ::shutdown(fd_, SHUT_RDWR);
      }
    });
  }
  ~Watchdog() {
    {
      std::lock_guard lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  bool fired() {
    std::lock_guard lock(mu_);
    return fired_;
  }

 private:
  int fd_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  bool fired_ = false;
  std::thread thread_;
};

struct Attempt {
  Status status;
  bool retryable = false;
  Completion completion;
};

Status ParseEventData(const std::string& data, ChunkAccumulator& acc, const DeltaCallback& cb,
                      bool& done) {
  if (StripWhitespace(data) == "[DONE]") {
    done = true;
    return Status::Ok();
  }
  V4_ASSIGN_OR_RETURN(Json chunk, ParseJson(data, "SSE chunk"));
  if (chunk.contains("error")) {
    return UnavailableError(
        StrCat("server sent an error in the stream: ", DumpJson(chunk["error"])));
  }
  return acc.AddChunk(chunk, cb);
}

template <class Stream>
Attempt Exchange(Stream& stream, const http::request<http::string_body>& req,
                 const std::string& where, const DeltaCallback& on_delta) {
  Attempt out;
  beast::error_code ec;
  http::write(stream, req, ec);
  if (ec) {
    out.status = UnavailableError(StrCat(where, ": sending request: ", ec.message()));
    out.retryable = true;
    return out;
  }
  beast::flat_buffer buffer;
  http::response_parser<http::buffer_body> parser;
  // Not boost::none: Boost 1.74 compares a Content-Length with the optional limit, and any
  // length is "greater" than none, so every non-chunked response would fail.
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  http::read_header(stream, buffer, parser, ec);
  if (ec) {
    out.status = UnavailableError(StrCat(where, ": reading response header: ", ec.message()));
    out.retryable = true;
    return out;
  }
  int code = static_cast<int>(parser.get().result_int());
  std::string content_type(parser.get()[http::field::content_type]);
  bool is_sse = content_type.find("text/event-stream") != std::string::npos;
  SseParser sse;
  ChunkAccumulator acc;
  std::string body;
  bool done = false;
  char tmp[8192];
  while (!parser.is_done()) {
    parser.get().body().data = tmp;
    parser.get().body().size = sizeof tmp;
    http::read(stream, buffer, parser, ec);
    if (ec == http::error::need_buffer) ec = {};
    if (ec) {
      out.status = UnavailableError(StrCat(where, ": reading response body: ", ec.message()));
      out.retryable = true;
      return out;
    }
    size_t n = sizeof tmp - parser.get().body().size;
    if (code == 200 && is_sse) {
      for (const SseEvent& ev : sse.Feed(std::string_view(tmp, n))) {
        Status s = ParseEventData(ev.data, acc, on_delta, done);
        if (!s.ok()) {
          out.status = s.WithContext(where);
          return out;
        }
      }
    } else {
      body.append(tmp, n);
    }
  }
  if (code != 200) {
    std::string msg = StrCat(where, ": HTTP ", code, " ", std::string(parser.get().reason()));
    if (!body.empty()) msg += StrCat(": ", body.substr(0, 2000));
    out.retryable = (code == 429 || code >= 500);
    if (code == 401 || code == 403) {
      out.status = PermissionDeniedError(msg + " (check the API key)");
    } else if (code == 404) {
      out.status = NotFoundError(msg + " (check the endpoint URL and model name)");
    } else if (code == 429) {
      out.status = ResourceExhaustedError(msg);
    } else if (code >= 500) {
      out.status = UnavailableError(msg);
    } else {
      out.status = InvalidArgumentError(msg);
    }
    return out;
  }
  if (is_sse) {
    if (!done) {
      out.status = UnavailableError(StrCat(where, ": stream ended without [DONE]"));
      out.retryable = true;
      return out;
    }
  } else {
    auto parsed = ParseJson(body, where);
    if (!parsed.ok()) {
      out.status = parsed.status();
      return out;
    }
    Status s = acc.SetFromResponse(*parsed);
    if (!s.ok()) {
      out.status = s.WithContext(where);
      return out;
    }
  }
  out.completion = acc.Finish();
  return out;
}

Attempt OneAttempt(const OpenAIClientOptions& opt, const ParsedUrl& url, const std::string& body,
                   const DeltaCallback& on_delta) {
  Attempt out;
  std::string where = StrCat(url.https ? "https://" : "http://", url.host, ":", url.port, url.path,
                             "/chat/completions");
  http::request<http::string_body> req{http::verb::post, url.path + "/chat/completions", 11};
  req.set(http::field::host, url.host);
  req.set(http::field::user_agent, "v4agent");
  req.set(http::field::content_type, "application/json");
  req.set(http::field::accept, opt.stream ? "text/event-stream" : "application/json");
  if (!opt.api_key.empty()) req.set(http::field::authorization, "Bearer " + opt.api_key);
  req.body() = body;
  req.prepare_payload();
  try {
    asio::io_context ioc;
    tcp::resolver resolver(ioc);
    beast::error_code ec;
    auto endpoints = resolver.resolve(url.host, url.port, ec);
    if (ec) {
      out.status = UnavailableError(StrCat(where, ": resolving ", url.host, ": ", ec.message()));
      out.retryable = true;
      return out;
    }
    if (!url.https) {
      tcp::socket socket(ioc);
      asio::connect(socket, endpoints, ec);
      if (ec) {
        out.status = UnavailableError(StrCat(where, ": connecting: ", ec.message()));
        out.retryable = true;
        return out;
      }
      Watchdog dog(socket.native_handle(), opt.timeout_seconds);
      out = Exchange(socket, req, where, on_delta);
      if (dog.fired()) {
        out.status = DeadlineExceededError(
            StrCat(where, ": no complete response within ", opt.timeout_seconds, " s"));
        out.retryable = true;
      }
      socket.shutdown(tcp::socket::shutdown_both, ec);
      return out;
    }
    asio::ssl::context ctx(asio::ssl::context::tls_client);
    if (opt.verify_tls) {
      if (opt.ca_file.empty()) {
        ctx.set_default_verify_paths();
      } else {
        beast::error_code load_ec;
        ctx.load_verify_file(opt.ca_file, load_ec);
        if (load_ec) {
          out.status = InvalidArgumentError(
              StrCat(where, ": CA file ", opt.ca_file, ": ", load_ec.message()));
          return out;
        }
      }
      ctx.set_verify_mode(asio::ssl::verify_peer);
    } else {
      ctx.set_verify_mode(asio::ssl::verify_none);
    }
    beast::ssl_stream<tcp::socket> stream(ioc, ctx);
    if (!SSL_set_tlsext_host_name(stream.native_handle(), url.host.c_str())) {
      out.status = InternalError(StrCat(where, ": setting TLS SNI failed"));
      return out;
    }
    if (opt.verify_tls) stream.set_verify_callback(asio::ssl::host_name_verification(url.host));
    asio::connect(stream.next_layer(), endpoints, ec);
    if (ec) {
      out.status = UnavailableError(StrCat(where, ": connecting: ", ec.message()));
      out.retryable = true;
      return out;
    }
    Watchdog dog(stream.next_layer().native_handle(), opt.timeout_seconds);
    stream.handshake(asio::ssl::stream_base::client, ec);
    if (ec) {
      out.status = UnavailableError(StrCat(where, ": TLS handshake: ", ec.message()));
      out.retryable = !dog.fired() ? false : true;
      return out;
    }
    out = Exchange(stream, req, where, on_delta);
    if (dog.fired()) {
      out.status = DeadlineExceededError(
          StrCat(where, ": no complete response within ", opt.timeout_seconds, " s"));
      out.retryable = true;
    }
    stream.shutdown(ec);  // servers often close without close_notify; not an error for us
    return out;
  } catch (const std::exception& e) {
    out.status = UnavailableError(StrCat(where, ": ", e.what()));
    out.retryable = true;
    return out;
  }
}

Json MessageToWire(const ChatMessage& m) {
  Json j{{"role", m.role}, {"content", m.content}};
  // DeepSeek's API wants the thinking of tool-calling assistant turns sent back verbatim.
  if (m.role == "assistant" && !m.reasoning_content.empty()) {
    j["reasoning_content"] = m.reasoning_content;
  }
  if (!m.tool_calls.empty()) {
    j["tool_calls"] = Json::array();
    for (const auto& c : m.tool_calls) {
      j["tool_calls"].push_back(Json{{"id", c.id},
                                     {"type", "function"},
                                     {"function", {{"name", c.name}, {"arguments", c.arguments}}}});
    }
  }
  if (m.role == "tool") j["tool_call_id"] = m.tool_call_id;
  return j;
}

void ReadUsage(const Json& usage, Completion& c) {
  if (!usage.is_object()) return;
  int64_t prompt = usage.value("prompt_tokens", int64_t{0});
  int64_t cached = 0;
  if (usage.contains("prompt_cache_hit_tokens")) {
    cached = usage.value("prompt_cache_hit_tokens", int64_t{0});  // DeepSeek
  } else if (auto it = usage.find("prompt_tokens_details"); it != usage.end() && it->is_object()) {
    cached = it->value("cached_tokens", int64_t{0});  // OpenAI / vLLM
  }
  c.tokens_reused = cached;
  c.tokens_prefilled = prompt - cached;
  c.tokens_generated = usage.value("completion_tokens", int64_t{0});
  c.context_tokens = prompt + c.tokens_generated;
}

}  // namespace

Result<ParsedUrl> ParseHttpUrl(const std::string& url) {
  ParsedUrl out;
  std::string_view rest = url;
  if (StartsWith(rest, "https://")) {
    out.https = true;
    rest.remove_prefix(8);
  } else if (StartsWith(rest, "http://")) {
    rest.remove_prefix(7);
  } else {
    return InvalidArgumentError(StrCat("endpoint ", url, ": must start with http:// or https://"));
  }
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  out.path = slash == std::string_view::npos ? "" : std::string(rest.substr(slash));
  while (!out.path.empty() && out.path.back() == '/') out.path.pop_back();
  if (StartsWith(authority, "[")) {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      return InvalidArgumentError(StrCat("endpoint ", url, ": unterminated IPv6 address"));
    }
    out.host = std::string(authority.substr(1, close - 1));
    authority.remove_prefix(close + 1);
    if (StartsWith(authority, ":")) out.port = std::string(authority.substr(1));
  } else {
    size_t colon = authority.rfind(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) out.port = std::string(authority.substr(colon + 1));
  }
  if (out.host.empty()) return InvalidArgumentError(StrCat("endpoint ", url, ": no host"));
  if (out.port.empty()) out.port = out.https ? "443" : "80";
  int64_t port = 0;
  if (!ParseInt64(out.port, &port) || port <= 0 || port > 65535) {
    return InvalidArgumentError(StrCat("endpoint ", url, ": bad port \"", out.port, "\""));
  }
  return out;
}

Json BuildChatRequestBody(const OpenAIClientOptions& opt, const CompletionRequest& request) {
  Json body{{"model", opt.model}, {"stream", opt.stream}, {"max_tokens", request.max_tokens}};
  if (opt.stream) body["stream_options"] = {{"include_usage", true}};
  body["messages"] = Json::array();
  for (const auto& m : request.messages) body["messages"].push_back(MessageToWire(m));
  if (!request.tools.empty()) {
    body["tools"] = Json::array();
    for (const auto& t : request.tools) {
      body["tools"].push_back(
          Json{{"type", "function"},
               {"function",
                {{"name", t.name}, {"description", t.description}, {"parameters", t.parameters}}}});
    }
  }
  // vLLM and SGLang pass these to the DeepSeek chat template; extra_body can override them.
  body["chat_template_kwargs"] = {{"thinking", request.thinking}};
  if (request.thinking && request.effort == "max") body["reasoning_effort"] = "max";
  for (auto it = opt.extra_body.begin(); it != opt.extra_body.end(); ++it) body[it.key()] = *it;
  return body;
}

Status ChunkAccumulator::AddChunk(const Json& chunk, const DeltaCallback& on_delta) {
  if (auto u = chunk.find("usage"); u != chunk.end()) ReadUsage(*u, c_);
  auto choices = chunk.find("choices");
  if (choices == chunk.end() || !choices->is_array() || choices->empty()) return Status::Ok();
  const Json& choice = (*choices)[0];
  if (auto fr = choice.find("finish_reason"); fr != choice.end() && fr->is_string()) {
    c_.finish_reason = fr->get<std::string>();
  }
  auto delta = choice.find("delta");
  if (delta == choice.end() || !delta->is_object()) return Status::Ok();
  if (auto r = delta->find("reasoning_content"); r != delta->end() && r->is_string()) {
    c_.reasoning_content += r->get<std::string>();
    if (on_delta) on_delta({"reasoning", r->get<std::string>()});
  }
  if (auto t = delta->find("content"); t != delta->end() && t->is_string()) {
    c_.content += t->get<std::string>();
    if (on_delta) on_delta({"content", t->get<std::string>()});
  }
  if (auto tc = delta->find("tool_calls"); tc != delta->end() && tc->is_array()) {
    for (const Json& part : *tc) {
      size_t index = part.value("index", static_cast<size_t>(calls_.size()));
      if (index > calls_.size() + 64) {
        return DataLossError(StrCat("tool call index ", index, " out of range"));
      }
      if (index >= calls_.size()) calls_.resize(index + 1);
      ToolCall& call = calls_[index];
      if (auto id = part.find("id"); id != part.end() && id->is_string()) call.id = *id;
      if (auto fn = part.find("function"); fn != part.end() && fn->is_object()) {
        if (auto n = fn->find("name"); n != fn->end() && n->is_string()) {
          call.name += n->get<std::string>();
        }
        if (auto a = fn->find("arguments"); a != fn->end() && a->is_string()) {
          call.arguments += a->get<std::string>();
          if (on_delta) on_delta({"tool_call", a->get<std::string>()});
        }
      }
    }
  }
  return Status::Ok();
}

Status ChunkAccumulator::SetFromResponse(const Json& response) {
  if (auto u = response.find("usage"); u != response.end()) ReadUsage(*u, c_);
  auto choices = response.find("choices");
  if (choices == response.end() || !choices->is_array() || choices->empty()) {
    return DataLossError("response has no choices");
  }
  const Json& choice = (*choices)[0];
  c_.finish_reason = choice.value("finish_reason", "");
  auto msg = choice.find("message");
  if (msg == choice.end() || !msg->is_object()) return DataLossError("choice has no message");
  if (auto t = msg->find("content"); t != msg->end() && t->is_string()) c_.content = *t;
  if (auto r = msg->find("reasoning_content"); r != msg->end() && r->is_string()) {
    c_.reasoning_content = *r;
  }
  if (auto tc = msg->find("tool_calls"); tc != msg->end() && tc->is_array()) {
    for (const Json& part : *tc) {
      ToolCall call;
      call.id = part.value("id", "");
      if (auto fn = part.find("function"); fn != part.end() && fn->is_object()) {
        call.name = fn->value("name", "");
        call.arguments = fn->value("arguments", "");
      }
      calls_.push_back(std::move(call));
    }
  }
  return Status::Ok();
}

Completion ChunkAccumulator::Finish() {
  for (size_t i = 0; i < calls_.size(); ++i) {
    if (calls_[i].id.empty()) calls_[i].id = StrCat("call_", i);
  }
  c_.tool_calls = std::move(calls_);
  calls_.clear();
  c_.raw = c_.content;
  return std::move(c_);
}

Result<Completion> OpenAIClient::Complete(const CompletionRequest& request,
                                          const DeltaCallback& on_delta) {
  V4_ASSIGN_OR_RETURN(ParsedUrl url, ParseHttpUrl(options_.endpoint));
  std::string body = DumpJson(BuildChatRequestBody(options_, request));
  int backoff_ms = options_.backoff_initial_ms;
  attempts_ = 0;
  for (int attempt = 0;; ++attempt) {
    ++attempts_;
    Attempt a = OneAttempt(options_, url, body, on_delta);
    if (a.status.ok()) return std::move(a.completion);
    if (!a.retryable || attempt >= options_.max_retries) {
      return a.status.WithContext(StrCat("after ", attempt + 1, " attempt(s)"));
    }
    V4_LOG(WARNING) << a.status.message() << "; retrying in " << backoff_ms << " ms";
    std::this_thread::sleep_for(std::chrono::milliseconds(backoff_ms));
    backoff_ms *= 2;
  }
}

}  // namespace v4agent::agent
