// Constrained decoding for the in-process engine: the DSML grammar (dsml/constraint.h) turned
// into a token mask through the tokenizer. The vocabulary is kept as a byte trie in which
// every subtree knows whether it holds a '<'; a mask walks the trie from the grammar's state
// and allows whole subtrees at once where the grammar is in plain text, so one mask costs a
// small fraction of a decode step even with a 129K vocabulary (bench/constraint_bench.cpp).
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "agent/inprocess_client.h"
#include "dsml/constraint.h"
#include "engine/tokenizer/tokenizer.h"

namespace v4agent::agent {

class VocabTrie {
 public:
  explicit VocabTrie(const engine::Tokenizer& tokenizer);
  // Sets allowed[id] = 1 for every token whose bytes the grammar accepts from `state`
  // (allowed must be zeroed by the caller, size = vocab size).
  void Allowed(const dsml::DsmlGrammar& grammar, const dsml::DsmlGrammar::State& state,
               std::vector<uint8_t>* allowed) const;
  size_t nodes() const { return nodes_.size(); }

 private:
  struct Node {
    uint32_t first_child = 0, child_count = 0;  // into children_
    uint32_t range_begin = 0, range_end = 0;    // tokens in this subtree: order_[begin, end)
    uint32_t token_end = 0;                     // order_[range_begin, token_end): end here
    bool has_lt = false;                        // some token below contains '<'
    uint32_t max_below = 0;                     // longest rest of a token below, in bytes
  };
  void Walk(uint32_t node, const dsml::DsmlGrammar& g, const dsml::DsmlGrammar::State& s,
            std::vector<uint8_t>* allowed) const;
  std::vector<Node> nodes_;
  std::vector<std::pair<uint8_t, uint32_t>> children_;
  std::vector<int32_t> order_;
};

struct TokenConstraintOptions {
  dsml::ConstraintOptions grammar;
};

// An OutputConstraint for InProcessClient: Begin() compiles the grammar for the request's
// tools and thinking mode, Mask() masks, Accept() advances.
class TokenConstraint : public OutputConstraint {
 public:
  static Result<std::shared_ptr<TokenConstraint>> Create(const engine::Tokenizer& tokenizer,
                                                         TokenConstraintOptions options);
  Status Begin(const CompletionRequest& request) override;
  void Mask(std::span<float> logits) override;
  Status Accept(int32_t id) override;
  // For tests and benchmarks: the same with explicit tools.
  Status BeginWith(const OrderedJson& tools, dsml::ThinkingMode mode);
  bool done() const { return done_; }
  int64_t allowed_last_mask() const { return allowed_count_; }

 private:
  TokenConstraint(const engine::Tokenizer& tokenizer, TokenConstraintOptions options);
  const engine::Tokenizer& tokenizer_;
  TokenConstraintOptions options_;
  VocabTrie trie_;
  int32_t eos_ = -1;
  std::string grammar_key_;
  std::unique_ptr<dsml::DsmlGrammar> grammar_;
  dsml::DsmlGrammar::State state_;
  bool done_ = false;
  std::vector<uint8_t> allowed_;
  int64_t allowed_count_ = 0;
};

// The tools of a request as an OpenAI tools array (what the grammar and the encoder take).
OrderedJson ToolsToOpenAI(const std::vector<ToolSpec>& tools);

}  // namespace v4agent::agent
