// The OpenAI-compatible client's settings from `--endpoint URL --model-name N
// [--api-key-env VAR]`, shared by the commands that take them (run, batch).
#pragma once

#include "agent/openai_client.h"
#include "apps/flags.h"
#include "common/status.h"

namespace v4agent::apps {

// Requires --endpoint; the error says which flag is missing or which variable is unset.
Result<agent::OpenAIClientOptions> EndpointOptionsFromFlags(const Flags& flags);

}  // namespace v4agent::apps
