// Host-side file tools: view, create, str_replace, insert. Every path goes through
// path_guard (beneath the workspace, no symlinked parents for writes) after the policy has
// decided on the read or write (Describe).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "common/strings.h"
#include "common/unique_fd.h"
#include "tools/builtin_tools.h"
#include "tools/output_budget.h"
#include "tools/path_guard.h"

namespace v4agent::tools {
namespace {

constexpr size_t kMaxFileBytes = 16 << 20;

Json PathProp(const char* what) { return Json{{"type", "string"}, {"description", what}}; }

policies::Action PathAction(policies::Action::Kind kind, const Json& args, const ToolContext& ctx) {
  policies::Action a;
  a.kind = kind;
  const std::string raw = args.value("path", std::string("."));
  auto rel = Relativize(ctx.workspace, raw);
  a.path = rel.ok() ? *rel : raw;
  return a;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at < text.size()) {
    const size_t nl = text.find('\n', at);
    if (nl == std::string::npos) {
      out.push_back(text.substr(at));
      break;
    }
    out.push_back(text.substr(at, nl - at));
    at = nl + 1;
  }
  return out;
}

// Numbered lines [first, last] (1-based, inclusive), like `cat -n`.
std::string Numbered(const std::vector<std::string>& lines, size_t first, size_t last) {
  std::string out;
  for (size_t i = first; i <= last && i <= lines.size(); ++i) {
    char num[16];
    std::snprintf(num, sizeof(num), "%6zu\t", i);
    out += num;
    out += lines[i - 1];
    out += "\n";
  }
  return out;
}

Result<std::string> ReadText(const ToolContext& ctx, const std::string& rel) {
  V4_ASSIGN_OR_RETURN(std::string text, ReadBeneath(ctx.workspace_fd.get(), rel, kMaxFileBytes));
  if (LooksBinary(text)) {
    return FailedPreconditionError(
        StrCat(rel, " is a binary file (", text.size(), " bytes); the file tools only edit text"));
  }
  return text;
}

ToolResult Fail(const std::string& tool, const Status& s) {
  ToolResult r = ToolResult::Error(StrCat(tool, ": ", s.message()));
  if (s.code() == StatusCode::kPermissionDenied) r.kind = ToolResult::kDenied;
  return r;
}

class ViewTool : public Tool {
 public:
  std::string name() const override { return "view"; }
  std::string description() const override {
    return "Show a text file with line numbers (optionally only view_range [first, last], "
           "1-based, last -1 for the end), or list a directory to a depth (default 2). Long "
           "files are paged: ask for a line range.";
  }
  Json parameters() const override {
    return Json{{"type", "object"},
                {"properties",
                 {{"path", PathProp("file or directory, relative to the workspace")},
                  {"view_range", {{"type", "array"}, {"items", {{"type", "integer"}}}}},
                  {"depth", {{"type", "integer"}}}}},
                {"required", Json::array({"path"})}};
  }
  bool read_only() const override { return true; }
  std::vector<policies::Action> Describe(const Json& args, const ToolContext& ctx) const override {
    return {PathAction(policies::Action::kRead, args, ctx)};
  }
  ToolResult Run(const Json& args, ToolContext& ctx) override {
    auto rel = Relativize(ctx.workspace, args["path"].get<std::string>());
    if (!rel.ok()) return Fail("view", rel.status());
    auto fd = OpenBeneath(ctx.workspace_fd.get(), *rel, O_PATH, false);
    if (!fd.ok()) return Fail("view", fd.status());
    struct stat st;
    const bool is_dir = fstat(*fd, &st) == 0 && S_ISDIR(st.st_mode);
    close(*fd);
    if (is_dir) {
      // Directory listings are the list tool's job; share its output.
      Json list_args{{"path", *rel}, {"depth", args.value("depth", 2)}};
      return MakeListTool()->Run(list_args, ctx);
    }
    auto text = ReadText(ctx, *rel);
    if (!text.ok()) return Fail("view", text.status());
    const auto lines = Lines(*text);
    size_t first = 1, last = lines.size();
    if (args.contains("view_range")) {
      const Json& vr = args["view_range"];
      if (vr.size() != 2 || !vr[0].is_number_integer() || !vr[1].is_number_integer()) {
        return ToolResult::Error("view: view_range must be [first, last]");
      }
      const int64_t a = vr[0].get<int64_t>(), b = vr[1].get<int64_t>();
      if (a < 1 || static_cast<size_t>(a) > std::max<size_t>(lines.size(), 1) ||
          (b != -1 && b < a)) {
        return ToolResult::Error(StrCat("view: view_range [", a, ", ", b, "] is outside the file (",
                                        lines.size(), " lines)"));
      }
      first = static_cast<size_t>(a);
      last = b == -1 ? lines.size() : std::min<size_t>(static_cast<size_t>(b), lines.size());
    }
    std::string out = Numbered(lines, first, last);
    if (out.size() > ctx.output_budget) {
      // Page: as many whole lines as fit, and say how to see the rest.
      size_t shown = first, bytes = 0;
      while (shown <= last && bytes + lines[shown - 1].size() + 8 < ctx.output_budget) {
        bytes += lines[shown - 1].size() + 8;
        ++shown;
      }
      out = Numbered(lines, first, shown - 1) +
            StrCat("[... lines ", shown, "-", last, " not shown; use view_range [", shown, ", ",
                   std::min(last, shown + (shown - first)), "] to continue ...]\n");
    }
    if (lines.empty()) out = "(empty file)\n";
    return ToolResult::Ok(out);
  }
};

class CreateTool : public Tool {
 public:
  std::string name() const override { return "create"; }
  std::string description() const override {
    return "Create a file with the given text, or overwrite one entirely. Parent directories "
           "are created.";
  }
  Json parameters() const override {
    return Json{{"type", "object"},
                {"properties",
                 {{"path", PathProp("file to write, relative to the workspace")},
                  {"file_text", {{"type", "string"}, {"description", "the whole content"}}}}},
                {"required", Json::array({"path", "file_text"})}};
  }
  bool read_only() const override { return false; }
  std::vector<policies::Action> Describe(const Json& args, const ToolContext& ctx) const override {
    return {PathAction(policies::Action::kWrite, args, ctx)};
  }
  ToolResult Run(const Json& args, ToolContext& ctx) override {
    auto rel = Relativize(ctx.workspace, args["path"].get<std::string>());
    if (!rel.ok()) return Fail("create", rel.status());
    const std::string text = args["file_text"].get<std::string>();
    if (Status s = WriteBeneath(ctx.workspace_fd.get(), *rel, text, true); !s.ok()) {
      return Fail("create", s);
    }
    ToolResult r = ToolResult::Ok(
        StrCat("wrote ", *rel, " (", Lines(text).size(), " lines, ", text.size(), " bytes)"));
    r.extra["paths_changed"] = Json::array({*rel});
    return r;
  }
};

// Lines (1-based) where each occurrence of `needle` starts.
std::vector<size_t> MatchLines(const std::string& text, const std::string& needle) {
  std::vector<size_t> out;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
    out.push_back(
        static_cast<size_t>(std::count(text.begin(), text.begin() + static_cast<long>(at), '\n')) +
        1);
  }
  return out;
}

// A few numbered lines around line `center`, to show the model what the file looks like now.
std::string Snippet(const std::string& text, size_t center, size_t radius) {
  const auto lines = Lines(text);
  const size_t first = center > radius ? center - radius : 1;
  return Numbered(lines, first, std::min(lines.size(), center + radius));
}

class StrReplaceTool : public Tool {
 public:
  std::string name() const override { return "str_replace"; }
  std::string description() const override {
    return "Replace old_str with new_str in a file. old_str must appear exactly once (include "
           "enough surrounding lines to make it unique); whitespace must match exactly.";
  }
  Json parameters() const override {
    return Json{{"type", "object"},
                {"properties",
                 {{"path", PathProp("file to edit")},
                  {"old_str", {{"type", "string"}}},
                  {"new_str", {{"type", "string"}}}}},
                {"required", Json::array({"path", "old_str", "new_str"})}};
  }
  bool read_only() const override { return false; }
  std::vector<policies::Action> Describe(const Json& args, const ToolContext& ctx) const override {
    return {PathAction(policies::Action::kWrite, args, ctx)};
  }
  ToolResult Run(const Json& args, ToolContext& ctx) override {
    auto rel = Relativize(ctx.workspace, args["path"].get<std::string>());
    if (!rel.ok()) return Fail("str_replace", rel.status());
    auto text = ReadText(ctx, *rel);
    if (!text.ok()) return Fail("str_replace", text.status());
    const std::string old_str = args["old_str"].get<std::string>();
    const std::string new_str = args["new_str"].get<std::string>();
    if (old_str.empty()) return ToolResult::Error("str_replace: old_str is empty");
    const auto at = MatchLines(*text, old_str);
    if (at.empty()) {
      return ToolResult::Error(StrCat("str_replace: old_str does not appear in ", *rel,
                                      " (it must match exactly, whitespace included); view the "
                                      "file to copy the text"));
    }
    if (at.size() > 1) {
      std::vector<std::string> where;
      for (size_t l : at) where.push_back(StrCat(l));
      return ToolResult::Error(StrCat("str_replace: old_str appears ", at.size(), " times in ",
                                      *rel, " (lines ", StrJoin(where, ", "),
                                      "); add surrounding lines to make it unique"));
    }
    std::string updated = *text;
    updated.replace(text->find(old_str), old_str.size(), new_str);
    if (Status s = WriteBeneath(ctx.workspace_fd.get(), *rel, updated, false); !s.ok()) {
      return Fail("str_replace", s);
    }
    ToolResult r = ToolResult::Ok(StrCat("edited ", *rel, ":\n", Snippet(updated, at[0], 3)));
    r.extra["paths_changed"] = Json::array({*rel});
    return r;
  }
};

class InsertTool : public Tool {
 public:
  std::string name() const override { return "insert"; }
  std::string description() const override {
    return "Insert text after line insert_line of a file (0 inserts at the top).";
  }
  Json parameters() const override {
    return Json{{"type", "object"},
                {"properties",
                 {{"path", PathProp("file to edit")},
                  {"insert_line", {{"type", "integer"}}},
                  {"text", {{"type", "string"}}}}},
                {"required", Json::array({"path", "insert_line", "text"})}};
  }
  bool read_only() const override { return false; }
  std::vector<policies::Action> Describe(const Json& args, const ToolContext& ctx) const override {
    return {PathAction(policies::Action::kWrite, args, ctx)};
  }
  ToolResult Run(const Json& args, ToolContext& ctx) override {
    auto rel = Relativize(ctx.workspace, args["path"].get<std::string>());
    if (!rel.ok()) return Fail("insert", rel.status());
    auto text = ReadText(ctx, *rel);
    if (!text.ok()) return Fail("insert", text.status());
    auto lines = Lines(*text);
    const int64_t n = args["insert_line"].get<int64_t>();
    if (n < 0 || static_cast<size_t>(n) > lines.size()) {
      return ToolResult::Error(
          StrCat("insert: insert_line ", n, " is outside [0, ", lines.size(), "] for ", *rel));
    }
    std::string add = args["text"].get<std::string>();
    if (!add.empty() && add.back() == '\n') add.pop_back();
    auto new_lines = Lines(add);
    if (add.empty()) new_lines = {""};
    lines.insert(lines.begin() + n, new_lines.begin(), new_lines.end());
    std::string updated = StrJoin(lines, "\n");
    if (text->empty() || text->back() == '\n') updated += "\n";
    if (Status s = WriteBeneath(ctx.workspace_fd.get(), *rel, updated, false); !s.ok()) {
      return Fail("insert", s);
    }
    ToolResult r = ToolResult::Ok(StrCat("inserted ", new_lines.size(), " lines into ", *rel, ":\n",
                                         Snippet(updated, static_cast<size_t>(n) + 1, 3)));
    r.extra["paths_changed"] = Json::array({*rel});
    return r;
  }
};

}  // namespace

std::unique_ptr<Tool> MakeViewTool() { return std::make_unique<ViewTool>(); }
std::unique_ptr<Tool> MakeCreateTool() { return std::make_unique<CreateTool>(); }
std::unique_ptr<Tool> MakeStrReplaceTool() { return std::make_unique<StrReplaceTool>(); }
std::unique_ptr<Tool> MakeInsertTool() { return std::make_unique<InsertTool>(); }

}  // namespace v4agent::tools
