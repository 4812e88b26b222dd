#include "apps/progress_line.h"

#include <cmath>

#include "common/strings.h"

namespace v4agent::apps {

ProgressLine::ProgressLine(std::FILE* out, bool tty)
    : out_(out), tty_(tty), start_(std::chrono::steady_clock::now()) {}

std::string ProgressLine::Duration(double seconds) {
  const int64_t s = static_cast<int64_t>(std::llround(std::max(0.0, seconds)));
  if (s < 60) return StrCat(s, "s");
  if (s < 3600) return StrCat(s / 60, "m", s % 60 < 10 ? "0" : "", s % 60, "s");
  return StrCat(s / 3600, "h", (s / 60) % 60 < 10 ? "0" : "", (s / 60) % 60, "m");
}

void ProgressLine::Update(int done, int total, const std::string& instance_id,
                          const std::string& status, const std::string& detail, bool reused) {
  by_status_[status]++;
  if (!reused) ++fresh_;
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  std::string eta;
  if (done < total && fresh_ > 0) {
    eta = StrCat(", ETA ", Duration(elapsed / fresh_ * (total - done)));
  }
  std::string counts;
  for (const auto& [k, v] : by_status_) counts += StrCat(counts.empty() ? "" : ", ", k, " ", v);
  if (tty_) {
    std::fprintf(out_, "\r\033[K[%d/%d] %s | %s elapsed%s | last: %s %s", done, total,
                 counts.c_str(), Duration(elapsed).c_str(), eta.c_str(), instance_id.c_str(),
                 status.c_str());
    if (done == total) std::fprintf(out_, "\n");
  } else {
    std::fprintf(out_, "[%d/%d] %s: %s%s%s%s | %s%s\n", done, total, instance_id.c_str(),
                 status.c_str(), detail.empty() ? "" : " - ", detail.c_str(),
                 reused ? " (earlier run)" : "", counts.c_str(), eta.c_str());
  }
  std::fflush(out_);
}

}  // namespace v4agent::apps
