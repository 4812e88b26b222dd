#include "tools/yaml_tool.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <regex>

#include "common/expr.h"
#include "common/strings.h"
#include "common/yaml_doc.h"
#include "sandbox/launcher.h"
#include "tools/output_budget.h"
#include "tools/path_guard.h"
#include "tools/registry.h"

namespace v4agent::tools {
namespace {

namespace fs = std::filesystem;

// A string that may hold ${{ }} parts, with where it came from.
struct Tmpl {
  expr::Template t;
  std::string where;
};

struct Spec {
  std::string file;
  std::string name, description;
  Json parameters = Json{{"type", "object"}, {"properties", Json::object()}};
  Json defaults = Json::object();
  std::vector<Tmpl> argv;
  std::vector<std::pair<std::string, Tmpl>> env;
  std::optional<Tmpl> stdin_text;
  std::optional<Tmpl> cwd;
  double timeout = 0;     // 0: the policy's default
  size_t max_output = 0;  // 0: the context's output budget
  std::vector<Tmpl> reads, writes;
  bool network = false;  // the policy's network (true) or none
};

const char* kTypes[] = {"string", "integer", "number", "boolean", "array", "object"};

bool ValueHasType(const Json& v, const std::string& type) {
  if (type == "string") return v.is_string();
  if (type == "integer") return v.is_number_integer() || v.is_number_unsigned();
  if (type == "number") return v.is_number();
  if (type == "boolean") return v.is_boolean();
  if (type == "array") return v.is_array();
  return v.is_object();
}

// YAML scalar or tree to JSON, typed as YAML 1.2 core would (quoted scalars stay strings).
Json ToJson(const YamlNode& n) {
  switch (n.kind) {
    case YamlNode::Kind::kNull:
      return nullptr;
    case YamlNode::Kind::kSequence: {
      Json a = Json::array();
      for (const auto& i : n.items) a.push_back(ToJson(i));
      return a;
    }
    case YamlNode::Kind::kMap: {
      Json o = Json::object();
      for (const auto& [k, v] : n.entries) o[k.scalar] = ToJson(v);
      return o;
    }
    case YamlNode::Kind::kScalar:
      break;
  }
  if (n.quoted) return n.scalar;
  const std::string& s = n.scalar;
  if (s == "true" || s == "false") return s == "true";
  if (s == "null" || s == "~") return nullptr;
  static const std::regex kInt(R"(^-?[0-9]+$)"), kNum(R"(^-?[0-9]+\.[0-9]+([eE][-+]?[0-9]+)?$)");
  if (std::regex_match(s, kInt) && s.size() < 19) return std::stoll(s);
  if (std::regex_match(s, kNum)) return std::stod(s);
  return s;
}

class Loader {
 public:
  explicit Loader(const YamlDoc& doc) : doc_(doc) {}

  Result<Spec> Load() {
    const YamlNode& root = doc_.root();
    Spec s;
    s.file = doc_.file();
    V4_RETURN_IF_ERROR(doc_.CheckKeys(
        root, {"name", "description", "parameters", "required", "run", "needs"}, "a tool"));
    const YamlNode* name = root.Find("name");
    if (!name) return doc_.Error(root, "a tool needs a name");
    V4_ASSIGN_OR_RETURN(s.name, doc_.String(*name, "name"));
    static const std::regex kName(R"(^[A-Za-z_][A-Za-z0-9_-]{0,63}$)");
    if (!std::regex_match(s.name, kName)) {
      return doc_.Error(*name, "name must be letters, digits, _ or - (at most 64)");
    }
    const YamlNode* desc = root.Find("description");
    if (!desc) return doc_.Error(root, "a tool needs a description (the model reads it)");
    V4_ASSIGN_OR_RETURN(s.description, doc_.String(*desc, "description"));
    if (const YamlNode* params = root.Find("parameters")) {
      V4_RETURN_IF_ERROR(Parameters(*params, &s));
    }
    if (const YamlNode* req = root.Find("required")) {
      V4_ASSIGN_OR_RETURN(std::vector<std::string> names, doc_.StringList(*req, "required"));
      for (const auto& n : names) {
        if (!s.parameters["properties"].contains(n)) {
          return doc_.Error(*req, StrCat("required names \"", n, "\", which is not a parameter"));
        }
        s.parameters["required"].push_back(n);
      }
    }
    const YamlNode* run = root.Find("run");
    if (!run) return doc_.Error(root, "a tool needs run: {argv: [...]}");
    V4_RETURN_IF_ERROR(Run(*run, &s));
    if (const YamlNode* needs = root.Find("needs")) V4_RETURN_IF_ERROR(Needs(*needs, &s));
    return s;
  }

 private:
  Status Parameters(const YamlNode& params, Spec* s) {
    if (!params.IsMap()) return doc_.Error(params, "parameters must map names to schemas");
    for (const auto& [k, v] : params.entries) {
      static const std::regex kParam(R"(^[A-Za-z_][A-Za-z0-9_]{0,63}$)");
      if (!std::regex_match(k.scalar, kParam)) {
        return doc_.Error(k, StrCat("parameter name \"", k.scalar, "\" must be an identifier"));
      }
      V4_RETURN_IF_ERROR(
          doc_.CheckKeys(v, {"type", "description", "enum", "items", "default", "required"},
                         StrCat("parameter ", k.scalar)));
      const YamlNode* type = v.Find("type");
      if (!type) return doc_.Error(v, StrCat("parameter ", k.scalar, " needs a type"));
      V4_ASSIGN_OR_RETURN(std::string t, doc_.String(*type, "type"));
      if (std::find(std::begin(kTypes), std::end(kTypes), t) == std::end(kTypes)) {
        return doc_.Error(*type, StrCat("type \"", t,
                                        "\" is not one of string, integer, number, "
                                        "boolean, array, object"));
      }
      Json schema{{"type", t}};
      if (const YamlNode* d = v.Find("description")) {
        V4_ASSIGN_OR_RETURN(std::string text, doc_.String(*d, "description"));
        schema["description"] = text;
      }
      if (const YamlNode* e = v.Find("enum")) {
        if (!e->IsSequence() || e->items.empty()) {
          return doc_.Error(*e, "enum must be a non-empty list of values");
        }
        for (const auto& option : e->items) {
          Json o = ToJson(option);
          if (!ValueHasType(o, t)) {
            return doc_.Error(option, StrCat("enum value ", DumpJson(o), " is not of type ", t));
          }
          schema["enum"].push_back(o);
        }
      }
      if (const YamlNode* items = v.Find("items")) {
        if (t != "array") return doc_.Error(*items, "items is only for type: array");
        V4_RETURN_IF_ERROR(doc_.CheckKeys(*items, {"type"}, "items"));
        const YamlNode* it = items->Find("type");
        if (!it) return doc_.Error(*items, "items needs a type");
        V4_ASSIGN_OR_RETURN(std::string item_type, doc_.String(*it, "items.type"));
        if (std::find(std::begin(kTypes), std::end(kTypes), item_type) == std::end(kTypes)) {
          return doc_.Error(*it, StrCat("type \"", item_type, "\" is not a JSON Schema type"));
        }
        schema["items"] = Json{{"type", item_type}};
      }
      if (const YamlNode* d = v.Find("default")) {
        Json value = ToJson(*d);
        if (!ValueHasType(value, t)) {
          return doc_.Error(*d, StrCat("default ", DumpJson(value), " is not of type ", t));
        }
        s->defaults[k.scalar] = value;
      }
      if (const YamlNode* r = v.Find("required")) {
        V4_ASSIGN_OR_RETURN(bool req, doc_.Bool(*r, "required"));
        if (req) s->parameters["required"].push_back(k.scalar);
      }
      s->parameters["properties"][k.scalar] = schema;
    }
    return Status::Ok();
  }

  Result<Tmpl> Template(const YamlNode& n, std::string_view what, const Spec& s) {
    if (!n.IsScalar()) return doc_.Error(n, StrCat(what, " must be a string"));
    auto t = expr::Template::Parse(n.scalar);
    if (!t.ok()) return doc_.Error(n, StrCat(what, ": ", t.status().message()));
    for (const expr::Expression* e : t->expressions()) {
      for (const auto& ref : e->references()) {
        if (ref[0] == "workspace" && ref.size() == 1) continue;
        if (ref[0] != "args") {
          return doc_.Error(n, StrCat(what, ": ${{", e->text(), "}} reads \"", ref[0],
                                      "\"; a tool's templates may read args.NAME and workspace"));
        }
        if (ref.size() > 1 && !s.parameters["properties"].contains(ref[1])) {
          return doc_.Error(n, StrCat(what, ": ${{", e->text(), "}} reads args.", ref[1],
                                      ", which is not a parameter"));
        }
      }
    }
    return Tmpl{std::move(t).value(), doc_.Where(n)};
  }

  Status Run(const YamlNode& run, Spec* s) {
    V4_RETURN_IF_ERROR(
        doc_.CheckKeys(run, {"argv", "env", "stdin", "cwd", "timeout", "max_output"}, "run"));
    const YamlNode* argv = run.Find("argv");
    if (!argv || !argv->IsSequence() || argv->items.empty()) {
      return doc_.Error(argv ? *argv : run, "run.argv must be a non-empty list (program first)");
    }
    for (const auto& item : argv->items) {
      V4_ASSIGN_OR_RETURN(Tmpl t, Template(item, "run.argv entry", *s));
      s->argv.push_back(std::move(t));
    }
    if (s->argv[0].t.has_expressions()) {
      return doc_.Error(argv->items[0], "the program (run.argv[0]) must be fixed text");
    }
    if (const YamlNode* env = run.Find("env")) {
      if (!env->IsMap()) return doc_.Error(*env, "run.env must map NAME: value");
      for (const auto& [k, v] : env->entries) {
        static const std::regex kVar(R"(^[A-Za-z_][A-Za-z0-9_]*$)");
        if (!std::regex_match(k.scalar, kVar)) {
          return doc_.Error(k, StrCat("\"", k.scalar, "\" is not a variable name"));
        }
        V4_ASSIGN_OR_RETURN(Tmpl t, Template(v, StrCat("run.env.", k.scalar), *s));
        s->env.emplace_back(k.scalar, std::move(t));
      }
    }
    if (const YamlNode* in = run.Find("stdin")) {
      V4_ASSIGN_OR_RETURN(s->stdin_text, Template(*in, "run.stdin", *s));
    }
    if (const YamlNode* cwd = run.Find("cwd")) {
      V4_ASSIGN_OR_RETURN(s->cwd, Template(*cwd, "run.cwd", *s));
    }
    if (const YamlNode* t = run.Find("timeout")) {
      V4_ASSIGN_OR_RETURN(s->timeout, doc_.Number(*t, "run.timeout"));
      if (!(s->timeout > 0)) return doc_.Error(*t, "run.timeout must be above 0 seconds");
    }
    if (const YamlNode* m = run.Find("max_output")) {
      V4_ASSIGN_OR_RETURN(int64_t bytes, doc_.Int(*m, "run.max_output"));
      if (bytes < 256) return doc_.Error(*m, "run.max_output must be at least 256 bytes");
      s->max_output = static_cast<size_t>(bytes);
    }
    return Status::Ok();
  }

  Status Needs(const YamlNode& needs, Spec* s) {
    V4_RETURN_IF_ERROR(doc_.CheckKeys(needs, {"read", "write", "network"}, "needs"));
    for (const char* key : {"read", "write"}) {
      const YamlNode* n = needs.Find(key);
      if (!n) continue;
      std::vector<YamlNode> items = n->IsSequence() ? n->items : std::vector<YamlNode>{*n};
      for (const auto& item : items) {
        V4_ASSIGN_OR_RETURN(Tmpl t, Template(item, StrCat("needs.", key), *s));
        (std::string(key) == "read" ? s->reads : s->writes).push_back(std::move(t));
      }
    }
    if (const YamlNode* net = needs.Find("network")) {
      V4_ASSIGN_OR_RETURN(std::string v, doc_.String(*net, "needs.network"));
      if (v != "none" && v != "policy") {
        return doc_.Error(*net,
                          "needs.network is none (default) or policy (what the policy "
                          "allows)");
      }
      s->network = v == "policy";
    }
    return Status::Ok();
  }

  const YamlDoc& doc_;
};

class YamlTool : public Tool {
 public:
  explicit YamlTool(Spec spec) : s_(std::move(spec)) {}
  std::string name() const override { return s_.name; }
  std::string description() const override { return s_.description; }
  Json parameters() const override { return s_.parameters; }
  bool read_only() const override { return s_.writes.empty(); }
  bool declared() const override { return true; }

  std::vector<policies::Action> Describe(const Json& args, const ToolContext& ctx) const override {
    std::vector<policies::Action> out;
    const Json c = Context(args, ctx);
    policies::Action exec;
    exec.kind = policies::Action::kExec;
    auto argv = Argv(c);
    // A template that fails to render is reported by Run; the policy sees the program alone.
    exec.argv = argv.ok() ? *argv : std::vector<std::string>{s_.argv[0].t.Render(c).value_or("")};
    out.push_back(exec);
    for (const auto* list : {&s_.reads, &s_.writes}) {
      for (const Tmpl& t : *list) {
        policies::Action a;
        a.kind = list == &s_.reads ? policies::Action::kRead : policies::Action::kWrite;
        a.path = t.t.Render(c).value_or("");
        out.push_back(a);
      }
    }
    return out;
  }

  ToolResult Run(const Json& args, ToolContext& ctx) override {
    const Json c = Context(args, ctx);
    auto argv = Argv(c);
    if (!argv.ok()) return ToolResult::Error(StrCat(s_.name, ": ", argv.status().message()));
    // Declared paths are the workspace's: a value that climbs out (../, an absolute path, a
    // symbolic link) is refused before anything runs.
    for (const auto* list : {&s_.reads, &s_.writes}) {
      for (const Tmpl& t : *list) {
        auto v = t.t.Render(c);
        if (!v.ok()) return ToolResult::Error(StrCat(s_.name, ": ", v.status().message()));
        if (!ResolvesBeneath(ctx.workspace, *v)) {
          return ToolResult{ToolResult::kDenied,
                            StrCat(s_.name, ": the path \"", *v, "\" is outside the workspace")};
        }
      }
    }
    sandbox::Profile prof = ctx.profile;
    if (s_.writes.empty()) {
      // Declares no writes: nothing it runs may change the workspace or anything else.
      for (auto& b : prof.binds) b.writable = false;
      prof.root_writable = false;
    }
    if (!s_.network) prof.network = sandbox::NetworkMode::kNone;
    const auto& b = ctx.policy.budgets;
    prof.timeout_seconds =
        std::min(s_.timeout > 0 ? s_.timeout : b.command_timeout_default, b.command_timeout_max);
    for (const auto& [name, t] : s_.env) {
      auto v = t.t.Render(c);
      if (!v.ok())
        return ToolResult::Error(StrCat(s_.name, ": ", t.where, ": ", v.status().message()));
      prof.env.push_back(name + "=" + *v);
    }
    if (s_.stdin_text) {
      auto v = s_.stdin_text->t.Render(c);
      if (!v.ok()) return ToolResult::Error(StrCat(s_.name, ": ", v.status().message()));
      prof.stdin_data = *v;
    }
    prof.cwd = ctx.workspace;
    if (s_.cwd) {
      auto v = s_.cwd->t.Render(c);
      if (!v.ok()) return ToolResult::Error(StrCat(s_.name, ": ", v.status().message()));
      const fs::path dir = fs::path(ctx.workspace) / *v;
      if (!ResolvesBeneath(ctx.workspace, *v)) {
        return ToolResult::Error(
            StrCat(s_.name, ": the directory \"", *v, "\" is outside the workspace"));
      }
      if (!fs::is_directory(dir)) {
        return ToolResult::Error(StrCat(s_.name, ": no directory \"", *v, "\" in the workspace"));
      }
      prof.cwd = fs::weakly_canonical(dir).string();
    }
    sandbox::RunOptions opts;
    opts.cancel = ctx.cancel;
    auto report = launcher_.Run(prof, *argv, opts);
    if (!report.ok()) {
      return ToolResult{ToolResult::kFatal,
                        StrCat(s_.name, ": the sandbox failed: ", report.status().message())};
    }
    if (report->setup_failed()) {
      if (report->failed_step == "exec") {
        return ToolResult::Error(StrCat(s_.name, ": cannot run ", (*argv)[0], " (",
                                        std::strerror(report->failed_errno), ")"));
      }
      return ToolResult{ToolResult::kFatal, StrCat(s_.name, ": the sandbox could not start (step ",
                                                   report->failed_step, ")")};
    }
    const size_t budget = s_.max_output ? s_.max_output : ctx.output_budget;
    const std::string out = sandbox::SanitizeForModel(report->out.Text());
    const std::string err = sandbox::SanitizeForModel(report->err.Text());
    std::string text;
    if (!out.empty()) text += HeadTail(out, err.empty() ? budget : budget / 2, "");
    if (!err.empty()) {
      if (!text.empty() && text.back() != '\n') text += "\n";
      text += "[stderr]\n" + HeadTail(err, out.empty() ? budget : budget / 2, "");
    }
    if (!text.empty() && text.back() != '\n') text += "\n";
    ToolResult r;
    if (report->timed_out) {
      text += StrCat("[killed after ", prof.timeout_seconds, " s: timed out]\n");
      r.kind = ToolResult::kToolError;
    }
    text += StrCat("[exit code ", report->ShellExitCode(), "]");
    r.text = std::move(text);
    r.extra["exit_code"] = report->ShellExitCode();
    r.extra["argv"] = *argv;
    r.extra["wall_seconds"] = report->wall_seconds;
    return r;
  }

 private:
  Json Context(const Json& args, const ToolContext& ctx) const {
    Json a = s_.defaults;
    if (args.is_object()) {
      for (const auto& [k, v] : args.items()) a[k] = v;
    }
    return Json{{"args", a}, {"workspace", ctx.workspace}};
  }

  // One entry per template; a whole-expression entry that is null or false is left out and
  // an array becomes one entry per element.
  Result<std::vector<std::string>> Argv(const Json& c) const {
    std::vector<std::string> out;
    for (const Tmpl& t : s_.argv) {
      auto v = t.t.Evaluate(c);
      if (!v.ok()) return InvalidArgumentError(StrCat(t.where, ": ", v.status().message()));
      if (!t.t.is_single()) {
        out.push_back(expr::ToText(*v));
      } else if (v->is_null() || (v->is_boolean() && !v->get<bool>())) {
        continue;
      } else if (v->is_array()) {
        for (const Json& e : *v) out.push_back(expr::ToText(e));
      } else {
        out.push_back(expr::ToText(*v));
      }
    }
    for (const auto& a : out) {
      if (a.find('\0') != std::string::npos) {
        return InvalidArgumentError("an argument holds a NUL byte");
      }
    }
    return out;
  }

  Spec s_;
  sandbox::Launcher launcher_;
};

}  // namespace

Result<std::unique_ptr<Tool>> LoadYamlTool(const std::string& path) {
  V4_ASSIGN_OR_RETURN(YamlDoc doc, YamlDoc::Load(path));
  Loader loader(doc);
  V4_ASSIGN_OR_RETURN(Spec spec, loader.Load());
  return std::unique_ptr<Tool>(new YamlTool(std::move(spec)));
}

Result<std::vector<std::unique_ptr<Tool>>> LoadYamlTools(const std::string& path) {
  std::vector<std::unique_ptr<Tool>> out;
  std::error_code ec;
  if (!fs::is_directory(path, ec)) {
    V4_ASSIGN_OR_RETURN(auto tool, LoadYamlTool(path));
    out.push_back(std::move(tool));
    return out;
  }
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(path, ec)) {
    const std::string ext = e.path().extension().string();
    if (e.is_regular_file() && (ext == ".yaml" || ext == ".yml")) files.push_back(e.path());
  }
  if (ec) return InvalidArgumentError(StrCat(path, ": ", ec.message()));
  std::sort(files.begin(), files.end());
  if (files.empty()) return NotFoundError(StrCat(path, ": no .yaml tool files"));
  for (const auto& f : files) {
    V4_ASSIGN_OR_RETURN(auto tool, LoadYamlTool(f));
    out.push_back(std::move(tool));
  }
  return out;
}

Status AddYamlTools(const std::vector<std::string>& paths, Registry* registry) {
  for (const auto& p : paths) {
    V4_ASSIGN_OR_RETURN(auto tools, LoadYamlTools(p));
    for (auto& t : tools) {
      if (registry->Find(t->name()) != nullptr) {
        return AlreadyExistsError(StrCat(p, ": a tool named \"", t->name(),
                                         "\" exists already (built in or loaded "
                                         "from another file)"));
      }
      registry->Add(std::move(t));
    }
  }
  return Status::Ok();
}

}  // namespace v4agent::tools
