#include "apps/step_tree.h"

#include <algorithm>

#include "apps/progress_line.h"
#include "common/strings.h"

namespace v4agent::apps {

StepTree::StepTree(std::FILE* out, bool tty, const std::vector<std::string>& top_level_ids)
    : out_(out), tty_(tty) {
  if (!tty_) return;
  for (const auto& id : top_level_ids) rows_.push_back(Row{id});
  std::lock_guard<std::mutex> lock(mu_);
  Draw();
  ticker_ = std::thread([this] {
    std::unique_lock<std::mutex> lock(mu_);
    while (!cv_.wait_for(lock, std::chrono::milliseconds(500), [this] { return stop_; })) Draw();
  });
}

StepTree::~StepTree() {
  if (!tty_) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  ticker_.join();
  std::lock_guard<std::mutex> lock(mu_);
  Draw();
}

void StepTree::Event(const std::string& path, int depth, const std::string& state, double seconds,
                     const std::string& detail) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!tty_) {
    std::string line = StrCat(std::string(static_cast<size_t>(depth) * 2, ' '), path, "  ", state);
    if (state != "started") line += StrCat(" (", ProgressLine::Duration(seconds), ")");
    if (!detail.empty() && detail != state) line += "  " + detail;
    std::fprintf(out_, "%s\n", line.c_str());
    std::fflush(out_);
    return;
  }
  auto it = std::find_if(rows_.begin(), rows_.end(), [&](const Row& r) { return r.path == path; });
  if (it == rows_.end()) {
    // A nested step goes after its parent's last descendant so far.
    const std::string parent =
        path.substr(0, path.rfind('/') == std::string::npos ? 0 : path.rfind('/'));
    auto at = rows_.end();
    for (auto r = rows_.begin(); r != rows_.end(); ++r) {
      if (!parent.empty() && (r->path == parent || StartsWith(r->path, parent + "/") ||
                              StartsWith(parent, r->path + "/"))) {
        at = r + 1;
      }
    }
    if (parent.empty()) at = rows_.end();
    it = rows_.insert(at, Row{path, depth});
  }
  it->depth = depth;
  it->state = state == "started" ? "running" : state;
  it->detail = state == "started" ? "" : detail;
  it->seconds = seconds;
  if (state == "started") it->started = std::chrono::steady_clock::now();
  Draw();
}

void StepTree::Draw() {
  std::string text;
  if (drawn_ > 0) text += StrCat("\033[", drawn_, "A");
  const auto now = std::chrono::steady_clock::now();
  for (const Row& r : rows_) {
    const char* mark = r.state == "success"   ? "\033[32m[ok]  "
                       : r.state == "failure" ? "\033[31m[fail]"
                       : r.state == "running" ? "\033[36m[run] "
                       : r.state == "skipped" ? "\033[90m[skip]"
                       : r.state == "reused"  ? "\033[33m[done]"
                       : r.state == "pending" ? "\033[90m[ ]   "
                                              : "\033[33m[stop]";
    const double secs =
        r.state == "running" ? std::chrono::duration<double>(now - r.started).count() : r.seconds;
    // Nested rows drop their top-level step's name but keep the item index ("0/lint").
    const size_t slash = r.path.find('/');
    std::string line = StrCat(mark, " ", std::string(static_cast<size_t>(r.depth) * 2, ' '),
                              slash == std::string::npos ? r.path : r.path.substr(slash + 1));
    if (r.state != "pending") line += StrCat("  ", ProgressLine::Duration(secs));
    if (r.state == "reused") line += "  (from the journal)";
    if (!r.detail.empty() && r.detail != r.state) line += "  " + r.detail.substr(0, 100);
    text += StrCat("\r\033[K", line, "\033[0m\n");
  }
  drawn_ = static_cast<int>(rows_.size());
  std::fputs(text.c_str(), out_);
  std::fflush(out_);
}

}  // namespace v4agent::apps
