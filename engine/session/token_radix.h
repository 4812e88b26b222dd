// TokenRadix: a radix tree over token-id sequences mapping stored sequences to an integer key.
// Longest(q) finds the longest prefix q shares with any stored sequence and a stored sequence
// that shares it (the shortest such, the cheapest to load). Memory is proportional to the
// distinct ids stored, not to their number times their length. Knows nothing of sessions.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <vector>

namespace v4agent::engine {

class TokenRadix {
 public:
  TokenRadix();
  ~TokenRadix();
  // Adds `ids` with `key` (replacing the key of an identical sequence).
  void Insert(std::span<const int32_t> ids, int64_t key);
  struct Match {
    int64_t length = 0;  // tokens shared with the query
    int64_t key = -1;    // a sequence sharing them; -1 when nothing is stored
  };
  Match Longest(std::span<const int32_t> query) const;
  void Clear();
  int64_t size() const { return size_; }

 private:
  struct Node;
  struct Edge {
    std::vector<int32_t> label;
    std::unique_ptr<Node> child;
  };
  struct Node {
    std::map<int32_t, Edge> children;  // by first id of the edge
    int64_t key = -1;                  // a sequence ends here
    // The shortest sequence in this subtree: (its length, its key).
    int64_t best_length = INT64_MAX;
    int64_t best_key = -1;
  };
  std::unique_ptr<Node> root_;
  int64_t size_ = 0;
};

}  // namespace v4agent::engine
