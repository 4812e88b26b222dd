#include "agent/trajectory_view.h"

#include "common/strings.h"

namespace v4agent::agent {
namespace {

// One replay, built once, rendered twice.
struct Entry {
  enum Kind { kHeader, kThinking, kText, kCall, kResult, kNote, kEnd } kind;
  std::string title;  // short label: step, tool name, ...
  std::string body;
};

std::string Clip(const std::string& text, int max_lines) {
  std::string_view body(text);
  if (!body.empty() && body.back() == '\n') body.remove_suffix(1);
  std::vector<std::string> lines = StrSplit(body, '\n');
  if (max_lines <= 0 || static_cast<int>(lines.size()) <= max_lines) return text;
  const int head = max_lines / 2, tail = max_lines - head;
  std::string out;
  for (int i = 0; i < head; ++i) out += lines[i] + "\n";
  out += StrCat("... (", lines.size() - max_lines, " more lines) ...\n");
  for (size_t i = lines.size() - tail; i < lines.size(); ++i) {
    out += lines[i] + (i + 1 < lines.size() ? "\n" : "");
  }
  return out;
}

std::string Str(const Json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return "";
  return it->is_string() ? it->get<std::string>() : it->dump();
}

int64_t Int(const Json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<int64_t>() : 0;
}

std::vector<Entry> Build(const std::vector<Json>& records, int max_lines) {
  std::vector<Entry> out;
  int64_t prefilled = 0, reused = 0, from_store = 0, generated = 0;
  for (const Json& r : records) {
    if (!r.is_object()) continue;
    const std::string type = Str(r, "type");
    if (type == "start") {
      out.push_back({Entry::kHeader, "task", Str(r, "task")});
      out.push_back({Entry::kNote, "run",
                     StrCat("client ", Str(r, "client"), ", thinking ", Str(r, "thinking"),
                            ", workspace ", Str(r, "workspace"))});
    } else if (type == "resume") {
      out.push_back({Entry::kNote, "resume", StrCat("resumed at step ", Str(r, "at_step"))});
    } else if (type == "turn") {
      const Json& c = r.contains("completion") ? r["completion"] : Json::object();
      prefilled += Int(c, "tokens_prefilled");
      reused += Int(c, "tokens_reused");
      from_store += Int(c, "tokens_from_store");
      generated += Int(c, "tokens_generated");
      const std::string step = StrCat("step ", Str(r, "step"));
      out.push_back({Entry::kHeader, step,
                     StrCat(Int(c, "tokens_prefilled"), " prefilled, ", Int(c, "tokens_reused"),
                            " reused, ", Int(c, "tokens_generated"), " generated")});
      if (!Str(c, "reasoning_content").empty()) {
        out.push_back({Entry::kThinking, "thinking", Str(c, "reasoning_content")});
      }
      if (!Str(c, "content").empty()) out.push_back({Entry::kText, "assistant", Str(c, "content")});
      if (c.contains("tool_calls") && c["tool_calls"].is_array()) {
        for (const Json& call : c["tool_calls"]) {
          out.push_back({Entry::kCall, Str(call, "name"), Str(call, "arguments")});
        }
      }
      if (!Str(r, "format_error").empty()) {
        out.push_back({Entry::kNote, "format error", Str(r, "format_error")});
      }
    } else if (type == "tool_result") {
      std::string title = StrCat(Str(r, "name"), " -> ", Str(r, "decision"));
      if (r.value("ok", true) == false) title += " (failed)";
      out.push_back({Entry::kResult, title, Clip(Str(r, "output"), max_lines)});
    } else if (type == "message") {
      out.push_back({Entry::kNote, Str(r, "reason"),
                     r.contains("message") ? Str(r["message"], "content") : ""});
    } else if (type == "model_error") {
      out.push_back({Entry::kNote, "model error", Str(r, "error")});
    } else if (type == "autosubmit") {
      out.push_back({Entry::kNote, "autosubmitted diff", Clip(Str(r, "diff"), max_lines)});
    } else if (type == "end") {
      std::string body = StrCat("status ", Str(r, "status"), " after ", Str(r, "steps"), " steps, ",
                                Str(r, "tool_calls_executed"), " tool calls");
      if (!Str(r, "detail").empty()) body += StrCat(" (", Str(r, "detail"), ")");
      body += StrCat("\ntokens: ", prefilled, " prefilled, ", reused, " reused from the cache, ",
                     from_store, " from the prefix store, ", generated, " generated");
      if (!Str(r, "submission").empty()) {
        body += "\nsubmission:\n" + Clip(Str(r, "submission"), max_lines);
      }
      out.push_back({Entry::kEnd, "end", body});
    } else {
      out.push_back({Entry::kNote, type.empty() ? "record" : type, Clip(r.dump(), max_lines)});
    }
  }
  return out;
}

std::string Indent(std::string text) {
  while (!text.empty() && text.back() == '\n') text.pop_back();
  std::string out = "    ";
  for (char ch : text) {
    out += ch;
    if (ch == '\n') out += "    ";
  }
  return out;
}

}  // namespace

std::string HtmlEscape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char ch : text) {
    switch (ch) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += ch;
    }
  }
  return out;
}

std::string ReplayText(const std::vector<Json>& records, const ReplayStyle& style) {
  auto paint = [&](const char* code, const std::string& s) {
    return style.color ? StrCat("\033[", code, "m", s, "\033[0m") : s;
  };
  std::string out;
  for (const Entry& e : Build(records, style.max_output_lines)) {
    switch (e.kind) {
      case Entry::kHeader:
        out += paint("1", StrCat("== ", e.title, ": ")) + e.body + "\n";
        break;
      case Entry::kThinking:
        out += paint("2", StrCat("  [thinking]\n", Indent(e.body))) + "\n";
        break;
      case Entry::kText:
        out += StrCat("  [assistant]\n", Indent(e.body), "\n");
        break;
      case Entry::kCall:
        out += paint("36", StrCat("  > ", e.title, " ")) + e.body + "\n";
        break;
      case Entry::kResult:
        out += paint("33", StrCat("  < ", e.title)) + "\n" + Indent(e.body) + "\n";
        break;
      case Entry::kNote:
        out += paint("35", StrCat("  (", e.title, ")")) + " " + e.body + "\n";
        break;
      case Entry::kEnd:
        out += paint("1", "== end: ") + e.body + "\n";
        break;
    }
  }
  return out;
}

std::string ReplayHtml(const std::vector<Json>& records) {
  static const char* kClass[] = {"hdr", "think", "text", "call", "result", "note", "end"};
  std::string out = "<div class=\"replay\">\n";
  for (const Entry& e : Build(records, 200)) {
    out += StrCat("<div class=\"", kClass[e.kind], "\"><span class=\"label\">", HtmlEscape(e.title),
                  "</span><pre>", HtmlEscape(e.body), "</pre></div>\n");
  }
  return out + "</div>\n";
}

}  // namespace v4agent::agent
