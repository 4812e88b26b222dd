#include "policies/shell_syntax.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <functional>
#include <memory>

#include "common/strings.h"

namespace v4agent::policies {
namespace {

constexpr int kMaxDepth = 48;
constexpr size_t kMaxBraceWords = 4096;

// A word being read: its characters, and for each whether it is quoted (no brace or glob
// meaning) and whether it stands for an unknown expansion.
struct RawWord {
  std::string chars;
  std::vector<uint8_t> flags;  // bit 0: quoted; bit 1: unknown
  std::string source;
  void Add(char c, bool quoted) {
    chars.push_back(c);
    flags.push_back(quoted ? 1 : 0);
  }
  void AddQuoted(std::string_view s) {
    for (char c : s) Add(c, true);
  }
  void AddUnknown() {
    chars.push_back('\0');
    flags.push_back(2);
  }
  bool empty() const { return chars.empty(); }
};

bool IsNameStart(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool IsNameChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

bool IsMeta(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == ';' || c == '&' || c == '|' || c == '(' ||
         c == ')' || c == '<' || c == '>';
}

ShellWord Finish(const RawWord& w, size_t from, size_t to) {
  ShellWord out;
  for (size_t i = from; i < to; ++i) {
    if (w.flags[i] & 2) {
      out.known = false;
      continue;
    }
    const char c = w.chars[i];
    if (!(w.flags[i] & 1) && (c == '*' || c == '?')) out.glob = true;
    if (!(w.flags[i] & 1) && c == '[') {
      // A bracket expression needs its unquoted ]: "[" alone (the test command) is no glob.
      for (size_t k = i + 1; k < to; ++k) out.glob |= !(w.flags[k] & 1) && w.chars[k] == ']';
    }
    out.text.push_back(c);
  }
  if (out.glob) out.known = false;
  out.source = w.source;
  return out;
}

// Brace expansion on the unquoted braces of `w` (bash: {a,b}, {1..3}, {a..e..2}); returns the
// words as (chars, flags) pairs. False when the result would be too large.
struct Chars {
  std::string c;
  std::vector<uint8_t> f;
};

bool ExpandBraces(const Chars& in, std::vector<Chars>* out, size_t* budget);

bool ExpandBraces(const Chars& in, std::vector<Chars>* out, size_t* budget) {
  const size_t n = in.c.size();
  for (size_t open = 0; open < n; ++open) {
    if (in.f[open] || in.c[open] != '{') continue;
    if (open > 0 && !in.f[open - 1] && in.c[open - 1] == '$') continue;  // ${...}
    // The matching close and the top-level commas.
    int level = 0;
    std::vector<size_t> commas;
    size_t close = std::string::npos;
    for (size_t i = open; i < n; ++i) {
      if (in.f[i]) continue;
      if (in.c[i] == '{') ++level;
      if (in.c[i] == '}' && --level == 0) {
        close = i;
        break;
      }
      if (in.c[i] == ',' && level == 1) commas.push_back(i);
    }
    if (close == std::string::npos) continue;  // unbalanced: a literal brace
    std::vector<Chars> alternatives;
    auto slice = [&](size_t a, size_t b) {
      return Chars{in.c.substr(a, b - a),
                   std::vector<uint8_t>(in.f.begin() + static_cast<long>(a),
                                        in.f.begin() + static_cast<long>(b))};
    };
    if (!commas.empty()) {
      size_t start = open + 1;
      for (size_t c : commas) {
        alternatives.push_back(slice(start, c));
        start = c + 1;
      }
      alternatives.push_back(slice(start, close));
    } else {
      // A sequence: x..y or x..y..step of integers or single letters, all unquoted.
      const Chars body = slice(open + 1, close);
      bool plain = true;
      for (uint8_t f : body.f) plain = plain && f == 0;
      const auto parts = StrSplit(body.c, '.');
      // "1..3" splits into {"1", "", "3"}; with a step {"1", "", "9", "", "2"}.
      if (!plain || !(parts.size() == 3 || parts.size() == 5) || !parts[1].empty() ||
          (parts.size() == 5 && !parts[3].empty())) {
        continue;  // not an expansion: the braces are literal
      }
      int64_t a = 0, b = 0, step = 1;
      const bool numbers = ParseInt64(parts[0], &a) && ParseInt64(parts[2], &b);
      const bool letters = !numbers && parts[0].size() == 1 && parts[2].size() == 1 &&
                           std::isalpha(static_cast<unsigned char>(parts[0][0])) &&
                           std::isalpha(static_cast<unsigned char>(parts[2][0]));
      if (!numbers && !letters) continue;
      if (parts.size() == 5 && !ParseInt64(parts[4], &step)) continue;
      if (letters) {
        a = parts[0][0];
        b = parts[2][0];
      }
      if (step == 0) step = 1;
      if (step < 0) step = -step;
      const int64_t count = (a <= b ? b - a : a - b) / step + 1;
      if (count < 0 || static_cast<size_t>(count) > *budget) return false;
      for (int64_t k = 0, v = a; k < count; ++k, v += (a <= b ? step : -step)) {
        std::string text = letters ? std::string(1, static_cast<char>(v)) : std::to_string(v);
        alternatives.push_back(Chars{text, std::vector<uint8_t>(text.size(), 1)});
      }
    }
    const Chars prefix = slice(0, open), suffix = slice(close + 1, n);
    for (const Chars& alt : alternatives) {
      Chars joined = prefix;
      // An alternative may itself hold braces: expand it with the suffix.
      joined.c += alt.c + suffix.c;
      joined.f.insert(joined.f.end(), alt.f.begin(), alt.f.end());
      joined.f.insert(joined.f.end(), suffix.f.begin(), suffix.f.end());
      std::vector<Chars> sub;
      if (!ExpandBraces(joined, &sub, budget)) return false;
      for (auto& s : sub) {
        if (*budget == 0) return false;
        --*budget;
        out->push_back(std::move(s));
      }
    }
    return true;
  }
  out->push_back(in);
  return true;
}

struct PendingHeredoc {
  std::string delimiter;
  bool strip_tabs = false;
  bool expand = true;
  int depth = 0;
  std::string context;
};

class Parser {
 public:
  Parser(std::string_view s, ShellAnalysis* out) : s_(s), out_(out) {}

  void ParseAll() {
    const std::string stop = ParseList({}, 0, "");
    if (!stop.empty()) Problem(StrCat("unexpected \"", stop, "\""));
    if (!heredocs_.empty()) Problem("a here-document has no body");
  }

 private:
  // ---- characters ----
  bool AtEnd() const { return i_ >= s_.size(); }
  char Peek(size_t k = 0) const { return i_ + k < s_.size() ? s_[i_ + k] : '\0'; }
  bool LookingAt(std::string_view t) const {
    return i_ <= s_.size() && s_.substr(i_, t.size()) == t;
  }

  void Problem(const std::string& what) {
    out_->complete = false;
    if (out_->problems.size() < 8) out_->problems.push_back(what);
  }

  // Blanks and line continuations (not newlines).
  void SkipBlanks() {
    while (!AtEnd()) {
      if (Peek() == ' ' || Peek() == '\t') {
        ++i_;
      } else if (Peek() == '\\' && Peek(1) == '\n') {
        i_ += 2;
      } else {
        break;
      }
    }
  }

  void SkipComment() {
    if (Peek() == '#') {
      while (!AtEnd() && Peek() != '\n') ++i_;
    }
  }

  // Consumes one newline and the bodies of the here-documents that were pending on its line.
  void ConsumeNewline() {
    ++i_;
    std::vector<PendingHeredoc> pending;
    pending.swap(heredocs_);
    for (const PendingHeredoc& h : pending) ReadHeredocBody(h);
  }

  void SkipBlankLines() {
    for (;;) {
      SkipBlanks();
      SkipComment();
      if (Peek() == '\n') {
        ConsumeNewline();
        continue;
      }
      return;
    }
  }

  // The unquoted bare word at the current position (for reserved words), without consuming.
  std::string PeekBareWord() const {
    size_t j = i_;
    while (j < s_.size() && !IsMeta(s_[j]) && s_[j] != '\'' && s_[j] != '"' && s_[j] != '\\' &&
           s_[j] != '$' && s_[j] != '`') {
      ++j;
    }
    if (j < s_.size() && !IsMeta(s_[j])) return "";  // a quote or expansion follows: not bare
    return std::string(s_.substr(i_, j - i_));
  }

  bool AtReserved(std::string_view w) const { return PeekBareWord() == w; }

  // ---- lists and commands ----

  // Parses commands until one of `stops` begins a command position, or the end. Returns the
  // stop found ("" at the end). Operator stops: ")", ";;", ";&", ";;&"; the rest are words.
  std::string ParseList(const std::vector<std::string>& stops, int depth, const std::string& ctx) {
    if (depth > kMaxDepth) {
      Problem("nested too deeply");
      i_ = s_.size();
      return "";
    }
    for (;;) {
      SkipBlankLines();
      if (AtEnd()) return "";
      for (const std::string& stop : stops) {
        const bool op = stop == ")" || stop[0] == ';';
        if (op ? LookingAt(stop) : AtReserved(stop)) return stop;
      }
      if (Peek() == ')') {
        ++i_;
        Problem("unexpected \")\"");
        continue;
      }
      if (Peek() == ';' || Peek() == '&' || Peek() == '|') {
        Problem(StrCat("unexpected \"", std::string(1, Peek()), "\""));
        ++i_;
        continue;
      }
      ParseAndOr(depth, ctx);
      SkipBlanks();
      SkipComment();
      if (LookingAt(";;")) continue;  // a case terminator: the caller's stop
      if (Peek() == ';' || Peek() == '&') {
        ++i_;
      } else if (Peek() == '\n') {
        ConsumeNewline();
      }
    }
  }

  void ParseAndOr(int depth, const std::string& ctx) {
    for (;;) {
      ParsePipeline(depth, ctx);
      SkipBlanks();
      if (LookingAt("&&") || LookingAt("||")) {
        i_ += 2;
        SkipBlankLines();
        continue;
      }
      return;
    }
  }

  void ParsePipeline(int depth, const std::string& ctx) {
    SkipBlanks();
    if (AtReserved("time")) {
      i_ += 4;
      SkipBlanks();
      if (LookingAt("-p ")) i_ += 2;
    }
    SkipBlanks();
    while (AtReserved("!")) {
      ++i_;
      SkipBlanks();
    }
    for (;;) {
      ParseCommand(depth, ctx);
      SkipBlanks();
      if (Peek() == '|' && Peek(1) != '|') {
        i_ += Peek(1) == '&' ? 2 : 1;
        SkipBlankLines();
        continue;
      }
      return;
    }
  }

  void Expect(const std::string& word, const std::string& what) {
    SkipBlankLines();
    const bool op = word == ")" || word == "}" || word == "))";
    if (op ? LookingAt(word) : AtReserved(word)) {
      i_ += word.size();
      return;
    }
    Problem(StrCat(what, ": expected \"", word, "\""));
  }

  void ParseCommand(int depth, const std::string& ctx) {
    SkipBlanks();
    if (AtEnd()) {
      Problem("a command is missing");
      return;
    }
    if (LookingAt("((") && ArithmeticAhead(i_ + 2)) {
      i_ += 2;
      ScanArithmetic(depth, ctx);
      ParseTrailingRedirects(depth, ctx);
      return;
    }
    if (Peek() == '(') {
      ++i_;
      ParseList({")"}, depth + 1, "(...)");
      Expect(")", "subshell");
      ParseTrailingRedirects(depth, ctx);
      return;
    }
    const std::string w = PeekBareWord();
    if (w == "{") {
      ++i_;
      ParseList({"}"}, depth, ctx);
      Expect("}", "group");
      ParseTrailingRedirects(depth, ctx);
      return;
    }
    if (w == "if") {
      i_ += 2;
      ParseList({"then"}, depth, ctx);
      Expect("then", "if");
      for (;;) {
        const std::string stop = ParseList({"elif", "else", "fi"}, depth, ctx);
        if (stop == "elif") {
          i_ += 4;
          ParseList({"then"}, depth, ctx);
          Expect("then", "elif");
          continue;
        }
        if (stop == "else") {
          i_ += 4;
          ParseList({"fi"}, depth, ctx);
        }
        Expect("fi", "if");
        break;
      }
      ParseTrailingRedirects(depth, ctx);
      return;
    }
    if (w == "while" || w == "until") {
      i_ += w.size();
      ParseList({"do"}, depth, ctx);
      Expect("do", w);
      ParseList({"done"}, depth, ctx);
      Expect("done", w);
      ParseTrailingRedirects(depth, ctx);
      return;
    }
    if (w == "for" || w == "select") {
      i_ += w.size();
      SkipBlanks();
      if (LookingAt("((")) {
        i_ += 2;
        ScanArithmetic(depth, ctx);
      } else {
        RawWord name = ReadWord(depth, ctx);
        SkipBlankLines();
        if (AtReserved("in")) {
          i_ += 2;
          // The list: words until ';' or a newline; their substitutions run.
          for (;;) {
            SkipBlanks();
            if (AtEnd() || Peek() == ';' || Peek() == '\n') break;
            ReadWordOrSkip(depth, ctx);
          }
        }
        (void)name;
      }
      SkipBlanks();
      if (Peek() == ';') ++i_;
      SkipBlankLines();
      if (AtReserved("{")) {  // bash accepts for ... { ...; } as well
        ++i_;
        ParseList({"}"}, depth, ctx);
        Expect("}", w);
      } else {
        Expect("do", w);
        ParseList({"done"}, depth, ctx);
        Expect("done", w);
      }
      ParseTrailingRedirects(depth, ctx);
      return;
    }
    if (w == "case") {
      i_ += 4;
      SkipBlanks();
      ReadWord(depth, ctx);
      SkipBlankLines();
      Expect("in", "case");
      for (;;) {
        SkipBlankLines();
        if (AtEnd()) {
          Problem("case: expected \"esac\"");
          return;
        }
        if (AtReserved("esac")) {
          i_ += 4;
          break;
        }
        if (Peek() == '(') ++i_;
        // Patterns separated by |, up to ).
        for (;;) {
          SkipBlanks();
          ReadWord(depth, ctx);
          SkipBlanks();
          if (Peek() == '|') {
            ++i_;
            continue;
          }
          break;
        }
        if (Peek() != ')') {
          Problem("case: a pattern needs \")\"");
          return;
        }
        ++i_;
        const std::string stop = ParseList({";;&", ";;", ";&", "esac"}, depth, ctx);
        if (stop == "esac" || stop.empty()) continue;
        i_ += stop.size();
      }
      ParseTrailingRedirects(depth, ctx);
      return;
    }
    if (w == "function") {
      i_ += 8;
      SkipBlanks();
      const std::string name = PeekBareWord();
      i_ += name.size();
      SkipBlanks();
      if (LookingAt("()")) i_ += 2;
      ParseFunctionBody(name, depth);
      return;
    }
    if (w == "[[") {
      i_ += 2;
      ShellCommand cmd;
      cmd.depth = depth;
      cmd.context = ctx;
      cmd.words.push_back(ShellWord{"[[", true, false, "[["});
      const size_t slot = Reserve();
      for (;;) {
        SkipBlanks();
        if (AtEnd() || Peek() == '\n') {
          Problem("[[: expected \"]]\"");
          break;
        }
        if (AtReserved("]]")) {
          i_ += 2;
          break;
        }
        // Inside [[ ]], ( ) < > && || are part of the expression.
        if (IsMeta(Peek())) {
          ++i_;
          continue;
        }
        for (auto& word : Expand(ReadWord(depth, ctx))) cmd.words.push_back(std::move(word));
      }
      out_->commands[slot] = std::move(cmd);
      ParseTrailingRedirects(depth, ctx);
      return;
    }
    if (w == "coproc") {
      Problem("coproc is not analysed");
      i_ += 6;
      ParseCommand(depth + 1, "coproc");
      return;
    }
    ParseSimpleCommand(depth, ctx);
  }

  void ParseFunctionBody(const std::string& name, int depth) {
    out_->functions.push_back(name);
    SkipBlankLines();
    // The body is a compound command; its commands run whenever the function is called.
    ParseCommand(depth + 1, "function " + name);
  }

  size_t Reserve() {
    out_->commands.emplace_back();
    return out_->commands.size() - 1;
  }

  // Redirections may follow a compound command; they belong to no simple command, so a
  // writing one is reported as a command of its own (":" with the redirection).
  void ParseTrailingRedirects(int depth, const std::string& ctx) {
    for (;;) {
      SkipBlanks();
      if (!AtRedirect()) return;
      ShellCommand holder;
      holder.depth = depth;
      holder.context = ctx;
      holder.words.push_back(ShellWord{":", true, false, ":"});
      const size_t slot = Reserve();
      holder.redirects.push_back(ReadRedirect(depth, ctx));
      out_->commands[slot] = std::move(holder);
    }
  }

  bool AtRedirect() const {
    size_t j = i_;
    while (j < s_.size() && std::isdigit(static_cast<unsigned char>(s_[j]))) ++j;
    if (j == i_ && j < s_.size() && s_[j] == '{') {  // {varname}>file
      size_t k = j + 1;
      while (k < s_.size() && IsNameChar(s_[k])) ++k;
      if (k < s_.size() && s_[k] == '}' && k + 1 < s_.size() &&
          (s_[k + 1] == '<' || s_[k + 1] == '>')) {
        j = k + 1;
      }
    }
    if (j >= s_.size()) return false;
    if (s_[j] == '&' && j == i_ && j + 1 < s_.size() && s_[j + 1] == '>') return true;
    if (s_[j] != '<' && s_[j] != '>') return false;
    // <( and >( are process substitutions, words.
    return !(j == i_ && j + 1 < s_.size() && s_[j + 1] == '(');
  }

  ShellRedirect ReadRedirect(int depth, const std::string& ctx) {
    ShellRedirect r;
    size_t start = i_;
    while (std::isdigit(static_cast<unsigned char>(Peek()))) ++i_;
    if (i_ > start) r.fd = std::atoi(std::string(s_.substr(start, i_ - start)).c_str());
    if (Peek() == '{') {
      while (Peek() != '}') ++i_;
      ++i_;
    }
    static const char* const kOps[] = {"&>>", "<<<", "<<-", "&>", "<<", "<>",
                                       "<&",  ">>",  ">|",  ">&", "<",  ">"};
    for (const char* op : kOps) {
      if (LookingAt(op)) {
        r.op = op;
        i_ += r.op.size();
        break;
      }
    }
    SkipBlanks();
    if (AtEnd() || (IsMeta(Peek()) && !(Peek() == '<' || Peek() == '>'))) {
      Problem(StrCat("redirection ", r.op, " has no target"));
      return r;
    }
    if (r.op == "<<" || r.op == "<<-") {
      // The delimiter: quoted anywhere means a literal body.
      const size_t word_start = i_;
      RawWord d = ReadWord(depth, ctx, /*heredoc_delimiter=*/true);
      bool quoted = false;
      for (size_t k = word_start; k < i_; ++k) {
        quoted = quoted || s_[k] == '\'' || s_[k] == '"' || s_[k] == '\\';
      }
      r.target = Finish(d, 0, d.chars.size());
      heredocs_.push_back(PendingHeredoc{r.target.text, r.op == "<<-", !quoted, depth, ctx});
      return r;
    }
    const auto words = Expand(ReadWord(depth, ctx));
    if (!words.empty()) r.target = words.front();
    if (words.size() != 1) {
      r.target.known = false;  // bash: "ambiguous redirect"
    }
    return r;
  }

  void ReadHeredocBody(const PendingHeredoc& h) {
    std::string body;
    bool found = false;
    while (!AtEnd()) {
      size_t eol = s_.find('\n', i_);
      if (eol == std::string_view::npos) eol = s_.size();
      std::string_view line = s_.substr(i_, eol - i_);
      i_ = eol < s_.size() ? eol + 1 : eol;
      std::string_view cmp = line;
      if (h.strip_tabs) {
        while (!cmp.empty() && cmp.front() == '\t') cmp.remove_prefix(1);
      }
      if (cmp == h.delimiter) {
        found = true;
        break;
      }
      body.append(line);
      body.push_back('\n');
    }
    if (!found) Problem(StrCat("here-document delimited by \"", h.delimiter, "\" has no end"));
    if (!h.expand) return;
    // An unquoted delimiter: the body gets parameter, command and arithmetic expansion.
    Parser sub(body, out_);
    sub.ScanExpandingText(h.depth + 1, h.context.empty() ? "here-document" : h.context);
  }

  // Text where only $ and ` are special (a here-document body).
  void ScanExpandingText(int depth, const std::string& ctx) {
    RawWord sink;
    while (!AtEnd()) {
      if (Peek() == '\\') {
        i_ = std::min(i_ + 2, s_.size());
      } else if (Peek() == '$') {
        ReadDollar(&sink, depth, ctx, /*in_double_quotes=*/true);
      } else if (Peek() == '`') {
        ReadBackticks(&sink, depth, ctx);
      } else {
        ++i_;
      }
    }
  }

  void ParseSimpleCommand(int depth, const std::string& ctx) {
    const size_t slot = Reserve();
    ShellCommand cmd;
    cmd.depth = depth;
    cmd.context = ctx;
    for (;;) {
      SkipBlanks();
      if (AtEnd()) break;
      const char c = Peek();
      if (c == '\n' || c == ';' || c == '|' || c == ')' || (c == '&' && Peek(1) != '>')) break;
      if (c == '#') {  // at the start of a word: a comment to the end of the line
        SkipComment();
        break;
      }
      if (AtRedirect()) {
        cmd.redirects.push_back(ReadRedirect(depth, ctx));
        continue;
      }
      if (c == '(') {
        // NAME () { ...; }: a function definition.
        size_t j = i_ + 1;
        while (j < s_.size() && (s_[j] == ' ' || s_[j] == '\t')) ++j;
        if (cmd.words.size() == 1 && cmd.assignments.empty() && j < s_.size() && s_[j] == ')') {
          i_ = j + 1;
          const std::string name = cmd.words[0].text;
          out_->commands.erase(out_->commands.begin() + static_cast<long>(slot));
          ParseFunctionBody(name, depth);
          return;
        }
        Problem("unexpected \"(\" in a command");
        ++i_;
        continue;
      }
      const size_t word_start = i_;
      RawWord w = ReadWord(depth, ctx);
      if (cmd.words.empty()) {
        // NAME=value or NAME+=value (unquoted NAME) before the program is an assignment.
        const std::string_view src = s_.substr(word_start, i_ - word_start);
        size_t k = 0;
        while (k < src.size() && (k == 0 ? IsNameStart(src[k]) : IsNameChar(src[k]))) ++k;
        const bool plus = k > 0 && k + 1 < src.size() && src[k] == '+' && src[k + 1] == '=';
        if (k > 0 && (plus || (k < src.size() && src[k] == '='))) {
          const size_t eq = w.chars.find('=');
          ShellWord value = Finish(w, eq + 1, w.chars.size());
          value.glob = false;  // no pathname expansion in assignments
          value.known = true;
          for (size_t q = eq + 1; q < w.flags.size(); ++q) value.known &= !(w.flags[q] & 2);
          if (Peek() == '(' && eq + 1 == w.chars.size()) {
            // NAME=(words): an array.
            ++i_;
            for (;;) {
              SkipBlankLines();
              if (AtEnd() || Peek() == ')') break;
              ReadWordOrSkip(depth, ctx);
            }
            if (Peek() == ')') ++i_;
            value.known = false;
          }
          cmd.assignments.emplace_back(std::string(src.substr(0, k)), std::move(value));
          continue;
        }
      }
      for (auto& word : Expand(w)) cmd.words.push_back(std::move(word));
    }
    if (cmd.words.empty() && cmd.assignments.empty() && cmd.redirects.empty()) {
      out_->commands.erase(out_->commands.begin() + static_cast<long>(slot));
      Problem("an empty command");
      return;
    }
    out_->commands[slot] = std::move(cmd);
  }

  std::vector<ShellWord> Expand(const RawWord& w) {
    std::vector<ShellWord> out;
    if (w.empty()) {
      // "" or '' is an empty argument; an unquoted nothing is no word at all.
      if (!w.source.empty()) out.push_back(ShellWord{"", true, false, w.source});
      return out;
    }
    std::vector<Chars> expanded;
    size_t budget = kMaxBraceWords;
    if (!ExpandBraces(Chars{w.chars, w.flags}, &expanded, &budget)) {
      Problem("brace expansion too large");
      ShellWord unknown = Finish(w, 0, w.chars.size());
      unknown.known = false;
      out.push_back(unknown);
      return out;
    }
    for (const Chars& c : expanded) {
      RawWord r;
      r.chars = c.c;
      r.flags = c.f;
      r.source = w.source;
      out.push_back(Finish(r, 0, r.chars.size()));
    }
    return out;
  }

  // ---- words ----

  // A word where one must be; a metacharacter there is a syntax error, skipped so that the
  // parse always moves on.
  void ReadWordOrSkip(int depth, const std::string& ctx) {
    const size_t before = i_;
    ReadWord(depth, ctx);
    if (i_ == before && !AtEnd()) {
      Problem(StrCat("unexpected \"", std::string(1, Peek()), "\""));
      ++i_;
    }
  }

  RawWord ReadWord(int depth, const std::string& ctx, bool heredoc_delimiter = false) {
    RawWord w;
    const size_t start = i_;
    while (!AtEnd()) {
      const char c = Peek();
      if (c == '\\') {
        if (Peek(1) == '\n') {
          i_ += 2;
          continue;
        }
        if (i_ + 1 >= s_.size()) {
          ++i_;
          break;
        }
        w.Add(Peek(1), true);
        i_ += 2;
        continue;
      }
      if (c == '\'') {
        const size_t end = s_.find('\'', i_ + 1);
        if (end == std::string_view::npos) {
          Problem("an unterminated single quote");
          w.AddUnknown();
          i_ = s_.size();
          break;
        }
        w.AddQuoted(s_.substr(i_ + 1, end - i_ - 1));
        if (end == i_ + 1) w.source = "''";
        i_ = end + 1;
        continue;
      }
      if (c == '"') {
        ++i_;
        if (Peek() == '"') w.source = "\"\"";
        ReadDoubleQuoted(&w, depth, ctx);
        continue;
      }
      if (c == '$' && !heredoc_delimiter) {
        ReadDollar(&w, depth, ctx, /*in_double_quotes=*/false);
        continue;
      }
      if (c == '$' && heredoc_delimiter && (Peek(1) == '\'' || Peek(1) == '"')) {
        ++i_;  // $'EOF' as a delimiter
        continue;
      }
      if (c == '`') {
        ReadBackticks(&w, depth, ctx);
        continue;
      }
      if ((c == '<' || c == '>') && Peek(1) == '(' && w.empty()) {
        // Process substitution: the command's output or input as a file name.
        const std::string sub_ctx = c == '<' ? "<(...)" : ">(...)";
        i_ += 2;
        ParseList({")"}, depth + 1, sub_ctx);
        Expect(")", "process substitution");
        w.AddUnknown();
        continue;
      }
      // Extended patterns such as +(a|b) exist only with `shopt -s extglob`, which a script
      // cannot have on while its own text is parsed (and shopt is never known safe): here a
      // "(" inside a word is a syntax error, reported by the command parser.
      if (IsMeta(c)) break;
      w.Add(c, false);
      ++i_;
    }
    if (w.source.empty() || i_ > start) w.source = std::string(s_.substr(start, i_ - start));
    if (w.empty() && i_ > start) {
      // "" or '' (or $'' ...): an empty argument. Only quotes and expansions to nothing.
      bool has_quotes = false;
      for (size_t k = start; k < i_; ++k) has_quotes |= s_[k] == '\'' || s_[k] == '"';
      if (!has_quotes) w.source.clear();
    }
    return w;
  }

  void ReadDoubleQuoted(RawWord* w, int depth, const std::string& ctx) {
    while (!AtEnd()) {
      const char c = Peek();
      if (c == '"') {
        ++i_;
        return;
      }
      if (c == '\\') {
        const char n = Peek(1);
        if (n == '\n') {
          i_ += 2;
          continue;
        }
        if (n == '$' || n == '`' || n == '"' || n == '\\') {
          w->Add(n, true);
          i_ += 2;
          continue;
        }
        w->Add('\\', true);
        ++i_;
        continue;
      }
      if (c == '$') {
        ReadDollar(w, depth, ctx, /*in_double_quotes=*/true);
        continue;
      }
      if (c == '`') {
        ReadBackticks(w, depth, ctx);
        continue;
      }
      w->Add(c, true);
      ++i_;
    }
    Problem("an unterminated double quote");
    w->AddUnknown();
  }

  void ReadDollar(RawWord* w, int depth, const std::string& ctx, bool in_double_quotes) {
    const char n = Peek(1);
    if (n == '(' && Peek(2) == '(' && ArithmeticAhead(i_ + 3)) {
      i_ += 3;
      ScanArithmetic(depth, ctx);
      w->AddUnknown();
      return;
    }
    if (n == '(') {
      i_ += 2;
      ParseList({")"}, depth + 1, "$(...)");
      Expect(")", "command substitution");
      w->AddUnknown();
      return;
    }
    if (n == '{') {
      i_ += 2;
      ScanBraced(depth, ctx);
      w->AddUnknown();
      return;
    }
    if (n == '\'' && !in_double_quotes) {
      const size_t body = i_ + 2;
      size_t j = body;
      while (j < s_.size() && s_[j] != '\'') j += s_[j] == '\\' ? 2 : 1;
      if (j >= s_.size()) {
        Problem("an unterminated $'...'");
        w->AddUnknown();
        i_ = s_.size();
        return;
      }
      w->AddQuoted(DecodeAnsiC(s_.substr(body, j - body)));
      if (j == body) w->source = "$''";
      i_ = j + 1;
      return;
    }
    if (n == '"' && !in_double_quotes) {
      i_ += 2;
      ReadDoubleQuoted(w, depth, ctx);
      return;
    }
    if (IsNameStart(n)) {
      i_ += 2;
      while (IsNameChar(Peek())) ++i_;
      w->AddUnknown();
      return;
    }
    if (std::isdigit(static_cast<unsigned char>(n)) || n == '@' || n == '*' || n == '#' ||
        n == '?' || n == '$' || n == '!' || n == '-') {
      i_ += 2;
      w->AddUnknown();
      return;
    }
    w->Add('$', in_double_quotes);
    ++i_;
  }

  void ReadBackticks(RawWord* w, int depth, const std::string& ctx) {
    ++i_;
    std::string body;
    bool closed = false;
    while (!AtEnd()) {
      const char c = Peek();
      if (c == '`') {
        ++i_;
        closed = true;
        break;
      }
      if (c == '\\' && (Peek(1) == '\\' || Peek(1) == '`' || Peek(1) == '$')) {
        body.push_back(Peek(1));
        i_ += 2;
        continue;
      }
      body.push_back(c);
      ++i_;
    }
    if (!closed) Problem("an unterminated backquote");
    if (depth + 1 > kMaxDepth) {
      Problem("nested too deeply");
    } else {
      Parser sub(body, out_);
      const std::string stop = sub.ParseList({}, depth + 1, "`...`");
      if (!stop.empty()) Problem("unexpected text in backquotes");
    }
    w->AddUnknown();
  }

  // ${...}: up to the matching }, parsing the substitutions inside (${x:-$(cmd)}).
  void ScanBraced(int depth, const std::string& ctx) {
    int level = 1;
    RawWord sink;
    while (!AtEnd()) {
      const char c = Peek();
      if (c == '\\') {
        i_ = std::min(i_ + 2, s_.size());
      } else if (c == '\'') {
        const size_t end = s_.find('\'', i_ + 1);
        i_ = end == std::string_view::npos ? s_.size() : end + 1;
      } else if (c == '"') {
        ++i_;
        ReadDoubleQuoted(&sink, depth, ctx);
      } else if (c == '$') {
        ReadDollar(&sink, depth, ctx, false);
      } else if (c == '`') {
        ReadBackticks(&sink, depth, ctx);
      } else if (c == '{') {
        ++level;
        ++i_;
      } else if (c == '}') {
        ++i_;
        if (--level == 0) return;
      } else {
        ++i_;
      }
    }
    Problem("an unterminated ${...}");
  }

  // Whether the text after (( or $(( is arithmetic, as bash decides it: the parenthesis that
  // closes the inner "(" must be followed at once by ")". Otherwise it is a subshell inside a
  // command substitution (or two nested subshells): $( (cmd) && cmd2 ).
  bool ArithmeticAhead(size_t j) const {
    int level = 0;
    while (j < s_.size()) {
      const char c = s_[j];
      if (c == '\\') {
        j += 2;
        continue;
      }
      if (c == '\'' || c == '"') {
        const size_t end = s_.find(c, j + 1);
        if (end == std::string_view::npos) return false;
        j = end + 1;
        continue;
      }
      if (c == '(') ++level;
      if (c == ')') {
        if (level == 0) return j + 1 < s_.size() && s_[j + 1] == ')';
        --level;
      }
      ++j;
    }
    return false;
  }

  // After (( or $((: up to the matching )), parsing the substitutions inside.
  void ScanArithmetic(int depth, const std::string& ctx) {
    int level = 0;
    RawWord sink;
    while (!AtEnd()) {
      const char c = Peek();
      if (c == '$' || c == '`') {
        if (c == '$') {
          ReadDollar(&sink, depth, ctx, true);
        } else {
          ReadBackticks(&sink, depth, ctx);
        }
        continue;
      }
      if (c == '(') ++level;
      if (c == ')') {
        if (level == 0 && Peek(1) == ')') {
          i_ += 2;
          return;
        }
        --level;
      }
      ++i_;
    }
    Problem("an unterminated arithmetic expression");
  }

  std::string_view s_;
  size_t i_ = 0;
  ShellAnalysis* out_;
  std::vector<PendingHeredoc> heredocs_;
};

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

}  // namespace

std::string DecodeAnsiC(std::string_view b) {
  std::string out;
  for (size_t i = 0; i < b.size(); ++i) {
    if (b[i] != '\\' || i + 1 >= b.size()) {
      out.push_back(b[i]);
      continue;
    }
    const char e = b[++i];
    switch (e) {
      case 'a':
        out.push_back('\a');
        break;
      case 'b':
        out.push_back('\b');
        break;
      case 'e':
      case 'E':
        out.push_back('\x1b');
        break;
      case 'f':
        out.push_back('\f');
        break;
      case 'n':
        out.push_back('\n');
        break;
      case 'r':
        out.push_back('\r');
        break;
      case 't':
        out.push_back('\t');
        break;
      case 'v':
        out.push_back('\v');
        break;
      case '\\':
      case '\'':
      case '"':
      case '?':
        out.push_back(e);
        break;
      case 'c':
        if (i + 1 < b.size()) out.push_back(static_cast<char>(b[++i] & 0x1F));
        break;
      case 'x': {
        int v = 0, n = 0;
        while (n < 2 && i + 1 < b.size() && HexValue(b[i + 1]) >= 0) {
          v = v * 16 + HexValue(b[++i]);
          ++n;
        }
        if (n == 0) {
          out += "\\x";
        } else {
          out.push_back(static_cast<char>(v));
        }
        break;
      }
      case 'u':
      case 'U': {
        const int max = e == 'u' ? 4 : 8;
        uint32_t v = 0;
        int n = 0;
        while (n < max && i + 1 < b.size() && HexValue(b[i + 1]) >= 0) {
          v = v * 16 + static_cast<uint32_t>(HexValue(b[++i]));
          ++n;
        }
        if (n == 0) {
          out.push_back('\\');
          out.push_back(e);
        } else {
          AppendUtf8(v, &out);
        }
        break;
      }
      default:
        if (e >= '0' && e <= '7') {
          int v = e - '0', n = 1;
          while (n < 3 && i + 1 < b.size() && b[i + 1] >= '0' && b[i + 1] <= '7') {
            v = v * 8 + (b[++i] - '0');
            ++n;
          }
          out.push_back(static_cast<char>(v & 0xFF));
        } else {
          out.push_back('\\');
          out.push_back(e);
        }
    }
  }
  return out;
}

bool ShellRedirect::Writes() const {
  if (op == "<" || op == "<<" || op == "<<-" || op == "<<<" || op == "<&") return false;
  if (op == ">&" || op == "<&") {
    // 2>&1 duplicates a descriptor; >&file (no digit) writes a file.
    bool digits = target.known && !target.text.empty();
    for (char c : target.text)
      digits = digits && (std::isdigit(static_cast<unsigned char>(c)) || c == '-');
    if (digits) return false;
  }
  if (target.known && target.text == "/dev/null") return false;
  return true;
}

std::vector<std::string> ShellCommand::Argv() const {
  std::vector<std::string> out;
  for (const auto& w : words) out.push_back(w.text);
  return out;
}

bool ShellCommand::AllKnown() const {
  for (const auto& w : words) {
    if (!w.known) return false;
  }
  return true;
}

ShellAnalysis AnalyzeShell(std::string_view script) {
  ShellAnalysis a;
  Parser p(script, &a);
  p.ParseAll();
  return a;
}

}  // namespace v4agent::policies
