// Regex: a PCRE2 pattern searched with bounded work, for patterns users write (policy rules).
// A backtracking engine without limits (std::regex) takes exponential time on patterns such
// as (a+)+$ and recurses deep enough to overflow the stack; here every search has a match
// limit, a depth limit and a heap limit, and running past one is an error value the caller
// decides about. Owns the PCRE2 headers for everything outside the tokenizer; never throws.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"

namespace v4agent {

class Regex {
 public:
  // Byte-oriented Perl/ECMAScript-style syntax; errors name the offset in the pattern.
  static Result<Regex> Compile(std::string_view pattern);

  // Whether the pattern matches somewhere in `subject`; ResourceExhausted when the search ran
  // past its limits (no answer either way).
  Result<bool> Search(std::string_view subject) const;

  const std::string& pattern() const { return pattern_; }

 private:
  struct Code;
  std::shared_ptr<const Code> code_;
  std::string pattern_;
};

}  // namespace v4agent
