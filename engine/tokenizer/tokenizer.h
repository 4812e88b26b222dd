// Byte-level BPE tokenizer loaded from a Hugging Face tokenizer.json (the DeepSeek-V3 BPE plus
// V4's added tokens): added/special tokens matched by their exact spelling, the DeepSeek
// pre-tokenizer, merges by rank, encode, decode, and each token's raw bytes (for constrained
// decoding). Special-token ids are always looked up by string, never hardcoded.
// Never loses input: any byte sequence, valid UTF-8 or not, round-trips through encode/decode.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "engine/tokenizer/pretokenizer.h"

namespace v4agent::engine {

class Tokenizer {
 public:
  // `path`: a tokenizer.json file or a directory holding one.
  static Result<std::unique_ptr<Tokenizer>> Load(const std::string& path);
  static Result<std::unique_ptr<Tokenizer>> FromJson(const Json& j, const std::string& source);

  // Encodes text. With `allow_special`, added-token spellings inside the text become their ids
  // (the Hugging Face behaviour); without, they are encoded as ordinary text (the policy for
  // untrusted content: no prompt injection of control tokens).
  std::vector<int32_t> Encode(std::string_view text, bool allow_special = true) const;
  // Concatenated bytes of the tokens (ids out of range decode to nothing).
  std::string Decode(const std::vector<int32_t>& ids) const;
  // Raw bytes of one token ("" for an unknown id).
  const std::string& TokenBytes(int32_t id) const;

  std::optional<int32_t> TokenId(std::string_view spelling) const;
  bool IsSpecial(int32_t id) const;
  // One past the largest id.
  int32_t vocab_size() const { return static_cast<int32_t>(bytes_.size()); }

 private:
  Tokenizer() = default;
  void EncodeText(std::string_view text, std::vector<int32_t>* out) const;
  void EncodePiece(std::string_view piece, std::vector<int32_t>* out) const;

  std::unique_ptr<PreTokenizer> pre_;
  std::unordered_map<std::string, int32_t> vocab_;  // byte-level-encoded spelling -> id
  std::unordered_map<uint64_t, std::pair<int32_t, int32_t>> merges_;  // (left, right) -> (rank, id)
  std::vector<std::string> bytes_;                                    // id -> raw bytes
  std::vector<bool> special_;
  int32_t byte_id_[256] = {};  // single-byte tokens
  struct Added {
    std::string content;
    int32_t id;
  };
  std::vector<Added> added_;                        // longest spelling first
  std::vector<uint16_t> added_by_first_byte_[256];  // indices into added_, longest first
  std::unordered_map<std::string, int32_t> added_by_content_;
  uint64_t instance_id_ = 0;  // keys the per-thread piece cache (never reused)
};

// Streams token ids to text without ever emitting half a UTF-8 character: bytes of an
// incomplete sequence are held back until the next token completes them (or Finish()).
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tokenizer) : tokenizer_(tokenizer) {}
  // Returns the text that became complete with this token.
  std::string Push(int32_t id);
  // Returns whatever is left (possibly invalid UTF-8 bytes, passed through unchanged).
  std::string Finish();

 private:
  const Tokenizer& tokenizer_;
  std::string pending_;
};

}  // namespace v4agent::engine
