#include "engine/model/model.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>

#include "common/stopwatch.h"
#include "common/strings.h"
#include "engine/kernels/cpu/attention.h"
#include "engine/kernels/cpu/indexer.h"
#include "engine/kernels/cpu/ops.h"
#include "engine/kernels/cpu/scratch.h"
#include "engine/quant/codecs.h"

namespace v4agent::engine {

namespace k = kernels;

namespace {

void TraceRow(Trace* trace, const std::string& key, const float* data, int64_t n) {
  if (trace == nullptr) return;
  auto& v = (*trace)[key];
  v.insert(v.end(), data, data + n);
}

// The matrices whose outputs choose experts (the MoE router) or blocks (the indexer's head
// weights): fast-bf16 leaves them on fp32 activations.
bool FeedsASelection(const Linear& l) {
  return EndsWith(l.name, "ffn.gate.weight") || EndsWith(l.name, "indexer.weights_proj.weight");
}

}  // namespace

const char* NumericsName(Numerics n) {
  switch (n) {
    case Numerics::kExact:
      return "exact";
    case Numerics::kFast:
      return "fast";
    case Numerics::kFastBf16:
      return "fast-bf16";
  }
  return "?";
}

Result<Numerics> ParseNumerics(const std::string& name) {
  for (Numerics n : {Numerics::kExact, Numerics::kFast, Numerics::kFastBf16}) {
    if (name == NumericsName(n)) return n;
  }
  return InvalidArgumentError(
      StrCat("numerics must be exact, fast or fast-bf16, not \"", name, "\""));
}

void Model::ForEachDecodeMatrix(const std::function<void(const Linear&, int64_t)>& fn) const {
  const ModelWeights& w = *weights_;
  fn(w.head, 1);
  auto expert = [&](const ExpertWeights& e, int64_t times) {
    for (const Linear* l : {&e.w1, &e.w2, &e.w3}) fn(*l, times);
  };
  for (const BlockWeights& b : w.layers) {
    const AttentionWeights& a = b.attn;
    for (const Linear* l : {&a.wq_a, &a.wq_b, &a.wkv, &a.wo_a, &a.wo_b}) fn(*l, 1);
    if (a.has_compressor) {
      fn(a.compressor.wkv, 1);
      fn(a.compressor.wgate, 1);
    }
    if (a.has_indexer) {
      for (const Linear* l : {&a.indexer.wq_b, &a.indexer.weights_proj, &a.indexer.compressor.wkv,
                              &a.indexer.compressor.wgate}) {
        fn(*l, 1);
      }
    }
    fn(b.ffn.gate, 1);
    if (!b.ffn.experts.empty()) expert(b.ffn.experts[0], config_.num_experts_per_tok);
    if (b.ffn.has_shared) expert(b.ffn.shared, 1);
  }
}

Result<ModelFingerprint> Model::Fingerprint() const {
  std::lock_guard<std::mutex> lock(fingerprint_mu_);
  if (!fingerprint_) {
    std::error_code ec;
    const std::string config = std::filesystem::is_directory(dir_, ec)
                                   ? dir_ + "/config.json"
                                   : ckpt_->dir() + "/config.json";
    V4_ASSIGN_OR_RETURN(ModelFingerprint f, FingerprintOf(config, *ckpt_));
    fingerprint_ = f;
  }
  return *fingerprint_;
}

uint64_t Model::DecodeWeightBytes() const {
  // One embedding row besides the matrices, and the fp32 mHC mixing matrices of every
  // sublayer and of the head (1.5 MiB per sublayer at Flash widths, 0.6% of a token's bytes).
  const ModelWeights& w = *weights_;
  uint64_t bytes = w.embed.StorageBytes() / static_cast<uint64_t>(w.embed.out);
  auto mix = [&](const HcParams& p) { bytes += p.fn.size() * sizeof(float); };
  for (const BlockWeights& b : w.layers) {
    mix(b.hc_attn);
    mix(b.hc_ffn);
  }
  mix(w.hc_head);
  ForEachDecodeMatrix([&](const Linear& l, int64_t times) {
    bytes += l.StorageBytes() * static_cast<uint64_t>(times);
  });
  return bytes;
}

uint64_t Model::DecodeWeightParams() const {
  uint64_t params = 0;
  ForEachDecodeMatrix([&](const Linear& l, int64_t times) {
    params += static_cast<uint64_t>(l.out * l.in * times);
  });
  return params;
}

Result<std::unique_ptr<Model>> Model::Load(const std::string& dir, const ModelOptions& options) {
  auto m = std::unique_ptr<Model>(new Model());
  m->options_ = options;
  m->dir_ = dir;
  V4_ASSIGN_OR_RETURN(m->config_, ModelConfig::Load(dir));
  V4_ASSIGN_OR_RETURN(m->ckpt_, Checkpoint::Open(dir));
  V4_ASSIGN_OR_RETURN(m->weights_, ModelWeights::Bind(*m->ckpt_, m->config_));
  m->pool_ = std::make_unique<ThreadPool>(options.num_threads);
  if (options.numerics != Numerics::kExact) {
    Stopwatch sw;
    const bool bf16_dot = options.numerics == Numerics::kFastBf16;
    for (Linear* l : m->weights_->Matrices()) {
      V4_ASSIGN_OR_RETURN(
          kernels::PackedLinear p,
          kernels::PackLinear(*l, m->pool_.get(), bf16_dot && !FeedsASelection(*l)));
      m->packed_bytes_ += p.Bytes();
      m->packed_.push_back(std::make_unique<kernels::PackedLinear>(std::move(p)));
      l->packed = m->packed_.back().get();
    }
    m->pack_seconds_ = sw.ElapsedSeconds();
  }
  const ModelConfig& c = m->config_;
  k::RopeParams swa;
  swa.base = c.rope_theta;
  k::RopeParams comp;
  comp.base = c.compress_rope_theta;
  comp.yarn = true;
  comp.factor = c.rope_factor;
  comp.original_seq_len = c.original_max_position_embeddings;
  comp.beta_fast = c.beta_fast;
  comp.beta_slow = c.beta_slow;
  m->rope_swa_.freqs = k::RopeFrequencies(c.qk_rope_head_dim, swa);
  m->rope_compressed_.freqs = k::RopeFrequencies(c.qk_rope_head_dim, comp);
  return m;
}

int64_t Model::max_context() const {
  return options_.max_context > 0 ? options_.max_context : config_.max_position_embeddings;
}

std::unique_ptr<SequenceCache> Model::NewCache() const {
  KvLayout layout = options_.kv_layout;
  if (layout == KvLayout::kPacked && !options_.qat_sim) layout = KvLayout::kFp32;
  return std::make_unique<SequenceCache>(config_, layout);
}

const Model::Rope& Model::RopeFor(int64_t layer) const {
  return config_.ratio(layer) == 0 ? rope_swa_ : rope_compressed_;
}

namespace {

// At least n floats in v, reused across calls: it grows, never shrinks, and its contents are
// whatever the last call left.
void ReuseFloats(std::vector<float>& v, int64_t n) {
  if (static_cast<int64_t>(v.size()) < n) v.resize(static_cast<size_t>(n));
}

constexpr int64_t kScoreTile = 32;

// Indexer keys [begin, end) as fp32 rows: pointers into the cache for fp32 rows, else
// decoded into this thread's kernel scratch, valid until its next use (one block of keys at a
// time, where it is scored: the packed history is never decoded whole, which at 1M tokens
// would be 128 MiB per layer and call; the index kernels use no scratch).
std::vector<const float*> KeyRows(const HistoryRows& rows, size_t begin, size_t end) {
  std::vector<const float*> out(end - begin);
  const int64_t w = rows.width();
  if (rows.format() == RowFormat::kFp32) {
    for (size_t j = begin; j < end; ++j)
      out[j - begin] = rows.Row(static_cast<int64_t>(j), nullptr);
    return out;
  }
  float* buf = k::ScratchFloats((end - begin) * static_cast<size_t>(w));
  rows.Decode(static_cast<int64_t>(begin), static_cast<int64_t>(end), buf);
  for (size_t j = begin; j < end; ++j) out[j - begin] = buf + (j - begin) * w;
  return out;
}

// A range of a split loop holds at least this many multiply-adds (or element steps): on a
// small model, or on a machine whose other core is busy, waking a thread costs more than a
// few thousand of them, so such loops stay on the calling thread.
constexpr int64_t kMinWorkPerRange = 1 << 16;
size_t ChunkFor(int64_t work_per_item, size_t at_least) {
  const int64_t per = std::max<int64_t>(work_per_item, 1);
  return std::max<size_t>(at_least, static_cast<size_t>((kMinWorkPerRange + per - 1) / per));
}

// mHC pre-mix of one token: returns the collapsed input in `a` [D], and post [hc], comb
// [hc, hc]. With a pool, the mixes' dot products (hc_mix_width rows of fp32 weights, 1.5 MiB at
// Flash widths, read from memory on every decode step) are split over its threads; each is
// the same Dot either way.
void HcPre(const ModelConfig& c, const HcParams& p, const float* x, float* a, float* pre,
           float* post, float* comb, ThreadPool* pool) {
  const int64_t hc = c.hc_mult, D = c.hidden_size, width = hc * D;
  const float eps = static_cast<float>(c.rms_norm_eps);
  const float hc_eps = static_cast<float>(c.hc_eps);
  float rho = 1.0f / std::sqrt(k::Dot(x, x, width) / static_cast<float>(width) + eps);
  std::vector<float> mu(static_cast<size_t>(c.hc_mix_width));
  auto mix = [&](size_t b, size_t e) {
    for (size_t m = b; m < e; ++m) mu[m] = rho * k::Dot(p.fn.data() + m * width, x, width);
  };
  if (pool != nullptr && pool->num_threads() > 1) {
    pool->ParallelFor(mu.size(), ChunkFor(width, 4), mix);
  } else {
    mix(0, mu.size());
  }
  for (int64_t j = 0; j < hc; ++j) {
    pre[j] = k::Sigmoid(mu[j] * p.scale[0] + p.base[j]) + hc_eps;
    post[j] = 2.0f * k::Sigmoid(mu[hc + j] * p.scale[1] + p.base[hc + j]);
  }
  for (int64_t i = 0; i < hc * hc; ++i) comb[i] = mu[2 * hc + i] * p.scale[2] + p.base[2 * hc + i];
  k::SinkhornInPlace(comb, hc, c.hc_sinkhorn_iters, hc_eps);
  // Streams in the outer loop, so the inner loop vectorizes; each a[d] still sums from 0 in
  // stream order, the same bits (contraction is off project-wide).
  std::fill(a, a + D, 0.0f);
  for (int64_t j = 0; j < hc; ++j) {
    const float w = pre[j], *xj = x + j * D;
    for (int64_t d = 0; d < D; ++d) a[d] += w * xj[d];
  }
}

// X_new[k] = post_k * o + sum_j comb[j][k] * X_old[j]; the sum over j in the outer loop, as in
// HcPre.
void HcPost(const ModelConfig& c, const float* o, const float* post, const float* comb, float* x) {
  const int64_t hc = c.hc_mult, D = c.hidden_size;
  thread_local std::vector<float> old;
  old.assign(x, x + hc * D);
  for (int64_t kk = 0; kk < hc; ++kk) {
    float* xk = x + kk * D;
    const float p = post[kk];
    for (int64_t d = 0; d < D; ++d) xk[d] = p * o[d];
    for (int64_t j = 0; j < hc; ++j) {
      const float w = comb[j * hc + kk], *oj = old.data() + j * D;
      for (int64_t d = 0; d < D; ++d) xk[d] += w * oj[d];
    }
  }
}

// Pushes token `pos`'s projections into a compressor; when its block completes, writes the
// pooled entry (width values) to `entry` and returns true.
bool CompressorPush(CompressorState& st, int64_t width, const float* u, const float* s, int64_t pos,
                    float* entry) {
  const int64_t m = st.ratio, rows = st.rows, slot = pos % m;
  std::copy(u, u + rows, st.cur_u.begin() + slot * rows);
  std::copy(s, s + rows, st.cur_s.begin() + slot * rows);
  if ((pos + 1) % m != 0) return false;
  const float neg_inf = -std::numeric_limits<float>::infinity();
  std::vector<float> sc, val;
  for (int64_t ch = 0; ch < width; ++ch) {
    sc.clear();
    val.clear();
    if (st.overlap) {
      // Previous block's A half (dims 0..width-1), then this block's B half.
      for (int64_t t = 0; t < m; ++t) {
        sc.push_back(st.prev_s[t * rows + ch]);
        val.push_back(st.prev_u[t * rows + ch]);
      }
      for (int64_t t = 0; t < m; ++t) {
        sc.push_back(st.cur_s[t * rows + width + ch]);
        val.push_back(st.cur_u[t * rows + width + ch]);
      }
    } else {
      for (int64_t t = 0; t < m; ++t) {
        sc.push_back(st.cur_s[t * rows + ch]);
        val.push_back(st.cur_u[t * rows + ch]);
      }
    }
    float mx = neg_inf;
    for (float v : sc) mx = std::max(mx, v);
    float sum = 0, acc = 0;
    for (size_t i = 0; i < sc.size(); ++i) {
      float e = sc[i] == neg_inf ? 0.0f : std::exp(sc[i] - mx);
      sum += e;
      acc += e * val[i];
    }
    entry[ch] = acc / sum;
  }
  if (st.overlap) {
    st.prev_u = st.cur_u;
    st.prev_s = st.cur_s;
  }
  std::fill(st.cur_u.begin(), st.cur_u.end(), 0.0f);
  std::fill(st.cur_s.begin(), st.cur_s.end(), neg_inf);
  return true;
}

}  // namespace

Model::RowPlaces Model::OneSequence(SequenceCache& cache, int64_t start, int64_t T) {
  RowPlaces places;
  places.caches.assign(static_cast<size_t>(T), &cache);
  places.positions.resize(static_cast<size_t>(T));
  for (int64_t t = 0; t < T; ++t) places.positions[t] = start + t;
  places.one_sequence = true;
  return places;
}

void Model::Attention(const BlockWeights& w, const RowPlaces& places, int64_t T,
                      const std::vector<float>& a, std::vector<float>& out, Trace* trace) {
  const ModelConfig& c = config_;
  const AttentionWeights& aw = w.attn;
  const int64_t D = c.hidden_size, H = c.num_attention_heads, hd = c.head_dim;
  const int64_t Rq = c.q_lora_rank, nope = c.nope_head_dim, W = c.sliding_window;
  const float eps = static_cast<float>(c.rms_norm_eps);
  const auto& freqs = RopeFor(w.layer).freqs;
  const bool sim = options_.qat_sim;
  ThreadPool* pool = pool_.get();

  std::vector<float> cq(T * Rq), kv(T * hd);
  // q and o are the two largest activations (64 MiB each for a 512-token chunk at Flash
  // widths): fresh allocations would be new pages, zeroed and faulted in on every layer.
  thread_local std::vector<float> q, o;
  ReuseFloats(q, T * H * hd);
  ReuseFloats(o, T * H * hd);
  std::vector<float> cu, cs, iu, is, iq, iw;
  const CompressorWeights* cw = aw.has_compressor ? &aw.compressor : nullptr;
  const IndexerWeights* iwts = aw.has_indexer ? &aw.indexer : nullptr;
  const int64_t HI = c.index_n_heads, dI = c.index_head_dim;
  // Every projection of the normed input in one parallel region, then the two of the normed
  // query latent in another: a decode step's small matrices (2-8 MiB each) would otherwise
  // cost a wake-up, a stream ramp-up and a wait each. Each output is the same bits as alone.
  std::vector<k::MatMulJob> jobs{{&aw.wq_a, a.data(), T, cq.data()},
                                 {&aw.wkv, a.data(), T, kv.data()}};
  if (cw) {
    cu.resize(T * cw->wkv.out);
    cs.resize(T * cw->wgate.out);
    jobs.push_back({&cw->wkv, a.data(), T, cu.data()});
    jobs.push_back({&cw->wgate, a.data(), T, cs.data()});
  }
  if (iwts) {
    const CompressorWeights& icw = iwts->compressor;
    iu.resize(T * icw.wkv.out);
    is.resize(T * icw.wgate.out);
    iq.resize(T * HI * dI);
    iw.resize(T * HI);
    jobs.push_back({&icw.wkv, a.data(), T, iu.data()});
    jobs.push_back({&icw.wgate, a.data(), T, is.data()});
    jobs.push_back({&iwts->weights_proj, a.data(), T, iw.data()});
  }
  k::MatMulBatch(jobs, pool);
  for (int64_t t = 0; t < T; ++t) {
    k::RmsNorm(cq.data() + t * Rq, aw.q_norm.data(), Rq, eps, cq.data() + t * Rq);
  }
  jobs = {{&aw.wq_b, cq.data(), T, q.data()}};
  if (iwts) jobs.push_back({&iwts->wq_b, cq.data(), T, iq.data()});
  k::MatMulBatch(jobs, pool);
  // Each token's rotation angles, shared by its query heads, its KV row, its indexer heads
  // and the inverse rotation of its output heads.
  std::vector<k::RopeAngles> angles(static_cast<size_t>(T));
  for (int64_t t = 0; t < T; ++t) k::ComputeRopeAngles(freqs, places.positions[t], &angles[t]);
  // Query heads and indexer heads, each independent of the others: split over the threads.
  // An indexer head (rotation, Hadamard transform, FP4 rounding) costs about twice a query
  // head (a norm and a rotation), so the two kinds alternate, as many pairs as the smaller
  // kind has, and every range holds a like mix: with query heads first and indexer heads last
  // one thread took all the indexer heads and the other waited for it.
  float* const qd = q.data();  // thread_local: a worker naming q would get its own, empty
  const int64_t heads = H + (iwts ? HI : 0);
  const int64_t pairs = iwts ? std::min(H, HI) : 0;
  auto head_of = [&](int64_t r) {
    if (r < 2 * pairs) return r % 2 == 0 ? r / 2 : H + r / 2;
    return r - pairs + (H > pairs ? 0 : H);
  };
  const float wscale = 1.0f / std::sqrt(static_cast<float>(dI)) / std::sqrt(static_cast<float>(HI));
  pool->ParallelFor(static_cast<size_t>(T * heads), ChunkFor(4 * hd, 8), [&](size_t b, size_t e) {
    for (size_t i = b; i < e; ++i) {
      const int64_t t = static_cast<int64_t>(i) / heads;
      const int64_t h = head_of(static_cast<int64_t>(i) % heads);
      if (h < H) {
        float* qh = qd + (t * H + h) * hd;
        k::RmsNorm(qh, nullptr, hd, eps, qh);
        k::ApplyRope(qh + nope, angles[t], false);
      } else {
        float* qh = iq.data() + (t * HI + h - H) * dI;
        k::ApplyRope(qh + (dI - c.qk_rope_head_dim), angles[t], false);
        k::HadamardRotate(qh, dI);
        if (sim) quant::Fp4Simulate({qh, static_cast<size_t>(dI)}, 32);
        iw[t * HI + h - H] *= wscale;
      }
    }
  });
  for (int64_t t = 0; t < T; ++t) {
    float* kvt = kv.data() + t * hd;
    k::RmsNorm(kvt, aw.kv_norm.data(), hd, eps, kvt);
    k::ApplyRope(kvt + nope, angles[t], false);
    if (sim) quant::Fp8Simulate({kvt, static_cast<size_t>(nope)}, 64);
  }

  // Compressor gates: the position's bias.
  if (cw) {
    for (int64_t t = 0; t < T; ++t) {
      const float* ape = cw->ape.data() + (places.positions[t] % cw->ratio) * cw->wgate.out;
      for (int64_t r = 0; r < cw->wgate.out; ++r) cs[t * cw->wgate.out + r] += ape[r];
    }
  }
  if (iwts) {
    const CompressorWeights& icw = iwts->compressor;
    for (int64_t t = 0; t < T; ++t) {
      const float* ape = icw.ape.data() + (places.positions[t] % icw.ratio) * icw.wgate.out;
      for (int64_t r = 0; r < icw.wgate.out; ++r) is[t * icw.wgate.out + r] += ape[r];
    }
  }

  std::vector<float> entry(std::max(hd, dI)), scores;
  std::vector<float> row_scratch;
  // Packed HCA entries are decoded once per call, not once per token: an Append of T tokens
  // reads every entry T times. (Several sequences: one decoded view each.) Indexer keys are
  // decoded a block at a time where they are scored (KeyRows).
  const size_t views = places.one_sequence ? 1 : static_cast<size_t>(T);
  std::vector<DecodedRows> entry_views(views);
  const int64_t keys_before =
      iwts && places.one_sequence ? places.layer(0, w.layer).index_keys.size() : 0;
  std::vector<float> tile_scores;
  int64_t tile_t0 = 0, tile_n = 0;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  std::vector<int32_t> selected;
  for (int64_t t = 0; t < T; ++t) {
    const int64_t pos = places.positions[t];
    LayerCache& lc = places.layer(t, w.layer);
    DecodedRows& entries_f32 = entry_views[places.one_sequence ? 0 : t];
    std::copy(kv.begin() + t * hd, kv.begin() + (t + 1) * hd, lc.window.begin() + (pos % W) * hd);
    if (iwts) {
      if (CompressorPush(lc.index_compressor, dI, iu.data() + t * iwts->compressor.wkv.out,
                         is.data() + t * iwts->compressor.wgate.out, pos, entry.data())) {
        const int64_t j = pos / lc.index_compressor.ratio;
        k::RmsNorm(entry.data(), iwts->compressor.norm.data(), dI, eps, entry.data());
        k::ApplyRope(entry.data() + (dI - c.qk_rope_head_dim), freqs, j * lc.index_compressor.ratio,
                     false);
        k::HadamardRotate(entry.data(), dI);
        if (sim) quant::Fp4Simulate({entry.data(), static_cast<size_t>(dI)}, 32);
        V4_CHECK(lc.index_keys.Append(entry.data())) << "indexer key not representable in FP4";
      }
      const int64_t n_keys = lc.index_keys.size();
      // Scores of the keys that existed before this chunk come from the tile computed for
      // up to kScoreTile tokens at once (each key read once per tile, not once per token:
      // at long contexts the keys far exceed the caches); newer keys are scored here. Both
      // use IndexScores, so the bits do not depend on the tiling.
      if (t % kScoreTile == 0 && keys_before > 0) {
        tile_t0 = t;
        tile_n = std::min<int64_t>(kScoreTile, T - t);
        tile_scores.resize(static_cast<size_t>(tile_n * keys_before));
        auto tile_work = [&](size_t jb, size_t je) {
          // 256 keys (128 KiB decoded at V4's widths) stay in L2 for every token of the tile.
          for (size_t kb = jb; kb < je; kb += 256) {
            const size_t ke = std::min(je, kb + 256);
            const std::vector<const float*> keys = KeyRows(lc.index_keys, kb, ke);
            for (int64_t tt = 0; tt < tile_n; ++tt) {
              const k::IndexQuery qy{iq.data() + (tile_t0 + tt) * HI * dI,
                                     iw.data() + (tile_t0 + tt) * HI, HI, dI};
              k::IndexScores(qy, keys.data(), static_cast<int64_t>(ke - kb),
                             tile_scores.data() + tt * keys_before + kb);
            }
          }
        };
        if (tile_n * keys_before * HI * dI >= (1 << 18)) {
          pool->ParallelFor(static_cast<size_t>(keys_before), 256, tile_work);
        } else {
          tile_work(0, static_cast<size_t>(keys_before));
        }
      }
      scores.resize(static_cast<size_t>(n_keys));
      const int64_t from_tile = std::min(keys_before, n_keys);
      if (from_tile > 0) {
        const float* row = tile_scores.data() + (t - tile_t0) * keys_before;
        std::copy(row, row + from_tile, scores.begin());
      }
      auto score_work = [&](size_t jb, size_t je) {
        const k::IndexQuery qy{iq.data() + t * HI * dI, iw.data() + t * HI, HI, dI};
        for (size_t kb = jb; kb < je; kb += 256) {
          const size_t ke = std::min(je, kb + 256);
          const std::vector<const float*> keys = KeyRows(lc.index_keys, kb, ke);
          k::IndexScores(qy, keys.data(), static_cast<int64_t>(ke - kb), scores.data() + kb);
        }
      };
      const int64_t fresh = n_keys - from_tile;
      if (fresh * HI * dI >= (1 << 18)) {
        pool->ParallelFor(static_cast<size_t>(fresh), 256, [&](size_t jb, size_t je) {
          score_work(jb + from_tile, je + from_tile);
        });
      } else {
        score_work(static_cast<size_t>(from_tile), static_cast<size_t>(n_keys));
      }
      selected = k::TopKStable(scores.data(), n_keys, c.index_topk);
      if (trace) {
        const int64_t slots = std::min<int64_t>(c.index_topk, (places.positions[0] + T) / 4);
        std::vector<float> row(static_cast<size_t>(std::max<int64_t>(slots, 0)), -1.0f);
        for (size_t i = 0; i < selected.size() && i < row.size(); ++i)
          row[i] = static_cast<float>(selected[i]);
        TraceRow(trace, StrCat("layers.", w.layer, ".indexer_topk_blocks"), row.data(),
                 static_cast<int64_t>(row.size()));
      }
    }
    if (cw) {
      if (CompressorPush(lc.compressor, hd, cu.data() + t * cw->wkv.out,
                         cs.data() + t * cw->wgate.out, pos, entry.data())) {
        const int64_t j = pos / cw->ratio;
        k::RmsNorm(entry.data(), cw->norm.data(), hd, eps, entry.data());
        k::ApplyRope(entry.data() + nope, freqs, j * cw->ratio, false);
        if (sim) quant::Fp8Simulate({entry.data(), static_cast<size_t>(nope)}, 64);
        V4_CHECK(lc.compressed.Append(entry.data())) << "KV entry not representable in FP8";
        lc.num_entries++;
      }
    }
    // Candidate KV rows: the raw window, then the chosen compressed entries.
    std::vector<const float*> rows;
    for (int64_t p = std::max<int64_t>(0, pos - W + 1); p <= pos; ++p) {
      rows.push_back(lc.window.data() + (p % W) * hd);
    }
    if (cw) {
      if (iwts) {
        const int64_t n = static_cast<int64_t>(selected.size());
        if (static_cast<int64_t>(row_scratch.size()) < n * hd) row_scratch.resize(n * hd);
        for (int64_t i = 0; i < n; ++i) {
          rows.push_back(lc.compressed.Row(selected[i], row_scratch.data() + i * hd));
        }
      } else {
        entries_f32.Sync(lc.compressed);
        for (int64_t j = 0; j < lc.num_entries; ++j) {
          rows.push_back(entries_f32.Row(lc.compressed, j));
        }
      }
    }
    k::SharedRowsAttention att;
    att.q = q.data() + t * H * hd;
    att.rows = rows.data();
    att.n = static_cast<int64_t>(rows.size());
    att.head_dim = hd;
    att.sink = aw.sink.data();
    att.scale = scale;
    att.o = o.data() + t * H * hd;
    auto head_work = [&](size_t hb, size_t he) {
      k::AttendSharedRows(att, static_cast<int64_t>(hb), static_cast<int64_t>(he));
      for (size_t h = hb; h < he; ++h) k::ApplyRope(att.o + h * hd + nope, angles[t], true);
    };
    // Heads are independent: splitting them over threads changes no bit.
    if (H >= 2 && static_cast<int64_t>(rows.size()) * H * hd >= (1 << 18)) {
      pool->ParallelFor(static_cast<size_t>(H), 4, head_work);
    } else {
      head_work(0, static_cast<size_t>(H));
    }
  }
  // Grouped output projection: group g's heads through its R_o rows of wo_a, then wo_b.
  const int64_t G = c.o_groups, Ro = c.o_lora_rank, gin = c.heads_per_group * hd;
  std::vector<float> z(T * G * Ro);
  // All groups in one parallel region: a region per group cost a wake-up and an end-of-region
  // wait each, 8 per layer on every decode step.
  std::vector<k::MatMulJob> groups;
  for (int64_t g = 0; g < G; ++g) {
    groups.push_back(
        {&aw.wo_a, o.data() + g * gin, T, z.data() + g * Ro, g * Ro, (g + 1) * Ro, H * hd, G * Ro});
  }
  k::MatMulBatch(groups, pool);
  out.assign(T * D, 0.0f);
  k::MatMul(aw.wo_b, z.data(), T, out.data(), pool);
}

void Model::Moe(const BlockWeights& w, std::span<const int32_t> tokens, int64_t T,
                const std::vector<float>& f, std::vector<float>& out, Trace* trace) {
  const ModelConfig& c = config_;
  const MoeWeights& mw = w.ffn;
  const int64_t D = c.hidden_size, E = c.n_routed_experts, K = c.num_experts_per_tok;
  const int64_t I = c.moe_intermediate_size;
  const float limit = static_cast<float>(c.swiglu_limit);
  ThreadPool* pool = pool_.get();
  std::vector<float> z(T * E);
  k::MatMul(mw.gate, f.data(), T, z.data(), pool);
  std::vector<int32_t> idx(T * K);
  std::vector<float> gw(T * K);
  for (int64_t t = 0; t < T; ++t) {
    float* zt = z.data() + t * E;
    std::vector<float> sc(static_cast<size_t>(E));
    if (c.scoring_func == "softmax") {
      float mx = *std::max_element(zt, zt + E), sum = 0;
      for (int64_t e = 0; e < E; ++e) sum += (sc[e] = std::exp(zt[e] - mx));
      for (auto& v : sc) v /= sum;
    } else if (c.scoring_func == "sigmoid") {
      for (int64_t e = 0; e < E; ++e) sc[e] = k::Sigmoid(zt[e]);
    } else {
      for (int64_t e = 0; e < E; ++e) sc[e] = std::sqrt(k::Softplus(zt[e]));
    }
    std::vector<int32_t> chosen;
    if (c.hash_routed(w.layer)) {
      chosen.assign(mw.tid2eid.begin() + tokens[t] * K, mw.tid2eid.begin() + (tokens[t] + 1) * K);
    } else {
      std::vector<float> biased(sc);
      for (int64_t e = 0; e < E; ++e) biased[e] += mw.bias[e];
      chosen = k::TopKStable(biased.data(), E, K);
    }
    float sum = 0;
    for (int64_t i = 0; i < K; ++i) sum += sc[chosen[i]];
    for (int64_t i = 0; i < K; ++i) {
      float g = sc[chosen[i]];
      if (c.norm_topk_prob) g /= sum;
      idx[t * K + i] = chosen[i];
      gw[t * K + i] = g * static_cast<float>(c.routed_scaling_factor);
    }
    if (trace) {
      std::vector<float> ids(chosen.begin(), chosen.end());
      TraceRow(trace, StrCat("layers.", w.layer, ".moe_experts"), ids.data(), K);
      TraceRow(trace, StrCat("layers.", w.layer, ".moe_weights"), gw.data() + t * K, K);
    }
  }
  // Each expert with tokens (in id order, then the shared expert): its tokens' inputs, gate
  // and up projections, SwiGLU with the clamp and the routing weight, down projection.
  struct ExpertRun {
    const ExpertWeights* ew;
    std::vector<int64_t> toks;
    std::vector<float> weights, x, h1, h3, y;
  };
  std::vector<ExpertRun> runs;
  for (int64_t e = 0; e < E; ++e) {
    ExpertRun r{&mw.experts[e], {}, {}, {}, {}, {}, {}};
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t i = 0; i < K; ++i) {
        if (idx[t * K + i] == e) {
          r.toks.push_back(t);
          r.weights.push_back(gw[t * K + i]);
        }
      }
    }
    if (!r.toks.empty()) runs.push_back(std::move(r));
  }
  if (mw.has_shared) {
    ExpertRun r{&mw.shared,
                std::vector<int64_t>(static_cast<size_t>(T)),
                std::vector<float>(static_cast<size_t>(T), 1.0f),
                {},
                {},
                {},
                {}};
    for (int64_t t = 0; t < T; ++t) r.toks[t] = t;
    runs.push_back(std::move(r));
  }
  // A few tokens (decode): all experts' gate and up projections in one parallel region, then
  // all down projections, since a region per small matrix costs a wait each. Many tokens
  // (prefill): one expert at a time, so only one expert's activations are held at once.
  const size_t wave = T <= 16 ? runs.size() : 1;
  out.assign(T * D, 0.0f);
  std::vector<k::MatMulJob> jobs;
  for (size_t w0 = 0; w0 < runs.size(); w0 += wave) {
    const std::span<ExpertRun> batch(runs.data() + w0, std::min(wave, runs.size() - w0));
    jobs.clear();
    for (ExpertRun& r : batch) {
      const int64_t n = static_cast<int64_t>(r.toks.size());
      r.x.resize(n * D);
      for (int64_t i = 0; i < n; ++i) std::copy_n(f.data() + r.toks[i] * D, D, r.x.data() + i * D);
      r.h1.resize(n * r.ew->w1.out);
      r.h3.resize(n * r.ew->w3.out);
      r.y.resize(n * D);
      jobs.push_back({&r.ew->w1, r.x.data(), n, r.h1.data()});
      jobs.push_back({&r.ew->w3, r.x.data(), n, r.h3.data()});
    }
    k::MatMulBatch(jobs, pool);
    jobs.clear();
    for (ExpertRun& r : batch) {
      const int64_t n = static_cast<int64_t>(r.toks.size()), width = r.ew->w1.out;
      for (int64_t i = 0; i < n; ++i) {
        for (int64_t j = 0; j < width; ++j) {
          float up = std::clamp(r.h3[i * width + j], -limit, limit);
          float gate = std::min(r.h1[i * width + j], limit);
          r.h1[i * width + j] = k::Silu(gate) * up * r.weights[i];
        }
      }
      jobs.push_back({&r.ew->w2, r.h1.data(), n, r.y.data()});
    }
    k::MatMulBatch(jobs, pool);
    // Each token's expert outputs are summed in expert order whatever the waves.
    for (ExpertRun& r : batch) {
      for (size_t i = 0; i < r.toks.size(); ++i) {
        float* o = out.data() + r.toks[i] * D;
        for (int64_t d = 0; d < D; ++d) o[d] += r.y[i * D + d];
      }
      r = ExpertRun{r.ew, {}, {}, {}, {}, {}, {}};  // frees its activations
    }
  }
  (void)I;
}

void Model::Block(const BlockWeights& w, const RowPlaces& places, std::span<const int32_t> tokens,
                  std::vector<float>& streams, Trace* trace) {
  const ModelConfig& c = config_;
  const int64_t T = static_cast<int64_t>(tokens.size());
  const int64_t hc = c.hc_mult, D = c.hidden_size;
  const float eps = static_cast<float>(c.rms_norm_eps);
  const std::string prefix = StrCat("layers.", w.layer, ".");
  std::vector<float> a(T * D), pre(T * hc), post(T * hc), comb(T * hc * hc), out;
  for (int sub = 0; sub < 2; ++sub) {
    const HcParams& p = sub == 0 ? w.hc_attn : w.hc_ffn;
    const std::vector<float>& norm = sub == 0 ? w.attn_norm : w.ffn_norm;
    const char* name = sub == 0 ? "attn" : "ffn";
    // Tokens are independent here: many split over the threads, one splits its mixes.
    auto pre_mix = [&](size_t b, size_t e) {
      for (size_t t = b; t < e; ++t) {
        float* at = a.data() + t * D;
        HcPre(c, p, streams.data() + t * hc * D, at, pre.data() + t * hc, post.data() + t * hc,
              comb.data() + t * hc * hc, T == 1 ? pool_.get() : nullptr);
        k::RmsNorm(at, norm.data(), D, eps, at);
      }
    };
    if (T > 1) {
      pool_->ParallelFor(static_cast<size_t>(T), ChunkFor(c.hc_mix_width * hc * D, 1), pre_mix);
    } else {
      pre_mix(0, 1);
    }
    TraceRow(trace, prefix + "hc_" + name + "_pre", pre.data(), T * hc);
    TraceRow(trace, prefix + "hc_" + name + "_post", post.data(), T * hc);
    TraceRow(trace, prefix + "hc_" + name + "_comb", comb.data(), T * hc * hc);
    TraceRow(trace, prefix + name + "_norm_out", a.data(), T * D);
    if (sub == 0) {
      Attention(w, places, T, a, out, trace);
    } else {
      Moe(w, tokens, T, a, out, trace);
    }
    TraceRow(trace, prefix + name + "_out", out.data(), T * D);
    pool_->ParallelFor(static_cast<size_t>(T), ChunkFor(hc * D * (hc + 1), 8),
                       [&](size_t b, size_t e) {
                         for (size_t t = b; t < e; ++t) {
                           HcPost(c, out.data() + t * D, post.data() + t * hc,
                                  comb.data() + t * hc * hc, streams.data() + t * hc * D);
                         }
                       });
    TraceRow(trace, prefix + (sub == 0 ? "streams_after_attn" : "streams_out"), streams.data(),
             T * hc * D);
  }
}

void Model::Head(const HcParams& hcp, const std::vector<float>& norm, const float* streams,
                 int64_t T, bool all_rows, std::vector<float>* logits, Trace* trace,
                 const std::string& prefix) {
  const ModelConfig& c = config_;
  const int64_t hc = c.hc_mult, D = c.hidden_size, width = hc * D, V = c.vocab_size;
  const float eps = static_cast<float>(c.rms_norm_eps);
  const int64_t first = all_rows ? 0 : T - 1;
  const int64_t rows = T - first;
  std::vector<float> y(rows * D), n(rows * D);
  for (int64_t t = first; t < T; ++t) {
    const float* x = streams + t * width;
    float rho = 1.0f / std::sqrt(k::Dot(x, x, width) / static_cast<float>(width) + eps);
    float* yt = y.data() + (t - first) * D;
    std::fill(yt, yt + D, 0.0f);
    for (int64_t j = 0; j < hc; ++j) {
      float mu = rho * k::Dot(hcp.fn.data() + j * width, x, width);
      float wj = k::Sigmoid(mu * hcp.scale[0] + hcp.base[j]) + static_cast<float>(c.hc_eps);
      for (int64_t d = 0; d < D; ++d) yt[d] += wj * x[j * D + d];
    }
    k::RmsNorm(yt, norm.data(), D, eps, n.data() + (t - first) * D);
  }
  TraceRow(trace, prefix + "hc_head_out", y.data(), rows * D);
  TraceRow(trace, prefix + "final_norm_out", n.data(), rows * D);
  if (logits) {
    logits->assign(rows * V, 0.0f);
    k::MatMul(weights_->head, n.data(), rows, logits->data(), pool_.get());
  }
}

std::vector<float> Model::Embed(std::span<const int32_t> tokens, Trace* trace) const {
  const int64_t T = static_cast<int64_t>(tokens.size());
  const int64_t hc = config_.hc_mult, D = config_.hidden_size;
  std::vector<float> streams(T * hc * D);
  std::vector<float> row(static_cast<size_t>(D));
  for (int64_t t = 0; t < T; ++t) {
    weights_->embed.DequantRow(tokens[t], row.data());
    TraceRow(trace, "embed", row.data(), D);
    for (int64_t j = 0; j < hc; ++j)
      std::copy(row.begin(), row.end(), streams.begin() + (t * hc + j) * D);
  }
  return streams;
}

Status Model::CheckTokens(std::span<const int32_t> tokens) const {
  for (size_t t = 0; t < tokens.size(); ++t) {
    if (tokens[t] < 0 || tokens[t] >= config_.vocab_size) {
      return OutOfRangeError(StrCat("token id ", tokens[t], " at index ", t,
                                    " is outside the vocabulary [0, ", config_.vocab_size, ")"));
    }
  }
  return Status::Ok();
}

Status Model::Forward(SequenceCache& cache, std::span<const int32_t> tokens, bool all_logits,
                      std::vector<float>* logits, Trace* trace, std::vector<float>* last_streams) {
  const int64_t T = static_cast<int64_t>(tokens.size());
  if (T == 0) return InvalidArgumentError("Forward: no tokens");
  V4_RETURN_IF_ERROR(CheckTokens(tokens));
  if (cache.length() + T > max_context()) {
    return OutOfRangeError(StrCat("context of ", cache.length() + T,
                                  " tokens exceeds the maximum of ", max_context()));
  }
  const int64_t start = cache.length();
  std::vector<float> streams = Embed(tokens, trace);
  const RowPlaces places = OneSequence(cache, start, T);
  for (const BlockWeights& w : weights_->layers) Block(w, places, tokens, streams, trace);
  if (last_streams) *last_streams = streams;
  Head(weights_->hc_head, weights_->norm, streams.data(), T, all_logits, logits, trace, "");
  if (trace && logits)
    TraceRow(trace, "logits", logits->data(), static_cast<int64_t>(logits->size()));
  cache.set_length(start + T);
  return Status::Ok();
}

Status Model::ForwardBatch(std::span<SequenceCache* const> caches, std::span<const int32_t> tokens,
                           std::vector<float>* logits) {
  const int64_t B = static_cast<int64_t>(tokens.size());
  if (B == 0 || caches.size() != tokens.size()) {
    return InvalidArgumentError(StrCat("ForwardBatch: ", caches.size(), " sequences and ",
                                       tokens.size(), " tokens (one token per sequence)"));
  }
  V4_RETURN_IF_ERROR(CheckTokens(tokens));
  RowPlaces places;
  places.one_sequence = B == 1;
  for (int64_t i = 0; i < B; ++i) {
    SequenceCache* cache = caches[i];
    if (cache == nullptr)
      return InvalidArgumentError(StrCat("ForwardBatch: sequence ", i, " is null"));
    for (int64_t j = 0; j < i; ++j) {
      if (caches[j] == cache) {
        return InvalidArgumentError(
            StrCat("ForwardBatch: sequences ", j, " and ", i, " are the same cache"));
      }
    }
    if (cache->length() + 1 > max_context()) {
      return OutOfRangeError(StrCat("sequence ", i, ": context of ", cache->length() + 1,
                                    " tokens exceeds the maximum of ", max_context()));
    }
    places.caches.push_back(cache);
    places.positions.push_back(cache->length());
  }
  std::vector<float> streams = Embed(tokens, nullptr);
  for (const BlockWeights& w : weights_->layers) Block(w, places, tokens, streams, nullptr);
  Head(weights_->hc_head, weights_->norm, streams.data(), B, true, logits, nullptr, "");
  for (int64_t i = 0; i < B; ++i) caches[i]->set_length(places.positions[i] + 1);
  return Status::Ok();
}

Status Model::ForwardMtp(SequenceCache& cache, std::span<const float> streams,
                         std::span<const int32_t> next_tokens, std::vector<float>* logits) {
  const ModelConfig& c = config_;
  if (weights_->mtp.empty()) return FailedPreconditionError("this checkpoint has no MTP block");
  const int64_t T = static_cast<int64_t>(next_tokens.size());
  const int64_t hc = c.hc_mult, D = c.hidden_size;
  if (static_cast<int64_t>(streams.size()) != T * hc * D) {
    return InvalidArgumentError("ForwardMtp: streams must be [tokens, hc, D]");
  }
  for (int32_t id : next_tokens) {
    if (id < 0 || id >= c.vocab_size)
      return OutOfRangeError(StrCat("token id ", id, " out of range"));
  }
  const MtpWeights& m = weights_->mtp[0];
  const float eps = static_cast<float>(c.rms_norm_eps);
  LayerCache& lc = cache.layer(c.num_hidden_layers);
  // The MTP layer keeps its own position: tokens it has consumed so far.
  const int64_t start = cache.mtp_length();
  (void)lc;
  std::vector<float> e(T * D), ep(T * D), hn(T * hc * D), hp(T * hc * D), x(T * hc * D);
  for (int64_t t = 0; t < T; ++t) {
    weights_->embed.DequantRow(next_tokens[t], e.data() + t * D);
    k::RmsNorm(e.data() + t * D, m.enorm.data(), D, eps, e.data() + t * D);
    for (int64_t j = 0; j < hc; ++j) {
      const float* s = streams.data() + (t * hc + j) * D;
      k::RmsNorm(s, m.hnorm.data(), D, eps, hn.data() + (t * hc + j) * D);
    }
  }
  k::MatMul(m.e_proj, e.data(), T, ep.data(), pool_.get());
  k::MatMul(m.h_proj, hn.data(), T * hc, hp.data(), pool_.get());
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t j = 0; j < hc; ++j) {
      for (int64_t d = 0; d < D; ++d) {
        x[(t * hc + j) * D + d] = ep[t * D + d] + hp[(t * hc + j) * D + d];
      }
    }
  }
  Block(m.block, OneSequence(cache, start, T), next_tokens, x, nullptr);
  cache.set_mtp_length(start + T);
  Head(m.hc_head, m.norm, x.data(), T, true, logits, nullptr, "mtp.");
  return Status::Ok();
}

}  // namespace v4agent::engine
