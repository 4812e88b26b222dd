#include "dsml/prompt_encoder.h"

#include <algorithm>
#include <optional>
#include <vector>

#include "common/strings.h"
#include "dsml/markers.h"
#include "dsml/python_json.h"

namespace v4agent::dsml {
namespace {

std::string Text(const OrderedJson& m, const char* key) {
  auto it = m.find(key);
  if (it == m.end() || !it->is_string()) return "";
  return it->get<std::string>();
}

bool NonEmptyList(const OrderedJson& m, const char* key) {
  auto it = m.find(key);
  return it != m.end() && it->is_array() && !it->empty();
}

// A tool result's text: a string, or a list of parts (text parts joined by "\n\n").
std::string ToolResultText(const OrderedJson& m) {
  auto it = m.find("content");
  if (it == m.end() || it->is_null()) return "";
  if (it->is_string()) return it->get<std::string>();
  std::vector<std::string> parts;
  for (const auto& part : *it) {
    const std::string type = part["type"].get<std::string>();
    parts.push_back(type == "text" ? part["text"].get<std::string>()
                                   : StrCat("[Unsupported ", type, "]"));
  }
  return StrJoin(parts, "\n\n");
}

struct Block {
  bool tool_result = false;
  std::string text;
  std::optional<std::string> tool_call_id;
};

// One message after pre-processing (spec §2.2).
struct Msg {
  std::string role;
  const OrderedJson* src = nullptr;  // the original (first) message
  size_t index = 0;                  // its position in the input, for errors
  std::vector<Block> blocks;         // user turns (merged user text and tool results)
  bool keep_reasoning = true;        // assistant: false once the drop pass removed it
  std::string task;
};

std::string Where(size_t index) { return StrCat("messages[", index, "]"); }

// Folds tool results and user text into user turns.
std::vector<Msg> Merge(const OrderedJson& messages) {
  std::vector<Msg> out;
  for (size_t i = 0; i < messages.size(); ++i) {
    const auto& m = messages[i];
    const std::string role = m["role"].get<std::string>();
    const std::string task = Text(m, "task");
    if (role == "tool" || role == "user") {
      Block b;
      if (role == "tool") {
        b.tool_result = true;
        b.text = ToolResultText(m);
        if (auto id = m.find("tool_call_id"); id != m.end() && id->is_string()) {
          b.tool_call_id = id->get<std::string>();
        }
      } else {
        b.text = Text(m, "content");
      }
      if (!out.empty() && out.back().role == "user" && out.back().task.empty()) {
        out.back().blocks.push_back(std::move(b));
        if (!task.empty()) out.back().task = task;
        continue;
      }
      Msg u;
      u.role = "user";
      u.src = &m;
      u.index = i;
      u.task = task;
      u.blocks.push_back(std::move(b));
      out.push_back(std::move(u));
      continue;
    }
    Msg x;
    x.role = role;
    x.src = &m;
    x.index = i;
    x.task = task;
    out.push_back(std::move(x));
  }
  return out;
}

// Orders each user turn's tool results by the call order of the last assistant message that
// made calls; text blocks keep their slots, unknown ids sort with the first call.
void SortToolResults(std::vector<Msg>& msgs) {
  const OrderedJson* calls = nullptr;
  for (Msg& m : msgs) {
    if (m.role == "assistant" && NonEmptyList(*m.src, "tool_calls")) {
      calls = &(*m.src)["tool_calls"];
      continue;
    }
    if (m.role != "user") continue;
    std::vector<size_t> slots;
    std::vector<Block> results;
    for (size_t i = 0; i < m.blocks.size(); ++i) {
      if (m.blocks[i].tool_result) {
        slots.push_back(i);
        results.push_back(m.blocks[i]);
      }
    }
    if (results.size() < 2) continue;
    auto key = [&](const Block& b) -> size_t {
      if (!calls || !b.tool_call_id) return 0;
      for (size_t k = 0; k < calls->size(); ++k) {
        auto id = (*calls)[k].find("id");
        if (id != (*calls)[k].end() && id->is_string() && *id == *b.tool_call_id) return k;
      }
      return 0;
    };
    std::stable_sort(results.begin(), results.end(),
                     [&](const Block& a, const Block& b) { return key(a) < key(b); });
    for (size_t i = 0; i < slots.size(); ++i) m.blocks[slots[i]] = std::move(results[i]);
  }
}

int LastUserIndex(const std::vector<Msg>& msgs) {
  int last = -1;
  for (size_t i = 0; i < msgs.size(); ++i) {
    if (msgs[i].role == "user" || msgs[i].role == "developer") last = static_cast<int>(i);
  }
  return last;
}

Result<std::string_view> EffortText(const Conversation& c) {
  const std::string& e = c.reasoning_effort;
  if (e.empty() || e == "none" || e == "low") return std::string_view();
  if (e == "high") {
    return c.effort_table == EffortTable::kPreview ? std::string_view() : kEffortAbsoluteMax;
  }
  if (e == "max") {
    return c.effort_table == EffortTable::kPreview ? kEffortAbsoluteMax : kEffortBeyondMax;
  }
  return InvalidArgumentError(StrCat(
      "reasoning_effort must be null, \"none\", \"low\", \"high\" or \"max\", not \"", e, "\""));
}

Status AppendSystemSuffixes(const OrderedJson& m, std::string* out) {
  if (NonEmptyList(m, "tools")) {
    V4_ASSIGN_OR_RETURN(std::string block, RenderToolsBlock(m["tools"]));
    *out += "\n\n";
    *out += block;
  }
  if (auto rf = m.find("response_format");
      rf != m.end() && !rf->is_null() && !(rf->is_object() && rf->empty())) {
    *out += "\n\n";
    *out += kResponseFormatPrefix;
    AppendPythonJson(*rf, out);
  }
  return Status::Ok();
}

}  // namespace

Result<std::string> RenderToolsBlock(const OrderedJson& tools) {
  std::string out(kToolsPrefix);
  for (size_t i = 0; i < tools.size(); ++i) {
    if (i > 0) out += "\n";
    const auto& t = tools[i];
    AppendPythonJson(t.contains("function") ? t["function"] : t, &out);
  }
  out += kToolsSuffix;
  return out;
}

Result<std::string> RenderToolCalls(const OrderedJson& tool_calls, std::string_view where) {
  std::string out(kToolCallsOpen);
  out += "\n";
  for (size_t i = 0; i < tool_calls.size(); ++i) {
    const auto& tc = tool_calls[i];
    const OrderedJson& f = tc.contains("function") ? tc["function"] : tc;
    OrderedJson args = OrderedJson::object();
    if (auto a = f.find("arguments"); a != f.end() && !a->is_null()) {
      if (a->is_string()) {
        // The reference parses the JSON string; text that is not JSON becomes one string
        // parameter named "arguments" holding it.
        auto parsed = ParseOrderedJson(a->get<std::string>(), "arguments");
        if (!parsed.ok()) {
          args["arguments"] = a->get<std::string>();
        } else if (parsed->is_object()) {
          args = std::move(parsed).value();
        } else {
          return InvalidArgumentError(
              StrCat(where, ".tool_calls[", i, "].function.arguments: must encode a JSON object"));
        }
      } else {
        args["arguments"] = *a;  // the reference's own handling of a non-string value
      }
    }
    if (i > 0) out += "\n";
    out += kInvokeOpen;
    out += " name=\"";
    out += f["name"].get<std::string>();
    out += "\">\n";
    bool first = true;
    for (const auto& [key, value] : args.items()) {
      if (!first) out += "\n";
      first = false;
      out += kParameterOpen;
      out += " name=\"";
      out += key;
      out += value.is_string() ? "\" string=\"true\">" : "\" string=\"false\">";
      if (value.is_string()) {
        out += value.get_ref<const std::string&>();
      } else {
        AppendPythonJson(value, &out);
      }
      out += kParameterClose;
    }
    out += "\n";
    out += kInvokeClose;
  }
  out += "\n";
  out += kToolCallsClose;
  return out;
}

Result<std::string> RenderPrompt(const Conversation& c) {
  V4_RETURN_IF_ERROR(ValidateConversation(c, "conversation"));
  V4_ASSIGN_OR_RETURN(std::string_view effort, EffortText(c));
  const bool thinking = c.thinking_mode == ThinkingMode::kThinking;

  std::vector<Msg> msgs = Merge(c.messages);
  SortToolResults(msgs);
  // Tools count only where they survive the merge: the reference rebuilds every user (and
  // tool) message with content, task, wo_eos and mask alone (spec section 2.2 step 3).
  bool keep_all = !c.drop_thinking;
  for (const auto& m : c.messages) {
    const std::string role = Text(m, "role");
    if (role == "user" || role == "tool") continue;
    keep_all = keep_all || NonEmptyList(m, "tools");
  }
  int last_user = LastUserIndex(msgs);
  if (thinking && !keep_all) {
    std::vector<Msg> kept;
    for (size_t i = 0; i < msgs.size(); ++i) {
      Msg& m = msgs[i];
      if (static_cast<int>(i) < last_user) {
        if (m.role == "assistant") m.keep_reasoning = false;
        if (m.role == "developer") continue;
      }
      kept.push_back(std::move(m));
    }
    msgs = std::move(kept);
    last_user = LastUserIndex(msgs);
  }

  std::string out;
  if (c.add_bos) out += kBos;
  for (size_t i = 0; i < msgs.size(); ++i) {
    const Msg& m = msgs[i];
    const OrderedJson& src = *m.src;
    if (i == 0 && thinking) out += effort;
    if (m.role == "system") {
      out += Text(src, "content");
      V4_RETURN_IF_ERROR(AppendSystemSuffixes(src, &out));
    } else if (m.role == "developer") {
      out += kUser;
      out += Text(src, "content");
      V4_RETURN_IF_ERROR(AppendSystemSuffixes(src, &out));
    } else if (m.role == "user") {
      out += kUser;
      for (size_t b = 0; b < m.blocks.size(); ++b) {
        if (b > 0) out += "\n\n";
        if (m.blocks[b].tool_result) {
          out += "<tool_result>";
          out += m.blocks[b].text;
          out += "</tool_result>";
        } else {
          out += m.blocks[b].text;
        }
      }
    } else if (m.role == "latest_reminder") {
      out += kLatestReminder;
      auto it = src.find("content");
      out += (it == src.end() || it->is_null()) ? std::string("None") : it->get<std::string>();
    } else if (m.role == "assistant") {
      const bool after_task = i > 0 && !msgs[i - 1].task.empty();
      const bool with_reasoning = thinking && !after_task &&
                                  (keep_all || static_cast<int>(i) > last_user) && m.keep_reasoning;
      const bool wo_eos =
          src.contains("wo_eos") && src["wo_eos"].is_boolean() && src["wo_eos"].get<bool>();
      // The model's own bytes, when known and rendered in the same form they were generated
      // in (with reasoning in thinking mode, without in chat mode).
      const std::string raw = Text(src, "raw");
      if (!raw.empty() && (with_reasoning || !thinking)) {
        out += raw;
      } else {
        if (with_reasoning) {
          out += Text(src, "reasoning_content");
          out += kThinkEnd;
        }
        out += Text(src, "content");
        if (NonEmptyList(src, "tool_calls")) {
          V4_ASSIGN_OR_RETURN(std::string block,
                              RenderToolCalls(src["tool_calls"], Where(m.index)));
          out += "\n\n";
          out += block;
        }
        if (!wo_eos) out += kEos;
      }
    }
    // Transition to what follows (spec §2.3).
    const bool has_next = i + 1 < msgs.size();
    if (has_next && msgs[i + 1].role != "assistant" && msgs[i + 1].role != "latest_reminder") {
      continue;
    }
    if (!m.task.empty()) {
      if (m.task == "action") {
        out += kAssistant;
        out += thinking ? kThinkStart : kThinkEnd;
      }
      out += TaskToken(m.task);
    } else if (m.role == "user" || m.role == "developer") {
      out += kAssistant;
      out += thinking && (keep_all || static_cast<int>(i) >= last_user) ? kThinkStart : kThinkEnd;
    }
  }
  return out;
}

Result<AppendResult> RenderAppend(const Conversation& before, const Conversation& after) {
  V4_ASSIGN_OR_RETURN(std::string a, RenderPrompt(before));
  V4_ASSIGN_OR_RETURN(std::string b, RenderPrompt(after));
  AppendResult r;
  const size_t n = std::min(a.size(), b.size());
  size_t i = 0;
  while (i < n && a[i] == b[i]) ++i;
  if (i == a.size()) {
    r.pure_extension = true;
    r.text_to_append = b.substr(a.size());
    r.diverge_offset = a.size();
  } else {
    r.diverge_offset = i;
  }
  return r;
}

}  // namespace v4agent::dsml
