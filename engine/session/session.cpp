#include "engine/session/session.h"

#include <algorithm>

#include "common/stopwatch.h"
#include "common/strings.h"

namespace v4agent::engine {

Session::Session(Model* model, const SessionOptions& options)
    : model_(model), options_(options), cache_(model->NewCache()) {
  if (options_.chunk_size <= 0) options_.chunk_size = 256;
  TakeMark();
}

void Session::TakeMark() {
  if (!marks_.empty() && marks_.back().length == length()) return;
  marks_.push_back({length(), cache_->TakeSnapshot(), last_logits_});
  if (static_cast<int64_t>(marks_.size()) > options_.max_snapshots) {
    // Keep the empty-sequence mark so Rewind can always succeed.
    marks_.erase(marks_.begin() + 1);
  }
}

Status Session::Run(std::span<const int32_t> ids) {
  for (size_t off = 0; off < ids.size(); off += static_cast<size_t>(options_.chunk_size)) {
    size_t n = std::min(ids.size() - off, static_cast<size_t>(options_.chunk_size));
    V4_RETURN_IF_ERROR(model_->Forward(*cache_, ids.subspan(off, n), false, &last_logits_));
    tokens_.insert(tokens_.end(), ids.begin() + off, ids.begin() + off + n);
  }
  return Status::Ok();
}

Status Session::Append(std::span<const int32_t> ids, bool snapshot) {
  if (ids.empty()) return Status::Ok();
  const ModelConfig& c = model_->config();
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= c.vocab_size) {
      return OutOfRangeError(StrCat("Append: token id ", ids[i], " at index ", i,
                                    " is outside the vocabulary [0, ", c.vocab_size, ")"));
    }
  }
  if (length() + static_cast<int64_t>(ids.size()) > model_->max_context()) {
    return OutOfRangeError(StrCat("Append: ", length(), " + ", ids.size(),
                                  " tokens exceed the context limit of ", model_->max_context()));
  }
  Stopwatch sw;
  stats_.last_append_reused = length();
  stats_.last_append_tokens = static_cast<int64_t>(ids.size());
  V4_RETURN_IF_ERROR(Run(ids));
  stats_.tokens_prefilled += static_cast<int64_t>(ids.size());
  stats_.prefill_seconds += sw.ElapsedSeconds();
  if (snapshot) TakeMark();
  return Status::Ok();
}

Status Session::AppendEach(std::span<Session* const> sessions, std::span<const int32_t> ids) {
  if (sessions.size() != ids.size() || sessions.empty()) {
    return InvalidArgumentError(StrCat("AppendEach: ", sessions.size(), " sessions and ",
                                       ids.size(), " tokens (one token per session)"));
  }
  Model* model = sessions[0]->model_;
  std::vector<SequenceCache*> caches;
  for (size_t i = 0; i < sessions.size(); ++i) {
    if (sessions[i]->model_ != model) {
      return InvalidArgumentError(
          StrCat("AppendEach: session ", i, " runs another model than session 0"));
    }
    caches.push_back(sessions[i]->cache_.get());
  }
  Stopwatch sw;
  std::vector<float> logits;
  V4_RETURN_IF_ERROR(model->ForwardBatch(caches, ids, &logits));
  const size_t vocab = logits.size() / sessions.size();
  const double seconds = sw.ElapsedSeconds();
  for (size_t i = 0; i < sessions.size(); ++i) {
    Session& s = *sessions[i];
    s.tokens_.push_back(ids[i]);
    s.last_logits_.assign(logits.begin() + i * vocab, logits.begin() + (i + 1) * vocab);
    s.stats_.tokens_generated++;
    s.stats_.decode_seconds += seconds;
  }
  return Status::Ok();
}

Result<Session::GenerateResult> Session::Generate(Sampler& sampler, int64_t max_tokens,
                                                  const std::function<bool(int32_t)>& on_token,
                                                  std::span<const int32_t> stop_ids) {
  if (last_logits_.empty()) {
    return FailedPreconditionError("Generate: the session is empty; Append a prompt first");
  }
  GenerateResult out;
  Stopwatch sw;
  for (int64_t i = 0; i < max_tokens; ++i) {
    int32_t id = sampler.Sample(last_logits_);
    if (id < 0) return InternalError("Generate: every token was masked out");
    if (length() + 1 > model_->max_context()) {
      return OutOfRangeError(
          StrCat("Generate: context limit of ", model_->max_context(), " reached"));
    }
    int32_t one[1] = {id};
    V4_RETURN_IF_ERROR(Run(one));
    stats_.tokens_generated++;
    out.tokens.push_back(id);
    bool go_on = on_token ? on_token(id) : true;
    if (std::find(stop_ids.begin(), stop_ids.end(), id) != stop_ids.end()) {
      out.stopped_by_token = true;
      break;
    }
    if (!go_on) {
      out.stopped_by_callback = true;
      break;
    }
  }
  stats_.decode_seconds += sw.ElapsedSeconds();
  TakeMark();
  return out;
}

Status Session::Rewind(int64_t target) {
  if (target < 0 || target > length()) {
    return OutOfRangeError(StrCat("Rewind: position ", target, " is outside [0, ", length(), "]"));
  }
  if (target == length()) return Status::Ok();
  // The newest mark at or before the target; history after it is dropped, then the few
  // tokens between the mark and the target are run again.
  size_t m = marks_.size();
  while (m > 0 && marks_[m - 1].length > target) --m;
  const Mark& mark = marks_[m - 1];
  std::vector<int32_t> replay(tokens_.begin() + mark.length, tokens_.begin() + target);
  cache_->Restore(mark.snapshot);
  last_logits_ = mark.logits;
  tokens_.resize(static_cast<size_t>(mark.length));
  marks_.resize(m);
  stats_.rewinds++;
  stats_.tokens_replayed += static_cast<int64_t>(replay.size());
  if (!replay.empty()) {
    V4_RETURN_IF_ERROR(Run(replay));
    TakeMark();
  }
  return Status::Ok();
}

std::unique_ptr<Session> Session::Fork() const {
  auto s = std::make_unique<Session>(model_, options_);
  s->cache_ = cache_->Copy();
  s->tokens_ = tokens_;
  s->last_logits_ = last_logits_;
  s->marks_ = marks_;
  s->stats_ = stats_;
  return s;
}

SessionStats Session::Stats() const {
  SessionStats s = stats_;
  s.cache_bytes = cache_->ByteAccount();
  return s;
}

}  // namespace v4agent::engine
