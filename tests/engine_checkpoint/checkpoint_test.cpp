// Checkpoint loading: the goldens bind; the real Flash/Pro layouts (header-only sparse files)
// bind and count like the model cards; every kind of bad input is a clear error naming the
// file and the tensor or key.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "common/file_util.h"
#include "common/json.h"
#include "engine/checkpoint/layout.h"
#include "engine/checkpoint/random_checkpoint.h"
#include "engine/checkpoint/safetensors.h"
#include "engine/checkpoint/safetensors_writer.h"
#include "engine/kv/sequence_cache.h"
#include "engine/model_config.h"
#include "engine/weights/weights.h"

namespace v4agent::engine {
namespace {

const std::string kRoot = V4_SOURCE_DIR;

std::string Bytes(const std::string& header_json, size_t data_bytes, int64_t len_override = -1) {
  std::string out(8, '\0');
  uint64_t len = len_override >= 0 ? static_cast<uint64_t>(len_override) : header_json.size();
  std::memcpy(out.data(), &len, 8);
  out += header_json;
  out += std::string(data_bytes, '\x01');
  return out;
}

Status OpenBytes(const std::string& bytes) {
  auto f = SafetensorsFile::FromBytes(
      {reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()}, "x.safetensors");
  return f.ok() ? Status::Ok() : f.status();
}

TEST(SafetensorsTest, HeaderValidation) {
  EXPECT_TRUE(
      OpenBytes(Bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 8)).ok());
  struct Bad {
    std::string bytes, expect;
  } cases[] = {
      {"abc", "truncated"},
      {Bytes("{}", 0, 1000), "runs past the end"},
      {Bytes("{not json", 0), "invalid JSON"},
      {Bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}})", 8), "tensor 'a'"},
      {Bytes(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8), "needs 12"},
      {Bytes(R"({"a":{"dtype":"Q7","shape":[2],"data_offsets":[0,8]}})", 8), "unsupported dtype"},
      {Bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
             R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
             12),
       "overlap"},
      {Bytes(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8), "non-negative"},
      {Bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", 8), "reversed"},
      {Bytes(R"({"a":{"dtype":"F32","shape":[2]}})", 8), "data_offsets"},
  };
  for (const auto& c : cases) {
    Status s = OpenBytes(c.bytes);
    EXPECT_FALSE(s.ok()) << c.expect;
    EXPECT_NE(s.message().find(c.expect), std::string::npos) << s.message();
    EXPECT_NE(s.message().find("x.safetensors"), std::string::npos) << s.message();
  }
}

TEST(SafetensorsTest, WriterRoundTripAndAlignment) {
  ScopedTempDir dir;
  SafetensorsWriter w;
  std::vector<float> v = {1, 2, 3};
  w.AddF32("v", {3}, v);
  uint8_t b[5] = {1, 2, 3, 4, 5};
  w.Add("b", DType::kU8, {5}, b);
  ASSERT_TRUE(w.Write(dir.path() + "/t.safetensors").ok());
  auto f = SafetensorsFile::Open(dir.path() + "/t.safetensors");
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ((*f)->metadata().at("format"), "pt");
  auto fv = (*f)->Find("v")->Copy<float>();
  EXPECT_EQ(std::vector<float>(fv.begin(), fv.end()), v);
  EXPECT_EQ(reinterpret_cast<uintptr_t>((*f)->Find("v")->data) % 8, 0u);
}

TEST(CheckpointTest, GoldensOpenAndBind) {
  for (const char* cfg : {"tiny-fast", "mini-flash"}) {
    std::string dir = kRoot + "/tests/goldens/" + cfg + "/checkpoint";
    auto c = ModelConfig::Load(dir);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    auto ckpt = Checkpoint::Open(dir);
    ASSERT_TRUE(ckpt.ok()) << ckpt.status().ToString();
    auto w = ModelWeights::Bind(**ckpt, *c);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    EXPECT_EQ(static_cast<int64_t>((*w)->layers.size()), c->num_hidden_layers);
    EXPECT_EQ((*w)->mtp.size(), 1u);
    // The layout generator knows every tensor of the release layout, no more and no less.
    auto layout = V4TensorLayout(*c, true);
    EXPECT_EQ(layout.size(), (*ckpt)->num_tensors());
    for (const auto& t : layout) {
      const TensorView* v = (*ckpt)->Find(t.name);
      ASSERT_NE(v, nullptr) << t.name;
      EXPECT_EQ(v->shape, t.shape) << t.name;
      EXPECT_EQ(v->dtype, t.dtype) << t.name;
    }
  }
}

struct RealLayout {
  const char* config;
  double total_b, total_tol, active_b, active_tol, kv_bytes_per_token;
};

class HeaderOnlyTest : public ::testing::TestWithParam<RealLayout> {};

TEST_P(HeaderOnlyTest, RealLayoutsBindAndCount) {
  const auto& p = GetParam();
  auto c = ModelConfig::Load(kRoot + "/tests/data/configs/" + p.config + ".json");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ScopedTempDir dir;
  ASSERT_TRUE(WriteHeaderOnlyCheckpoint(*c, true, dir.path()).ok());
  auto ckpt = Checkpoint::Open(dir.path());
  ASSERT_TRUE(ckpt.ok()) << ckpt.status().ToString();
  auto w = ModelWeights::Bind(**ckpt, *c, /*verify_scales=*/false);
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  std::vector<TensorSpec> specs;
  for (const TensorView* t : (*ckpt)->tensors())
    specs.push_back(SpecFromTensor(t->name, t->dtype, t->shape));
  ParamCounts pc = CountParams(*c, specs);
  std::printf("[ report ] %s: %.4gB total, %.4gB active, KV %.1f B/token, %.3f GiB at 1M\n",
              p.config, pc.total / 1e9, pc.active / 1e9,
              KvBytesPerToken(*c, true, false).bytes_per_token,
              KvBytesPerToken(*c, true, false).bytes_per_token * (1 << 20) / (1 << 30));
  EXPECT_NEAR(pc.total / 1e9, p.total_b, p.total_tol);
  EXPECT_NEAR(pc.active / 1e9, p.active_b, p.active_tol);
  EXPECT_NEAR(KvBytesPerToken(*c, true, false).bytes_per_token, p.kv_bytes_per_token, 0.5);
}

// spec §1.5 and §5.2: Flash 284.3B / 13.3B and 3514 B/token (3.43 GiB at 1M); Pro about
// 1.6T (1573B without MTP) / 49B and 5031 B/token (4.91 GiB).
INSTANTIATE_TEST_SUITE_P(Spec, HeaderOnlyTest,
                         ::testing::Values(RealLayout{"v4-flash", 284.3, 0.05, 13.3, 0.05, 3514},
                                           RealLayout{"v4-pro", 1573, 1.0, 49, 0.2, 5031}),
                         [](const auto& info) { return std::string(info.param.config).substr(3); });

class BrokenCheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = tmp_.path() + "/ckpt";
    std::filesystem::copy(kRoot + "/tests/goldens/tiny-fast/checkpoint", dir_,
                          std::filesystem::copy_options::recursive);
  }
  Status Load() {
    auto c = ModelConfig::Load(dir_);
    if (!c.ok()) return c.status();
    auto ckpt = Checkpoint::Open(dir_);
    if (!ckpt.ok()) return ckpt.status();
    auto w = ModelWeights::Bind(**ckpt, *c);
    return w.ok() ? Status::Ok() : w.status();
  }
  void ExpectError(const std::string& a, const std::string& b = "") {
    Status s = Load();
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.message().find(a), std::string::npos) << s.message();
    if (!b.empty()) {
      EXPECT_NE(s.message().find(b), std::string::npos) << s.message();
    }
  }
  ScopedTempDir tmp_;
  std::string dir_;
};

TEST_F(BrokenCheckpointTest, TruncatedShard) {
  std::filesystem::resize_file(dir_ + "/model-00004-of-00004.safetensors", 1000);
  ExpectError("model-00004-of-00004.safetensors");
}

TEST_F(BrokenCheckpointTest, MissingShard) {
  std::filesystem::remove(dir_ + "/model-00002-of-00004.safetensors");
  ExpectError("model-00002-of-00004.safetensors");
}

TEST_F(BrokenCheckpointTest, IndexDisagreesWithShards) {
  auto j = *ReadJsonFile(dir_ + "/model.safetensors.index.json");
  j["weight_map"]["norm.weight"] = "model-00001-of-00004.safetensors";
  ASSERT_TRUE(WriteFile(dir_ + "/model.safetensors.index.json", j.dump()).ok());
  ExpectError("norm.weight", "does not hold it");
}

TEST_F(BrokenCheckpointTest, MissingTensorNamesIt) {
  auto j = *ReadJsonFile(dir_ + "/model.safetensors.index.json");
  // Rewrite shard 4 without hc_head_base: both the index and the binding must notice.
  j["weight_map"].erase("hc_head_base");
  ASSERT_TRUE(WriteFile(dir_ + "/model.safetensors.index.json", j.dump()).ok());
  ExpectError("hc_head_base");
}

TEST_F(BrokenCheckpointTest, InvalidConfigJsonAndKeys) {
  ASSERT_TRUE(WriteFile(dir_ + "/config.json", "{\"hidden_size\": 12,").ok());
  ExpectError("config.json", "invalid JSON");
  auto j = *ReadJsonFile(kRoot + "/tests/goldens/tiny-fast/checkpoint/config.json");
  j.erase("index_topk");
  ASSERT_TRUE(WriteFile(dir_ + "/config.json", j.dump()).ok());
  ExpectError("config.json", "'index_topk': missing");
  j = *ReadJsonFile(kRoot + "/tests/goldens/tiny-fast/checkpoint/config.json");
  j["compress_ratios"] = {0, 4};
  ASSERT_TRUE(WriteFile(dir_ + "/config.json", j.dump()).ok());
  ExpectError("compress_ratios");
  j = *ReadJsonFile(kRoot + "/tests/goldens/tiny-fast/checkpoint/config.json");
  j["hidden_size"] = "wide";
  ASSERT_TRUE(WriteFile(dir_ + "/config.json", j.dump()).ok());
  ExpectError("'hidden_size'", "expected an integer");
}

TEST_F(BrokenCheckpointTest, WrongShapeOrDtypeAtBind) {
  auto j = *ReadJsonFile(kRoot + "/tests/goldens/tiny-fast/checkpoint/config.json");
  j["q_lora_rank"] = 64;
  ASSERT_TRUE(WriteFile(dir_ + "/config.json", j.dump()).ok());
  ExpectError("layers.0.attn.wq_a.weight", "expected [64, 128]");
}

TEST_F(BrokenCheckpointTest, NanScaleByte) {
  // Overwrite the first byte of one FP8 scale tensor with 0xFF (NaN in UE8M0).
  auto j = *ReadJsonFile(dir_ + "/model.safetensors.index.json");
  const std::string file =
      dir_ + "/" + j["weight_map"]["layers.0.attn.wq_a.scale"].get<std::string>();
  auto m = MappedFile::Open(file);
  ASSERT_TRUE(m.ok());
  uint64_t hlen = 0;
  std::memcpy(&hlen, m->data(), 8);
  auto header =
      ParseJson(std::string_view(reinterpret_cast<const char*>(m->data() + 8), hlen), file);
  ASSERT_TRUE(header.ok());
  uint64_t begin = (*header)["layers.0.attn.wq_a.scale"]["data_offsets"][0].get<uint64_t>();
  std::fstream io(file, std::ios::in | std::ios::out | std::ios::binary);
  io.seekp(static_cast<std::streamoff>(8 + hlen + begin));
  io.put(static_cast<char>(0xFF));
  io.close();
  ExpectError("layers.0.attn.wq_a.scale", "0xFF");
}

}  // namespace
}  // namespace v4agent::engine

namespace v4agent::engine {
namespace {

TEST(ModelConfigTest, ReleaseKeysAreTypedAndChecked) {
  auto j = *ReadJsonFile(std::string(V4_SOURCE_DIR) + "/tests/data/configs/v4-flash.json");
  auto c = ModelConfig::FromJson(j, "flash.json");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->hidden_act, "silu");
  EXPECT_EQ(c->quant_scale_fmt, "ue8m0");
  EXPECT_EQ(c->num_layers_with_mtp(), 44);
  EXPECT_EQ(c->kind(2), AttentionKind::kCsa);
  EXPECT_EQ(c->kind(3), AttentionKind::kHca);
  EXPECT_EQ(c->kind(43), AttentionKind::kSlidingWindow);
  // What `model create` writes reads back to the same config.
  auto again = ModelConfig::FromJson(c->ToJson(), "roundtrip.json");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->ToJson(), c->ToJson());
  struct Bad {
    const char* key;
    Json value;
    const char* expect;
  } cases[] = {
      {"hidden_act", "gelu", "'hidden_act'"},
      {"tie_word_embeddings", true, "'tie_word_embeddings'"},
      {"quantization_config", Json{{"fmt", "e5m2"}}, "'fmt'"},
      {"quantization_config", Json{{"weight_block_size", {64, 64}}}, "weight_block_size"},
      {"scoring_func", "relu", "scoring_func"},
      {"rope_scaling", 3, "rope_scaling"},
  };
  for (const auto& b : cases) {
    Json bad = j;
    bad[b.key] = b.value;
    auto r = ModelConfig::FromJson(bad, "flash.json");
    ASSERT_FALSE(r.ok()) << b.key;
    EXPECT_NE(r.status().message().find(b.expect), std::string::npos) << r.status().message();
    EXPECT_NE(r.status().message().find("flash.json"), std::string::npos);
  }
}

}  // namespace
}  // namespace v4agent::engine
