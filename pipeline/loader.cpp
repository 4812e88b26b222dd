#include "pipeline/loader.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <regex>
#include <set>

#include "common/file_util.h"
#include "common/hash.h"
#include "common/strings.h"
#include "common/yaml_doc.h"
#include "policies/policy.h"
#include "tools/registry.h"
#include "tools/yaml_tool.h"

namespace v4agent::pipeline {
namespace {

namespace fs = std::filesystem;

const std::set<std::string>& FieldsOf(Step::Kind kind) {
  static const std::set<std::string> kCommon = {"outcome", "exit_code", "stdout",   "stderr",
                                                "outputs", "seconds",   "attempts", "error"};
  static const std::map<Step::Kind, std::set<std::string>> kByKind = [] {
    std::map<Step::Kind, std::set<std::string>> m;
    for (auto k : {Step::Kind::kRun, Step::Kind::kTool, Step::Kind::kAgent, Step::Kind::kForeach,
                   Step::Kind::kPipeline}) {
      m[k] = kCommon;
    }
    for (const char* f :
         {"status", "patch", "submission", "steps", "tokens_generated", "trajectory", "detail"}) {
      m[Step::Kind::kAgent].insert(f);
    }
    m[Step::Kind::kForeach].insert("results");
    m[Step::Kind::kTool].insert("output");
    return m;
  }();
  return kByKind.at(kind);
}

std::string Abs(const std::string& base_file, const std::string& path) {
  if (!path.empty() && path[0] == '/') return fs::path(path).lexically_normal().string();
  return (fs::path(base_file).parent_path() / path).lexically_normal().string();
}

// What an expression may see at one point of a file.
struct Scope {
  std::map<std::string, Step::Kind> steps;  // visible earlier steps by id
  std::vector<std::string> loop_vars;       // foreach `as` names (and `loop`)
};

class Loader {
 public:
  Loader(const YamlDoc& doc, std::vector<std::string>* errors, std::vector<std::string>* stack)
      : doc_(doc), errors_(errors), stack_(stack) {}

  std::shared_ptr<Pipeline> Load() {
    const YamlNode& root = doc_.root();
    auto p = std::make_shared<Pipeline>();
    p_ = p.get();
    p->file = doc_.file();
    p->name = fs::path(doc_.file()).stem().string();
    if (!Ok(doc_.CheckKeys(
            root, {"name", "description", "inputs", "env", "policy", "tools", "steps", "outputs"},
            "a pipeline"))) {
      return nullptr;
    }
    if (const YamlNode* n = root.Find("name")) Take(doc_.String(*n, "name"), &p->name);
    if (const YamlNode* n = root.Find("description")) {
      Take(doc_.String(*n, "description"), &p->description);
    }
    if (const YamlNode* n = root.Find("inputs")) Inputs(*n);
    if (const YamlNode* n = root.Find("policy")) {
      std::string v;
      if (Take(doc_.String(*n, "policy"), &v)) p->policy = Policy(*n, v);
    }
    if (const YamlNode* n = root.Find("tools")) p->tools = ToolPaths(*n);
    registry_ = tools::Registry::Default();
    if (!p->tools.empty()) {
      Status s = tools::AddYamlTools(p->tools, &registry_);
      if (!s.ok()) Error(*root.Find("tools"), s.message());
    }
    Scope top;
    if (const YamlNode* n = root.Find("env")) p->env = Map(*n, "env", top, true);
    const YamlNode* steps = root.Find("steps");
    if (!steps) {
      Error(root, "a pipeline needs steps");
    } else {
      p->steps = Steps(*steps, &top);
    }
    if (const YamlNode* n = root.Find("outputs")) p->outputs = Map(*n, "outputs", top, false);
    return p;
  }

 private:
  bool Ok(const Status& s) {
    if (!s.ok()) errors_->push_back(std::string(s.message()));
    return s.ok();
  }
  template <typename T>
  bool Take(Result<T> r, T* out) {
    if (!r.ok()) return Ok(r.status());
    *out = std::move(r).value();
    return true;
  }
  void Error(const YamlNode& at, std::string_view message) { Ok(doc_.Error(at, message)); }

  void Inputs(const YamlNode& n) {
    if (!n.IsMap()) return Error(n, "inputs must map names to {type, default, description}");
    for (const auto& [k, v] : n.entries) {
      Input in;
      in.name = k.scalar;
      if (!Ident(k, "input")) continue;
      if (!Ok(doc_.CheckKeys(v, {"type", "default", "description", "required"},
                             StrCat("input ", k.scalar)))) {
        continue;
      }
      if (const YamlNode* t = v.Find("type")) {
        Take(doc_.String(*t, "type"), &in.type);
        static const std::set<std::string> kTypes = {"string", "integer", "number", "boolean",
                                                     "array"};
        if (!kTypes.count(in.type)) {
          Error(*t, StrCat("type \"", in.type,
                           "\" is not string, integer, number, boolean or "
                           "array"));
        }
      }
      if (const YamlNode* d = v.Find("description"))
        Take(doc_.String(*d, "description"), &in.description);
      if (const YamlNode* r = v.Find("required")) Take(doc_.Bool(*r, "required"), &in.required);
      if (const YamlNode* d = v.Find("default")) {
        auto value = TypedValue(*d, in.type, StrCat("input ", in.name, ": default"));
        if (value.ok())
          in.default_value = *value;
        else
          Ok(value.status());
      }
      p_->inputs.push_back(std::move(in));
    }
  }

  Result<Json> TypedValue(const YamlNode& n, const std::string& type, const std::string& what) {
    if (type == "string") return Json(n.IsScalar() ? n.scalar : "");
    if (type == "integer") {
      V4_ASSIGN_OR_RETURN(int64_t v, doc_.Int(n, what));
      return Json(v);
    }
    if (type == "number") {
      V4_ASSIGN_OR_RETURN(double v, doc_.Number(n, what));
      return Json(v);
    }
    if (type == "boolean") {
      V4_ASSIGN_OR_RETURN(bool v, doc_.Bool(n, what));
      return Json(v);
    }
    V4_ASSIGN_OR_RETURN(std::vector<std::string> v, doc_.StringList(n, what));
    return Json(v);
  }

  bool Ident(const YamlNode& n, std::string_view what) {
    static const std::regex kId(R"(^[A-Za-z_][A-Za-z0-9_-]{0,63}$)");
    if (!n.IsScalar() || !std::regex_match(n.scalar, kId)) {
      Error(n, StrCat(what, " \"", n.scalar,
                      "\" must start with a letter or _ and hold letters, "
                      "digits, _ or -"));
      return false;
    }
    return true;
  }

  std::string Policy(const YamlNode& at, const std::string& v) {
    if (policies::BuiltinPolicy(v).ok()) return "builtin:" + v;
    const std::string file = Abs(p_->file, v);
    auto loaded = policies::LoadPolicyFile(file);
    if (!loaded.ok()) {
      Error(at, StrCat("policy \"", v,
                       "\" is neither builtin (workspace-write, read-only, "
                       "full-access) nor a policy file that loads: ",
                       loaded.status().message()));
    }
    return file;
  }

  std::vector<std::string> ToolPaths(const YamlNode& n) {
    std::vector<std::string> out;
    std::vector<std::string> list;
    if (!Take(doc_.StringList(n, "tools"), &list)) return out;
    for (const auto& t : list) {
      const std::string f = Abs(p_->file, t);
      if (!fs::exists(f)) {
        Error(n, StrCat("tools: ", f, " does not exist"));
        continue;
      }
      out.push_back(f);
    }
    return out;
  }

  // Checks every reference of a template against what is visible here.
  void CheckRefs(const YamlNode& at, const expr::Expression& e, const Scope& scope) {
    for (const auto& ref : e.references()) {
      const std::string& root = ref[0];
      if (root == "inputs") {
        if (ref.size() < 2) continue;
        bool known = false;
        for (const auto& in : p_->inputs) known = known || in.name == ref[1];
        if (!known) {
          Error(at, StrCat("${{", e.text(), "}}: there is no input \"", ref[1], "\""));
        }
      } else if (root == "steps") {
        if (ref.size() < 2) continue;
        auto it = scope.steps.find(ref[1]);
        if (it == scope.steps.end()) {
          const bool later = all_ids_.count(ref[1]) > 0;
          Error(at, StrCat("${{", e.text(), "}}: step \"", ref[1], "\" ",
                           later ? "comes later (a step sees only the steps before it)"
                                 : "does not exist"));
        } else if (ref.size() > 2 && !FieldsOf(it->second).count(ref[2])) {
          const auto& f = FieldsOf(it->second);
          Error(at, StrCat("${{", e.text(), "}}: a ", StepKindName(it->second),
                           " step has no field \"", ref[2], "\" (it has: ",
                           StrJoin(std::vector<std::string>(f.begin(), f.end()), ", "), ")"));
        }
      } else if (root == "env" || root == "workspace" || root == "run_dir") {
        continue;
      } else if (std::find(scope.loop_vars.begin(), scope.loop_vars.end(), root) !=
                 scope.loop_vars.end()) {
        continue;
      } else {
        std::string known = "inputs, steps, env, workspace, run_dir";
        for (const auto& v : scope.loop_vars) known += ", " + v;
        Error(at, StrCat("${{", e.text(), "}}: unknown name \"", root, "\" (known: ", known, ")"));
      }
    }
  }

  std::optional<Text> Tmpl(const YamlNode& n, std::string_view what, const Scope& scope) {
    if (!n.IsScalar()) {
      Error(n, StrCat(what, " must be a string"));
      return std::nullopt;
    }
    auto t = expr::Template::Parse(n.scalar);
    if (!t.ok()) {
      Error(n, StrCat(what, ": ", t.status().message()));
      return std::nullopt;
    }
    for (const expr::Expression* e : t->expressions()) CheckRefs(n, *e, scope);
    return Text{std::move(t).value(), doc_.Where(n)};
  }

  std::vector<std::pair<std::string, Text>> Map(const YamlNode& n, std::string_view what,
                                                const Scope& scope, bool env_names) {
    std::vector<std::pair<std::string, Text>> out;
    if (!n.IsMap()) {
      Error(n, StrCat(what, " must be a mapping"));
      return out;
    }
    for (const auto& [k, v] : n.entries) {
      if (env_names) {
        static const std::regex kVar(R"(^[A-Za-z_][A-Za-z0-9_]*$)");
        if (!std::regex_match(k.scalar, kVar)) {
          Error(k, StrCat("\"", k.scalar, "\" is not an environment variable name"));
          continue;
        }
      }
      // Scalars of any YAML type are text here (a number stays its digits).
      auto t = Tmpl(v, StrCat(what, ".", k.scalar), scope);
      if (t) out.emplace_back(k.scalar, std::move(*t));
    }
    return out;
  }

  void CollectIds(const YamlNode& steps) {
    if (!steps.IsSequence()) return;
    for (const auto& s : steps.items) {
      if (const YamlNode* id = s.Find("id"); id && id->IsScalar()) all_ids_.insert(id->scalar);
      if (const YamlNode* f = s.Find("foreach"); f && f->IsMap()) {
        if (const YamlNode* inner = f->Find("steps")) CollectIds(*inner);
      }
    }
  }

  std::vector<Step> Steps(const YamlNode& n, Scope* scope) {
    std::vector<Step> out;
    if (!n.IsSequence() || n.items.empty()) {
      Error(n, "steps must be a non-empty list");
      return out;
    }
    CollectIds(n);
    for (const YamlNode& s : n.items) {
      std::optional<Step> step = OneStep(s, *scope);
      if (!step) continue;
      if (scope->steps.count(step->id)) {
        Error(*s.Find("id"), StrCat("step id \"", step->id, "\" is used twice"));
        continue;
      }
      scope->steps[step->id] = step->kind;
      out.push_back(std::move(*step));
    }
    return out;
  }

  std::optional<Step> OneStep(const YamlNode& n, const Scope& scope) {
    if (!Ok(doc_.CheckKeys(
            n,
            {"id", "name", "if", "continue-on-error", "retries", "timeout", "env", "artifacts",
             "run", "cwd", "tool", "with", "agent", "foreach", "pipeline"},
            "a step"))) {
      return std::nullopt;
    }
    Step s;
    s.where = doc_.Where(n);
    const YamlNode* id = n.Find("id");
    if (!id) {
      Error(n, "a step needs an id");
      return std::nullopt;
    }
    if (!Ident(*id, "step id")) return std::nullopt;
    s.id = id->scalar;
    s.name = s.id;
    if (const YamlNode* v = n.Find("name")) Take(doc_.String(*v, "name"), &s.name);
    std::vector<std::string> kinds;
    for (const char* k : {"run", "tool", "agent", "foreach", "pipeline"}) {
      if (n.Find(k)) kinds.push_back(k);
    }
    if (kinds.size() != 1) {
      Error(n, kinds.empty() ? StrCat("step ", s.id,
                                      " needs one of run, tool, agent, foreach, "
                                      "pipeline")
                             : StrCat("step ", s.id, " has ", StrJoin(kinds, " and "),
                                      "; a step does one thing"));
      return std::nullopt;
    }
    if (const YamlNode* v = n.Find("if")) {
      std::string text;
      if (Take(doc_.String(*v, "if"), &text)) {
        std::string_view body = StripWhitespace(text);
        if (StartsWith(body, "${{") && EndsWith(body, "}}")) body = body.substr(3, body.size() - 5);
        auto e = expr::Expression::Parse(body);
        if (!e.ok()) {
          Error(*v, StrCat("if: ", e.status().message()));
        } else {
          CheckRefs(*v, *e, scope);
          s.condition = std::make_shared<expr::Expression>(std::move(e).value());
        }
      }
    }
    if (const YamlNode* v = n.Find("continue-on-error")) {
      Take(doc_.Bool(*v, "continue-on-error"), &s.continue_on_error);
    }
    if (const YamlNode* v = n.Find("retries")) {
      int64_t r = 0;
      if (Take(doc_.Int(*v, "retries"), &r)) {
        if (r < 0 || r > 10) Error(*v, "retries must be between 0 and 10");
        s.retries = static_cast<int>(r);
      }
    }
    if (const YamlNode* v = n.Find("timeout")) {
      if (Take(doc_.Number(*v, "timeout"), &s.timeout) && !(s.timeout > 0)) {
        Error(*v, "timeout must be above 0 seconds");
      }
    }
    if (const YamlNode* v = n.Find("env")) s.env = Map(*v, "env", scope, true);
    if (const YamlNode* v = n.Find("artifacts")) {
      const std::vector<YamlNode> items = v->IsSequence() ? v->items : std::vector<YamlNode>{*v};
      for (const auto& a : items) {
        if (auto t = Tmpl(a, "artifacts", scope)) s.artifacts.push_back(std::move(*t));
      }
    }
    const YamlNode* with = n.Find("with");
    const YamlNode* cwd = n.Find("cwd");
    if (with && kinds[0] != "tool" && kinds[0] != "pipeline") {
      Error(*with, "with: is for tool and pipeline steps");
    }
    if (cwd && kinds[0] != "run") Error(*cwd, "cwd: is for run steps");
    if (kinds[0] == "run") {
      s.kind = Step::Kind::kRun;
      s.script = Tmpl(*n.Find("run"), "run", scope);
      if (cwd) s.cwd = Tmpl(*cwd, "cwd", scope);
    } else if (kinds[0] == "tool") {
      s.kind = Step::Kind::kTool;
      ToolStep(*n.Find("tool"), with, scope, &s);
    } else if (kinds[0] == "agent") {
      s.kind = Step::Kind::kAgent;
      AgentStep(*n.Find("agent"), scope, &s);
    } else if (kinds[0] == "foreach") {
      s.kind = Step::Kind::kForeach;
      ForeachStep(*n.Find("foreach"), scope, &s);
    } else {
      s.kind = Step::Kind::kPipeline;
      CallStep(*n.Find("pipeline"), with, scope, &s);
    }
    return s;
  }

  void ToolStep(const YamlNode& t, const YamlNode* with, const Scope& scope, Step* s) {
    if (!Take(doc_.String(t, "tool"), &s->tool)) return;
    tools::Tool* tool = registry_.Find(s->tool);
    if (!tool) {
      Error(t,
            StrCat("there is no tool \"", s->tool, "\" (built in, or in the pipeline's tools:)"));
      return;
    }
    if (!with) return;
    s->with = Map(*with, "with", scope, false);
    const Json props = tool->parameters().value("properties", Json::object());
    for (const auto& [k, v] : with->entries) {
      if (!props.contains(k.scalar)) {
        std::vector<std::string> names;
        for (const auto& [name, unused] : props.items()) names.push_back(name);
        Error(k, StrCat("tool ", s->tool, " has no parameter \"", k.scalar,
                        "\" (it has: ", StrJoin(names, ", "), ")"));
      }
    }
  }

  void AgentStep(const YamlNode& a, const Scope& scope, Step* s) {
    if (!Ok(doc_.CheckKeys(
            a, {"task", "policy", "tools", "max_steps", "max_turn_tokens", "thinking"}, "agent"))) {
      return;
    }
    const YamlNode* task = a.Find("task");
    if (!task) return Error(a, "agent needs a task");
    s->task = Tmpl(*task, "agent.task", scope);
    if (const YamlNode* v = a.Find("policy")) {
      std::string text;
      if (Take(doc_.String(*v, "agent.policy"), &text)) s->policy = Policy(*v, text);
    }
    if (const YamlNode* v = a.Find("tools")) s->tools = ToolPaths(*v);
    auto count = [&](const char* key, int* value, std::optional<Text>* expr) {
      const YamlNode* v = a.Find(key);
      if (!v) return;
      if (v->IsScalar() && v->scalar.find("${{") != std::string::npos) {
        *expr = Tmpl(*v, StrCat("agent.", key), scope);
        return;
      }
      int64_t m = 0;
      if (Take(doc_.Int(*v, StrCat("agent.", key)), &m)) {
        if (m < 1) Error(*v, StrCat("agent.", key, " must be at least 1"));
        *value = static_cast<int>(std::min<int64_t>(m, 1 << 30));
      }
    };
    count("max_steps", &s->max_steps, &s->max_steps_expr);
    count("max_turn_tokens", &s->max_turn_tokens, &s->max_turn_tokens_expr);
    if (const YamlNode* v = a.Find("thinking")) Take(doc_.Bool(*v, "agent.thinking"), &s->thinking);
  }

  void ForeachStep(const YamlNode& f, const Scope& scope, Step* s) {
    if (!Ok(doc_.CheckKeys(f, {"items", "lines", "glob", "as", "parallel", "steps"}, "foreach"))) {
      return;
    }
    int sources = 0;
    for (const char* k : {"items", "lines", "glob"}) sources += f.Find(k) != nullptr;
    if (sources != 1) return Error(f, "foreach needs exactly one of items, lines, glob");
    if (const YamlNode* v = f.Find("items")) s->items = Tmpl(*v, "foreach.items", scope);
    if (const YamlNode* v = f.Find("lines")) s->lines = Tmpl(*v, "foreach.lines", scope);
    if (const YamlNode* v = f.Find("glob")) s->glob = Tmpl(*v, "foreach.glob", scope);
    if (const YamlNode* v = f.Find("as")) {
      if (Ident(*v, "foreach.as")) s->as = v->scalar;
      static const std::set<std::string> kReserved = {"inputs",    "steps",   "env",
                                                      "workspace", "run_dir", "loop"};
      if (kReserved.count(s->as)) Error(*v, StrCat("foreach.as: \"", s->as, "\" is reserved"));
    }
    if (const YamlNode* v = f.Find("parallel")) {
      int64_t p = 1;
      if (Take(doc_.Int(*v, "foreach.parallel"), &p)) {
        if (p < 1 || p > 64) Error(*v, "foreach.parallel must be between 1 and 64");
        s->parallel = static_cast<int>(std::clamp<int64_t>(p, 1, 64));
      }
    }
    const YamlNode* inner = f.Find("steps");
    if (!inner) return Error(f, "foreach needs steps");
    Scope in = scope;
    in.loop_vars.push_back(s->as);
    in.loop_vars.push_back("loop");
    s->steps = Steps(*inner, &in);
  }

  void CallStep(const YamlNode& c, const YamlNode* with, const Scope& scope, Step* s) {
    std::string rel;
    if (!Take(doc_.String(c, "pipeline"), &rel)) return;
    s->file = Abs(p_->file, rel);
    std::error_code ec;
    const std::string canon = fs::weakly_canonical(s->file, ec).string();
    if (std::find(stack_->begin(), stack_->end(), canon) != stack_->end()) {
      std::string chain;
      for (const auto& f : *stack_) chain += f + " -> ";
      return Error(c, StrCat("pipeline files call each other in a cycle: ", chain, canon));
    }
    auto doc = YamlDoc::Load(s->file);
    if (!doc.ok()) return Error(c, StrCat("pipeline ", rel, ": ", doc.status().message()));
    stack_->push_back(canon);
    std::vector<std::string> inner_errors;
    Loader inner(*doc, &inner_errors, stack_);
    s->called = inner.Load();
    stack_->pop_back();
    for (auto& e : inner_errors) errors_->push_back(std::move(e));
    if (!s->called) return;
    if (with) s->with = Map(*with, "with", scope, false);
    std::set<std::string> given;
    if (with && with->IsMap()) {
      for (const auto& [k, v] : with->entries) {
        given.insert(k.scalar);
        bool known = false;
        for (const auto& in : s->called->inputs) known = known || in.name == k.scalar;
        if (!known) Error(k, StrCat("pipeline ", rel, " has no input \"", k.scalar, "\""));
      }
    }
    for (const auto& in : s->called->inputs) {
      if (in.required && !in.default_value && !given.count(in.name)) {
        Error(c, StrCat("pipeline ", rel, " needs input \"", in.name, "\""));
      }
    }
  }

  const YamlDoc& doc_;
  std::vector<std::string>* errors_;
  std::vector<std::string>* stack_;
  Pipeline* p_ = nullptr;
  tools::Registry registry_;
  std::set<std::string> all_ids_;
};

void Digest(const Pipeline& p, std::string* acc) {
  auto text = ReadFile(p.file);
  *acc += p.file + "\n" + (text.ok() ? *text : std::string()) + "\n";
  std::function<void(const std::vector<Step>&)> walk = [&](const std::vector<Step>& steps) {
    for (const Step& s : steps) {
      if (s.called) Digest(*s.called, acc);
      walk(s.steps);
    }
  };
  walk(p.steps);
}

}  // namespace

const char* StepKindName(Step::Kind kind) {
  switch (kind) {
    case Step::Kind::kRun:
      return "run";
    case Step::Kind::kTool:
      return "tool";
    case Step::Kind::kAgent:
      return "agent";
    case Step::Kind::kForeach:
      return "foreach";
    case Step::Kind::kPipeline:
      return "pipeline";
  }
  return "?";
}

LoadResult LoadPipeline(const std::string& path) {
  LoadResult r;
  auto doc = YamlDoc::Load(path);
  if (!doc.ok()) {
    r.errors.push_back(std::string(doc.status().message()));
    return r;
  }
  std::error_code ec;
  std::vector<std::string> stack = {fs::weakly_canonical(path, ec).string()};
  Loader loader(*doc, &r.errors, &stack);
  auto p = loader.Load();
  if (!r.errors.empty() || !p) return r;
  std::string acc;
  Digest(*p, &acc);
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(Hash64(acc)));
  p->digest = hex;
  r.pipeline = std::move(p);
  return r;
}

Result<std::shared_ptr<Pipeline>> LoadPipelineOrError(const std::string& path) {
  LoadResult r = LoadPipeline(path);
  if (!r.errors.empty()) {
    std::string all = r.errors[0];
    if (r.errors.size() > 1) all += StrCat(" (and ", r.errors.size() - 1, " more errors)");
    return InvalidArgumentError(all);
  }
  return r.pipeline;
}

}  // namespace v4agent::pipeline
