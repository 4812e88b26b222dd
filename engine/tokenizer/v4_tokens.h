// V4's added tokens (spellings and ids of specs/dsml.md §1) and the builder that turns the
// DeepSeek-V3 tokenizer.json (same BPE) into a V4 one. Code that needs a special token's id
// asks the loaded tokenizer by spelling; this table exists only to build the file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace v4agent::engine {

struct AddedTokenSpec {
  int32_t id;
  const char* content;
};

// Tokens V4 adds on top of the V3 vocabulary.
const std::vector<AddedTokenSpec>& V4AddedTokens();

// Reads a V3 tokenizer.json, adds V4AddedTokens() (an id already taken by a different
// spelling is an error naming both), and writes DIR/tokenizer.json and
// DIR/tokenizer_config.json (add_bos_token false, model_max_length 1048576).
Status BuildV4TokenizerFiles(const std::string& v3_json, const std::string& out_dir);

}  // namespace v4agent::engine
