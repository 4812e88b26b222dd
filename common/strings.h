// Small string helpers (gcc 12 has no std::format): concatenation, splitting, trimming,
// prefix tests, human-readable byte counts. Pure functions; no locale dependence.
#pragma once

#include <cstdint>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace v4agent {

template <typename... Args>
std::string StrCat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

std::vector<std::string> StrSplit(std::string_view text, char sep);
std::string StrJoin(const std::vector<std::string>& parts, std::string_view sep);
std::string_view StripWhitespace(std::string_view text);
inline bool StartsWith(std::string_view s, std::string_view p) {
  return s.substr(0, p.size()) == p;
}
inline bool EndsWith(std::string_view s, std::string_view p) {
  return s.size() >= p.size() && s.substr(s.size() - p.size()) == p;
}
// 1536 -> "1.50 KiB".
std::string HumanBytes(uint64_t bytes);
// One POSIX shell word that reads back as `s` exactly ('...' with ' written '\'').
std::string ShellQuote(std::string_view s);
// Parses a whole decimal integer; false on any junk or overflow.
bool ParseInt64(std::string_view text, int64_t* out);
bool ParseDouble(std::string_view text, double* out);
// "4096", "512K", "64M", "16G", "1T" (powers of 1024; an optional trailing "B" or "iB");
// false on junk, a negative size or overflow.
bool ParseByteSize(std::string_view text, uint64_t* out);

}  // namespace v4agent
