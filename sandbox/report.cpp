#include "sandbox/report.h"

#include <algorithm>
#include <cstring>

#include "common/strings.h"

namespace v4agent::sandbox {

std::string StreamCapture::Text() const {
  if (dropped_bytes == 0) return head + tail;
  return StrCat(head, "\n[... ", dropped_bytes, " bytes elided ...]\n", tail);
}

int RunReport::ShellExitCode() const {
  if (setup_failed()) return 125;
  if (timed_out) return 124;
  if (signal != 0) return 128 + signal;
  return exit_code;
}

Json ReportToJson(const RunReport& r) {
  Json j;
  j["exit_code"] = r.exit_code;
  j["signal"] = r.signal;
  j["timed_out"] = r.timed_out;
  j["cancelled"] = r.cancelled;
  j["wall_seconds"] = r.wall_seconds;
  j["cpu_seconds"] = r.cpu_seconds;
  j["max_rss_kb"] = r.max_rss_kb;
  for (auto [name, s] : {std::pair{"stdout", &r.out}, std::pair{"stderr", &r.err}}) {
    j[name] = Json{{"total_bytes", s->total_bytes},
                   {"captured_bytes", s->head.size() + s->tail.size()},
                   {"dropped_bytes", s->dropped_bytes}};
  }
  j["limits_applied"] = r.limits_applied;
  j["limits_unavailable"] = r.limits_unavailable;
  j["out_of_memory"] = r.out_of_memory;
  if (r.memory_peak_bytes >= 0) j["memory_peak_bytes"] = r.memory_peak_bytes;
  j["forks_refused"] = r.forks_refused;
  j["protected_changes"] = r.protected_changes;
  if (r.setup_failed()) {
    j["setup_failure"] = Json{{"step", r.failed_step},
                              {"errno", r.failed_errno},
                              {"error", r.failed_errno ? std::strerror(r.failed_errno) : ""},
                              {"detail", r.failure_detail}};
  } else {
    j["setup_failure"] = nullptr;
  }
  return j;
}

std::string SanitizeForModel(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == 0x1b) {
      // ESC [ ... final byte (CSI), ESC ] ... BEL/ST (OSC), or a two-byte escape.
      size_t j = i + 1;
      if (j < s.size() && s[j] == '[') {
        ++j;
        while (j < s.size() && !(s[j] >= 0x40 && s[j] <= 0x7e)) ++j;
        i = std::min(j + 1, s.size());
      } else if (j < s.size() && s[j] == ']') {
        while (j < s.size() && s[j] != '\a' &&
               !(s[j] == 0x1b && j + 1 < s.size() && s[j + 1] == '\\'))
          ++j;
        i = std::min(j + (j < s.size() && s[j] == 0x1b ? 2 : 1), s.size());
      } else {
        i = std::min(j + 1, s.size());
      }
      continue;
    }
    if (c == '\n' || c == '\t') {
      out.push_back(static_cast<char>(c));
      ++i;
      continue;
    }
    if (c == '\r') {
      // A lone CR (progress bars) becomes a newline; CRLF becomes LF.
      if (!(i + 1 < s.size() && s[i + 1] == '\n')) out.push_back('\n');
      ++i;
      continue;
    }
    if (c < 0x20 || c == 0x7f) {
      out += "\xEF\xBF\xBD";
      ++i;
      continue;
    }
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
      ++i;
      continue;
    }
    size_t n = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c <= 0xDF ? 2 : 0;
    bool ok = n > 0 && i + n <= s.size();
    for (size_t k = 1; ok && k < n; ++k) ok = (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
    if (ok) {
      out.append(s, i, n);
      i += n;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

}  // namespace v4agent::sandbox
