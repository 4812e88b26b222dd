#include "server/scheduler.h"

#include <algorithm>

#include "common/strings.h"
#include "dsml/markers.h"

namespace v4agent::server {

struct Scheduler::Active {
  Job* job;
  Prepared prepared;
  std::unique_ptr<engine::Sampler> sampler;
};

Scheduler::Scheduler(engine::Model* model, const engine::Tokenizer* tokenizer,
                     SchedulerOptions options)
    : model_(model),
      tokenizer_(tokenizer),
      options_(options),
      pool_(model, engine::SessionOptions{}, options.max_sessions,
            [tokenizer](int32_t id) { return tokenizer->Decode({id}).size(); },
            {std::string(dsml::kUser), std::string(dsml::kAssistant)}) {
  options_.max_batch = std::max<int64_t>(1, options_.max_batch);
  options_.prefill_slice = std::max<int64_t>(1, options_.prefill_slice);
  options_.prefill_alone = std::max(options_.prefill_slice, options_.prefill_alone);
  pool_.set_max_bytes(options_.cache_bytes);
  if (!options_.cache_dir.empty()) {
    setup_status_ = pool_.set_store_dir(options_.cache_dir, options_.cache_dir_bytes);
  }
  thread_ = std::thread([this] { Loop(); });
}

Scheduler::~Scheduler() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void Scheduler::Run(Job& job) {
  std::unique_lock<std::mutex> lock(mu_);
  job.finished = false;
  incoming_.push_back(&job);
  ++stats_.queued;
  cv_.notify_all();
  cv_.wait(lock, [&] { return job.finished; });
}

SchedulerStats Scheduler::Stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void Scheduler::Complete(Active& a, Status status) {
  Job& job = *a.job;
  job.status = std::move(status);
  if (a.prepared.conversation != nullptr) {
    if (job.status.ok()) {
      pool_.Finish(a.prepared.conversation, job.tokens, tokenizer_->Decode(job.tokens));
    } else {
      pool_.Release(a.prepared.conversation);
    }
  }
  job.cached_tokens = a.prepared.cached_tokens;
  job.prefilled_tokens = a.prepared.prefilled_tokens;
  const int64_t sessions = static_cast<int64_t>(pool_.size());
  const int64_t stored = static_cast<int64_t>(pool_.stored());
  const int64_t bytes = pool_.cached_bytes();
  std::lock_guard<std::mutex> lock(mu_);
  stats_.sessions = sessions;
  stats_.stored = stored;
  stats_.tokens_from_store = pool_.tokens_from_store();
  stats_.cache_bytes = bytes;
  job.finished = true;
  cv_.notify_all();
}

void Scheduler::Admit(std::unique_ptr<Active> a) {
  Job& job = *a->job;
  auto encode = [this](std::string_view text) { return tokenizer_->Encode(text, true); };
  auto prepared = job.prompt_ids.empty() ? pool_.Prepare(job.prompt, encode)
                                         : pool_.PrepareIds(job.prompt_ids, [this](int32_t id) {
                                             return tokenizer_->Decode({id});
                                           });
  if (!prepared.ok()) return Complete(*a, prepared.status());
  a->prepared = std::move(*prepared);
  a->sampler = std::make_unique<engine::Sampler>(job.sampling);
  prefilling_.push_back(std::move(a));
}

void Scheduler::PrefillTurn(bool others_generating) {
  // Oldest first: one slice per turn, so running streams get a token between slices.
  Active& a = *prefilling_.front();
  const int64_t slice = others_generating ? options_.prefill_slice : options_.prefill_alone;
  Status st = pool_.Advance(a.prepared, slice);
  if (!st.ok()) {
    Complete(a, st);
    prefilling_.erase(prefilling_.begin());
    return;
  }
  if (!a.prepared.ready()) return;
  engine::Session& s = *a.prepared.conversation->session;
  a.job->prompt_tokens = s.length();
  if (s.last_logits().empty()) {
    Complete(a, InvalidArgumentError("the prompt is empty"));
  } else if (a.job->max_tokens <= 0) {
    Complete(a, Status::Ok());
  } else {
    generating_.push_back(std::move(prefilling_.front()));
  }
  prefilling_.erase(prefilling_.begin());
}

void Scheduler::DecodeTurn() {
  const size_t n = std::min(generating_.size(), static_cast<size_t>(options_.max_batch));
  std::vector<engine::Session*> sessions;
  std::vector<int32_t> ids;
  for (size_t i = 0; i < n; ++i) {
    Active& a = *generating_[i];
    engine::Session& s = *a.prepared.conversation->session;
    sessions.push_back(&s);
    ids.push_back(a.sampler->Sample(s.last_logits()));
  }
  // A bad row (every token masked, the context full) ends its own request only.
  std::vector<bool> ended(n, false);
  for (size_t i = 0; i < n; ++i) {
    const int64_t length = sessions[i]->length();
    Status st;
    if (ids[i] < 0) st = InternalError("every token was masked out");
    if (length + 1 > model_->max_context()) {
      st = OutOfRangeError(StrCat("the context limit of ", model_->max_context(), " was reached"));
    }
    if (!st.ok()) {
      Complete(*generating_[i], st);
      ended[i] = true;
    }
  }
  std::vector<engine::Session*> batch;
  std::vector<int32_t> batch_ids;
  std::vector<size_t> rows;
  for (size_t i = 0; i < n; ++i) {
    if (ended[i]) continue;
    batch.push_back(sessions[i]);
    batch_ids.push_back(ids[i]);
    rows.push_back(i);
  }
  if (!batch.empty()) {
    Status st = engine::Session::AppendEach(batch, batch_ids);
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++stats_.decode_steps;
      stats_.decode_rows += static_cast<int64_t>(batch.size());
      stats_.max_batch = std::max<int64_t>(stats_.max_batch, static_cast<int64_t>(batch.size()));
    }
    for (size_t r = 0; r < rows.size(); ++r) {
      const size_t i = rows[r];
      Active& a = *generating_[i];
      Job& job = *a.job;
      if (!st.ok()) {
        Complete(a, st);
        ended[i] = true;
        continue;
      }
      job.tokens.push_back(ids[i]);
      const bool go_on = job.on_token ? job.on_token(ids[i]) : true;
      job.stopped_by_token =
          std::find(job.stop_ids.begin(), job.stop_ids.end(), ids[i]) != job.stop_ids.end();
      if (job.stopped_by_token || !go_on ||
          static_cast<int64_t>(job.tokens.size()) >= job.max_tokens) {
        Complete(a, Status::Ok());
        ended[i] = true;
      }
    }
  }
  // Those past the batch first next time, then the ones that ran, in their order.
  std::vector<std::unique_ptr<Active>> still;
  for (size_t i = n; i < generating_.size(); ++i) still.push_back(std::move(generating_[i]));
  for (size_t i = 0; i < n; ++i) {
    if (!ended[i]) still.push_back(std::move(generating_[i]));
  }
  generating_ = std::move(still);
}

void Scheduler::Loop() {
  for (;;) {
    std::deque<Job*> arrived;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] {
        return stopping_ || !incoming_.empty() || !prefilling_.empty() || !generating_.empty();
      });
      if (stopping_ && incoming_.empty() && prefilling_.empty() && generating_.empty()) return;
      arrived.swap(incoming_);
    }
    for (Job* job : arrived) {
      auto a = std::make_unique<Active>();
      a->job = job;
      Admit(std::move(a));
    }
    if (!prefilling_.empty()) PrefillTurn(!generating_.empty());
    if (!generating_.empty()) DecodeTurn();
    std::lock_guard<std::mutex> lock(mu_);
    stats_.queued = static_cast<int64_t>(incoming_.size() + prefilling_.size());
    stats_.generating = static_cast<int64_t>(generating_.size());
  }
}

}  // namespace v4agent::server
