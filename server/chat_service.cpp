#include "server/chat_service.h"

#include <chrono>
#include <ctime>

#include "common/strings.h"
#include "dsml/markers.h"
#include "dsml/prompt_encoder.h"
#include "dsml/stream_parser.h"
#include "engine/sampler/sampler.h"
#include "server/stop_strings.h"

namespace v4agent::server {

ChatService::ChatService(engine::Model* model, const engine::Tokenizer* tokenizer,
                         ServiceOptions options)
    : model_(model),
      tokenizer_(tokenizer),
      options_(std::move(options)),
      scheduler_(model, tokenizer, options_.scheduler) {
  if (auto eos = tokenizer_->TokenId(dsml::kEos)) stop_ids_.push_back(*eos);
}

std::string ChatService::RawFor(const OrderedJson& message) {
  std::lock_guard<std::mutex> lock(raw_mu_);
  auto it = raw_by_key_.find(AssistantKey(message));
  return it == raw_by_key_.end() ? "" : it->second;
}

std::optional<ApiError> ChatService::CheckModel(const std::string& model) const {
  if (model == options_.served_name) return std::nullopt;
  ApiError e;
  e.http_status = 404;
  e.type = "invalid_request_error";
  e.code = "model_not_found";
  e.param = "model";
  e.message = StrCat("The model `", model, "` does not exist; this server serves `",
                     options_.served_name, "`");
  return e;
}

std::optional<ApiError> ChatService::SetUp(const GenerationParams& p, int64_t prompt_tokens,
                                           const char* param, Job* job) {
  // Counted before the engine sees it, so a prompt longer than the context never reaches a
  // kept conversation.
  const int64_t context = model_->max_context();
  if (prompt_tokens >= context) {
    ApiError e;
    e.code = "context_length_exceeded";
    e.param = param;
    e.message = StrCat("This model's maximum context length is ", context,
                       " tokens. However, your prompt resulted in ", prompt_tokens, " tokens.");
    return e;
  }
  int64_t budget = context - prompt_tokens;
  if (p.max_tokens > 0) budget = std::min(budget, p.max_tokens);
  if (options_.max_tokens_cap > 0) budget = std::min(budget, options_.max_tokens_cap);
  job->sampling.temperature = static_cast<float>(p.temperature);
  job->sampling.top_p = static_cast<float>(p.top_p);
  job->sampling.seed = p.seed.value_or(next_id_.load() * 0x9E3779B97F4A7C15ull);
  job->max_tokens = std::max<int64_t>(budget, 1);
  job->stop_ids = stop_ids_;
  return std::nullopt;
}

std::optional<ApiError> ChatService::RunJob(Job& job) {
  scheduler_.Run(job);
  if (job.status.ok()) return std::nullopt;
  ApiError e;
  e.http_status = 500;
  e.type = "server_error";
  e.message = std::string(job.status.message());
  return e;
}

Json ChatService::Envelope(const std::string& id, const char* object, int64_t created,
                           Json choice) const {
  return Json{{"id", id},
              {"object", object},
              {"created", created},
              {"model", options_.served_name},
              {"choices", Json::array({std::move(choice)})}};
}

Json ChatService::UsageChunk(const std::string& id, const char* object, int64_t created,
                             const Json& usage) const {
  Json c = Envelope(id, object, created, Json());
  c["choices"] = Json::array();
  c["usage"] = usage;
  return c;
}

Json ChatService::Usage(const Job& job) {
  const int64_t generated = static_cast<int64_t>(job.tokens.size());
  return Json{{"prompt_tokens", job.prompt_tokens},
              {"completion_tokens", generated},
              {"total_tokens", job.prompt_tokens + generated},
              {"prompt_tokens_details", {{"cached_tokens", job.cached_tokens}}}};
}

void ChatService::CountTokens(const Job& job, const char* route, double seconds) {
  {
    std::lock_guard<std::mutex> lock(metrics_mu_);
    tokens_prefilled_ += job.prefilled_tokens;
    tokens_reused_ += job.cached_tokens;
    tokens_generated_ += static_cast<int64_t>(job.tokens.size());
  }
  CountRequest(route, 200, seconds);
}

std::variant<Json, ApiError> ChatService::Complete(const ChatRequest& req,
                                                   const std::function<bool(const Json&)>& emit) {
  if (auto e = CheckModel(req.model)) return *e;
  // Raw bytes of assistant turns we generated, so re-rendering matches the cache.
  dsml::Conversation conv = req.conversation;
  for (auto& m : conv.messages) {
    if (m.value("role", "") == "assistant" && !m.contains("raw")) {
      if (std::string raw = RawFor(m); !raw.empty()) m["raw"] = raw;
    }
  }
  auto prompt = dsml::RenderPrompt(conv);
  if (!prompt.ok()) {
    ApiError e;
    e.message = std::string(prompt.status().message());
    e.param = "messages";
    return e;
  }
  const auto start = std::chrono::steady_clock::now();
  const int64_t prompt_estimate = static_cast<int64_t>(tokenizer_->Encode(*prompt, true).size());
  Job job;
  if (auto e = SetUp(req, prompt_estimate, "messages", &job)) return *e;
  job.prompt = *prompt;

  const std::string id = StrCat("chatcmpl-", next_id_++);
  const int64_t created = static_cast<int64_t>(std::time(nullptr));
  auto chunk = [&](Json delta, Json finish) {
    return Envelope(
        id, "chat.completion.chunk", created,
        Json{{"index", 0}, {"delta", std::move(delta)}, {"finish_reason", std::move(finish)}});
  };
  bool client_gone = false;
  if (emit && !emit(chunk(Json{{"role", "assistant"}, {"content", ""}}, nullptr))) {
    client_gone = true;
  }
  engine::StreamDecoder decoder(*tokenizer_);
  const dsml::ThinkingMode mode = req.conversation.thinking_mode;
  const OrderedJson* tools = req.tools.empty() ? nullptr : &req.tools;
  dsml::StreamParser parser(mode, tools);
  int call_index = 0;
  auto forward = [&](const std::vector<dsml::Event>& events) {
    for (const auto& e : events) {
      if (client_gone) return;
      Json delta;
      if (e.kind == dsml::EventKind::kReasoningDelta) {
        delta = Json{{"reasoning_content", e.text}};
      } else if (e.kind == dsml::EventKind::kContentDelta) {
        delta = Json{{"content", e.text}};
      } else if (e.kind == dsml::EventKind::kToolCallEnd && e.valid) {
        delta = Json{
            {"tool_calls",
             Json::array({Json{{"index", call_index},
                               {"id", StrCat("call_", id.substr(8), "_", call_index)},
                               {"type", "function"},
                               {"function", {{"name", e.text}, {"arguments", e.arguments}}}}})}};
        ++call_index;
      } else {
        continue;
      }
      if (!emit(chunk(delta, nullptr))) client_gone = true;
    }
  };
  StopStrings stops(req.stop);
  auto show = [&](const std::string& text) {
    if (!emit || text.empty() || client_gone) return;
    std::vector<dsml::Event> events;
    parser.Feed(text, &events);
    forward(events);
  };
  // Runs on the scheduler's thread while this one waits; emit only queues bytes.
  job.on_token = [&](int32_t tok) {
    show(stops.Feed(decoder.Push(tok)));
    return !stops.hit() && !client_gone;
  };
  if (auto e = RunJob(job)) return *e;
  const std::string raw = tokenizer_->Decode(job.tokens);

  show(stops.Flush());
  dsml::ParsedMessage parsed = dsml::ParseCompletion(
      std::string_view(raw).substr(0, stops.hit() ? stops.at() : raw.size()), mode, tools);
  OrderedJson message{{"role", "assistant"}, {"content", parsed.content}};
  if (!parsed.reasoning_content.empty()) message["reasoning_content"] = parsed.reasoning_content;
  if (!parsed.tool_calls.empty()) {
    message["tool_calls"] = OrderedJson::array();
    for (size_t i = 0; i < parsed.tool_calls.size(); ++i) {
      message["tool_calls"].push_back(OrderedJson{
          {"id", StrCat("call_", id.substr(8), "_", i)},
          {"type", "function"},
          {"function",
           {{"name", parsed.tool_calls[i].name}, {"arguments", parsed.tool_calls[i].arguments}}}});
    }
  }
  {
    std::lock_guard<std::mutex> lock(raw_mu_);
    if (!stops.hit()) raw_by_key_[AssistantKey(message)] = raw;
    if (raw_by_key_.size() > 4096) raw_by_key_.erase(raw_by_key_.begin());
  }
  const std::string finish = !parsed.tool_calls.empty() ? "tool_calls"
                             : stops.hit()              ? "stop"
                             : job.stopped_by_token     ? "stop"
                                                        : "length";
  const Json usage = Usage(job);
  CountTokens(job, "/v1/chat/completions",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  if (emit) {
    if (!client_gone) {
      std::vector<dsml::Event> events;
      parser.Finish(&events);
      forward(events);
    }
    if (!client_gone) emit(chunk(Json::object(), finish));
    if (!client_gone && req.include_usage) {
      emit(UsageChunk(id, "chat.completion.chunk", created, usage));
    }
    return Json();
  }
  Json reply = Envelope(
      id, "chat.completion", created,
      Json{{"index", 0}, {"message", Json::parse(DumpJson(message))}, {"finish_reason", finish}});
  reply["usage"] = usage;
  return reply;
}

std::variant<Json, ApiError> ChatService::CompleteText(
    const TextRequest& req, const std::function<bool(const Json&)>& emit) {
  if (auto e = CheckModel(req.model)) return *e;
  const auto start = std::chrono::steady_clock::now();
  Job job;
  if (!req.ids.empty()) {
    job.prompt_ids = req.ids;
  } else {
    job.prompt = req.text;
  }
  const int64_t prompt_tokens =
      req.ids.empty() ? static_cast<int64_t>(tokenizer_->Encode(req.text, true).size())
                      : static_cast<int64_t>(req.ids.size());
  if (auto e = SetUp(req, prompt_tokens, "prompt", &job)) return *e;
  const std::string id = StrCat("cmpl-", next_id_++);
  const int64_t created = static_cast<int64_t>(std::time(nullptr));
  auto chunk = [&](const std::string& text, Json finish) {
    return Envelope(id, "text_completion", created,
                    Json{{"text", text},
                         {"index", 0},
                         {"logprobs", nullptr},
                         {"finish_reason", std::move(finish)}});
  };
  const std::string prompt_text = req.ids.empty() ? req.text : tokenizer_->Decode(req.ids);
  bool client_gone = false;
  auto show = [&](const std::string& text) {
    if (emit && !text.empty() && !client_gone && !emit(chunk(text, nullptr))) client_gone = true;
  };
  if (req.echo) show(prompt_text);
  engine::StreamDecoder decoder(*tokenizer_);
  StopStrings stops(req.stop);
  job.on_token = [&](int32_t tok) {
    show(stops.Feed(decoder.Push(tok)));
    return !stops.hit() && !client_gone;
  };
  if (auto e = RunJob(job)) return *e;
  show(stops.Flush());
  std::string text = tokenizer_->Decode(job.tokens);
  if (stops.hit()) text.resize(std::min(text.size(), stops.at()));
  const std::string finish = stops.hit() || job.stopped_by_token ? "stop" : "length";
  const Json usage = Usage(job);
  CountTokens(job, "/v1/completions",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  if (emit) {
    if (!client_gone) emit(chunk("", finish));
    if (!client_gone && req.include_usage) {
      emit(UsageChunk(id, "text_completion", created, usage));
    }
    return Json();
  }
  Json reply = chunk(req.echo ? prompt_text + text : text, finish);
  reply["usage"] = usage;
  return reply;
}

void ChatService::CountRequest(const std::string& route, int status, double seconds) {
  std::lock_guard<std::mutex> lock(metrics_mu_);
  requests_[StrCat(route, " ", status)]++;
  size_t b = 0;
  while (b < latency_buckets_.size() && seconds > latency_buckets_[b]) ++b;
  latency_counts_[b]++;
  latency_sum_ += seconds;
  ++latency_n_;
}

std::string ChatService::MetricsText() {
  std::string out;
  const SchedulerStats st = scheduler_.Stats();
  std::lock_guard<std::mutex> lock(metrics_mu_);
  out += "# TYPE v4agent_requests_total counter\n";
  for (const auto& [k, v] : requests_) {
    const size_t sp = k.rfind(' ');
    out += StrCat("v4agent_requests_total{route=\"", k.substr(0, sp), "\",status=\"",
                  k.substr(sp + 1), "\"} ", v, "\n");
  }
  out += StrCat("# TYPE v4agent_tokens_prefilled_total counter\nv4agent_tokens_prefilled_total ",
                tokens_prefilled_, "\n");
  out += StrCat("# TYPE v4agent_tokens_reused_total counter\nv4agent_tokens_reused_total ",
                tokens_reused_, "\n");
  out += StrCat("# TYPE v4agent_tokens_generated_total counter\nv4agent_tokens_generated_total ",
                tokens_generated_, "\n");
  out += StrCat("# TYPE v4agent_queue_depth gauge\nv4agent_queue_depth ", st.queued, "\n");
  out += StrCat("# TYPE v4agent_generating gauge\nv4agent_generating ", st.generating, "\n");
  out += StrCat("# TYPE v4agent_sessions gauge\nv4agent_sessions ", st.sessions, "\n");
  out += StrCat("# TYPE v4agent_sessions_stored gauge\nv4agent_sessions_stored ", st.stored, "\n");
  out += StrCat("# TYPE v4agent_tokens_from_store_total counter\nv4agent_tokens_from_store_total ",
                st.tokens_from_store, "\n");
  out += StrCat("# TYPE v4agent_cache_bytes gauge\nv4agent_cache_bytes ", st.cache_bytes, "\n");
  out += StrCat("# TYPE v4agent_decode_steps_total counter\nv4agent_decode_steps_total ",
                st.decode_steps, "\n");
  out += StrCat("# TYPE v4agent_decode_rows_total counter\nv4agent_decode_rows_total ",
                st.decode_rows, "\n");
  out += StrCat("# TYPE v4agent_decode_batch_max gauge\nv4agent_decode_batch_max ", st.max_batch,
                "\n");
  out += "# TYPE v4agent_request_seconds histogram\n";
  int64_t cumulative = 0;
  for (size_t i = 0; i < latency_buckets_.size(); ++i) {
    cumulative += latency_counts_[i];
    out += StrCat("v4agent_request_seconds_bucket{le=\"", latency_buckets_[i], "\"} ", cumulative,
                  "\n");
  }
  cumulative += latency_counts_.back();
  out += StrCat("v4agent_request_seconds_bucket{le=\"+Inf\"} ", cumulative, "\n");
  out += StrCat("v4agent_request_seconds_sum ", latency_sum_, "\n");
  out += StrCat("v4agent_request_seconds_count ", latency_n_, "\n");
  return out;
}

}  // namespace v4agent::server
