#include "agent/constrained_decoding.h"

#include <algorithm>
#include <limits>
#include <map>

#include "common/strings.h"
#include "dsml/markers.h"

namespace v4agent::agent {
namespace {

// Special tokens the grammar may see as text: the think and DSML markers. Other specials
// (BOS, role tokens) never belong in a turn's output; EOS is handled on its own.
bool UsableSpecial(const std::string& spelling) {
  return spelling == dsml::kThinkEnd || spelling == dsml::kThinkStart || spelling == dsml::kDsml;
}

}  // namespace

VocabTrie::VocabTrie(const engine::Tokenizer& tok) {
  // Build with maps, then flatten so each subtree's tokens are one contiguous range.
  struct Build {
    std::map<uint8_t, uint32_t> kids;
    std::vector<int32_t> ends;
  };
  std::vector<Build> b(1);
  for (int32_t id = 0; id < tok.vocab_size(); ++id) {
    const std::string& bytes = tok.TokenBytes(id);
    if (bytes.empty()) continue;
    if (tok.IsSpecial(id) && !UsableSpecial(bytes)) continue;
    uint32_t n = 0;
    for (unsigned char c : bytes) {
      auto it = b[n].kids.find(c);
      if (it == b[n].kids.end()) {
        b.push_back({});
        it = b[n].kids.emplace(c, static_cast<uint32_t>(b.size() - 1)).first;
      }
      n = it->second;
    }
    b[n].ends.push_back(id);
  }
  nodes_.resize(b.size());
  // Iterative DFS assigning ranges.
  struct Frame {
    uint32_t build, node;
    bool entered;
    uint8_t byte;
  };
  std::vector<Frame> stack = {{0, 0, false, 0}};
  nodes_[0] = Node{};
  uint32_t next_node = 1;
  std::vector<uint32_t> build_to_node(b.size(), 0);
  while (!stack.empty()) {
    Frame& f = stack.back();
    Node& node = nodes_[f.node];
    if (!f.entered) {
      f.entered = true;
      node.range_begin = static_cast<uint32_t>(order_.size());
      for (int32_t id : b[f.build].ends) order_.push_back(id);
      node.token_end = static_cast<uint32_t>(order_.size());
      node.first_child = static_cast<uint32_t>(children_.size());
      node.child_count = static_cast<uint32_t>(b[f.build].kids.size());
      for (const auto& [byte, kid] : b[f.build].kids) {
        children_.emplace_back(byte, next_node);
        build_to_node[kid] = next_node++;
      }
      // Push children in reverse so they are visited in byte order.
      const uint32_t first = node.first_child, count = node.child_count;
      std::vector<std::pair<uint8_t, uint32_t>> kids(b[f.build].kids.begin(),
                                                     b[f.build].kids.end());
      for (size_t k = kids.size(); k-- > 0;) {
        stack.push_back({kids[k].second, children_[first + k].second, false, kids[k].first});
      }
      (void)count;
      continue;
    }
    node.range_end = static_cast<uint32_t>(order_.size());
    const uint32_t self = f.node;
    const uint8_t byte = f.byte;
    stack.pop_back();
    bool lt = false;
    uint32_t below = 0;
    const Node& n = nodes_[self];
    for (uint32_t k = 0; k < n.child_count; ++k) {
      const auto& [kb, kid] = children_[n.first_child + k];
      lt = lt || kb == '<' || nodes_[kid].has_lt;
      below = std::max(below, 1 + nodes_[kid].max_below);
    }
    (void)byte;
    nodes_[self].has_lt = lt;
    nodes_[self].max_below = below;
  }
}

void VocabTrie::Walk(uint32_t node, const dsml::DsmlGrammar& g, const dsml::DsmlGrammar::State& s,
                     std::vector<uint8_t>* allowed) const {
  const Node& n = nodes_[node];
  // Tokens ending here were accepted on the way down.
  for (uint32_t i = n.range_begin; i < n.token_end; ++i)
    (*allowed)[static_cast<size_t>(order_[i])] = 1;
  if (!n.has_lt && g.InPlainText(s) && g.FreeBudget(s) >= static_cast<int>(n.max_below)) {
    // Plain text and nothing below can start a marker: every token below is accepted.
    for (uint32_t i = n.token_end; i < n.range_end; ++i) {
      (*allowed)[static_cast<size_t>(order_[i])] = 1;
    }
    return;
  }
  for (uint32_t k = 0; k < n.child_count; ++k) {
    const auto& [byte, child] = children_[n.first_child + k];
    dsml::DsmlGrammar::State t = s;
    if (g.Advance(t, byte)) Walk(child, g, t, allowed);
  }
}

void VocabTrie::Allowed(const dsml::DsmlGrammar& g, const dsml::DsmlGrammar::State& s,
                        std::vector<uint8_t>* allowed) const {
  const Node& root = nodes_[0];
  for (uint32_t k = 0; k < root.child_count; ++k) {
    const auto& [byte, child] = children_[root.first_child + k];
    dsml::DsmlGrammar::State t = s;
    if (g.Advance(t, byte)) Walk(child, g, t, allowed);
  }
}

OrderedJson ToolsToOpenAI(const std::vector<ToolSpec>& tools) {
  OrderedJson out = OrderedJson::array();
  for (const ToolSpec& t : tools) {
    OrderedJson f;
    f["name"] = t.name;
    f["description"] = t.description;
    f["parameters"] = OrderedJson::parse(DumpJson(t.parameters));
    out.push_back(OrderedJson{{"type", "function"}, {"function", f}});
  }
  return out;
}

TokenConstraint::TokenConstraint(const engine::Tokenizer& tokenizer, TokenConstraintOptions o)
    : tokenizer_(tokenizer), options_(std::move(o)), trie_(tokenizer) {}

Result<std::shared_ptr<TokenConstraint>> TokenConstraint::Create(const engine::Tokenizer& tokenizer,
                                                                 TokenConstraintOptions options) {
  auto eos = tokenizer.TokenId(dsml::kEos);
  if (!eos) return InvalidArgumentError("constraint: the tokenizer has no end-of-sentence token");
  std::shared_ptr<TokenConstraint> c(new TokenConstraint(tokenizer, std::move(options)));
  c->eos_ = *eos;
  c->allowed_.resize(static_cast<size_t>(tokenizer.vocab_size()));
  return c;
}

Status TokenConstraint::BeginWith(const OrderedJson& tools, dsml::ThinkingMode mode) {
  dsml::ConstraintOptions o = options_.grammar;
  o.mode = mode;
  const std::string key = StrCat(static_cast<int>(mode), DumpJson(tools));
  if (!grammar_ || key != grammar_key_) {
    V4_ASSIGN_OR_RETURN(dsml::DsmlGrammar g, dsml::DsmlGrammar::Create(tools, o));
    grammar_ = std::make_unique<dsml::DsmlGrammar>(std::move(g));
    grammar_key_ = key;
  }
  state_ = grammar_->Start();
  done_ = false;
  return Status::Ok();
}

Status TokenConstraint::Begin(const CompletionRequest& request) {
  return BeginWith(ToolsToOpenAI(request.tools),
                   request.thinking ? dsml::ThinkingMode::kThinking : dsml::ThinkingMode::kChat);
}

void TokenConstraint::Mask(std::span<float> logits) {
  std::fill(allowed_.begin(), allowed_.end(), 0);
  if (grammar_ && !done_) {
    if (grammar_->ExpectsEnd(state_) || grammar_->Done(state_)) {
      allowed_[static_cast<size_t>(eos_)] = 1;
    } else {
      trie_.Allowed(*grammar_, state_, &allowed_);
    }
  } else {
    allowed_[static_cast<size_t>(eos_)] = 1;
  }
  allowed_count_ = 0;
  const size_t n = std::min(logits.size(), allowed_.size());
  for (size_t i = 0; i < n; ++i) {
    if (!allowed_[i]) {
      logits[i] = -std::numeric_limits<float>::infinity();
    } else {
      ++allowed_count_;
    }
  }
  for (size_t i = n; i < logits.size(); ++i) logits[i] = -std::numeric_limits<float>::infinity();
}

Status TokenConstraint::Accept(int32_t id) {
  if (!grammar_) return FailedPreconditionError("constraint: Accept before Begin");
  if (id == eos_) {
    if (!grammar_->ExpectsEnd(state_) && !grammar_->Done(state_)) {
      return FailedPreconditionError("constraint: end of turn before the tool call was complete");
    }
    done_ = true;
    return Status::Ok();
  }
  for (unsigned char c : tokenizer_.TokenBytes(id)) {
    if (!grammar_->Advance(state_, c)) {
      return FailedPreconditionError(StrCat("constraint: token ", id, " is not allowed here"));
    }
  }
  return Status::Ok();
}

}  // namespace v4agent::agent
