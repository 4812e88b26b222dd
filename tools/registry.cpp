#include "tools/registry.h"

#include <algorithm>

#include "common/strings.h"
#include "tools/builtin_tools.h"

namespace v4agent::tools {
namespace {

const char* TypeOf(const Json& v) {
  if (v.is_string()) return "string";
  if (v.is_boolean()) return "boolean";
  if (v.is_number_integer() || v.is_number_unsigned()) return "integer";
  if (v.is_number()) return "number";
  if (v.is_array()) return "array";
  if (v.is_object()) return "object";
  return "null";
}

bool Matches(const Json& v, const std::string& type) {
  if (type == "number") return v.is_number();
  if (type == "integer") return v.is_number_integer() || v.is_number_unsigned();
  return type == TypeOf(v);
}

}  // namespace

Status CheckArguments(const Json& schema, const Json& args) {
  if (!args.is_object()) return InvalidArgumentError("the arguments must be a JSON object");
  const Json props = schema.value("properties", Json::object());
  for (const auto& [key, value] : args.items()) {
    auto it = props.find(key);
    if (it == props.end()) {
      std::vector<std::string> names;
      for (const auto& [k, v] : props.items()) names.push_back(k);
      return InvalidArgumentError(
          StrCat("unknown parameter \"", key, "\"; the parameters are: ", StrJoin(names, ", ")));
    }
    if (it->contains("type") && (*it)["type"].is_string() &&
        !Matches(value, (*it)["type"].get<std::string>())) {
      return InvalidArgumentError(StrCat("parameter \"", key, "\" must be ",
                                         (*it)["type"].get<std::string>(), ", not ",
                                         TypeOf(value)));
    }
    if (auto e = it->find("enum"); e != it->end() && e->is_array()) {
      bool listed = false;
      for (const Json& option : *e) listed = listed || option == value;
      if (!listed) {
        return InvalidArgumentError(StrCat("parameter \"", key, "\" must be one of ", DumpJson(*e),
                                           ", not ", DumpJson(value)));
      }
    }
    if (auto items = it->find("items");
        items != it->end() && value.is_array() && items->contains("type")) {
      const std::string type = (*items)["type"].get<std::string>();
      for (size_t i = 0; i < value.size(); ++i) {
        if (!Matches(value[i], type)) {
          return InvalidArgumentError(StrCat("parameter \"", key, "\"[", i, "] must be ", type,
                                             ", not ", TypeOf(value[i])));
        }
      }
    }
  }
  for (const auto& r : schema.value("required", Json::array())) {
    if (!args.contains(r.get<std::string>())) {
      return InvalidArgumentError(
          StrCat("missing required parameter \"", r.get<std::string>(), "\""));
    }
  }
  return Status::Ok();
}

Registry Registry::Default() {
  Registry r;
  AddBuiltinTools(&r);
  return r;
}

void Registry::Add(std::unique_ptr<Tool> tool) { tools_.push_back(std::move(tool)); }

Tool* Registry::Find(const std::string& name) const {
  for (const auto& t : tools_) {
    if (t->name() == name) return t.get();
  }
  return nullptr;
}

std::vector<Tool*> Registry::Allowed(const policies::Policy& policy) const {
  std::vector<Tool*> out;
  for (const auto& t : tools_) {
    policies::Action a;
    a.kind = policies::Action::kTool;
    a.tool = t->name();
    a.declared = t->declared();
    if (policies::Decide(policy, a).verdict == policies::Verdict::kAllow) out.push_back(t.get());
  }
  return out;
}

Json Registry::Schemas(const policies::Policy& policy) const {
  Json out = Json::array();
  for (Tool* t : Allowed(policy)) out.push_back(ToolSchema(*t));
  return out;
}

namespace {

std::string ActionText(const policies::Action& a) {
  switch (a.kind) {
    case policies::Action::kExec:
      return a.argv.size() == 3 && a.argv[1] == "-c" ? a.argv[2] : StrJoin(a.argv, " ");
    case policies::Action::kRead:
      return "read " + a.path;
    case policies::Action::kWrite:
      return "write " + a.path;
    case policies::Action::kTool:
      return "use " + a.tool;
  }
  return "";
}

// The policy's decision on one action, with "ask" put to the approver when there is one.
// False (and *denied set) when the action may not happen.
bool Approve(ToolContext& ctx, const policies::Action& a, const std::string& tool, Json* approvals,
             ToolResult* denied) {
  const policies::Decision d = policies::Decide(ctx.policy, a, /*interactive=*/bool(ctx.approver));
  if (d.verdict == policies::Verdict::kAllow) return true;
  if (d.verdict == policies::Verdict::kAsk) {
    const std::string action = ActionText(a);
    const std::string key = d.rule + "\n" + action;
    ApprovalAnswer answer =
        ctx.session_approvals.count(key) ? ApprovalAnswer::kSession : ApprovalAnswer::kDeny;
    const bool remembered = answer == ApprovalAnswer::kSession;
    if (!remembered) answer = ctx.approver(ApprovalRequest{tool, action, d.rule, d.reason});
    if (answer == ApprovalAnswer::kSession) ctx.session_approvals.insert(key);
    approvals->push_back(Json{{"rule", d.rule},
                              {"action", action},
                              {"answer", ApprovalAnswerName(answer)},
                              {"remembered", remembered}});
    if (answer != ApprovalAnswer::kDeny) return true;
    *denied = ToolResult{ToolResult::kDenied,
                         StrCat("denied by the user (rule ", d.rule, "): ", d.reason)};
    denied->extra["rule"] = d.rule;
    denied->extra["approval"] = *approvals;
    return false;
  }
  *denied = ToolResult{ToolResult::kDenied,
                       a.kind == policies::Action::kTool
                           ? StrCat("denied by the policy: ", d.reason)
                           : StrCat("denied by the policy (rule ", d.rule, "): ", d.reason)};
  denied->extra["rule"] = d.rule;
  return false;
}

}  // namespace

const char* ApprovalAnswerName(ApprovalAnswer a) {
  switch (a) {
    case ApprovalAnswer::kDeny:
      return "deny";
    case ApprovalAnswer::kOnce:
      return "once";
    case ApprovalAnswer::kSession:
      return "session";
  }
  return "?";
}

ToolResult Invoke(const Registry& registry, ToolContext& ctx, const std::string& name,
                  const std::string& arguments_json) {
  Tool* tool = registry.Find(name);
  policies::Action use;
  use.kind = policies::Action::kTool;
  use.tool = name;
  use.declared = tool != nullptr && tool->declared();
  if (!tool) {
    std::vector<std::string> names;
    for (Tool* t : registry.Allowed(ctx.policy)) names.push_back(t->name());
    return ToolResult::Error(
        StrCat("unknown tool \"", name, "\"; the tools are: ", StrJoin(names, ", ")));
  }
  Json approvals = Json::array();
  if (ToolResult denied; !Approve(ctx, use, name, &approvals, &denied)) return denied;
  auto args = ParseJson(arguments_json.empty() ? "{}" : arguments_json, "arguments");
  if (!args.ok()) {
    return ToolResult::Error(
        StrCat(name, ": the arguments are not valid JSON: ", args.status().message()));
  }
  if (Status s = CheckArguments(tool->parameters(), *args); !s.ok()) {
    return ToolResult::Error(StrCat(name, ": ", s.message()));
  }
  for (policies::Action& a : tool->Describe(*args, ctx)) {
    a.tool = name;
    if (ToolResult denied; !Approve(ctx, a, name, &approvals, &denied)) return denied;
  }
  ToolResult r = tool->Run(*args, ctx);
  if (!approvals.empty()) r.extra["approval"] = approvals;
  return r;
}

}  // namespace v4agent::tools
