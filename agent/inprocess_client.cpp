#include "agent/inprocess_client.h"

#include <algorithm>

#include "common/file_util.h"
#include "common/logging.h"
#include "common/stopwatch.h"
#include "common/strings.h"

namespace v4agent::agent {

InProcessClient::InProcessClient(engine::Model* model, const TokenCodec* codec,
                                 const PromptRenderer* renderer, InProcessOptions options)
    : model_(model),
      codec_(codec),
      renderer_(renderer),
      options_(std::move(options)),
      session_(std::make_unique<engine::Session>(model, options_.session)) {}

Status InProcessClient::ResumeFrom(const std::vector<Completion>& turns) {
  std::vector<int32_t> ids;
  std::string text;
  for (size_t i = 0; i < turns.size(); ++i) {
    const Completion& t = turns[i];
    if (t.cache_start_tokens < 0 || t.cache_start_text < 0 ||
        t.cache_start_tokens > static_cast<int64_t>(ids.size()) ||
        t.cache_start_text > static_cast<int64_t>(text.size())) {
      return DataLossError(StrCat("resume: turn ", i + 1, " has no usable cache record"));
    }
    ids.resize(t.cache_start_tokens);
    text.resize(t.cache_start_text);
    ids.insert(ids.end(), t.prompt_ids.begin(), t.prompt_ids.end());
    text += t.prompt_delta;
    ids.insert(ids.end(), t.output_ids.begin(), t.output_ids.end());
    text += t.raw;
  }
  session_.reset();
  resume_restored_ = 0;
  resume_fallback_.clear();
  if (const std::string& path = options_.session_path; !path.empty()) {
    if (!PathExists(path)) {
      resume_fallback_ = StrCat("no session file at ", path);
    } else if (auto loaded = engine::Session::Load(model_, path, options_.session); !loaded.ok()) {
      resume_fallback_ = loaded.status().message();
    } else if ((*loaded)->length() > static_cast<int64_t>(ids.size()) ||
               !std::equal((*loaded)->tokens().begin(), (*loaded)->tokens().end(), ids.begin())) {
      resume_fallback_ = StrCat(path, " holds other tokens than the trajectory's turns");
    } else {
      session_ = std::move(loaded).value();
      resume_restored_ = session_->length();
    }
  }
  if (!session_) session_ = std::make_unique<engine::Session>(model_, options_.session);
  if (session_->length() < static_cast<int64_t>(ids.size())) {
    V4_RETURN_IF_ERROR(session_->Append(std::span<const int32_t>(ids).subspan(session_->length())));
  }
  cached_text_ = std::move(text);
  boundaries_ = {Boundary{cached_text_.size(), session_->length()}};
  return Status::Ok();
}

Result<Completion> InProcessClient::Complete(const CompletionRequest& request,
                                             const DeltaCallback& on_delta) {
  V4_ASSIGN_OR_RETURN(std::string text,
                      renderer_->Render(request.messages, request.tools, request.thinking));
  size_t common = 0;
  size_t limit = std::min(text.size(), cached_text_.size());
  while (common < limit && text[common] == cached_text_[common]) ++common;
  if (common < cached_text_.size()) {
    // Not a pure extension: go back to the last append boundary inside the common prefix.
    Boundary keep{0, 0};
    while (!boundaries_.empty() && boundaries_.back().text_end > common) boundaries_.pop_back();
    if (!boundaries_.empty()) keep = boundaries_.back();
    V4_RETURN_IF_ERROR(session_->Rewind(keep.token_end));
    cached_text_.resize(keep.text_end);
    ++rewinds_;
  }
  Completion c;
  Stopwatch prefill;
  c.cache_start_tokens = session_->length();
  c.cache_start_text = static_cast<int64_t>(cached_text_.size());
  c.prompt_delta = text.substr(cached_text_.size());
  std::vector<int32_t> ids;
  if (session_->length() == 0 && cached_text_.empty()) {
    V4_ASSIGN_OR_RETURN(ids, AppendFirstPrompt(request, text, &c.tokens_from_store));
    c.tokens_reused = c.tokens_from_store;
    c.tokens_prefilled = static_cast<int64_t>(ids.size()) - c.tokens_from_store;
  } else {
    ids = codec_->Encode(c.prompt_delta);
    c.tokens_reused = session_->length();
    if (!ids.empty()) V4_RETURN_IF_ERROR(session_->Append(ids));
    c.tokens_prefilled = static_cast<int64_t>(ids.size());
  }
  last_prompt_ids_ = ids;
  cached_text_ = text;
  boundaries_.push_back(Boundary{cached_text_.size(), session_->length()});
  c.seconds_prefill = prefill.ElapsedSeconds();

  Stopwatch gen;
  engine::Sampler sampler(options_.sampler);
  OutputConstraint* constraint = options_.constraint.get();
  Status constraint_status;
  if (constraint) {
    V4_RETURN_IF_ERROR(constraint->Begin(request));
    sampler.set_mask_hook([constraint](std::span<float> logits) { constraint->Mask(logits); });
  }
  auto result = session_->Generate(
      sampler, request.max_tokens,
      [&](int32_t id) {
        if (on_delta) on_delta({"content", codec_->Decode({id})});
        if (constraint) {
          constraint_status = constraint->Accept(id);
          if (!constraint_status.ok()) return false;
        }
        return true;
      },
      options_.stop_ids);
  if (!result.ok()) return result.status().WithContext("in-process generation");
  c.seconds_generate = gen.ElapsedSeconds();
  std::string raw = codec_->Decode(result->tokens);
  Completion parsed = renderer_->Parse(raw);
  parsed.raw = raw;
  parsed.tokens_prefilled = c.tokens_prefilled;
  parsed.tokens_reused = c.tokens_reused;
  parsed.tokens_from_store = c.tokens_from_store;
  parsed.tokens_generated = static_cast<int64_t>(result->tokens.size());
  parsed.context_tokens = session_->length();
  parsed.seconds_prefill = c.seconds_prefill;
  parsed.seconds_generate = c.seconds_generate;
  parsed.cache_start_tokens = c.cache_start_tokens;
  parsed.cache_start_text = c.cache_start_text;
  parsed.prompt_delta = std::move(c.prompt_delta);
  parsed.prompt_ids = std::move(ids);
  parsed.output_ids = result->tokens;
  if (parsed.finish_reason.empty()) {
    parsed.finish_reason = result->stopped_by_token ? "stop" : "length";
  }
  if (!constraint_status.ok() && parsed.format_error.empty()) {
    parsed.format_error = StrCat("output stopped by the constraint: ", constraint_status.message());
  }
  cached_text_ += raw;
  boundaries_.push_back(Boundary{cached_text_.size(), session_->length()});
  if (!options_.session_path.empty()) {
    // Best effort: a run that cannot save only loses the fast resume.
    if (Status st = session_->Save(options_.session_path); !st.ok()) {
      V4_LOG(WARNING) << "session not saved: " << st.message();
    }
  }
  return parsed;
}

Result<std::vector<int32_t>> InProcessClient::AppendFirstPrompt(const CompletionRequest& request,
                                                                const std::string& text,
                                                                int64_t* from_store) {
  size_t split = renderer_->SharedPrefixLength(request.messages, request.tools, request.thinking);
  if (split > text.size()) split = 0;
  // The two pieces are encoded apart (as every turn's delta is), whether or not a store is
  // used, so the ids never depend on the cache.
  std::vector<int32_t> ids = codec_->Encode(std::string_view(text).substr(0, split));
  const int64_t shared = static_cast<int64_t>(ids.size());
  std::vector<int32_t> rest = codec_->Encode(std::string_view(text).substr(split));
  ids.insert(ids.end(), rest.begin(), rest.end());
  *from_store = 0;
  if (options_.store != nullptr) {
    V4_ASSIGN_OR_RETURN(auto taken, options_.store->Take(model_, ids, options_.session));
    if (taken.session) {
      session_ = std::move(taken.session);
      *from_store = taken.from_store;
    }
  }
  // What the store did not hold, with a snapshot at the end of the shared block.
  auto all = std::span<const int32_t>(ids);
  const int64_t have = session_->length();
  if (have < shared) V4_RETURN_IF_ERROR(session_->Append(all.subspan(have, shared - have)));
  const int64_t from = std::max(have, shared);
  V4_RETURN_IF_ERROR(session_->Append(all.subspan(from)));
  if (options_.store != nullptr) {
    if (Status st = options_.store->Put(*session_); !st.ok()) {
      V4_LOG(WARNING) << "session store: " << st.message();
    }
  }
  return ids;
}

}  // namespace v4agent::agent
