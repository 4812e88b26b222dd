#include "engine/tokenizer/tokenizer.h"

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <limits>
#include <mutex>

#include "common/file_util.h"
#include "common/strings.h"

namespace v4agent::engine {
namespace {

// GPT-2 byte-level mapping: every byte gets a printable code point.
struct ByteMap {
  uint32_t to_cp[256];
  std::unordered_map<uint32_t, uint8_t> from_cp;
  ByteMap() {
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      bool printable =
          (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      to_cp[b] = printable ? static_cast<uint32_t>(b) : static_cast<uint32_t>(256 + n++);
      from_cp[to_cp[b]] = static_cast<uint8_t>(b);
    }
  }
};

const ByteMap& Bytes() {
  static const ByteMap m;
  return m;
}

void AppendUtf8(uint32_t cp, std::string* s) {
  if (cp < 0x80) {
    s->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    s->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    s->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    s->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    s->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    s->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::string ToByteLevel(std::string_view raw) {
  std::string out;
  out.reserve(raw.size() * 2);
  for (unsigned char c : raw) AppendUtf8(Bytes().to_cp[c], &out);
  return out;
}

// Inverse of ToByteLevel; false if a code point is outside the mapping.
bool FromByteLevel(std::string_view s, std::string* out) {
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    uint32_t cp;
    size_t n;
    if (c < 0x80) {
      cp = c;
      n = 1;
    } else if ((c >> 5) == 6 && i + 1 < s.size()) {
      cp = ((c & 0x1F) << 6) | (static_cast<unsigned char>(s[i + 1]) & 0x3F);
      n = 2;
    } else {
      return false;
    }
    auto it = Bytes().from_cp.find(cp);
    if (it == Bytes().from_cp.end()) return false;
    out->push_back(static_cast<char>(it->second));
    i += n;
  }
  return true;
}

uint64_t PairKey(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

}  // namespace

Result<std::unique_ptr<Tokenizer>> Tokenizer::Load(const std::string& path) {
  std::string file = path;
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) file = path + "/tokenizer.json";
  V4_ASSIGN_OR_RETURN(Json j, ReadJsonFile(file));
  return FromJson(j, file);
}

Result<std::unique_ptr<Tokenizer>> Tokenizer::FromJson(const Json& j, const std::string& src) {
  auto bad = [&](const std::string& m) { return InvalidArgumentError(src + ": " + m); };
  if (!j.is_object()) return bad("not a JSON object");
  auto model = j.find("model");
  if (model == j.end() || !model->is_object()) return bad("missing object 'model'");
  if (model->value("type", "") != "BPE") return bad("model.type must be \"BPE\"");
  auto vocab = model->find("vocab");
  auto merges = model->find("merges");
  if (vocab == model->end() || !vocab->is_object()) return bad("missing object 'model.vocab'");
  if (merges == model->end() || !merges->is_array()) return bad("missing array 'model.merges'");
  auto t = std::unique_ptr<Tokenizer>(new Tokenizer());
  static std::atomic<uint64_t> next_instance{1};
  t->instance_id_ = next_instance++;
  int32_t max_id = -1;
  for (auto it = vocab->begin(); it != vocab->end(); ++it) {
    if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0 ||
        it.value().get<int64_t>() > std::numeric_limits<int32_t>::max() / 2) {
      return bad("model.vocab['" + it.key() + "']: id must be a non-negative integer");
    }
    int32_t id = it.value().get<int32_t>();
    t->vocab_[it.key()] = id;
    max_id = std::max(max_id, id);
  }
  auto added = j.find("added_tokens");
  if (added != j.end()) {
    if (!added->is_array()) return bad("'added_tokens' must be an array");
    for (size_t i = 0; i < added->size(); ++i) {
      const Json& a = (*added)[i];
      if (!a.is_object() || !a.contains("id") || !a["id"].is_number_integer() ||
          !a.contains("content") || !a["content"].is_string()) {
        return bad(StrCat("added_tokens[", i, "]: needs integer 'id' and string 'content'"));
      }
      int32_t id = a["id"].get<int32_t>();
      if (id < 0) return bad(StrCat("added_tokens[", i, "]: negative id"));
      t->added_.push_back({a["content"].get<std::string>(), id});
      max_id = std::max(max_id, id);
    }
  }
  t->bytes_.assign(static_cast<size_t>(max_id + 1), std::string());
  t->special_.assign(static_cast<size_t>(max_id + 1), false);
  for (const auto& [spelling, id] : t->vocab_) {
    std::string raw;
    // Entries that are not byte-level encoded are added tokens listed in the vocabulary too
    // (e.g. "<｜▁pad▁｜>"); their bytes are their spelling (added_tokens below agree).
    t->bytes_[id] = FromByteLevel(spelling, &raw) ? raw : spelling;
  }
  for (int b = 0; b < 256; ++b) {
    std::string one(1, static_cast<char>(b));
    auto it = t->vocab_.find(ToByteLevel(one));
    if (it == t->vocab_.end()) return bad(StrCat("model.vocab: no token for byte ", b));
    t->byte_id_[b] = it->second;
  }
  for (const auto& a : t->added_) {
    t->bytes_[a.id] = a.content;
    t->special_[a.id] = true;
    t->added_by_content_[a.content] = a.id;
  }
  std::sort(t->added_.begin(), t->added_.end(),
            [](const Added& x, const Added& y) { return x.content.size() > y.content.size(); });
  for (size_t i = 0; i < t->added_.size(); ++i) {
    if (t->added_[i].content.empty()) continue;
    t->added_by_first_byte_[static_cast<unsigned char>(t->added_[i].content[0])].push_back(
        static_cast<uint16_t>(i));
  }
  int32_t rank = 0;
  for (const auto& m : *merges) {
    std::string left, right;
    if (m.is_string()) {
      const std::string s = m.get<std::string>();
      auto sp = s.find(' ');
      if (sp == std::string::npos)
        return bad(StrCat("model.merges[", rank, "]: \"", s, "\" has no space"));
      left = s.substr(0, sp);
      right = s.substr(sp + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      left = m[0].get<std::string>();
      right = m[1].get<std::string>();
    } else {
      return bad(StrCat("model.merges[", rank, "]: expected \"a b\" or [a, b]"));
    }
    auto l = t->vocab_.find(left), r = t->vocab_.find(right), lr = t->vocab_.find(left + right);
    if (l == t->vocab_.end() || r == t->vocab_.end() || lr == t->vocab_.end()) {
      return bad(StrCat("model.merges[", rank, "]: unknown merge \"", left, " ", right,
                        "\" (a part or the result is not in the vocabulary)"));
    }
    t->merges_.emplace(PairKey(l->second, r->second), std::make_pair(rank, lr->second));
    ++rank;
  }
  std::vector<std::string> patterns;
  auto pre = j.find("pre_tokenizer");
  if (pre != j.end() && pre->is_object()) {
    std::vector<Json> steps;
    if (pre->value("type", "") == "Sequence" && pre->contains("pretokenizers")) {
      for (const auto& s : (*pre)["pretokenizers"]) steps.push_back(s);
    } else {
      steps.push_back(*pre);
    }
    for (const auto& s : steps) {
      if (s.value("type", "") == "Split") {
        if (!s.contains("pattern") || !s["pattern"].contains("Regex")) {
          return bad("pre_tokenizer Split without a Regex pattern");
        }
        if (s.value("behavior", "") != "Isolated" || s.value("invert", false)) {
          return bad("pre_tokenizer Split: only behavior Isolated without invert is supported");
        }
        patterns.push_back(s["pattern"]["Regex"].get<std::string>());
      } else if (s.value("type", "") != "ByteLevel") {
        return bad("unsupported pre_tokenizer step \"" + s.value("type", "") + "\"");
      }
    }
  }
  if (patterns.empty()) patterns = PreTokenizer::DeepSeekPatterns();
  auto p = PreTokenizer::Create(patterns);
  if (!p.ok()) return p.status().WithContext(src);
  t->pre_ = std::move(p).value();
  return t;
}

void Tokenizer::EncodePiece(std::string_view piece, std::vector<int32_t>* out) const {
  // Whole piece in the vocabulary: the common case for words.
  auto whole = vocab_.find(ToByteLevel(piece));
  if (whole != vocab_.end()) {
    out->push_back(whole->second);
    return;
  }
  std::vector<int32_t> ids;
  ids.reserve(piece.size());
  for (unsigned char c : piece) ids.push_back(byte_id_[c]);
  // Repeatedly merge the adjacent pair with the lowest rank (leftmost on ties).
  while (ids.size() > 1) {
    int32_t best_rank = std::numeric_limits<int32_t>::max(), best_id = -1;
    size_t best_i = 0;
    for (size_t i = 0; i + 1 < ids.size(); ++i) {
      auto it = merges_.find(PairKey(ids[i], ids[i + 1]));
      if (it != merges_.end() && it->second.first < best_rank) {
        best_rank = it->second.first;
        best_id = it->second.second;
        best_i = i;
      }
    }
    if (best_id < 0) break;
    ids[best_i] = best_id;
    ids.erase(ids.begin() + static_cast<long>(best_i) + 1);
  }
  out->insert(out->end(), ids.begin(), ids.end());
}

void Tokenizer::EncodeText(std::string_view text, std::vector<int32_t>* out) const {
  thread_local std::vector<std::string_view> pieces;
  pieces.clear();
  pre_->Split(text, &pieces);
  // Per-thread cache of piece -> ids, one per tokenizer instance (ids differ between files).
  thread_local std::unordered_map<uint64_t, std::unordered_map<std::string, std::vector<int32_t>>>
      caches;
  auto& cache = caches[instance_id_];
  thread_local std::string key;
  for (auto piece : pieces) {
    if (piece.size() > 64) {  // long pieces are rare; do not let them bloat the cache
      EncodePiece(piece, out);
      continue;
    }
    key.assign(piece.data(), piece.size());
    auto it = cache.find(key);
    if (it != cache.end()) {
      out->insert(out->end(), it->second.begin(), it->second.end());
      continue;
    }
    std::vector<int32_t> ids;
    EncodePiece(piece, &ids);
    out->insert(out->end(), ids.begin(), ids.end());
    if (cache.size() < (1u << 20)) cache.emplace(key, std::move(ids));
  }
}

std::vector<int32_t> Tokenizer::Encode(std::string_view text, bool allow_special) const {
  std::vector<int32_t> out;
  if (!allow_special || added_.empty()) {
    EncodeText(text, &out);
    return out;
  }
  size_t start = 0, i = 0;
  while (i < text.size()) {
    const Added* hit = nullptr;
    // Candidates share the first byte, longest spelling first, so the longest match wins.
    for (uint16_t k : added_by_first_byte_[static_cast<unsigned char>(text[i])]) {
      const Added& a = added_[k];
      if (text.compare(i, a.content.size(), a.content) == 0) {
        hit = &a;
        break;
      }
    }
    if (hit == nullptr) {
      ++i;
      continue;
    }
    if (i > start) EncodeText(text.substr(start, i - start), &out);
    out.push_back(hit->id);
    i += hit->content.size();
    start = i;
  }
  if (start < text.size()) EncodeText(text.substr(start), &out);
  return out;
}

std::string Tokenizer::Decode(const std::vector<int32_t>& ids) const {
  std::string out;
  for (int32_t id : ids) out += TokenBytes(id);
  return out;
}

const std::string& Tokenizer::TokenBytes(int32_t id) const {
  static const std::string kEmpty;
  if (id < 0 || id >= static_cast<int32_t>(bytes_.size())) return kEmpty;
  return bytes_[id];
}

std::optional<int32_t> Tokenizer::TokenId(std::string_view spelling) const {
  auto a = added_by_content_.find(std::string(spelling));
  if (a != added_by_content_.end()) return a->second;
  auto v = vocab_.find(ToByteLevel(spelling));
  if (v != vocab_.end()) return v->second;
  return std::nullopt;
}

bool Tokenizer::IsSpecial(int32_t id) const {
  return id >= 0 && id < static_cast<int32_t>(special_.size()) && special_[id];
}

std::string StreamDecoder::Push(int32_t id) {
  pending_ += tokenizer_.TokenBytes(id);
  // Emit everything up to the last complete UTF-8 sequence; hold back a trailing partial one.
  size_t cut = pending_.size();
  size_t i = pending_.size();
  int back = 0;
  while (i > 0 && back < 4) {
    --i;
    ++back;
    unsigned char c = static_cast<unsigned char>(pending_[i]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte
    size_t need = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
    if (static_cast<size_t>(back) < need) cut = i;  // incomplete: hold from its lead byte
    break;
  }
  std::string out = pending_.substr(0, cut);
  pending_.erase(0, cut);
  return out;
}

std::string StreamDecoder::Finish() {
  std::string out;
  out.swap(pending_);
  return out;
}

}  // namespace v4agent::engine
