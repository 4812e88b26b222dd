#include "common/expr.h"

#include <cctype>
#include <cmath>

#include "common/strings.h"

namespace v4agent::expr {

constexpr size_t kMaxText = 64 * 1024;      // characters of one expression
constexpr int kMaxDepth = 64;               // nesting of the parse tree
constexpr size_t kMaxResult = 1024 * 1024;  // bytes of a string a function builds

struct Node {
  enum Kind { kLiteral, kRef, kMember, kIndex, kNot, kBinary, kCall } kind = kLiteral;
  Json value;        // kLiteral
  std::string name;  // kRef: identifier; kMember: property; kBinary: operator; kCall: function
  std::vector<std::unique_ptr<Node>> kids;
  int column = 1;
};

namespace {

struct Token {
  enum Kind { kEnd, kIdent, kNumber, kString, kOp } kind = kEnd;
  std::string text;
  Json value;
  int column = 1;
};

Status ErrorAt(int column, std::string_view message) {
  return InvalidArgumentError(StrCat("column ", column, ": ", message));
}

Result<std::vector<Token>> Lex(std::string_view s) {
  std::vector<Token> out;
  size_t i = 0;
  while (i < s.size()) {
    const char c = s[i];
    const int col = static_cast<int>(i) + 1;
    if (std::isspace(static_cast<unsigned char>(c))) {
      ++i;
      continue;
    }
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      size_t j = i;
      while (j < s.size() &&
             (std::isalnum(static_cast<unsigned char>(s[j])) || s[j] == '_' || s[j] == '-')) {
        ++j;
      }
      out.push_back({Token::kIdent, std::string(s.substr(i, j - i)), {}, col});
      i = j;
      continue;
    }
    if (std::isdigit(static_cast<unsigned char>(c)) ||
        (c == '-' && i + 1 < s.size() && std::isdigit(static_cast<unsigned char>(s[i + 1])) &&
         (out.empty() || out.back().kind == Token::kOp))) {
      size_t j = i + 1;
      bool fraction = false;
      while (j < s.size() &&
             (std::isdigit(static_cast<unsigned char>(s[j])) || (s[j] == '.' && !fraction))) {
        fraction = fraction || s[j] == '.';
        ++j;
      }
      const std::string text(s.substr(i, j - i));
      Json v;
      if (fraction) {
        v = std::strtod(text.c_str(), nullptr);
      } else {
        errno = 0;
        const long long n = std::strtoll(text.c_str(), nullptr, 10);
        if (errno == ERANGE) return ErrorAt(col, StrCat("number out of range: ", text));
        v = static_cast<int64_t>(n);
      }
      out.push_back({Token::kNumber, text, v, col});
      i = j;
      continue;
    }
    if (c == '\'' || c == '"') {
      // Quotes double to escape themselves ('it''s'), as in GitHub Actions.
      std::string text;
      size_t j = i + 1;
      bool closed = false;
      while (j < s.size()) {
        if (s[j] == c) {
          if (j + 1 < s.size() && s[j + 1] == c) {
            text += c;
            j += 2;
            continue;
          }
          closed = true;
          ++j;
          break;
        }
        text += s[j++];
      }
      if (!closed) return ErrorAt(col, "unterminated string");
      out.push_back({Token::kString, text, Json(text), col});
      i = j;
      continue;
    }
    static const char* kOps[] = {"&&", "||", "==", "!=", "<=", ">=", "<", ">", "!",
                                 "(",  ")",  "[",  "]",  ".",  ",",  "?", ":"};
    bool matched = false;
    for (const char* op : kOps) {
      const size_t n = std::char_traits<char>::length(op);
      if (s.compare(i, n, op) == 0) {
        out.push_back({Token::kOp, op, {}, col});
        i += n;
        matched = true;
        break;
      }
    }
    if (!matched) return ErrorAt(col, StrCat("unexpected character '", std::string(1, c), "'"));
  }
  out.push_back({Token::kEnd, "", {}, static_cast<int>(s.size()) + 1});
  return out;
}

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : t_(std::move(tokens)) {}

  Result<std::unique_ptr<Node>> Parse() {
    V4_ASSIGN_OR_RETURN(auto n, Conditional(0));
    if (Peek().kind != Token::kEnd) {
      return ErrorAt(Peek().column, StrCat("unexpected '", Peek().text, "'"));
    }
    return n;
  }

 private:
  const Token& Peek() const { return t_[pos_]; }
  bool IsOp(std::string_view op) const { return Peek().kind == Token::kOp && Peek().text == op; }
  Status Expect(std::string_view op) {
    if (!IsOp(op)) {
      return ErrorAt(Peek().column,
                     StrCat("expected '", op, "'",
                            Peek().kind == Token::kEnd ? std::string(" at the end")
                                                       : StrCat(", found '", Peek().text, "'")));
    }
    ++pos_;
    return Status::Ok();
  }
  Status Deeper(int depth) const {
    if (depth > kMaxDepth) return ErrorAt(Peek().column, "nested too deeply");
    return Status::Ok();
  }
  static std::unique_ptr<Node> Make(Node::Kind kind, std::string name, int column) {
    auto n = std::make_unique<Node>();
    n->kind = kind;
    n->name = std::move(name);
    n->column = column;
    return n;
  }

  // cond ? a : b
  Result<std::unique_ptr<Node>> Conditional(int depth) {
    V4_RETURN_IF_ERROR(Deeper(depth));
    V4_ASSIGN_OR_RETURN(auto c, Binary(0, depth + 1));
    if (!IsOp("?")) return c;
    const int col = Peek().column;
    ++pos_;
    V4_ASSIGN_OR_RETURN(auto a, Conditional(depth + 1));
    V4_RETURN_IF_ERROR(Expect(":"));
    V4_ASSIGN_OR_RETURN(auto b, Conditional(depth + 1));
    auto n = Make(Node::kBinary, "?:", col);
    n->kids.push_back(std::move(c));
    n->kids.push_back(std::move(a));
    n->kids.push_back(std::move(b));
    return n;
  }

  // Precedence levels, loosest first.
  Result<std::unique_ptr<Node>> Binary(int level, int depth) {
    static const std::vector<std::vector<std::string>> kLevels = {
        {"||"}, {"&&"}, {"==", "!="}, {"<", "<=", ">", ">="}};
    if (level == static_cast<int>(kLevels.size())) return Unary(depth);
    V4_RETURN_IF_ERROR(Deeper(depth));
    V4_ASSIGN_OR_RETURN(auto left, Binary(level + 1, depth + 1));
    for (;;) {
      std::string op;
      for (const auto& o : kLevels[level]) {
        if (IsOp(o)) op = o;
      }
      if (op.empty()) return left;
      const int col = Peek().column;
      ++pos_;
      V4_ASSIGN_OR_RETURN(auto right, Binary(level + 1, depth + 1));
      auto n = Make(Node::kBinary, op, col);
      n->kids.push_back(std::move(left));
      n->kids.push_back(std::move(right));
      left = std::move(n);
    }
  }

  Result<std::unique_ptr<Node>> Unary(int depth) {
    V4_RETURN_IF_ERROR(Deeper(depth));
    if (IsOp("!")) {
      const int col = Peek().column;
      ++pos_;
      V4_ASSIGN_OR_RETURN(auto operand, Unary(depth + 1));
      auto n = Make(Node::kNot, "!", col);
      n->kids.push_back(std::move(operand));
      return n;
    }
    return Postfix(depth + 1);
  }

  Result<std::unique_ptr<Node>> Postfix(int depth) {
    V4_ASSIGN_OR_RETURN(auto n, Primary(depth));
    for (int links = 0;; ++links) {
      V4_RETURN_IF_ERROR(Deeper(depth + links / 4));
      if (IsOp(".")) {
        const int col = Peek().column;
        ++pos_;
        if (Peek().kind != Token::kIdent)
          return ErrorAt(Peek().column, "expected a name after '.'");
        auto m = Make(Node::kMember, Peek().text, col);
        ++pos_;
        m->kids.push_back(std::move(n));
        n = std::move(m);
      } else if (IsOp("[")) {
        const int col = Peek().column;
        ++pos_;
        V4_ASSIGN_OR_RETURN(auto index, Conditional(depth + 1));
        V4_RETURN_IF_ERROR(Expect("]"));
        auto m = Make(Node::kIndex, "", col);
        m->kids.push_back(std::move(n));
        m->kids.push_back(std::move(index));
        n = std::move(m);
      } else {
        return n;
      }
    }
  }

  Result<std::unique_ptr<Node>> Primary(int depth) {
    V4_RETURN_IF_ERROR(Deeper(depth));
    const Token tok = Peek();
    switch (tok.kind) {
      case Token::kNumber:
      case Token::kString: {
        ++pos_;
        auto n = Make(Node::kLiteral, "", tok.column);
        n->value = tok.value;
        return n;
      }
      case Token::kIdent: {
        ++pos_;
        if (tok.text == "true" || tok.text == "false" || tok.text == "null") {
          auto n = Make(Node::kLiteral, "", tok.column);
          n->value = tok.text == "null" ? Json() : Json(tok.text == "true");
          return n;
        }
        if (!IsOp("(")) return Make(Node::kRef, tok.text, tok.column);
        bool known = false;
        for (const auto& f : FunctionNames()) known = known || f == tok.text;
        if (!known) {
          return ErrorAt(tok.column, StrCat("unknown function ", tok.text,
                                            "() (known: ", StrJoin(FunctionNames(), ", "), ")"));
        }
        ++pos_;
        auto n = Make(Node::kCall, tok.text, tok.column);
        if (!IsOp(")")) {
          for (;;) {
            V4_ASSIGN_OR_RETURN(auto arg, Conditional(depth + 1));
            n->kids.push_back(std::move(arg));
            if (!IsOp(",")) break;
            ++pos_;
          }
        }
        V4_RETURN_IF_ERROR(Expect(")"));
        return n;
      }
      case Token::kOp:
        if (tok.text == "(") {
          ++pos_;
          V4_ASSIGN_OR_RETURN(auto n, Conditional(depth + 1));
          V4_RETURN_IF_ERROR(Expect(")"));
          return n;
        }
        return ErrorAt(tok.column, StrCat("unexpected '", tok.text, "'"));
      case Token::kEnd:
        return ErrorAt(tok.column, "the expression ends too early");
    }
    return ErrorAt(tok.column, "unexpected token");
  }

  std::vector<Token> t_;
  size_t pos_ = 0;
};

// The static path a node reads: Ref(a).b.c or Ref(a)["b"]; empty when it is not one.
bool StaticPath(const Node& n, std::vector<std::string>* path) {
  switch (n.kind) {
    case Node::kRef:
      path->push_back(n.name);
      return true;
    case Node::kMember:
      if (!StaticPath(*n.kids[0], path)) return false;
      path->push_back(n.name);
      return true;
    case Node::kIndex:
      if (!StaticPath(*n.kids[0], path)) return false;
      if (n.kids[1]->kind == Node::kLiteral && n.kids[1]->value.is_string()) {
        path->push_back(n.kids[1]->value.get<std::string>());
      }
      return true;
    default:
      return false;
  }
}

void CollectRefs(const Node& n, std::vector<std::vector<std::string>>* out) {
  std::vector<std::string> path;
  if (n.kind != Node::kLiteral && StaticPath(n, &path)) {
    out->push_back(std::move(path));
    // A computed index still evaluates its own references.
    if (n.kind == Node::kIndex) CollectRefs(*n.kids[1], out);
    return;
  }
  for (const auto& k : n.kids) CollectRefs(*k, out);
}

const char* TypeName(const Json& v) {
  if (v.is_null()) return "null";
  if (v.is_boolean()) return "boolean";
  if (v.is_number()) return "number";
  if (v.is_string()) return "string";
  if (v.is_array()) return "array";
  return "object";
}

Result<Json> Eval(const Node& n, const Json& ctx, std::string_view status);

Result<std::string> StringArg(const Node& call, const Json& v, int i) {
  if (!v.is_string()) {
    return ErrorAt(call.column, StrCat(call.name, "(): argument ", i + 1, " must be a string, not ",
                                       TypeName(v)));
  }
  return v.get<std::string>();
}

Result<Json> CallFunction(const Node& n, const std::vector<Json>& a, std::string_view status) {
  auto arity = [&](size_t lo, size_t hi) -> Status {
    if (a.size() < lo || a.size() > hi) {
      return ErrorAt(n.column,
                     StrCat(n.name, "() takes ", lo == hi ? StrCat(lo) : StrCat(lo, "-", hi),
                            " arguments, not ", a.size()));
    }
    return Status::Ok();
  };
  const std::string& f = n.name;
  if (f == "success" || f == "failure" || f == "always" || f == "cancelled") {
    V4_RETURN_IF_ERROR(arity(0, 0));
    if (f == "always") return Json(true);
    return Json(status == f);
  }
  if (f == "contains") {
    V4_RETURN_IF_ERROR(arity(2, 2));
    if (a[0].is_array()) {
      for (const Json& e : a[0]) {
        if (e == a[1]) return Json(true);
      }
      return Json(false);
    }
    V4_ASSIGN_OR_RETURN(std::string hay, StringArg(n, a[0], 0));
    return Json(hay.find(ToText(a[1])) != std::string::npos);
  }
  if (f == "startsWith" || f == "endsWith") {
    V4_RETURN_IF_ERROR(arity(2, 2));
    V4_ASSIGN_OR_RETURN(std::string s, StringArg(n, a[0], 0));
    V4_ASSIGN_OR_RETURN(std::string p, StringArg(n, a[1], 1));
    return Json(f == "startsWith" ? StartsWith(s, p) : EndsWith(s, p));
  }
  if (f == "length") {
    V4_RETURN_IF_ERROR(arity(1, 1));
    if (a[0].is_string()) return Json(static_cast<int64_t>(a[0].get<std::string>().size()));
    if (a[0].is_array() || a[0].is_object()) return Json(static_cast<int64_t>(a[0].size()));
    if (a[0].is_null()) return Json(0);
    return ErrorAt(n.column, StrCat("length() of a ", TypeName(a[0])));
  }
  if (f == "join") {
    V4_RETURN_IF_ERROR(arity(1, 2));
    std::string sep = ",";
    if (a.size() == 2) {
      V4_ASSIGN_OR_RETURN(sep, StringArg(n, a[1], 1));
    }
    if (!a[0].is_array()) return Json(ToText(a[0]));
    std::string out;
    for (size_t i = 0; i < a[0].size(); ++i) {
      if (i) out += sep;
      out += ToText(a[0][i]);
      if (out.size() > kMaxResult) return ErrorAt(n.column, "join(): the result is too long");
    }
    return Json(out);
  }
  if (f == "lines") {
    V4_RETURN_IF_ERROR(arity(1, 1));
    if (a[0].is_null()) return Json::array();
    V4_ASSIGN_OR_RETURN(std::string s, StringArg(n, a[0], 0));
    Json out = Json::array();
    for (std::string line : StrSplit(s, '\n')) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (!StripWhitespace(line).empty()) out.push_back(line);
    }
    return out;
  }
  if (f == "trim") {
    V4_RETURN_IF_ERROR(arity(1, 1));
    V4_ASSIGN_OR_RETURN(std::string s, StringArg(n, a[0], 0));
    return Json(std::string(StripWhitespace(s)));
  }
  if (f == "toJSON") {
    V4_RETURN_IF_ERROR(arity(1, 1));
    return Json(DumpJson(a[0]));
  }
  if (f == "fromJSON") {
    V4_RETURN_IF_ERROR(arity(1, 1));
    V4_ASSIGN_OR_RETURN(std::string s, StringArg(n, a[0], 0));
    auto j = ParseJson(s, "fromJSON()");
    if (!j.ok()) return ErrorAt(n.column, j.status().message());
    return *j;
  }
  if (f == "format") {
    if (a.empty()) return ErrorAt(n.column, "format() needs a format string");
    V4_ASSIGN_OR_RETURN(std::string fmt, StringArg(n, a[0], 0));
    std::string out;
    for (size_t i = 0; i < fmt.size(); ++i) {
      if (fmt[i] == '{' && i + 1 < fmt.size() && fmt[i + 1] == '{') {
        out += '{';
        ++i;
      } else if (fmt[i] == '}' && i + 1 < fmt.size() && fmt[i + 1] == '}') {
        out += '}';
        ++i;
      } else if (fmt[i] == '{') {
        const size_t end = fmt.find('}', i);
        if (end == std::string::npos) return ErrorAt(n.column, "format(): unclosed '{'");
        const std::string num = fmt.substr(i + 1, end - i - 1);
        if (num.empty() || num.size() > 3 ||
            num.find_first_not_of("0123456789") != std::string::npos) {
          return ErrorAt(n.column, StrCat("format(): '{", num, "}' is not an argument index"));
        }
        const size_t k = std::stoul(num) + 1;
        if (k >= a.size()) return ErrorAt(n.column, StrCat("format(): no argument {", num, "}"));
        out += ToText(a[k]);
        i = end;
      } else {
        out += fmt[i];
      }
      if (out.size() > kMaxResult) return ErrorAt(n.column, "format(): the result is too long");
    }
    return Json(out);
  }
  return ErrorAt(n.column, StrCat("unknown function ", f, "()"));
}

Result<Json> Compare(const Node& n, const Json& l, const Json& r) {
  const std::string& op = n.name;
  if (op == "==") return Json(l == r);
  if (op == "!=") return Json(l != r);
  int c = 0;
  if (l.is_number() && r.is_number()) {
    const double a = l.get<double>(), b = r.get<double>();
    c = a < b ? -1 : a > b ? 1 : 0;
  } else if (l.is_string() && r.is_string()) {
    c = l.get<std::string>().compare(r.get<std::string>());
  } else {
    return ErrorAt(n.column, StrCat("cannot compare ", TypeName(l), " ", op, " ", TypeName(r)));
  }
  if (op == "<") return Json(c < 0);
  if (op == "<=") return Json(c <= 0);
  if (op == ">") return Json(c > 0);
  return Json(c >= 0);
}

Result<Json> Eval(const Node& n, const Json& ctx, std::string_view status) {
  switch (n.kind) {
    case Node::kLiteral:
      return n.value;
    case Node::kRef: {
      if (ctx.is_object()) {
        auto it = ctx.find(n.name);
        if (it != ctx.end()) return *it;
      }
      return Json();
    }
    case Node::kMember: {
      V4_ASSIGN_OR_RETURN(Json obj, Eval(*n.kids[0], ctx, status));
      if (obj.is_object()) {
        auto it = obj.find(n.name);
        if (it != obj.end()) return *it;
      }
      return Json();
    }
    case Node::kIndex: {
      V4_ASSIGN_OR_RETURN(Json obj, Eval(*n.kids[0], ctx, status));
      V4_ASSIGN_OR_RETURN(Json key, Eval(*n.kids[1], ctx, status));
      if (obj.is_object() && key.is_string()) {
        auto it = obj.find(key.get<std::string>());
        return it != obj.end() ? *it : Json();
      }
      if (obj.is_array() && key.is_number_integer()) {
        int64_t i = key.get<int64_t>();
        if (i < 0) i += static_cast<int64_t>(obj.size());
        if (i >= 0 && i < static_cast<int64_t>(obj.size())) return obj[static_cast<size_t>(i)];
      }
      return Json();
    }
    case Node::kNot: {
      V4_ASSIGN_OR_RETURN(Json v, Eval(*n.kids[0], ctx, status));
      return Json(!Truthy(v));
    }
    case Node::kBinary: {
      V4_ASSIGN_OR_RETURN(Json l, Eval(*n.kids[0], ctx, status));
      if (n.name == "?:") return Eval(*n.kids[Truthy(l) ? 1 : 2], ctx, status);
      if (n.name == "&&") return Truthy(l) ? Eval(*n.kids[1], ctx, status) : Result<Json>(l);
      if (n.name == "||") return Truthy(l) ? Result<Json>(l) : Eval(*n.kids[1], ctx, status);
      V4_ASSIGN_OR_RETURN(Json r, Eval(*n.kids[1], ctx, status));
      return Compare(n, l, r);
    }
    case Node::kCall: {
      std::vector<Json> args;
      for (const auto& k : n.kids) {
        V4_ASSIGN_OR_RETURN(Json v, Eval(*k, ctx, status));
        args.push_back(std::move(v));
      }
      return CallFunction(n, args, status);
    }
  }
  return Json();
}

}  // namespace

const std::vector<std::string>& FunctionNames() {
  static const std::vector<std::string> kNames = {
      "contains", "startsWith", "endsWith", "length",  "join",    "lines",  "trim",
      "format",   "toJSON",     "fromJSON", "success", "failure", "always", "cancelled"};
  return kNames;
}

bool Truthy(const Json& v) {
  if (v.is_null()) return false;
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_number()) return v.get<double>() != 0;
  if (v.is_string()) return !v.get<std::string>().empty();
  if (v.is_array()) return !v.empty();
  return true;
}

std::string ToText(const Json& v) {
  if (v.is_null()) return "";
  if (v.is_string()) return v.get<std::string>();
  return DumpJson(v);
}

Expression::Expression(Expression&&) noexcept = default;
Expression& Expression::operator=(Expression&&) noexcept = default;
Expression::~Expression() = default;

Result<Expression> Expression::Parse(std::string_view text) {
  if (text.size() > kMaxText) {
    return InvalidArgumentError(StrCat("the expression is longer than ", kMaxText, " characters"));
  }
  V4_ASSIGN_OR_RETURN(std::vector<Token> tokens, Lex(text));
  Parser p(std::move(tokens));
  V4_ASSIGN_OR_RETURN(std::unique_ptr<Node> root, p.Parse());
  Expression e;
  e.text_ = std::string(text);
  CollectRefs(*root, &e.refs_);
  e.root_ = std::move(root);
  return e;
}

Result<Json> Expression::Evaluate(const Json& context, std::string_view status) const {
  return Eval(*root_, context, status);
}

Result<Template> Template::Parse(std::string_view text) {
  Template t;
  size_t i = 0;
  while (i < text.size()) {
    const size_t open = text.find("${{", i);
    if (open == std::string_view::npos) {
      t.parts_.push_back({false, std::string(text.substr(i)), nullptr});
      break;
    }
    if (open > i) t.parts_.push_back({false, std::string(text.substr(i, open - i)), nullptr});
    const size_t close = text.find("}}", open + 3);
    if (close == std::string_view::npos) {
      return InvalidArgumentError(StrCat("offset ", open, ": '${{' without its '}}'"));
    }
    const std::string_view body = text.substr(open + 3, close - open - 3);
    auto e = Expression::Parse(body);
    if (!e.ok()) {
      return InvalidArgumentError(
          StrCat("in ${{", body, "}} at offset ", open, ": ", e.status().message()));
    }
    t.parts_.push_back(
        {true, std::string(body), std::make_shared<Expression>(std::move(e).value())});
    i = close + 2;
  }
  return t;
}

bool Template::has_expressions() const {
  for (const auto& p : parts_) {
    if (p.is_expr) return true;
  }
  return false;
}

std::vector<const Expression*> Template::expressions() const {
  std::vector<const Expression*> out;
  for (const auto& p : parts_) {
    if (p.is_expr) out.push_back(p.expr.get());
  }
  return out;
}

Result<Json> Template::Evaluate(const Json& context, std::string_view status) const {
  if (is_single()) return parts_[0].expr->Evaluate(context, status);
  V4_ASSIGN_OR_RETURN(std::string s, Render(context, status));
  return Json(std::move(s));
}

Result<std::string> Template::Render(const Json& context, std::string_view status) const {
  std::string out;
  for (const auto& p : parts_) {
    if (!p.is_expr) {
      out += p.text;
      continue;
    }
    auto v = p.expr->Evaluate(context, status);
    if (!v.ok()) {
      return InvalidArgumentError(StrCat("${{", p.text, "}}: ", v.status().message()));
    }
    out += ToText(*v);
    if (out.size() > kMaxResult * 16) return InvalidArgumentError("the rendered text is too long");
  }
  return out;
}

namespace {

// The quoting a shell is in after reading `text` from state `q` (0 none, 1 '...', 2 "...").
int QuoteStateAfter(std::string_view text, int q) {
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (q == 1) {
      if (c == '\'') q = 0;
    } else if (c == '\\') {
      ++i;
    } else if (q == 2) {
      if (c == '"') q = 0;
    } else if (c == '\'') {
      q = 1;
    } else if (c == '"') {
      q = 2;
    }
  }
  return q;
}

std::string DoubleQuoted(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\' || c == '$' || c == '`') out += '\\';
    out += c;
  }
  return out;
}

}  // namespace

Result<std::string> Template::RenderForShell(const Json& context, std::string_view status,
                                             const std::string& prefix,
                                             std::vector<std::string>* env,
                                             std::string* inlined) const {
  std::string out;
  int n = 0, q = 0;
  for (const auto& p : parts_) {
    if (!p.is_expr) {
      out += p.text;
      if (inlined) *inlined += p.text;
      q = QuoteStateAfter(p.text, q);
      continue;
    }
    auto v = p.expr->Evaluate(context, status);
    if (!v.ok()) {
      return InvalidArgumentError(StrCat("${{", p.text, "}}: ", v.status().message()));
    }
    const std::string name = StrCat(prefix, ++n);
    const std::string value = ToText(*v);
    env->push_back(name + "=" + value);
    // Always one word, whatever the quoting around it: no splitting, no globbing.
    if (q == 0) {
      out += StrCat("\"${", name, "}\"");
      if (inlined) *inlined += ShellQuote(value);
    } else if (q == 2) {
      out += StrCat("${", name, "}");
      if (inlined) *inlined += DoubleQuoted(value);
    } else {
      out += StrCat("'\"${", name, "}\"'");
      if (inlined) *inlined += StrCat("'", ShellQuote(value), "'");
    }
  }
  return out;
}

}  // namespace v4agent::expr
