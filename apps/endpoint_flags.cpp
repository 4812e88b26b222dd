#include "apps/endpoint_flags.h"

#include <cstdlib>

#include "common/strings.h"

namespace v4agent::apps {

Result<agent::OpenAIClientOptions> EndpointOptionsFromFlags(const Flags& flags) {
  auto url = flags.Get("endpoint");
  if (!url) return InvalidArgumentError("--endpoint is required");
  if (!flags.Has("model-name")) return InvalidArgumentError("--endpoint needs --model-name");
  agent::OpenAIClientOptions oo;
  oo.endpoint = *url;
  oo.model = *flags.Get("model-name");
  if (auto var = flags.Get("api-key-env")) {
    const char* key = std::getenv(var->c_str());
    if (!key || !*key) {
      return InvalidArgumentError(StrCat("--api-key-env ", *var, ": the variable is not set"));
    }
    oo.api_key = key;
  }
  return oo;
}

}  // namespace v4agent::apps
