// The in-process engine shared by commands that run many agent conversations (batch,
// pipeline): the model and tokenizer loaded once, a prefix store in a cache directory so
// the system prompt and tools block are prefilled once, and clients whose turns take the engine
// one at a time while their tools run in parallel. Also the one place that turns
// --model/--endpoint/--scripted flags into a client factory for those commands.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "agent/inprocess_client.h"
#include "agent/model_client.h"
#include "apps/flags.h"
#include "engine/model/model.h"
#include "engine/session/prefix_store.h"
#include "engine/tokenizer/tokenizer.h"

namespace v4agent::apps {

struct SharedEngine {
  std::unique_ptr<engine::Model> model;
  std::unique_ptr<engine::Tokenizer> tokenizer;
  std::unique_ptr<agent::EngineTokenCodec> codec;
  std::unique_ptr<engine::PrefixStore> store;
  std::mutex mu;
  agent::InProcessOptions io;
};

using ClientFactory = std::function<Result<std::unique_ptr<agent::ModelClient>>()>;

struct ClientSetup {
  ClientFactory make;
  std::string label;                     // model_name_or_path, for outputs
  int64_t max_context = 0;               // in-process only: the checkpoint's context (0 otherwise)
  std::unique_ptr<SharedEngine> engine;  // in-process only: keeps the model alive
};

// From exactly one of --model DIR [--numerics --threads] | --endpoint URL --model-name N
// [--api-key-env VAR] | --scripted FILE. `cache_dir` holds the prefix store (in-process).
Result<ClientSetup> ClientsFromFlags(const Flags& flags, const std::string& cache_dir);

}  // namespace v4agent::apps
