#include "common/yaml_doc.h"

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <cstdlib>

#include "common/file_util.h"
#include "common/strings.h"

namespace v4agent {
namespace {

constexpr int kMaxDepth = 64;  // a hostile file of nested brackets must not exhaust the stack

Status Convert(const YAML::Node& in, YamlNode* out, int depth, const std::string& file) {
  const YAML::Mark m = in.Mark();
  out->line = m.line >= 0 ? m.line + 1 : 0;
  out->column = m.column >= 0 ? m.column + 1 : 0;
  if (depth > kMaxDepth) {
    return InvalidArgumentError(StrCat(file, ":", out->line, ":", out->column,
                                       ": nested deeper than ", kMaxDepth, " levels"));
  }
  switch (in.Type()) {
    case YAML::NodeType::Scalar:
      out->kind = YamlNode::Kind::kScalar;
      out->scalar = in.Scalar();
      out->quoted = in.Tag() == "!";
      return Status::Ok();
    case YAML::NodeType::Sequence:
      out->kind = YamlNode::Kind::kSequence;
      for (const auto& item : in) {
        YamlNode n;
        V4_RETURN_IF_ERROR(Convert(item, &n, depth + 1, file));
        out->items.push_back(std::move(n));
      }
      return Status::Ok();
    case YAML::NodeType::Map:
      out->kind = YamlNode::Kind::kMap;
      for (const auto& kv : in) {
        YamlNode k, v;
        V4_RETURN_IF_ERROR(Convert(kv.first, &k, depth + 1, file));
        V4_RETURN_IF_ERROR(Convert(kv.second, &v, depth + 1, file));
        if (!k.IsScalar()) {
          return InvalidArgumentError(
              StrCat(file, ":", k.line, ":", k.column, ": mapping keys must be plain strings"));
        }
        for (const auto& [seen, unused] : out->entries) {
          if (seen.scalar == k.scalar) {
            return InvalidArgumentError(StrCat(file, ":", k.line, ":", k.column,
                                               ": duplicate key \"", k.scalar, "\" (first at line ",
                                               seen.line, ")"));
          }
        }
        out->entries.push_back(YamlEntry{std::move(k), std::move(v)});
      }
      return Status::Ok();
    default:
      out->kind = YamlNode::Kind::kNull;
      return Status::Ok();
  }
}

}  // namespace

const YamlNode* YamlNode::Find(std::string_view key) const {
  for (const auto& [k, v] : entries) {
    if (k.scalar == key) return &v;
  }
  return nullptr;
}

Result<YamlDoc> YamlDoc::Parse(const std::string& text, const std::string& file) {
  YamlDoc doc;
  doc.file_ = file;
  try {
    YAML::Node root = YAML::Load(text);
    V4_RETURN_IF_ERROR(Convert(root, &doc.root_, 0, file));
  } catch (const YAML::Exception& e) {
    return InvalidArgumentError(
        StrCat(file, ":", e.mark.line + 1, ":", e.mark.column + 1, ": ", e.msg));
  } catch (const std::exception& e) {
    return InvalidArgumentError(StrCat(file, ": ", e.what()));
  }
  return doc;
}

Result<YamlDoc> YamlDoc::Load(const std::string& path) {
  V4_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  return Parse(text, path);
}

std::string YamlDoc::Where(const YamlNode& at) const {
  if (at.line <= 0) return file_;
  return StrCat(file_, ":", at.line, ":", at.column);
}

Status YamlDoc::Error(const YamlNode& at, std::string_view message) const {
  return InvalidArgumentError(StrCat(Where(at), ": ", message));
}

Status YamlDoc::CheckKeys(const YamlNode& map, std::initializer_list<std::string_view> allowed,
                          std::string_view what) const {
  if (!map.IsMap()) return Error(map, StrCat(what, " must be a mapping"));
  for (const auto& [k, v] : map.entries) {
    bool ok = false;
    for (auto a : allowed) ok = ok || k.scalar == a;
    if (ok) continue;
    std::vector<std::string> names(allowed.begin(), allowed.end());
    return Error(k, StrCat("unknown key \"", k.scalar, "\" in ", what,
                           " (known: ", StrJoin(names, ", "), ")"));
  }
  return Status::Ok();
}

Result<std::string> YamlDoc::String(const YamlNode& n, std::string_view what) const {
  if (!n.IsScalar()) return Error(n, StrCat(what, " must be a string"));
  return n.scalar;
}

Result<int64_t> YamlDoc::Int(const YamlNode& n, std::string_view what) const {
  if (n.IsScalar() && !n.quoted) {
    int64_t v = 0;
    const char* b = n.scalar.data();
    const char* e = b + n.scalar.size();
    auto [p, ec] = std::from_chars(b, e, v);
    if (ec == std::errc() && p == e) return v;
  }
  return Error(n, StrCat(what, " must be an integer"));
}

Result<double> YamlDoc::Number(const YamlNode& n, std::string_view what) const {
  if (n.IsScalar() && !n.quoted && !n.scalar.empty()) {
    char* end = nullptr;
    const double v = std::strtod(n.scalar.c_str(), &end);
    if (end == n.scalar.c_str() + n.scalar.size()) return v;
  }
  return Error(n, StrCat(what, " must be a number"));
}

Result<bool> YamlDoc::Bool(const YamlNode& n, std::string_view what) const {
  if (n.IsScalar() && !n.quoted) {
    if (n.scalar == "true" || n.scalar == "True" || n.scalar == "yes") return true;
    if (n.scalar == "false" || n.scalar == "False" || n.scalar == "no") return false;
  }
  return Error(n, StrCat(what, " must be true or false"));
}

Result<std::vector<std::string>> YamlDoc::StringList(const YamlNode& n,
                                                     std::string_view what) const {
  if (n.IsScalar()) return std::vector<std::string>{n.scalar};
  if (!n.IsSequence()) return Error(n, StrCat(what, " must be a list of strings"));
  std::vector<std::string> out;
  for (const auto& item : n.items) {
    if (!item.IsScalar()) return Error(item, StrCat(what, " entries must be strings"));
    out.push_back(item.scalar);
  }
  return out;
}

}  // namespace v4agent
