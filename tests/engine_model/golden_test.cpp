// The forward pass against DeepSeek's reference outputs (tests/goldens, README §5-§6).
#include <gtest/gtest.h>

#include "engine/model/model.h"
#include "tests/engine_model/golden_util.h"

namespace v4agent::engine {
namespace {

using testing::Compare;
using testing::OpenCase;
using testing::Read;

struct IntermediatesCase {
  std::string config, mode, file;
};

class IntermediatesTest : public ::testing::TestWithParam<IntermediatesCase> {};

TEST_P(IntermediatesTest, LayerByLayer) {
  const auto& p = GetParam();
  auto model = testing::LoadGoldenModel(p.config, p.mode == "sim");
  auto golden = OpenCase(p.config + "/" + p.mode + "/" + p.file);
  auto tokens = Read<int32_t>(*golden, "tokens");
  auto cache = model->NewCache();
  Trace trace;
  std::vector<float> logits, streams;
  ASSERT_TRUE(model->Forward(*cache, tokens, true, &logits, &trace, &streams).ok());
  // Compare in forward order; the first failing tensor names the bug.
  std::vector<std::string> names = {"embed"};
  const auto& c = model->config();
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    for (const char* n :
         {"hc_attn_pre", "hc_attn_post", "hc_attn_comb", "attn_norm_out", "attn_out",
          "streams_after_attn", "hc_ffn_pre", "hc_ffn_post", "hc_ffn_comb", "ffn_norm_out",
          "moe_experts", "moe_weights", "ffn_out", "streams_out"}) {
      names.push_back("layers." + std::to_string(i) + "." + n);
    }
  }
  names.insert(names.end(), {"hc_head_out", "final_norm_out", "logits"});
  // README §6: every tensor within ~1e-5 relative; in sim, a value within fp32 noise of an
  // e4m3/e2m1 midpoint may round the other way here than in the reference, and rows from the
  // first such flip on may drift up to 1e-2. The flip row is found here (the first row where
  // any tensor leaves the tight tolerance) and must be a real KV rounding flip (checked below).
  const int64_t L = static_cast<int64_t>(tokens.size());
  int64_t first_flip = L;  // rows >= this one may drift
  float max_err = 0;
  for (const auto& name : names) {
    const TensorView* g = golden->Find(name);
    ASSERT_NE(g, nullptr) << name;
    std::vector<float> expect;
    if (g->dtype == DType::kI32) {
      for (int32_t v : g->Copy<int32_t>()) expect.push_back(static_cast<float>(v));
    } else {
      auto s = g->Copy<float>();
      expect.assign(s.begin(), s.end());
    }
    const auto& ours = trace[name];
    ASSERT_EQ(ours.size(), expect.size()) << name;
    float scale = 0;
    for (float v : expect) scale = std::max(scale, std::fabs(v));
    const float tight = 1e-5f * std::max(1.0f, scale) + 1e-6f;
    const float drift = 1e-2f * std::max(1.0f, scale);
    const int64_t per_row = static_cast<int64_t>(ours.size()) / L;
    bool ok = true;
    for (int64_t r = 0; r < L && ok; ++r) {
      auto d = Compare(ours.data() + r * per_row, expect.data() + r * per_row, per_row);
      if (p.mode == "sim" && d.max_abs > tight && r < first_flip) {
        first_flip = r;
        std::printf("[ report ] %s/%s: first rounding flip shows at row %lld in %s (%.3g)\n",
                    p.config.c_str(), p.mode.c_str(), static_cast<long long>(r), name.c_str(),
                    d.max_abs);
      }
      const float tol = r < first_flip ? tight : drift;
      EXPECT_LE(d.max_abs, tol) << name << " row " << r << " worst element " << d.worst << ": ours "
                                << ours[r * per_row + d.worst] << " vs "
                                << expect[r * per_row + d.worst];
      ok = d.max_abs <= tol;
      if (r < first_flip) max_err = std::max(max_err, d.max_abs / std::max(1.0f, scale));
    }
    if (!ok) break;
  }
  // MTP: main-model last-layer streams at rows 0..L-2 with the tokens at 1..L-1.
  {
    const int64_t per = c.hc_mult * c.hidden_size;
    std::vector<float> mtp_streams(streams.begin(), streams.begin() + (L - 1) * per);
    std::vector<int32_t> next(tokens.begin() + 1, tokens.end());
    auto mtp_cache = model->NewCache();
    std::vector<float> mtp_logits;
    ASSERT_TRUE(model->ForwardMtp(*mtp_cache, mtp_streams, next, &mtp_logits).ok());
    auto expect = Read<float>(*golden, "mtp_logits");
    ASSERT_EQ(mtp_logits.size(), expect.size());
    // Row t of the MTP logits reads main-model rows up to t+1: tight before the flip row, up
    // to 1e-2 from it on.
    // The MTP block sits downstream of every flip of the main model (and has a window of its
    // own); past the first flip its rows are judged as README §6 judges long mini-flash sim
    // prompts: top-1 agreement >= 95% and median row deviation <= 5e-2.
    const int64_t V = static_cast<int64_t>(expect.size()) / (L - 1);
    float worst_before = 0;
    std::vector<float> after;
    int64_t agree = 0;
    for (int64_t t = 0; t + 1 < L; ++t) {
      auto d = Compare(mtp_logits.data() + t * V, expect.data() + t * V, V);
      if (t + 1 < first_flip) {
        worst_before = std::max(worst_before, d.max_abs);
        continue;
      }
      after.push_back(d.max_abs);
      agree += testing::ArgMax(mtp_logits.data() + t * V, V) ==
               testing::ArgMax(expect.data() + t * V, V);
    }
    EXPECT_LE(worst_before, 2e-4f) << "mtp_logits before the first flip";
    if (!after.empty()) {
      std::nth_element(after.begin(), after.begin() + after.size() / 2, after.end());
      const float median = after[after.size() / 2];
      EXPECT_LE(median, 5e-2f) << "mtp_logits median row deviation after the first flip";
      EXPECT_GE(agree * 100, static_cast<int64_t>(after.size()) * 95) << "mtp top-1 agreement";
      std::printf(
          "[ report ] %s/%s mtp_logits: max abs %.3g before row %lld; after it median "
          "%.3g, top-1 %lld/%zu\n",
          p.config.c_str(), p.mode.c_str(), worst_before, static_cast<long long>(first_flip),
          median, static_cast<long long>(agree), after.size());
    }
  }
  std::printf("[ report ] %s/%s intermediates: max relative error %.3g\n", p.config.c_str(),
              p.mode.c_str(), max_err);
  // The row where drift began is a real rounding flip: some layer's window KV for that
  // position sits one e4m3 step away from the reference's (README §6, point 2).
  if (first_flip < L) {
    bool flip_found = false;
    for (int64_t i = 0; i < c.num_hidden_layers && !flip_found; ++i) {
      const LayerCache& lc = cache->layer(i);
      const int64_t W = c.sliding_window;
      if (first_flip < L - W) break;  // that position left the ring
      auto expect = Read<float>(*golden, "layers." + std::to_string(i) + ".window_kv");
      const int64_t dim = static_cast<int64_t>(expect.size()) / W;
      const int64_t slot = first_flip % W;
      auto d = Compare(lc.window.data() + slot * dim, expect.data() + slot * dim, dim);
      flip_found = d.max_abs > 5e-3f;
    }
    EXPECT_TRUE(flip_found) << "drift from row " << first_flip
                            << " is not explained by a KV rounding flip";
  }
  // Cache contents after the prefill and the indexer's choices.
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string pre = "layers." + std::to_string(i) + ".";
    const LayerCache& lc = cache->layer(i);
    auto check = [&](const std::string& name, const std::vector<float>& ours) {
      auto expect = Read<float>(*golden, pre + name);
      ASSERT_EQ(ours.size(), expect.size()) << pre + name;
      auto d = Compare(ours.data(), expect.data(), static_cast<int64_t>(ours.size()));
      if (p.mode == "nosim") {
        EXPECT_LE(d.max_abs, 2e-5f) << pre + name << " worst " << d.worst << ": " << ours[d.worst]
                                    << " vs " << expect[d.worst];
        return;
      }
      // sim: an element within fp32 noise of an e4m3 midpoint may land one step away (README
      // §6: about one value in 1e5), and a flip in one layer moves later layers' inputs and can
      // cascade into a few more; allow at most 0.1% of the elements.
      int64_t flips = 0;
      for (size_t i = 0; i < ours.size(); ++i) flips += std::fabs(ours[i] - expect[i]) > 5e-3f;
      if (flips)
        std::printf("[ report ] %s%s: %lld rounding flip(s)\n", pre.c_str(), name.c_str(),
                    static_cast<long long>(flips));
      EXPECT_LE(flips * 1000, static_cast<int64_t>(ours.size())) << pre + name;
    };
    check("window_kv", lc.window);
    if (lc.ratio != 0) check("compressed_kv", lc.compressed.ToFloats());
    if (lc.index_compressor.ratio != 0) {
      check("indexer_keys", lc.index_keys.ToFloats());
      // Only the selected set matters (README §2); compare each query's set.
      auto expect = Read<int32_t>(*golden, pre + "indexer_topk_blocks");
      const auto& ours = trace[pre + "indexer_topk_blocks"];
      ASSERT_EQ(ours.size(), expect.size()) << pre;
      const int64_t L = static_cast<int64_t>(tokens.size());
      const int64_t slots = static_cast<int64_t>(expect.size()) / L;
      int64_t differing = 0;
      for (int64_t r = 0; r < L; ++r) {
        std::vector<int32_t> a, b;
        for (int64_t k = 0; k < slots; ++k) {
          a.push_back(static_cast<int32_t>(ours[r * slots + k]));
          b.push_back(expect[r * slots + k]);
        }
        std::sort(a.begin(), a.end());
        std::sort(b.begin(), b.end());
        differing += a != b;
      }
      if (p.mode == "nosim") {
        EXPECT_EQ(differing, 0) << pre << "indexer_topk_blocks";
      } else if (differing) {
        std::printf("[ report ] %sindexer_topk_blocks: %lld of %lld query sets differ\n",
                    pre.c_str(), static_cast<long long>(differing), static_cast<long long>(L));
        EXPECT_LE(differing * 20, L);
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Goldens, IntermediatesTest,
    ::testing::Values(IntermediatesCase{"tiny-fast", "nosim", "intermediates_L0033.safetensors"},
                      IntermediatesCase{"tiny-fast", "sim", "intermediates_L0033.safetensors"},
                      IntermediatesCase{"mini-flash", "sim", "intermediates_L0129.safetensors"}),
    [](const auto& info) {
      return std::string(info.param.config == "tiny-fast" ? "tiny" : "mini") + "_" +
             info.param.mode;
    });

}  // namespace
}  // namespace v4agent::engine
