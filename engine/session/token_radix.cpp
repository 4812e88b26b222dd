#include "engine/session/token_radix.h"

#include <algorithm>

namespace v4agent::engine {

TokenRadix::TokenRadix() : root_(std::make_unique<Node>()) {}
TokenRadix::~TokenRadix() = default;

void TokenRadix::Clear() {
  root_ = std::make_unique<Node>();
  size_ = 0;
}

void TokenRadix::Insert(std::span<const int32_t> ids, int64_t key) {
  const int64_t total = static_cast<int64_t>(ids.size());
  Node* node = root_.get();
  size_t at = 0;
  auto note = [&](Node* n) {
    if (total < n->best_length) {
      n->best_length = total;
      n->best_key = key;
    }
  };
  note(node);
  while (at < ids.size()) {
    auto it = node->children.find(ids[at]);
    if (it == node->children.end()) {
      Edge e;
      e.label.assign(ids.begin() + static_cast<std::ptrdiff_t>(at), ids.end());
      e.child = std::make_unique<Node>();
      Node* leaf = e.child.get();
      node->children.emplace(ids[at], std::move(e));
      node = leaf;
      at = ids.size();
      note(node);
      break;
    }
    Edge& e = it->second;
    size_t k = 0;
    while (k < e.label.size() && at + k < ids.size() && e.label[k] == ids[at + k]) ++k;
    if (k < e.label.size()) {
      // Split the edge at k: a new middle node takes the first k ids.
      auto mid = std::make_unique<Node>();
      mid->best_length = e.child->best_length;
      mid->best_key = e.child->best_key;
      Edge lower;
      lower.label.assign(e.label.begin() + static_cast<std::ptrdiff_t>(k), e.label.end());
      lower.child = std::move(e.child);
      mid->children.emplace(lower.label[0], std::move(lower));
      e.label.resize(k);
      e.child = std::move(mid);
    }
    node = e.child.get();
    at += k;
    note(node);
  }
  if (node->key < 0) ++size_;
  node->key = key;
  if (node->best_key < 0 || node->best_length == total) {
    node->best_length = total;
    node->best_key = key;
  }
}

TokenRadix::Match TokenRadix::Longest(std::span<const int32_t> query) const {
  Match m;
  const Node* node = root_.get();
  if (node->best_key < 0) return m;
  size_t at = 0;
  m.key = node->best_key;
  while (at < query.size()) {
    auto it = node->children.find(query[at]);
    if (it == node->children.end()) break;
    const Edge& e = it->second;
    size_t k = 0;
    while (k < e.label.size() && at + k < query.size() && e.label[k] == query[at + k]) ++k;
    at += k;
    m.length = static_cast<int64_t>(at);
    m.key = e.child->best_key;  // every sequence below shares the `at` ids matched so far
    if (k < e.label.size()) break;
    node = e.child.get();
  }
  return m;
}

}  // namespace v4agent::engine
