// The DeepSeek-V3/V4 pre-tokenizer: the three "Isolated" regex splits of tokenizer.json
// applied in sequence (digit groups of at most 3, CJK runs, then the GPT-style pattern),
// implemented with PCRE2 (UTF + UCP, JIT when available). Splits text into pieces that BPE
// then encodes independently. Never allocates per character; never alters the bytes.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace v4agent::engine {

class PreTokenizer {
 public:
  // `patterns` are the Split regexes in order (as in tokenizer.json's pre_tokenizer).
  static Result<std::unique_ptr<PreTokenizer>> Create(const std::vector<std::string>& patterns);
  // The DeepSeek-V3 patterns (also V4's).
  static std::vector<std::string> DeepSeekPatterns();
  ~PreTokenizer();

  // Appends the pieces of `text` (views into it) to `out`. Invalid UTF-8 is split as if each
  // bad byte were one unassigned character, so no byte is ever lost.
  void Split(std::string_view text, std::vector<std::string_view>* out) const;

 private:
  PreTokenizer() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace v4agent::engine
