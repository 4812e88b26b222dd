#include "apps/shared_engine.h"

#include "agent/dsml_renderer.h"
#include "agent/openai_client.h"
#include "agent/scripted_client.h"
#include "apps/endpoint_flags.h"
#include "common/strings.h"
#include "dsml/markers.h"

namespace v4agent::apps {
namespace {

// One conversation on the shared engine; the lock is held for a whole turn.
class SharedEngineClient : public agent::ModelClient {
 public:
  explicit SharedEngineClient(SharedEngine* e)
      : e_(e),
        renderer_(agent::DsmlRendererOptions{true, "high", false}),
        client_(e->model.get(), e->codec.get(), &renderer_, e->io) {}
  std::string Name() const override { return "in-process"; }
  Result<agent::Completion> Complete(const agent::CompletionRequest& r,
                                     const agent::DeltaCallback& d) override {
    std::lock_guard<std::mutex> lock(e_->mu);
    return client_.Complete(r, d);
  }

 private:
  SharedEngine* e_;
  agent::DsmlRenderer renderer_;
  agent::InProcessClient client_;
};

}  // namespace

Result<ClientSetup> ClientsFromFlags(const Flags& flags, const std::string& cache_dir) {
  const int clients = flags.Has("model") + flags.Has("endpoint") + flags.Has("scripted");
  if (clients != 1) {
    return InvalidArgumentError("exactly one of --model, --endpoint, --scripted is required");
  }
  ClientSetup setup;
  if (auto dir = flags.Get("model")) {
    engine::ModelOptions mo;
    auto threads = flags.GetInt("threads", 0);
    if (!threads.ok()) return threads.status();
    auto numerics = engine::ParseNumerics(flags.GetOr("numerics", "fast"));
    if (!numerics.ok()) return numerics.status();
    mo.num_threads = static_cast<int>(*threads);
    mo.numerics = *numerics;
    auto e = std::make_unique<SharedEngine>();
    V4_ASSIGN_OR_RETURN(e->model, engine::Model::Load(*dir, mo));
    V4_ASSIGN_OR_RETURN(e->tokenizer, engine::Tokenizer::Load(*dir));
    e->codec = std::make_unique<agent::EngineTokenCodec>(e->tokenizer.get());
    auto eos = e->tokenizer->TokenId(dsml::kEos);
    if (!eos)
      return InvalidArgumentError(StrCat(*dir, ": the tokenizer has no end-of-sentence token"));
    e->io.stop_ids = {*eos};
    if (!cache_dir.empty()) {
      V4_ASSIGN_OR_RETURN(e->store, engine::PrefixStore::Open(cache_dir, e->model.get()));
      e->io.store = e->store.get();
    }
    setup.max_context = e->model->max_context();
    setup.label = flags.GetOr("model-label", *dir);
    SharedEngine* raw = e.get();
    setup.make = [raw]() -> Result<std::unique_ptr<agent::ModelClient>> {
      return std::unique_ptr<agent::ModelClient>(new SharedEngineClient(raw));
    };
    setup.engine = std::move(e);
  } else if (flags.Has("endpoint")) {
    V4_ASSIGN_OR_RETURN(agent::OpenAIClientOptions oo, EndpointOptionsFromFlags(flags));
    setup.label = flags.GetOr("model-label", oo.model);
    setup.make = [oo]() -> Result<std::unique_ptr<agent::ModelClient>> {
      return std::unique_ptr<agent::ModelClient>(new agent::OpenAIClient(oo));
    };
  } else {
    const std::string script = *flags.Get("scripted");
    V4_RETURN_IF_ERROR(agent::ScriptedClient::FromFile(script).status());
    setup.label = flags.GetOr("model-label", "scripted");
    setup.make = [script]() -> Result<std::unique_ptr<agent::ModelClient>> {
      V4_ASSIGN_OR_RETURN(agent::ScriptedClient c, agent::ScriptedClient::FromFile(script));
      return std::unique_ptr<agent::ModelClient>(new agent::ScriptedClient(std::move(c)));
    };
  }
  return setup;
}

}  // namespace v4agent::apps
