// OpenAIClient: chat completions over HTTP or HTTPS (vLLM, SGLang, DeepSeek's API) with SSE
// streaming, tool calls, reasoning_content round-tripped as DeepSeek's API expects, and retries
// with exponential backoff on connection failures, 429 and 5xx. Boost.Beast and OpenSSL stay
// inside openai_client.cpp; never throws across this header.
#pragma once

#include <string>

#include "agent/model_client.h"

namespace v4agent::agent {

struct OpenAIClientOptions {
  std::string endpoint;  // base URL, e.g. https://api.deepseek.com or http://127.0.0.1:8000/v1
  std::string model;
  std::string api_key;  // sent as a Bearer token when non-empty
  int max_retries = 3;
  int backoff_initial_ms = 500;  // doubles per retry
  double timeout_seconds = 600;  // per request (connect + whole stream)
  bool stream = true;
  bool verify_tls = true;
  std::string ca_file;  // PEM bundle to trust instead of the system store (self-hosted servers)
  Json extra_body = Json::object();  // merged into the request body (server-specific knobs)
};

struct ParsedUrl {
  bool https = false;
  std::string host;
  std::string port;
  std::string path;  // without trailing slash; "" for the root
};
Result<ParsedUrl> ParseHttpUrl(const std::string& url);

// The JSON body sent for a request (exposed so tests can check the wire format).
Json BuildChatRequestBody(const OpenAIClientOptions& options, const CompletionRequest& request);

// Accumulates streamed chat.completion.chunk objects into one Completion.
class ChunkAccumulator {
 public:
  Status AddChunk(const Json& chunk, const DeltaCallback& on_delta);
  // Also accepts a non-streamed chat.completion response.
  Status SetFromResponse(const Json& response);
  Completion Finish();

 private:
  Completion c_;
  std::vector<ToolCall> calls_;
};

class OpenAIClient : public ModelClient {
 public:
  explicit OpenAIClient(OpenAIClientOptions options) : options_(std::move(options)) {}
  std::string Name() const override { return "openai:" + options_.model; }
  Result<Completion> Complete(const CompletionRequest& request,
                              const DeltaCallback& on_delta) override;
  int attempts_last_call() const { return attempts_; }

 private:
  OpenAIClientOptions options_;
  int attempts_ = 0;
};

}  // namespace v4agent::agent
