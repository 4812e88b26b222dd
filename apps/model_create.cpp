// `v4agent model create`: writes a random-weight checkpoint in the release layout.
#include <cstdio>

#include "apps/command.h"
#include "apps/flags.h"
#include "engine/checkpoint/random_checkpoint.h"
#include "engine/model_config.h"

namespace v4agent::apps {
namespace {

using namespace v4agent::engine;

constexpr char kUsage[] =
    "usage: v4agent model create --like CONFIG_DIR_OR_FILE --out DIR [--vocab N] [--seed S]\n"
    "                            [--fp8-experts] [--header-only]\n"
    "Writes a random-weight DeepSeek-V4 checkpoint shaped like the given config.json (release\n"
    "file layout, FP8/FP4 formats). --vocab overrides vocab_size (129280 = the real V4\n"
    "vocabulary). --header-only writes sparse shards with headers only (for inspect/binding).";

int Run(const std::vector<std::string>& args) {
  auto flags = Flags::Parse(
      args, FlagSpec{{"like", "out", "vocab", "seed"}, {"fp8-experts", "header-only"}});
  if (!flags.ok() || !flags->Get("like") || !flags->Get("out")) {
    std::fprintf(stderr, "%s\n%s\n",
                 flags.ok() ? "--like and --out are required" : flags.status().message().c_str(),
                 kUsage);
    return 2;
  }
  auto config = ModelConfig::Load(*flags->Get("like"));
  if (!config.ok()) {
    std::fprintf(stderr, "v4agent model create: %s\n", config.status().ToString().c_str());
    return 1;
  }
  auto vocab = flags->GetInt("vocab", config->vocab_size);
  auto seed = flags->GetInt("seed", 1);
  if (!vocab.ok() || !seed.ok() || *vocab <= 0) {
    std::fprintf(stderr, "v4agent model create: bad --vocab or --seed\n");
    return 2;
  }
  config->vocab_size = *vocab;
  const bool fp4 = !flags->Has("fp8-experts");
  Status st =
      flags->Has("header-only")
          ? WriteHeaderOnlyCheckpoint(*config, fp4, *flags->Get("out"))
          : WriteRandomCheckpoint(*config, static_cast<uint64_t>(*seed), fp4, *flags->Get("out"));
  if (!st.ok()) {
    std::fprintf(stderr, "v4agent model create: %s\n", st.ToString().c_str());
    return 1;
  }
  std::printf("wrote %s\n", flags->Get("out")->c_str());
  return 0;
}

SubcommandRegistrar registrar("model",
                              Command{"create",
                                      "write a random-weight checkpoint in the release layout",
                                      kUsage, Run});

}  // namespace
}  // namespace v4agent::apps
