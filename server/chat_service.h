// Chat completions on the in-process engine for `v4agent serve`: a checked request
// (chat_api.h) is rendered to the V4 prompt, matched against the live conversations
// (session_pool.h) so only its new suffix is prefilled, generated from, and shaped into an
// OpenAI response or a stream of chunks with usage (cached tokens included). Requests run on
// the scheduler (scheduler.h), which batches the decode steps of all of them. Also the
// counters /metrics shows.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <variant>

#include "common/json.h"
#include "engine/model/model.h"
#include "engine/tokenizer/tokenizer.h"
#include "server/chat_api.h"
#include "server/scheduler.h"

namespace v4agent::server {

struct ServiceOptions {
  std::string served_name;     // the model name requests must use
  int64_t max_tokens_cap = 0;  // per request; 0: the context
  SchedulerOptions scheduler;  // sessions, cache memory, batch size
};

class ChatService {
 public:
  ChatService(engine::Model* model, const engine::Tokenizer* tokenizer, ServiceOptions options);

  // Streaming when `emit` is set: each chunk is handed to it (false: the client is gone, stop
  // generating). Returns the response object (non-streaming) or null after a stream.
  std::variant<Json, ApiError> Complete(const ChatRequest& request,
                                        const std::function<bool(const Json&)>& emit);

  // POST /v1/completions: a raw prompt continued without a template; chunks and response
  // as OpenAI's legacy completions shape them.
  std::variant<Json, ApiError> CompleteText(const TextRequest& request,
                                            const std::function<bool(const Json&)>& emit);

  const Status& setup_status() const { return scheduler_.setup_status(); }
  const std::string& served_name() const { return options_.served_name; }
  int64_t max_context() const { return model_->max_context(); }
  int64_t vocab_size() const { return model_->config().vocab_size; }
  std::string MetricsText();
  // Counts a request that ended before reaching the engine (a bad body, auth, routing).
  void CountRequest(const std::string& route, int status, double seconds);

 private:
  std::string RawFor(const OrderedJson& message);
  std::optional<ApiError> CheckModel(const std::string& model) const;
  // Sampling, budget (within the context left after `prompt_tokens`) and stop ids of `job`;
  // an error when the prompt leaves no room (`param` names the request field).
  std::optional<ApiError> SetUp(const GenerationParams& p, int64_t prompt_tokens, const char* param,
                                Job* job);
  std::optional<ApiError> RunJob(Job& job);  // on the scheduler; its error as a 500
  static Json Usage(const Job& job);
  // {"id", "object", "created", "model", "choices": [choice]}: every response and chunk.
  Json Envelope(const std::string& id, const char* object, int64_t created, Json choice) const;
  // The last chunk of a stream that asked for usage: no choices, the usage.
  Json UsageChunk(const std::string& id, const char* object, int64_t created,
                  const Json& usage) const;
  void CountTokens(const Job& job, const char* route, double seconds);

  engine::Model* model_;
  const engine::Tokenizer* tokenizer_;
  ServiceOptions options_;
  std::mutex raw_mu_;
  std::map<std::string, std::string> raw_by_key_;  // assistant turns we generated
  std::vector<int32_t> stop_ids_;
  Scheduler scheduler_;  // last: its thread stops before the rest goes
  std::atomic<uint64_t> next_id_{1};
  // Metrics.
  std::mutex metrics_mu_;
  std::map<std::string, int64_t> requests_;  // "route status" -> count
  int64_t tokens_prefilled_ = 0, tokens_reused_ = 0, tokens_generated_ = 0;
  std::vector<double> latency_buckets_ = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120};
  std::vector<int64_t> latency_counts_ = std::vector<int64_t>(12, 0);
  double latency_sum_ = 0;
  int64_t latency_n_ = 0;
};

}  // namespace v4agent::server
