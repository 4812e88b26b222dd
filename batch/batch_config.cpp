#include "batch/batch_config.h"

#include <filesystem>
#include <type_traits>

#include "common/file_util.h"
#include "common/strings.h"
#include "common/yaml_doc.h"
#include "policies/policy.h"

namespace v4agent::batch {
namespace {

namespace fs = std::filesystem;

std::string Relative(const std::string& config, const std::string& path) {
  if (path.empty() || path[0] == '/') return path;
  return (fs::path(config).parent_path() / path).lexically_normal().string();
}

}  // namespace

Result<BatchConfig> ParseBatchConfig(const std::string& text, const std::string& path) {
  V4_ASSIGN_OR_RETURN(YamlDoc doc, YamlDoc::Parse(text, path));
  const YamlNode& root = doc.root();
  BatchConfig c;
  c.path = path;
  if (root.IsNull()) return c;
  V4_RETURN_IF_ERROR(doc.CheckKeys(
      root, {"task_template", "include_hints", "workers", "policy", "budgets", "model", "tools"},
      "the batch config"));
  if (const YamlNode* n = root.Find("task_template")) {
    V4_ASSIGN_OR_RETURN(c.task_template, doc.String(*n, "task_template"));
    static const char* kFields[] = {"problem_statement", "hints_text",  "repo",
                                    "instance_id",       "base_commit", "version"};
    // An unknown {field} would reach the agent verbatim: name it now instead.
    const std::string& t = *c.task_template;
    for (size_t at = t.find('{'); at != std::string::npos; at = t.find('{', at + 1)) {
      const size_t end = t.find('}', at);
      if (end == std::string::npos) break;
      const std::string name = t.substr(at + 1, end - at - 1);
      bool known = false;
      for (const char* f : kFields) known = known || name == f;
      if (!known && !name.empty() && name.find_first_of(" \n{") == std::string::npos) {
        return doc.Error(*n, StrCat("task_template: unknown field {", name,
                                    "} (known: problem_statement, hints_text, repo, "
                                    "instance_id, base_commit, version)"));
      }
    }
  }
  if (const YamlNode* n = root.Find("include_hints")) {
    V4_ASSIGN_OR_RETURN(c.include_hints, doc.Bool(*n, "include_hints"));
  }
  if (const YamlNode* n = root.Find("workers")) {
    V4_ASSIGN_OR_RETURN(int64_t w, doc.Int(*n, "workers"));
    if (w < 1 || w > 256) return doc.Error(*n, "workers must be between 1 and 256");
    c.workers = static_cast<int>(w);
  }
  if (const YamlNode* n = root.Find("policy")) {
    V4_ASSIGN_OR_RETURN(std::string p, doc.String(*n, "policy"));
    if (policies::BuiltinPolicy(p).ok()) {
      c.policy = "builtin:" + p;
    } else {
      const std::string file = Relative(path, StartsWith(p, "builtin:") ? "" : p);
      if (StartsWith(p, "builtin:") || !fs::is_regular_file(file)) {
        return doc.Error(*n, StrCat("policy \"", p,
                                    "\" is neither a builtin policy (workspace-write, read-only, "
                                    "full-access) nor a file"));
      }
      c.policy = file;
    }
  }
  if (const YamlNode* b = root.Find("budgets")) {
    V4_RETURN_IF_ERROR(doc.CheckKeys(*b,
                                     {"max_steps", "max_wall_seconds", "max_generated_tokens",
                                      "max_context_tokens", "command_timeout_seconds"},
                                     "budgets"));
    // Sets `out` from budgets.KEY when present; the value must be above 0.
    auto positive = [&](const char* key, auto* out) -> Status {
      const YamlNode* n = b->Find(key);
      if (n == nullptr) return Status::Ok();
      const std::string what = StrCat("budgets.", key);
      using T = typename std::remove_reference_t<decltype(*out)>::value_type;
      T v{};
      if constexpr (std::is_floating_point_v<T>) {
        V4_ASSIGN_OR_RETURN(v, doc.Number(*n, what));
      } else {
        V4_ASSIGN_OR_RETURN(int64_t i, doc.Int(*n, what));
        v = static_cast<T>(i);
      }
      if (!(v > 0)) return doc.Error(*n, what + " must be above 0");
      *out = v;
      return Status::Ok();
    };
    V4_RETURN_IF_ERROR(positive("max_steps", &c.max_steps));
    V4_RETURN_IF_ERROR(positive("max_wall_seconds", &c.max_wall_seconds));
    V4_RETURN_IF_ERROR(positive("max_generated_tokens", &c.max_generated_tokens));
    V4_RETURN_IF_ERROR(positive("max_context_tokens", &c.max_context_tokens));
    V4_RETURN_IF_ERROR(positive("command_timeout_seconds", &c.command_timeout_seconds));
  }
  if (const YamlNode* m = root.Find("model")) {
    V4_RETURN_IF_ERROR(doc.CheckKeys(*m, {"max_turn_tokens", "thinking", "effort"}, "model"));
    if (const YamlNode* n = m->Find("max_turn_tokens")) {
      V4_ASSIGN_OR_RETURN(int64_t v, doc.Int(*n, "model.max_turn_tokens"));
      if (v < 1) return doc.Error(*n, "model.max_turn_tokens must be at least 1");
      c.max_turn_tokens = static_cast<int>(v);
    }
    if (const YamlNode* n = m->Find("thinking")) {
      V4_ASSIGN_OR_RETURN(c.thinking, doc.Bool(*n, "model.thinking"));
    }
    if (const YamlNode* n = m->Find("effort")) {
      V4_ASSIGN_OR_RETURN(std::string e, doc.String(*n, "model.effort"));
      if (e != "high" && e != "max") return doc.Error(*n, "model.effort must be high or max");
      c.effort = e;
    }
  }
  if (const YamlNode* n = root.Find("tools")) {
    V4_ASSIGN_OR_RETURN(std::vector<std::string> paths, doc.StringList(*n, "tools"));
    for (const auto& t : paths) {
      const std::string file = Relative(path, t);
      if (!fs::exists(file)) return doc.Error(*n, StrCat("tools: ", file, " does not exist"));
      c.tools.push_back(file);
    }
  }
  return c;
}

Result<BatchConfig> LoadBatchConfig(const std::string& path) {
  V4_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  return ParseBatchConfig(text, path);
}

}  // namespace v4agent::batch
