#include "batch/instance.h"

#include <regex>
#include <set>

#include "common/file_util.h"
#include "common/hash.h"
#include "common/strings.h"

namespace v4agent::batch {
namespace {

// One JSON document per line, or one document holding a list (or, for predictions, a dict).
Result<std::vector<std::pair<std::string, Json>>> ReadRecords(const std::string& path,
                                                              bool allow_dict) {
  V4_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  std::vector<std::pair<std::string, Json>> out;
  const std::string_view body = StripWhitespace(text);
  if (!body.empty() &&
      (body[0] == '[' || (allow_dict && body[0] == '{' && ParseJson(body, path).ok() &&
                          !ParseJson(body, path)->contains("instance_id")))) {
    V4_ASSIGN_OR_RETURN(Json doc, ParseJson(body, path));
    if (doc.is_array()) {
      for (size_t i = 0; i < doc.size(); ++i) out.emplace_back(StrCat(path, "[", i, "]"), doc[i]);
    } else {
      for (auto it = doc.begin(); it != doc.end(); ++it) {
        Json rec = it.value();
        if (rec.is_object() && !rec.contains("instance_id")) rec["instance_id"] = it.key();
        out.emplace_back(StrCat(path, " key \"", it.key(), "\""), rec);
      }
    }
    return out;
  }
  int line_no = 0;
  for (const std::string& line : StrSplit(text, '\n')) {
    ++line_no;
    if (StripWhitespace(line).empty()) continue;
    const std::string where = StrCat(path, ":", line_no);
    V4_ASSIGN_OR_RETURN(Json rec, ParseJson(line, where));
    out.emplace_back(where, std::move(rec));
  }
  return out;
}

Result<std::string> Field(const Json& rec, const char* key, const std::string& where,
                          bool required) {
  auto it = rec.find(key);
  if (it == rec.end() || it->is_null()) {
    if (required) return InvalidArgumentError(StrCat(where, ": field '", key, "': missing"));
    return std::string();
  }
  if (!it->is_string()) {
    return InvalidArgumentError(StrCat(where, ": field '", key, "': expected a string"));
  }
  return it->get<std::string>();
}

// A list of test ids, or a string holding one as JSON (the published datasets' form).
Result<std::vector<std::string>> TestList(const Json& rec, const char* key,
                                          const std::string& where) {
  auto it = rec.find(key);
  if (it == rec.end() || it->is_null()) return std::vector<std::string>{};
  Json list = *it;
  if (list.is_string()) {
    V4_ASSIGN_OR_RETURN(list,
                        ParseJson(list.get<std::string>(), StrCat(where, " field '", key, "'")));
  }
  if (!list.is_array()) {
    return InvalidArgumentError(StrCat(where, ": field '", key, "': expected a list of test ids"));
  }
  std::vector<std::string> out;
  for (const Json& t : list) {
    if (!t.is_string()) {
      return InvalidArgumentError(StrCat(where, ": field '", key, "': test ids must be strings"));
    }
    out.push_back(t.get<std::string>());
  }
  return out;
}

}  // namespace

Result<std::vector<Instance>> LoadInstances(const std::string& path) {
  V4_ASSIGN_OR_RETURN(auto records, ReadRecords(path, false));
  std::vector<Instance> out;
  std::set<std::string> seen;
  for (const auto& [where, rec] : records) {
    if (!rec.is_object()) return InvalidArgumentError(StrCat(where, ": expected a JSON object"));
    Instance in;
    V4_ASSIGN_OR_RETURN(in.id, Field(rec, "instance_id", where, true));
    V4_ASSIGN_OR_RETURN(in.repo, Field(rec, "repo", where, true));
    V4_ASSIGN_OR_RETURN(in.base_commit, Field(rec, "base_commit", where, true));
    V4_ASSIGN_OR_RETURN(in.problem_statement, Field(rec, "problem_statement", where, true));
    V4_ASSIGN_OR_RETURN(in.hints_text, Field(rec, "hints_text", where, false));
    V4_ASSIGN_OR_RETURN(in.patch, Field(rec, "patch", where, false));
    V4_ASSIGN_OR_RETURN(in.test_patch, Field(rec, "test_patch", where, false));
    V4_ASSIGN_OR_RETURN(in.environment_setup_commit,
                        Field(rec, "environment_setup_commit", where, false));
    if (auto v = rec.find("version"); v != rec.end() && v->is_number()) {
      in.version = v->dump();  // some exports store 3.0 as a number
    } else {
      V4_ASSIGN_OR_RETURN(in.version, Field(rec, "version", where, false));
    }
    V4_ASSIGN_OR_RETURN(in.fail_to_pass, TestList(rec, "FAIL_TO_PASS", where));
    V4_ASSIGN_OR_RETURN(in.pass_to_pass, TestList(rec, "PASS_TO_PASS", where));
    if (!seen.insert(in.id).second) {
      return InvalidArgumentError(StrCat(where, ": instance_id '", in.id, "' appears twice"));
    }
    out.push_back(std::move(in));
  }
  return out;
}

int ShardOf(const std::string& instance_id, int n) {
  return static_cast<int>(Hash64(instance_id) % static_cast<uint64_t>(n));
}

Result<std::vector<Instance>> Select(std::vector<Instance> all, const Selection& s) {
  if (!s.filter.empty()) {
    std::regex re;
    try {
      re = std::regex(s.filter, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      return InvalidArgumentError(StrCat("--filter '", s.filter, "': ", e.what()));
    }
    std::vector<Instance> kept;
    for (auto& in : all) {
      if (std::regex_search(in.id, re)) kept.push_back(std::move(in));
    }
    all = std::move(kept);
  }
  if (!s.slice.empty()) {
    const size_t colon = s.slice.find(':');
    int64_t a = 0, b = static_cast<int64_t>(all.size());
    const std::string sa = colon == std::string::npos ? s.slice : s.slice.substr(0, colon);
    const std::string sb = colon == std::string::npos ? "" : s.slice.substr(colon + 1);
    if (colon == std::string::npos || (!sa.empty() && !ParseInt64(sa, &a)) ||
        (!sb.empty() && !ParseInt64(sb, &b))) {
      return InvalidArgumentError(
          StrCat("--slice '", s.slice, "': expected A:B (either may be empty)"));
    }
    const int64_t n = static_cast<int64_t>(all.size());
    auto clamp = [n](int64_t v) { return std::clamp<int64_t>(v < 0 ? v + n : v, 0, n); };
    a = clamp(a);
    b = clamp(b);
    all = std::vector<Instance>(all.begin() + a, all.begin() + std::max(a, b));
  }
  if (!s.shard.empty()) {
    int64_t k = -1, n = 0;
    const size_t slash = s.shard.find('/');
    if (slash == std::string::npos || !ParseInt64(s.shard.substr(0, slash), &k) ||
        !ParseInt64(s.shard.substr(slash + 1), &n) || n <= 0 || k < 0 || k >= n) {
      return InvalidArgumentError(StrCat("--shard '", s.shard, "': expected K/N with 0 <= K < N"));
    }
    std::vector<Instance> kept;
    for (auto& in : all) {
      if (ShardOf(in.id, static_cast<int>(n)) == k) kept.push_back(std::move(in));
    }
    all = std::move(kept);
  }
  return all;
}

Result<std::map<std::string, Prediction>> LoadPredictions(const std::string& path,
                                                          const std::vector<Instance>& instances) {
  std::map<std::string, Prediction> out;
  if (path == "gold") {
    for (const Instance& in : instances) out[in.id] = Prediction{in.id, "gold", in.patch};
    return out;
  }
  V4_ASSIGN_OR_RETURN(auto records, ReadRecords(path, true));
  for (const auto& [where, rec] : records) {
    if (!rec.is_object()) return InvalidArgumentError(StrCat(where, ": expected a JSON object"));
    Prediction p;
    V4_ASSIGN_OR_RETURN(p.instance_id, Field(rec, "instance_id", where, true));
    V4_ASSIGN_OR_RETURN(p.model, Field(rec, "model_name_or_path", where, false));
    V4_ASSIGN_OR_RETURN(p.patch, Field(rec, "model_patch", where, false));
    if (p.model.empty()) p.model = "unknown";
    out[p.instance_id] = std::move(p);  // a later line wins, as the harness reads a dict
  }
  return out;
}

std::vector<std::string> FilesInDiff(const std::string& diff) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (const std::string& line : StrSplit(diff, '\n')) {
    std::string file;
    if (StartsWith(line, "+++ ")) {
      file = std::string(StripWhitespace(line.substr(4)));
      const size_t tab = file.find('\t');
      if (tab != std::string::npos) file.resize(tab);
      if (file == "/dev/null") continue;
      if (StartsWith(file, "b/")) file = file.substr(2);
    } else if (StartsWith(line, "diff --git ")) {
      const size_t b = line.rfind(" b/");
      if (b == std::string::npos) continue;
      file = line.substr(b + 3);
    } else {
      continue;
    }
    if (seen.insert(file).second) out.push_back(file);
  }
  return out;
}

}  // namespace v4agent::batch
