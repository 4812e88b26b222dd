#include "common/regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "common/strings.h"

namespace v4agent {

namespace {

// Enough for any rule a person writes against one command line (a few hundred bytes), far
// below the seconds an exponential pattern would take.
constexpr uint32_t kMatchLimit = 200000;
constexpr uint32_t kDepthLimit = 2000;
constexpr uint32_t kHeapLimitKiB = 8192;

}  // namespace

struct Regex::Code {
  pcre2_code* code = nullptr;
  pcre2_match_context* context = nullptr;
  ~Code() {
    pcre2_match_context_free(context);
    pcre2_code_free(code);
  }
};

Result<Regex> Regex::Compile(std::string_view pattern) {
  int err = 0;
  PCRE2_SIZE offset = 0;
  auto code = std::make_shared<Code>();
  code->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), 0, &err,
                             &offset, nullptr);
  if (code->code == nullptr) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(err, message, sizeof(message));
    return InvalidArgumentError(
        StrCat("bad regex at offset ", offset, ": ", reinterpret_cast<const char*>(message)));
  }
  code->context = pcre2_match_context_create(nullptr);
  if (code->context == nullptr) return ResourceExhaustedError("regex: out of memory");
  pcre2_set_match_limit(code->context, kMatchLimit);
  pcre2_set_depth_limit(code->context, kDepthLimit);
  pcre2_set_heap_limit(code->context, kHeapLimitKiB);
  Regex r;
  r.code_ = std::move(code);
  r.pattern_ = std::string(pattern);
  return r;
}

Result<bool> Regex::Search(std::string_view subject) const {
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(code_->code, nullptr);
  if (md == nullptr) return ResourceExhaustedError("regex: out of memory");
  const int rc = pcre2_match(code_->code, reinterpret_cast<PCRE2_SPTR>(subject.data()),
                             subject.size(), 0, 0, md, code_->context);
  pcre2_match_data_free(md);
  if (rc >= 0) return true;
  if (rc == PCRE2_ERROR_NOMATCH) return false;
  PCRE2_UCHAR message[256];
  pcre2_get_error_message(rc, message, sizeof(message));
  return ResourceExhaustedError(StrCat("regex /", pattern_, "/ gave no answer within its limits: ",
                                       reinterpret_cast<const char*>(message)));
}

}  // namespace v4agent
