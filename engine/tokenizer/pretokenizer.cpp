#include "engine/tokenizer/pretokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <mutex>

#include "common/strings.h"

namespace v4agent::engine {

struct PreTokenizer::Impl {
  std::vector<pcre2_code*> codes;
  ~Impl() {
    for (auto* c : codes) pcre2_code_free(c);
  }
};

PreTokenizer::~PreTokenizer() = default;

std::vector<std::string> PreTokenizer::DeepSeekPatterns() {
  return {
      "\\p{N}{1,3}",
      "[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+",
      "[!\"#$%&'()*+,\\-./"
      ":;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+|"
      " ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
  };
}

Result<std::unique_ptr<PreTokenizer>> PreTokenizer::Create(
    const std::vector<std::string>& patterns) {
  auto p = std::unique_ptr<PreTokenizer>(new PreTokenizer());
  p->impl_ = std::make_unique<Impl>();
  for (const auto& pat : patterns) {
    int err = 0;
    PCRE2_SIZE off = 0;
    // NO_UTF_CHECK is not used: invalid UTF-8 is handled by splitting before matching.
    pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pat.data()), pat.size(),
                                     PCRE2_UTF | PCRE2_UCP, &err, &off, nullptr);
    if (code == nullptr) {
      PCRE2_UCHAR buf[256];
      pcre2_get_error_message(err, buf, sizeof(buf));
      return InvalidArgumentError(StrCat("pre-tokenizer pattern \"", pat,
                                         "\": ", reinterpret_cast<char*>(buf), " at offset ", off));
    }
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // optional: falls back to the interpreter
    p->impl_->codes.push_back(code);
  }
  return p;
}

namespace {

// Length of the valid UTF-8 sequence at s[i], or 0 if the byte there starts none.
size_t Utf8Len(std::string_view s, size_t i) {
  const unsigned char c = static_cast<unsigned char>(s[i]);
  size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return 0;
  }
  uint32_t cp = n == 1 ? c : n == 2 ? c & 0x1F : n == 3 ? c & 0x0F : c & 0x07;
  for (size_t k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) ||
      (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF)) {
    return 0;
  }
  return n;
}

void SplitOne(pcre2_code* code, pcre2_match_data* md, std::string_view text,
              std::vector<std::string_view>* out) {
  size_t pos = 0, last = 0;
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  while (pos <= text.size()) {
    // Runs are validated UTF-8 before matching: skip PCRE2's per-call check of the whole
    // subject, which would make splitting quadratic.
    int rc = pcre2_match(code, subject, text.size(), pos, PCRE2_NO_UTF_CHECK, md, nullptr);
    if (rc < 0) break;
    PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    size_t b = ov[0], e = ov[1];
    if (e == b) {  // empty match: step one character
      pos = b + std::max<size_t>(1, Utf8Len(text, b));
      continue;
    }
    if (b > last) out->push_back(text.substr(last, b - last));
    out->push_back(text.substr(b, e - b));
    last = pos = e;
  }
  if (last < text.size()) out->push_back(text.substr(last));
}

}  // namespace

void PreTokenizer::Split(std::string_view text, std::vector<std::string_view>* out) const {
  // Valid UTF-8 runs go through the patterns; each invalid byte is its own piece.
  std::vector<std::string_view> runs;
  size_t start = 0, i = 0;
  while (i < text.size()) {
    size_t n = Utf8Len(text, i);
    if (n == 0) {
      if (i > start) runs.push_back(text.substr(start, i - start));
      runs.push_back(text.substr(i, 1));
      start = ++i;
    } else {
      i += n;
    }
  }
  if (start < text.size()) runs.push_back(text.substr(start));
  // Freed when the thread ends: a server runs a thread per connection, each encoding.
  struct MatchDataFree {
    void operator()(pcre2_match_data* m) const { pcre2_match_data_free(m); }
  };
  thread_local std::unique_ptr<pcre2_match_data, MatchDataFree> md_owner(
      pcre2_match_data_create(4, nullptr));
  pcre2_match_data* md = md_owner.get();
  std::vector<std::string_view> cur, next;
  for (auto run : runs) {
    if (Utf8Len(run, 0) == 0) {
      out->push_back(run);
      continue;
    }
    cur.assign(1, run);
    for (auto* code : impl_->codes) {
      next.clear();
      for (auto piece : cur) SplitOne(code, md, piece, &next);
      cur.swap(next);
    }
    out->insert(out->end(), cur.begin(), cur.end());
  }
}

}  // namespace v4agent::engine
