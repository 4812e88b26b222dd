#include "dsml/constraint.h"

#include "common/strings.h"
#include "dsml/markers.h"

namespace v4agent::dsml {
namespace {

enum Phase : uint8_t {
  kNone = 0,
  kReasoning = 1,    // free_[0]
  kContent = 2,      // free_[1]
  kStringValue = 3,  // free_[2]
  kChoice = 4,
  kJson = 5,
  kExpectEnd = 6,
  kDone = 7,
};

enum Action : int {
  kActOpenInvoke = 1,
  kActToolName,
  kActParamOpen,
  kActParamName,
  kActInvokeClose,
  kActBlockClose,
  kActParamClose,
  kMarkThinkEnd,
  kMarkBlockOpen,
  kMarkForbid,
  kMarkEos,
};

enum JsonKind : uint8_t { kJInt = 1, kJNum, kJBool, kJNull, kJAny, kJArray, kJObject };

// Generic JSON states.
enum JState : uint8_t {
  kJV = 0,  // expect a value
  kJS,      // in a string
  kJSEsc,   // after a backslash in a string
  kJN,      // in a number (jcount digits so far)
  kJL,      // in true/false/null (jflags: which, jcount: position)
  kJA,      // after a value inside a container
  kJK,      // expect a key (or '}' right after '{')
  kJKS,     // in a key string
  kJC,      // expect ':'
  kJD,      // the value is complete: only '<' (closing tag) may follow
  kJNeg,    // after '-'
  kJFrac,   // after '.' / in the fraction (jcount digits)
};

constexpr uint8_t kEmptyFlag = 0x80;  // jflags: the container was just opened
constexpr uint8_t kZeroFlag = 0x20;   // jflags: the number so far is "0" (no more digits)

const char* const kLiterals[] = {"", "true", "false", "null"};

uint8_t KindFor(const OrderedJson& schema) {
  if (!schema.is_object() || !schema.contains("type") || !schema["type"].is_string()) return kJAny;
  const std::string t = schema["type"];
  if (t == "integer") return kJInt;
  if (t == "number") return kJNum;
  if (t == "boolean") return kJBool;
  if (t == "null") return kJNull;
  if (t == "array") return kJArray;
  if (t == "object") return kJObject;
  return kJAny;
}

std::vector<int> Failure(const std::string& p) {
  std::vector<int> f(p.size() + 1, 0);
  for (size_t i = 1, k = 0; i < p.size(); ++i) {
    while (k > 0 && p[i] != p[k]) k = static_cast<size_t>(f[k]);
    if (p[i] == p[k]) ++k;
    f[i + 1] = static_cast<int>(k);
  }
  return f;
}

bool IsDigit(uint8_t b) { return b >= '0' && b <= '9'; }

}  // namespace

Result<DsmlGrammar> DsmlGrammar::Create(const OrderedJson& tools, const ConstraintOptions& o) {
  DsmlGrammar g;
  g.options_ = o;
  if (!tools.is_array() || tools.empty()) {
    if (o.require_tool_call) return InvalidArgumentError("constraint: no tools to call");
  }
  const OrderedJson tool_list = tools.is_array() ? tools : OrderedJson::array();
  for (const auto& t : tool_list) {
    const OrderedJson& f = t.contains("function") ? t["function"] : t;
    if (!f.contains("name") || !f["name"].is_string()) {
      return InvalidArgumentError("constraint: a tool without a name");
    }
    ToolInfo info;
    info.name = f["name"];
    if (info.name.empty() || info.name.find('"') != std::string::npos) {
      return InvalidArgumentError(
          StrCat("constraint: tool name \"", info.name, "\" cannot be written in a DSML tag"));
    }
    const OrderedJson params = f.value("parameters", OrderedJson::object());
    std::vector<std::string> required;
    for (const auto& r : params.value("required", OrderedJson::array())) {
      if (r.is_string()) required.push_back(r);
    }
    const OrderedJson props = params.value("properties", OrderedJson::object());
    for (const auto& [name, schema] : props.items()) {
      if (name.empty() || name.find('"') != std::string::npos) {
        return InvalidArgumentError(StrCat("constraint: parameter \"", name, "\" of ", info.name,
                                           " cannot be written in a DSML tag"));
      }
      Param p;
      p.name = name;
      p.json_kind = KindFor(schema);
      p.is_string = schema.is_object() && schema.value("type", std::string()) == "string";
      p.required = std::find(required.begin(), required.end(), name) != required.end();
      info.params.push_back(p);
    }
    if (info.params.size() > 63) {
      return InvalidArgumentError(StrCat("constraint: ", info.name, " has too many parameters"));
    }
    g.tools_.push_back(std::move(info));
  }
  if (g.tools_.size() > 63) return InvalidArgumentError("constraint: more than 63 tools");
  const std::string invoke = StrCat(kInvokeOpen, " name=\"");
  auto add = [&](Choice c) {
    g.choices_.push_back(std::move(c));
    return static_cast<uint16_t>(g.choices_.size() - 1);
  };
  g.invoke_choice_ = add(Choice{{{invoke, kActOpenInvoke, 0}}});
  Choice names;
  for (size_t t = 0; t < g.tools_.size(); ++t) {
    names.alts.push_back({g.tools_[t].name + "\">\n", kActToolName, static_cast<int>(t)});
  }
  g.tool_choice_ = add(names);
  g.after_invoke_choice_ =
      add(Choice{{{invoke, kActOpenInvoke, 0}, {std::string(kToolCallsClose), kActBlockClose, 0}}});
  g.close_param_choice_ = add(Choice{{{StrCat(kParameterClose, "\n"), kActParamClose, 0}}});
  for (auto& t : g.tools_) {
    t.params_choice = add(Choice{{{StrCat(kParameterOpen, " name=\""), kActParamOpen, 0},
                                  {StrCat(kInvokeClose, "\n"), kActInvokeClose, 0}}});
    Choice pn;
    for (size_t i = 0; i < t.params.size(); ++i) {
      pn.alts.push_back({StrCat(t.params[i].name, "\" string=\"",
                                t.params[i].is_string ? "true" : "false", "\">"),
                         kActParamName, static_cast<int>(i)});
    }
    t.names_choice = add(pn);
  }
  auto marker = [](std::string text, int action, int commit) {
    Marker m{std::move(text), action, commit, {}};
    if (m.commit == 0) m.commit = static_cast<int>(m.text.size());
    m.fail = Failure(m.text);
    return m;
  };
  const std::string dsml_open(kDsmlOpenTag);
  const std::string eos(kEos);
  g.free_[0].markers = {marker(std::string(kThinkEnd), kMarkThinkEnd, 0),
                        marker(dsml_open, kMarkForbid, 0), marker(eos, kMarkForbid, 0)};
  g.free_[1].markers = {
      marker(StrCat(kToolCallsOpen, "\n"), kMarkBlockOpen, static_cast<int>(dsml_open.size())),
      marker(eos, o.require_tool_call ? kMarkForbid : kMarkEos, 0)};
  g.free_[2].markers = {marker(StrCat(kParameterClose, "\n"), kActParamClose,
                               static_cast<int>(std::string(kDsmlCloseTag).size())),
                        marker(eos, kMarkForbid, 0)};
  return g;
}

DsmlGrammar::State DsmlGrammar::Start() const {
  State s;
  if (options_.mode == ThinkingMode::kThinking) {
    EnterFree(s, kReasoning, options_.reasoning_budget);
  } else {
    EnterFree(s, kContent, options_.content_budget);
  }
  return s;
}

bool DsmlGrammar::ExpectsEnd(const State& s) const { return s.phase == kExpectEnd; }
bool DsmlGrammar::Done(const State& s) const { return s.phase == kDone; }

bool DsmlGrammar::InPlainText(const State& s) const {
  if (s.phase != kReasoning && s.phase != kContent && s.phase != kStringValue) return false;
  if (s.budget <= 0) return false;
  for (uint8_t p : s.progress) {
    if (p != 0) return false;
  }
  return true;
}

void DsmlGrammar::EnterChoice(State& s, int choice, uint64_t alive) const {
  s.phase = kChoice;
  s.choice = static_cast<uint16_t>(choice);
  s.pos = 0;
  s.alive = alive;
}

void DsmlGrammar::EnterFree(State& s, int phase, int budget) const {
  s.phase = static_cast<uint8_t>(phase);
  s.progress = {0, 0, 0};
  s.budget = budget;
}

void DsmlGrammar::EnterParams(State& s) const {
  const ToolInfo& t = tools_[static_cast<size_t>(s.tool)];
  bool unused = false, required_left = false;
  for (size_t i = 0; i < t.params.size(); ++i) {
    if (s.used & (1ull << i)) continue;
    unused = true;
    required_left = required_left || t.params[i].required;
  }
  EnterChoice(s, t.params_choice, (unused ? 1u : 0u) | (required_left ? 0u : 2u));
}

void DsmlGrammar::Act(State& s, int action, int arg) const {
  switch (action) {
    case kActOpenInvoke: {
      const uint64_t all = tools_.size() >= 64 ? ~0ull : (1ull << tools_.size()) - 1;
      EnterChoice(s, tool_choice_, all);
      break;
    }
    case kActToolName:
      s.tool = static_cast<int16_t>(arg);
      s.used = 0;
      EnterParams(s);
      break;
    case kActParamOpen: {
      const ToolInfo& t = tools_[static_cast<size_t>(s.tool)];
      uint64_t alive = 0;
      for (size_t i = 0; i < t.params.size(); ++i) {
        if (!(s.used & (1ull << i))) alive |= 1ull << i;
      }
      EnterChoice(s, t.names_choice, alive);
      break;
    }
    case kActParamName: {
      const Param& p = tools_[static_cast<size_t>(s.tool)].params[static_cast<size_t>(arg)];
      s.used |= 1ull << arg;
      if (p.is_string) {
        EnterFree(s, kStringValue, options_.string_budget);
      } else {
        s.phase = kJson;
        s.json_kind = p.json_kind;
        s.jdepth = 0;
        s.jstack = 0;
        s.jstate = kJV;
        s.jflags = 0;
        s.jcount = 0;
        s.budget = options_.json_budget;
      }
      break;
    }
    case kActInvokeClose:
      ++s.calls;
      EnterChoice(s, after_invoke_choice_, (s.calls < options_.max_calls ? 1u : 0u) | 2u);
      break;
    case kActBlockClose:
      s.phase = kExpectEnd;
      break;
    case kActParamClose:
      EnterParams(s);
      break;
    case kMarkThinkEnd:
      EnterFree(s, kContent, options_.content_budget);
      break;
    case kMarkBlockOpen:
      s.calls = 0;
      EnterChoice(s, invoke_choice_, 1);
      break;
    case kMarkEos:
      s.phase = kDone;
      break;
    default:
      break;
  }
}

bool DsmlGrammar::AdvanceChoice(State& s, uint8_t b) const {
  const Choice& c = choices_[s.choice];
  uint64_t alive = 0;
  int completed = -1;
  for (size_t i = 0; i < c.alts.size(); ++i) {
    if (!(s.alive & (1ull << i))) continue;
    const std::string& t = c.alts[i].text;
    if (s.pos < t.size() && static_cast<uint8_t>(t[s.pos]) == b) {
      alive |= 1ull << i;
      if (s.pos + 1u == t.size()) completed = static_cast<int>(i);
    }
  }
  if (!alive) return false;
  s.alive = alive;
  ++s.pos;
  if (completed >= 0)
    Act(s, c.alts[static_cast<size_t>(completed)].action,
        c.alts[static_cast<size_t>(completed)].arg);
  return true;
}

bool DsmlGrammar::AdvanceFree(State& s, uint8_t b) const {
  const FreeSpec& spec = free_[s.phase - 1];
  if (s.budget <= 0) {
    // Spent: only the closing marker may follow.
    const Marker& m = spec.markers[0];
    if (static_cast<uint8_t>(m.text[s.progress[0]]) != b) return false;
    if (++s.progress[0] == static_cast<uint8_t>(m.text.size())) Act(s, m.action, 0);
    return true;
  }
  std::array<uint8_t, 3> next{};
  for (size_t i = 0; i < spec.markers.size(); ++i) {
    const Marker& m = spec.markers[i];
    int p = s.progress[i];
    if (p >= m.commit && static_cast<uint8_t>(m.text[static_cast<size_t>(p)]) != b) return false;
    while (p > 0 && static_cast<uint8_t>(m.text[static_cast<size_t>(p)]) != b) p = m.fail[p];
    if (static_cast<uint8_t>(m.text[static_cast<size_t>(p)]) == b) ++p;
    if (p == static_cast<int>(m.text.size())) {
      if (m.action == kMarkForbid) return false;
      Act(s, m.action, 0);
      return true;
    }
    next[i] = static_cast<uint8_t>(p);
  }
  s.progress = next;
  --s.budget;
  return true;
}

bool DsmlGrammar::AdvanceJson(State& s, uint8_t b) const {
  // The budget only limits optional growth (more digits, items, strings, nesting); bytes
  // that finish what is open are always allowed, so a value can always be completed.
  const int reserve = s.jdepth + 2;
  const bool low = s.budget <= reserve + 8;
  auto value_done = [&]() {
    s.jstate = s.jdepth == 0 ? kJD : kJA;
    s.jflags &= static_cast<uint8_t>(~kEmptyFlag);
  };
  auto finish_to_close = [&]() {
    // '<' starts "</｜DSML｜parameter>\n".
    EnterChoice(s, close_param_choice_, 1);
    s.pos = 1;
  };
  --s.budget;
  switch (s.json_kind) {
    case kJBool:
    case kJNull: {
      if (s.jstate == kJD) {
        if (b != '<') return false;
        finish_to_close();
        return true;
      }
      if (s.jcount == 0 && s.jflags == 0) {
        if (s.json_kind == kJNull) {
          s.jflags = 3;
        } else if (b == 't') {
          s.jflags = 1;
        } else if (b == 'f') {
          s.jflags = 2;
        } else {
          return false;
        }
      }
      const char* lit = kLiterals[s.jflags];
      if (static_cast<uint8_t>(lit[s.jcount]) != b) return false;
      if (lit[++s.jcount] == '\0') s.jstate = kJD;
      return true;
    }
    case kJInt:
    case kJNum: {
      const bool num = s.json_kind == kJNum;
      switch (s.jstate) {
        case kJV:
          if (b == '-') {
            s.jstate = kJNeg;
            return true;
          }
          [[fallthrough]];
        case kJNeg:
          if (!IsDigit(b)) return false;
          s.jstate = kJN;
          s.jcount = 1;
          s.jflags = b == '0' ? kZeroFlag : 0;  // JSON numbers have no leading zeros
          return true;
        case kJN:
          if (b == '<') {
            finish_to_close();
            return true;
          }
          if (num && b == '.') {
            s.jstate = kJFrac;
            s.jcount = 0;
            return true;
          }
          if (!IsDigit(b) || s.jcount >= 12 || (s.jflags & kZeroFlag)) return false;
          ++s.jcount;
          return true;
        case kJFrac:
          if (b == '<' && s.jcount > 0) {
            finish_to_close();
            return true;
          }
          if (!IsDigit(b) || s.jcount >= 6) return false;
          ++s.jcount;
          return true;
        default:
          return false;
      }
    }
    default:
      break;
  }
  // Generic JSON (arrays, objects, anything): compact, depth <= 3, bounded strings.
  auto open = [&](bool object) {
    if (s.jdepth >= 3 || (low && s.jdepth > 0)) return false;
    if (object) {
      s.jstack = static_cast<uint8_t>(s.jstack | (1u << s.jdepth));
    } else {
      s.jstack = static_cast<uint8_t>(s.jstack & ~(1u << s.jdepth));
    }
    ++s.jdepth;
    s.jstate = object ? kJK : kJV;
    s.jflags |= kEmptyFlag;
    return true;
  };
  auto in_object = [&]() { return s.jdepth > 0 && (s.jstack & (1u << (s.jdepth - 1))); };
  auto close = [&](uint8_t c) {
    if (s.jdepth == 0) return false;
    if ((c == '}') != in_object()) return false;
    --s.jdepth;
    value_done();
    return true;
  };
  if (s.jdepth == 0 && s.jstate == kJV) {
    // The schema's container type decides the top level.
    if (s.json_kind == kJArray && b != '[') return false;
    if (s.json_kind == kJObject && b != '{') return false;
  }
  switch (s.jstate) {
    case kJV:
      if (b == ']' && (s.jflags & kEmptyFlag) && !in_object()) return close(b);
      if (b == '{') return open(true);
      if (b == '[') return open(false);
      if (b == '"') {
        if (low) return false;
        s.jstate = kJS;
        s.jcount = 0;
        return true;
      }
      if (b == '-' && !low) {
        s.jstate = kJNeg;
        return true;
      }
      if (IsDigit(b)) {
        s.jstate = kJN;
        s.jcount = 1;
        s.jflags = static_cast<uint8_t>((s.jflags & ~kZeroFlag) | (b == '0' ? kZeroFlag : 0));
        return true;
      }
      if ((b == 't' || b == 'f' || b == 'n') && !low) {
        s.jstate = kJL;
        s.jflags = static_cast<uint8_t>((s.jflags & kEmptyFlag) | (b == 't'   ? 1
                                                                   : b == 'f' ? 2
                                                                              : 3));
        s.jcount = 1;
        return true;
      }
      return false;
    case kJNeg:
      if (!IsDigit(b)) return false;
      s.jstate = kJN;
      s.jcount = 1;
      s.jflags = static_cast<uint8_t>((s.jflags & ~kZeroFlag) | (b == '0' ? kZeroFlag : 0));
      return true;
    case kJN:
      if (IsDigit(b) && s.jcount < 10 && !low && !(s.jflags & kZeroFlag)) {
        ++s.jcount;
        return true;
      }
      value_done();
      ++s.budget;
      return AdvanceJson(s, b);
    case kJL: {
      const char* lit = kLiterals[s.jflags & 3];
      if (static_cast<uint8_t>(lit[s.jcount]) != b) return false;
      if (lit[++s.jcount] == '\0') value_done();
      return true;
    }
    case kJS:
    case kJKS:
      if (b == '"') {
        if (s.jstate == kJKS) {
          s.jstate = kJC;
        } else {
          value_done();
        }
        return true;
      }
      if (low) return false;  // only the closing quote
      if (b == '\\') {
        if (s.jstate == kJKS) return false;  // keys stay plain
        s.jstate = kJSEsc;
        return true;
      }
      // ASCII only: the value must stay valid JSON text whatever bytes a token carries.
      if (b < 0x20 || b >= 0x7f || b == '<' || s.jcount >= 40) return false;
      ++s.jcount;
      return true;
    case kJSEsc:
      if (b != '"' && b != '\\' && b != '/' && b != 'b' && b != 'f' && b != 'n' && b != 'r' &&
          b != 't') {
        return false;
      }
      s.jstate = kJS;
      return true;
    case kJA:
      if (b == ',') {
        if (low) return false;
        s.jstate = in_object() ? kJK : kJV;
        s.jflags &= static_cast<uint8_t>(~kEmptyFlag);
        return true;
      }
      if (b == ']' || b == '}') return close(b);
      return false;
    case kJK:
      if (b == '}' && (s.jflags & kEmptyFlag)) return close(b);
      // After a comma a key must follow; the comma was only allowed with room for one.
      if (b == '"' && (!low || !(s.jflags & kEmptyFlag))) {
        s.jstate = kJKS;
        s.jcount = 0;
        return true;
      }
      return false;
    case kJC:
      if (b != ':') return false;
      s.jstate = kJV;
      s.jflags &= static_cast<uint8_t>(~kEmptyFlag);
      return true;
    case kJD:
      if (b != '<') return false;
      finish_to_close();
      return true;
    default:
      return false;
  }
}

bool DsmlGrammar::Advance(State& s, uint8_t b) const {
  switch (s.phase) {
    case kReasoning:
    case kContent:
    case kStringValue:
      return AdvanceFree(s, b);
    case kChoice:
      return AdvanceChoice(s, b);
    case kJson:
      return AdvanceJson(s, b);
    default:
      return false;  // end of turn: only the EOS token, handled by the caller
  }
}

}  // namespace v4agent::dsml
