// search (PCRE2 regex over the workspace's text files) and list (a tree of it), both
// honoring .gitignore files and skipping .git, with result, size and time limits. The walk
// never follows symbolic links and never leaves the workspace. PCRE2 stays in this file.
#define PCRE2_CODE_UNIT_WIDTH 8
#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <pcre2.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <functional>

#include "common/stopwatch.h"
#include "common/strings.h"
#include "common/unique_fd.h"
#include "tools/builtin_tools.h"
#include "tools/path_guard.h"

namespace v4agent::tools {
namespace {

// One .gitignore line, relative to the directory holding the file.
struct IgnoreRule {
  std::string base;  // "" for the workspace root, else "a/b"
  std::string pattern;
  bool negate = false, dir_only = false, anchored = false;
};

class IgnoreSet {
 public:
  void Load(int dir_fd, const std::string& base) {
    auto text = ReadBeneath(dir_fd, ".gitignore", 1 << 20);
    if (!text.ok()) return;
    for (std::string line : StrSplit(*text, '\n')) {
      while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
      if (line.empty() || line[0] == '#') continue;
      IgnoreRule r;
      r.base = base;
      if (line[0] == '!') {
        r.negate = true;
        line = line.substr(1);
      }
      if (!line.empty() && line.back() == '/') {
        r.dir_only = true;
        line.pop_back();
      }
      if (!line.empty() && line[0] == '/') {
        r.anchored = true;
        line = line.substr(1);
      }
      if (line.find('/') != std::string::npos) r.anchored = true;
      r.pattern = line;
      if (!r.pattern.empty()) rules_.push_back(std::move(r));
    }
  }
  // `rel` is workspace-relative.
  bool Ignored(const std::string& rel, bool is_dir) const {
    bool ignored = false;
    const std::string name =
        rel.substr(rel.rfind('/') == std::string::npos ? 0 : rel.rfind('/') + 1);
    for (const IgnoreRule& r : rules_) {
      if (r.dir_only && !is_dir) continue;
      std::string subject;
      if (r.base.empty()) {
        subject = rel;
      } else if (StartsWith(rel, r.base + "/")) {
        subject = rel.substr(r.base.size() + 1);
      } else {
        continue;
      }
      const int flags = r.pattern.find("**") != std::string::npos ? 0 : FNM_PATHNAME;
      const bool hit = r.anchored ? fnmatch(r.pattern.c_str(), subject.c_str(), flags) == 0
                                  : fnmatch(r.pattern.c_str(), name.c_str(), 0) == 0;
      if (hit) ignored = !r.negate;
    }
    return ignored;
  }
  size_t size() const { return rules_.size(); }
  void Truncate(size_t n) { rules_.resize(n); }

 private:
  std::vector<IgnoreRule> rules_;
};

struct WalkLimits {
  int max_depth = 64;
  size_t max_entries = 100000;
  double max_seconds = 10;
};

// Visits entries beneath `start` (workspace-relative) in name order. `visit` returns false to
// stop the walk. Returns false when a limit stopped it.
bool Walk(int ws_fd, const std::string& start, const WalkLimits& limits,
          const std::function<bool(const std::string& rel, bool is_dir, int depth)>& visit,
          std::string* stopped_by) {
  IgnoreSet ignore;
  ignore.Load(ws_fd, "");
  Stopwatch sw;
  size_t entries = 0;
  bool keep_going = true;
  std::function<void(const std::string&, int)> rec = [&](const std::string& rel, int depth) {
    auto fd = OpenBeneath(ws_fd, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, false);
    if (!fd.ok()) return;
    const size_t rules_before = ignore.size();
    if (rel != ".") ignore.Load(*fd, rel);
    DIR* d = fdopendir(*fd);
    if (!d) {
      close(*fd);
      return;
    }
    std::vector<std::pair<std::string, bool>> kids;
    while (dirent* e = readdir(d)) {
      const std::string n = e->d_name;
      if (n == "." || n == ".." || n == ".git") continue;
      bool is_dir = e->d_type == DT_DIR;
      if (e->d_type == DT_UNKNOWN) {
        struct stat st;
        is_dir = fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
      }
      kids.emplace_back(n, is_dir);
    }
    closedir(d);
    std::sort(kids.begin(), kids.end());
    for (const auto& [n, is_dir] : kids) {
      if (!keep_going) break;
      const std::string child = rel == "." ? n : rel + "/" + n;
      if (ignore.Ignored(child, is_dir)) continue;
      if (++entries > limits.max_entries) {
        *stopped_by = StrCat("stopped after ", limits.max_entries, " entries");
        keep_going = false;
        break;
      }
      if (sw.ElapsedSeconds() > limits.max_seconds) {
        *stopped_by = StrCat("stopped after ", limits.max_seconds, " s");
        keep_going = false;
        break;
      }
      if (!visit(child, is_dir, depth)) {
        keep_going = false;
        break;
      }
      if (is_dir && depth < limits.max_depth) rec(child, depth + 1);
    }
    ignore.Truncate(rules_before);
  };
  rec(start, 1);
  return stopped_by->empty();
}

policies::Action ReadAction(const Json& args, const ToolContext& ctx) {
  policies::Action a;
  a.kind = policies::Action::kRead;
  auto rel = Relativize(ctx.workspace, args.value("path", std::string(".")));
  a.path = rel.ok() ? *rel : args.value("path", std::string("."));
  return a;
}

class SearchTool : public Tool {
 public:
  std::string name() const override { return "search"; }
  std::string description() const override {
    return "Search the workspace's text files for a regular expression (PCRE syntax), skipping "
           "what .gitignore ignores. Prints path:line: text for each match.";
  }
  Json parameters() const override {
    return Json{{"type", "object"},
                {"properties",
                 {{"pattern", {{"type", "string"}}},
                  {"path", {{"type", "string"}, {"description", "directory or file (default .)"}}},
                  {"glob", {{"type", "string"}, {"description", "only files whose name matches"}}},
                  {"ignore_case", {{"type", "boolean"}}},
                  {"max_results", {{"type", "integer"}}}}},
                {"required", Json::array({"pattern"})}};
  }
  bool read_only() const override { return true; }
  std::vector<policies::Action> Describe(const Json& args, const ToolContext& ctx) const override {
    return {ReadAction(args, ctx)};
  }
  ToolResult Run(const Json& args, ToolContext& ctx) override {
    const std::string pattern = args["pattern"].get<std::string>();
    int err = 0;
    PCRE2_SIZE err_off = 0;
    const uint32_t opts = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF |
                          (args.value("ignore_case", false) ? PCRE2_CASELESS : 0u);
    pcre2_code* re = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   opts, &err, &err_off, nullptr);
    if (!re) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(err, msg, sizeof(msg));
      return ToolResult::Error(
          StrCat("search: bad pattern at offset ", err_off, ": ", reinterpret_cast<char*>(msg)));
    }
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(re, nullptr);
    const int64_t max_results = std::clamp<int64_t>(args.value("max_results", 100), 1, 1000);
    const std::string glob = args.value("glob", std::string());
    auto start = Relativize(ctx.workspace, args.value("path", std::string(".")));
    if (!start.ok()) {
      pcre2_match_data_free(md);
      pcre2_code_free(re);
      return ToolResult{ToolResult::kDenied, StrCat("search: ", start.status().message())};
    }
    std::vector<std::string> hits;
    int64_t total = 0;
    auto search_file = [&](const std::string& rel) {
      const std::string base =
          rel.substr(rel.rfind('/') == std::string::npos ? 0 : rel.rfind('/') + 1);
      if (!glob.empty() && fnmatch(glob.c_str(), base.c_str(), 0) != 0) return true;
      auto text = ReadBeneath(ctx.workspace_fd.get(), rel, 4 << 20);
      if (!text.ok() || LooksBinary(*text)) return true;
      size_t line_no = 0, at = 0;
      while (at <= text->size()) {
        size_t nl = text->find('\n', at);
        if (nl == std::string::npos) nl = text->size();
        ++line_no;
        const int rc = pcre2_match(re, reinterpret_cast<PCRE2_SPTR>(text->data() + at), nl - at, 0,
                                   0, md, nullptr);
        if (rc >= 0) {
          ++total;
          if (static_cast<int64_t>(hits.size()) < max_results) {
            std::string line = text->substr(at, std::min<size_t>(nl - at, 200));
            hits.push_back(StrCat(rel, ":", line_no, ": ", line));
          }
        }
        if (nl == text->size()) break;
        at = nl + 1;
      }
      return total < max_results * 10;  // enough to report "more", stop reading
    };
    std::string stopped;
    auto fd = OpenBeneath(ctx.workspace_fd.get(), *start, O_PATH, false);
    if (!fd.ok()) {
      pcre2_match_data_free(md);
      pcre2_code_free(re);
      return ToolResult::Error(StrCat("search: ", fd.status().message()));
    }
    struct stat st;
    fstat(*fd, &st);
    close(*fd);
    if (S_ISDIR(st.st_mode)) {
      Walk(
          ctx.workspace_fd.get(), *start, WalkLimits{},
          [&](const std::string& rel, bool is_dir, int) { return is_dir || search_file(rel); },
          &stopped);
    } else {
      search_file(*start);
    }
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    if (hits.empty()) return ToolResult::Ok(StrCat("no match for ", pattern));
    std::string out = StrJoin(hits, "\n") + "\n";
    if (total > static_cast<int64_t>(hits.size())) {
      out += StrCat("[... ", total > max_results * 10 ? "many" : StrCat(total - hits.size()),
                    " more matches; narrow the pattern or the path ...]\n");
    }
    if (!stopped.empty()) out += StrCat("[search ", stopped, "]\n");
    ToolResult r = ToolResult::Ok(out);
    r.extra["matches"] = total;
    return r;
  }
};

class ListTool : public Tool {
 public:
  std::string name() const override { return "list"; }
  std::string description() const override {
    return "List files and directories as a tree (default depth 2), skipping .git and what "
           ".gitignore ignores.";
  }
  Json parameters() const override {
    return Json{{"type", "object"},
                {"properties",
                 {{"path", {{"type", "string"}}},
                  {"depth", {{"type", "integer"}}},
                  {"max_entries", {{"type", "integer"}}}}}};
  }
  bool read_only() const override { return true; }
  std::vector<policies::Action> Describe(const Json& args, const ToolContext& ctx) const override {
    return {ReadAction(args, ctx)};
  }
  ToolResult Run(const Json& args, ToolContext& ctx) override {
    auto start = Relativize(ctx.workspace, args.value("path", std::string(".")));
    if (!start.ok()) {
      return ToolResult{ToolResult::kDenied, StrCat("list: ", start.status().message())};
    }
    WalkLimits limits;
    limits.max_depth = static_cast<int>(std::clamp<int64_t>(args.value("depth", 2), 1, 8));
    limits.max_entries =
        static_cast<size_t>(std::clamp<int64_t>(args.value("max_entries", 400), 1, 5000));
    auto fd = OpenBeneath(ctx.workspace_fd.get(), *start, O_RDONLY | O_DIRECTORY, false);
    if (!fd.ok()) return ToolResult::Error(StrCat("list: ", fd.status().message()));
    close(*fd);
    std::string out = (*start == "." ? std::string("./") : *start + "/") + "\n";
    size_t n = 0;
    std::string stopped;
    Walk(
        ctx.workspace_fd.get(), *start, limits,
        [&](const std::string& rel, bool is_dir, int depth) {
          const std::string name = rel.substr(rel.rfind('/') + 1);
          out +=
              std::string(static_cast<size_t>(depth) * 2, ' ') + name + (is_dir ? "/" : "") + "\n";
          ++n;
          return true;
        },
        &stopped);
    if (!stopped.empty()) out += StrCat("[... listing ", stopped, "; list a subdirectory ...]\n");
    ToolResult r = ToolResult::Ok(out);
    r.extra["entries"] = n;
    return r;
  }
};

}  // namespace

std::unique_ptr<Tool> MakeSearchTool() { return std::make_unique<SearchTool>(); }
std::unique_ptr<Tool> MakeListTool() { return std::make_unique<ListTool>(); }

}  // namespace v4agent::tools
