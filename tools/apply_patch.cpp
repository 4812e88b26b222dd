// apply_patch: Codex's patch grammar (Begin/End Patch; Add, Delete and Update File; Move to;
// @@ hunks of context, - and + lines; End of File) with Codex's semantics, which models that
// learned the grammar expect: marker lines may carry surrounding whitespace, Add File and Move
// to overwrite an existing file, a hunk of only + lines is appended at the end of the file, an
// updated file ends with a newline.
// Context is matched exactly first, then ignoring trailing whitespace, then all surrounding
// whitespace, then with typographic punctuation read as ASCII. One difference, on purpose:
// the whole patch is computed in memory and applied only if every hunk of every file
// matched (Codex keeps the files changed before a failing one); writes are atomic per file and
// rolled back if a later one fails.
#include <cstring>
#include <map>
#include <optional>

#include "common/strings.h"
#include "tools/builtin_tools.h"
#include "tools/path_guard.h"

namespace v4agent::tools {
namespace {

struct Hunk {
  std::string header;  // text after "@@ " (a line to find first), may be empty
  std::vector<std::string> old_lines, new_lines;
  bool end_of_file = false;
  int line = 0;  // in the patch, for errors
};

struct FileOp {
  enum Kind { kAdd, kDelete, kUpdate } kind;
  std::string path, move_to;
  std::vector<std::string> add_lines;
  std::vector<Hunk> hunks;
  int line = 0;
};

Result<std::vector<FileOp>> ParsePatch(const std::string& patch) {
  std::vector<std::string> lines = StrSplit(patch, '\n');
  for (auto& l : lines) {
    if (!l.empty() && l.back() == '\r') l.pop_back();
  }
  while (!lines.empty() && StripWhitespace(lines.back()).empty()) lines.pop_back();
  size_t i = 0;
  while (i < lines.size() && StripWhitespace(lines[i]).empty()) ++i;
  if (i >= lines.size() || StripWhitespace(lines[i]) != "*** Begin Patch") {
    return InvalidArgumentError("the patch must start with \"*** Begin Patch\"");
  }
  if (StripWhitespace(lines.back()) != "*** End Patch") {
    return InvalidArgumentError("the patch must end with \"*** End Patch\"");
  }
  std::vector<FileOp> ops;
  ++i;
  const size_t end = lines.size() - 1;
  auto at = [&](size_t k) { return StrCat("patch line ", k + 1); };
  // A file header or the end marker, whitespace around it allowed (as Codex reads them).
  auto is_marker = [&](size_t k) {
    const std::string_view t = StripWhitespace(lines[k]);
    return StartsWith(t, "*** Add File: ") || StartsWith(t, "*** Delete File: ") ||
           StartsWith(t, "*** Update File: ") || t == "*** End Patch";
  };
  while (i < end) {
    const std::string l(StripWhitespace(lines[i]));
    FileOp op;
    op.line = static_cast<int>(i + 1);
    if (StartsWith(l, "*** Add File: ")) {
      op.kind = FileOp::kAdd;
      op.path = std::string(StripWhitespace(l.substr(14)));
      for (++i; i < end && !is_marker(i); ++i) {
        if (lines[i].empty() || lines[i][0] != '+') {
          return InvalidArgumentError(StrCat(at(i), ": every line of an added file starts with +"));
        }
        op.add_lines.push_back(lines[i].substr(1));
      }
    } else if (StartsWith(l, "*** Delete File: ")) {
      op.kind = FileOp::kDelete;
      op.path = std::string(StripWhitespace(l.substr(17)));
      ++i;
    } else if (StartsWith(l, "*** Update File: ")) {
      op.kind = FileOp::kUpdate;
      op.path = std::string(StripWhitespace(l.substr(17)));
      ++i;
      if (i < end && StartsWith(StripWhitespace(lines[i]), "*** Move to: ")) {
        op.move_to = std::string(StripWhitespace(StripWhitespace(lines[i]).substr(13)));
        ++i;
      }
      Hunk h;
      bool open = false;
      auto flush = [&] {
        if (open && (!h.old_lines.empty() || !h.new_lines.empty())) op.hunks.push_back(h);
        h = Hunk{};
        open = false;
      };
      for (; i < end && !is_marker(i); ++i) {
        const std::string& x = lines[i];
        if (StripWhitespace(x) == "*** End of File") {
          h.end_of_file = true;
        } else if (StartsWith(x, "@@")) {
          flush();
          open = true;
          h.header = std::string(StripWhitespace(x.substr(2)));
          h.line = static_cast<int>(i + 1);
        } else if (!x.empty() && (x[0] == ' ' || x[0] == '-' || x[0] == '+')) {
          if (!open) {
            open = true;
            h.line = static_cast<int>(i + 1);
          }
          if (x[0] != '+') h.old_lines.push_back(x.substr(1));
          if (x[0] != '-') h.new_lines.push_back(x.substr(1));
        } else if (x.empty()) {
          // A bare empty line in a hunk is an empty context line.
          if (!open) continue;
          h.old_lines.push_back("");
          h.new_lines.push_back("");
        } else {
          return InvalidArgumentError(StrCat(at(i),
                                             ": a hunk line starts with ' ', '-' or '+', "
                                             "not \"",
                                             x.substr(0, 20), "\""));
        }
      }
      flush();
      if (op.hunks.empty() && op.move_to.empty()) {
        return InvalidArgumentError(
            StrCat("patch line ", op.line, ": Update File ", op.path, " has no hunks"));
      }
    } else {
      return InvalidArgumentError(
          StrCat(at(i), ": expected *** Add File, *** Delete File or *** Update File, not \"",
                 l.substr(0, 40), "\""));
    }
    if (op.path.empty()) return InvalidArgumentError(StrCat("patch line ", op.line, ": no path"));
    ops.push_back(std::move(op));
  }
  if (ops.empty()) return InvalidArgumentError("the patch changes no file");
  return ops;
}

std::string Rstrip(const std::string& s) {
  size_t e = s.size();
  while (e > 0 && (s[e - 1] == ' ' || s[e - 1] == '\t' || s[e - 1] == '\r')) --e;
  return s.substr(0, e);
}

// Typographic dashes, quotes and spaces as their ASCII look-alikes (models and editors swap
// them); everything else unchanged.
std::string AsciiPunctuation(std::string_view s) {
  static const std::pair<const char*, char> kMap[] = {
      {"\u2010", '-'},  {"\u2011", '-'}, {"\u2012", '-'},  {"\u2013", '-'},  {"\u2014", '-'},
      {"\u2015", '-'},  {"\u2212", '-'}, {"\u2018", '\''}, {"\u2019", '\''}, {"\u201A", '\''},
      {"\u201B", '\''}, {"\u201C", '"'}, {"\u201D", '"'},  {"\u201E", '"'},  {"\u201F", '"'},
      {"\u00A0", ' '},  {"\u2002", ' '}, {"\u2003", ' '},  {"\u2009", ' '},  {"\u202F", ' '}};
  std::string out;
  for (size_t i = 0; i < s.size();) {
    bool hit = false;
    for (const auto& [from, to] : kMap) {
      const size_t n = std::strlen(from);
      if (s.compare(i, n, from) == 0) {
        out.push_back(to);
        i += n;
        hit = true;
        break;
      }
    }
    if (!hit) out.push_back(s[i++]);
  }
  return out;
}

// First index >= from where `needle` (not empty) matches `hay` line for line, at growing
// tolerance: exact, trailing whitespace, surrounding whitespace, ASCII punctuation.
std::optional<size_t> Find(const std::vector<std::string>& hay,
                           const std::vector<std::string>& needle, size_t from, bool eof) {
  for (int pass = 0; pass < 4; ++pass) {
    auto norm = [&](const std::string& s) {
      return pass == 0   ? s
             : pass == 1 ? Rstrip(s)
             : pass == 2 ? std::string(StripWhitespace(s))
                         : AsciiPunctuation(StripWhitespace(s));
    };
    if (needle.size() > hay.size()) return std::nullopt;
    const size_t last = hay.size() - needle.size();
    const size_t start = eof ? last : from;
    for (size_t k = start; k <= last; ++k) {
      bool ok = true;
      for (size_t j = 0; j < needle.size() && ok; ++j) ok = norm(hay[k + j]) == norm(needle[j]);
      if (ok) return k;
    }
  }
  return std::nullopt;
}

Result<std::string> ApplyHunks(const std::string& path, const std::string& text,
                               const std::vector<Hunk>& hunks) {
  std::vector<std::string> lines = StrSplit(text, '\n');
  const bool trailing_nl = !text.empty() && text.back() == '\n';
  if (trailing_nl) lines.pop_back();
  if (text.empty()) lines.clear();
  size_t cursor = 0;
  for (const Hunk& h : hunks) {
    if (!h.header.empty()) {
      auto at = Find(lines, {h.header}, cursor, false);
      if (!at) {
        return FailedPreconditionError(StrCat(path, ": the @@ line \"", h.header, "\" (patch line ",
                                              h.line, ") is not in the file"));
      }
      cursor = *at + (h.old_lines.empty() ? 1 : 0);
      if (!h.old_lines.empty() && StripWhitespace(h.old_lines[0]) != StripWhitespace(h.header)) {
        cursor = *at + 1;
      }
    }
    if (h.old_lines.empty()) {
      // Only added lines: Codex appends them at the end of the file, wherever a header
      // pointed (before a last empty line, which stands for the final newline).
      size_t where = lines.size();
      if (!lines.empty() && lines.back().empty()) --where;
      lines.insert(lines.begin() + static_cast<long>(where), h.new_lines.begin(),
                   h.new_lines.end());
      cursor = where + h.new_lines.size();
      continue;
    }
    std::vector<std::string> old_lines = h.old_lines, new_lines = h.new_lines;
    auto at = Find(lines, old_lines, cursor, h.end_of_file);
    if (!at && old_lines.size() > 1 && old_lines.back().empty()) {
      // A trailing empty context line stands for the file's final newline.
      old_lines.pop_back();
      if (!new_lines.empty() && new_lines.back().empty()) new_lines.pop_back();
      at = Find(lines, old_lines, cursor, h.end_of_file);
    }
    if (!at) {
      return FailedPreconditionError(StrCat(
          path, ": the hunk at patch line ", h.line,
          " does not match the file (its context and - "
          "lines must be the file's current lines; view the file and make the patch again)"));
    }
    lines.erase(lines.begin() + static_cast<long>(*at),
                lines.begin() + static_cast<long>(*at + old_lines.size()));
    lines.insert(lines.begin() + static_cast<long>(*at), new_lines.begin(), new_lines.end());
    cursor = *at + new_lines.size();
  }
  // An updated file ends with a newline, as Codex writes it.
  std::string out = StrJoin(lines, "\n");
  if (!lines.empty()) out += "\n";
  return out;
}

class ApplyPatchTool : public Tool {
 public:
  std::string name() const override { return "apply_patch"; }
  std::string description() const override {
    return "Apply a patch to several files at once, all or nothing (if any hunk does not "
           "match, no file changes). Format:\n"
           "*** Begin Patch\n*** Add File: path (replaces the file if it exists)\n+line\n"
           "*** Delete File: path\n*** Update File: path\n*** Move to: new/path (optional; "
           "replaces an existing file)\n@@ optional line to find\n context line\n"
           "-removed line\n+added line\n*** End Patch\nA hunk of only + lines is appended at "
           "the end of the file.";
  }
  Json parameters() const override {
    return Json{{"type", "object"},
                {"properties", {{"patch", {{"type", "string"}}}}},
                {"required", Json::array({"patch"})}};
  }
  bool read_only() const override { return false; }
  std::vector<policies::Action> Describe(const Json& args, const ToolContext& ctx) const override {
    std::vector<policies::Action> out;
    auto ops = ParsePatch(args.value("patch", std::string()));
    if (!ops.ok()) return out;
    for (const FileOp& op : *ops) {
      for (const std::string& p : {op.path, op.move_to}) {
        if (p.empty()) continue;
        policies::Action a;
        a.kind = policies::Action::kWrite;
        auto rel = Relativize(ctx.workspace, p);
        a.path = rel.ok() ? *rel : p;
        out.push_back(a);
      }
    }
    return out;
  }
  ToolResult Run(const Json& args, ToolContext& ctx) override {
    auto ops = ParsePatch(args["patch"].get<std::string>());
    if (!ops.ok()) return ToolResult::Error(StrCat("apply_patch: ", ops.status().message()));
    // Plan every change first: path -> new content (nullopt: delete).
    std::map<std::string, std::optional<std::string>> plan;
    std::map<std::string, std::optional<std::string>> original;
    const int ws = ctx.workspace_fd.get();
    auto current = [&](const std::string& rel) -> Result<std::optional<std::string>> {
      if (plan.count(rel)) return plan[rel];
      auto text = ReadBeneath(ws, rel, 16 << 20);
      if (!text.ok()) {
        if (text.status().code() == StatusCode::kNotFound) return std::optional<std::string>();
        return text.status();
      }
      if (LooksBinary(*text)) return FailedPreconditionError(rel + " is a binary file");
      return std::optional<std::string>(*text);
    };
    for (const FileOp& op : *ops) {
      auto rel = Relativize(ctx.workspace, op.path);
      if (!rel.ok())
        return ToolResult{ToolResult::kDenied, StrCat("apply_patch: ", rel.status().message())};
      auto cur = current(*rel);
      if (!cur.ok()) return ToolResult::Error(StrCat("apply_patch: ", cur.status().message()));
      if (!original.count(*rel)) original[*rel] = *cur;
      switch (op.kind) {
        case FileOp::kAdd:
          // An existing file is replaced, as Codex does (the summary says M, not A).
          plan[*rel] = StrJoin(op.add_lines, "\n") + (op.add_lines.empty() ? "" : "\n");
          break;
        case FileOp::kDelete:
          if (!cur->has_value()) {
            return ToolResult::Error(StrCat("apply_patch: Delete File ", *rel, ": no such file"));
          }
          plan[*rel] = std::nullopt;
          break;
        case FileOp::kUpdate: {
          if (!cur->has_value()) {
            return ToolResult::Error(StrCat("apply_patch: Update File ", *rel, ": no such file"));
          }
          auto updated = ApplyHunks(*rel, **cur, op.hunks);
          if (!updated.ok()) {
            return ToolResult::Error(
                StrCat("apply_patch: ", updated.status().message(), "; nothing was changed"));
          }
          if (op.move_to.empty()) {
            plan[*rel] = *updated;
          } else {
            auto dest = Relativize(ctx.workspace, op.move_to);
            if (!dest.ok())
              return ToolResult{ToolResult::kDenied,
                                StrCat("apply_patch: ", dest.status().message())};
            auto dest_cur = current(*dest);
            if (!dest_cur.ok())
              return ToolResult::Error(StrCat("apply_patch: ", dest_cur.status().message()));
            if (!original.count(*dest)) original[*dest] = *dest_cur;
            // An existing destination is replaced, as Codex does.
            plan[*rel] = std::nullopt;
            plan[*dest] = *updated;
          }
          break;
        }
      }
    }
    // Apply; on a failure put back what was already changed.
    std::vector<std::string> done;
    for (const auto& [rel, content] : plan) {
      Status s = content ? WriteBeneath(ws, rel, *content, true) : RemoveBeneath(ws, rel);
      if (!s.ok()) {
        for (const auto& d : done) {
          const auto& orig = original[d];
          (void)(orig ? WriteBeneath(ws, d, *orig, true) : RemoveBeneath(ws, d));
        }
        ToolResult r = ToolResult::Error(
            StrCat("apply_patch: ", s.message(), "; the files already changed were restored"));
        if (s.code() == StatusCode::kPermissionDenied) r.kind = ToolResult::kDenied;
        return r;
      }
      done.push_back(rel);
    }
    std::vector<std::string> summary;
    for (const auto& [rel, content] : plan) {
      summary.push_back(StrCat(content ? (original[rel] ? "M " : "A ") : "D ", rel));
    }
    ToolResult r = ToolResult::Ok(StrCat("applied:\n", StrJoin(summary, "\n")));
    r.extra["paths_changed"] = done;
    return r;
  }
};

}  // namespace

std::unique_ptr<Tool> MakeApplyPatchTool() { return std::make_unique<ApplyPatchTool>(); }

}  // namespace v4agent::tools
