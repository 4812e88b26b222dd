// The lightning indexer's scores of one token against many keys: for key j,
// score_j = sum over heads h of w[h] * relu(q_h . key_j), heads added in increasing order,
// each dot product in Dot's order (ops.h). Owns only this arithmetic; which keys exist, how
// they are stored and which win (top-k) belong to the model and the cache.
//
// The AVX-512 kernel blocks 4 heads x 4 keys in registers (the query, 64 heads x 128 at V4's
// widths, stays in L1 while the keys stream) and is bit-identical to IndexScoresScalar
// (tested), so a score never depends on the blocking, the thread split or how many tokens
// were scored together.
#pragma once

#include <cstdint>

namespace v4agent::engine::kernels {

struct IndexQuery {
  const float* q = nullptr;  // [heads, dim]
  const float* w = nullptr;  // [heads]: the head weights, already scaled
  int64_t heads = 0;
  int64_t dim = 0;
};

// out[i] = the score of keys[i] (dim floats each) for i < n.
void IndexScores(const IndexQuery& query, const float* const* keys, int64_t n, float* out);
// The plain loops: the oracle of IndexScores.
void IndexScoresScalar(const IndexQuery& query, const float* const* keys, int64_t n, float* out);

}  // namespace v4agent::engine::kernels
