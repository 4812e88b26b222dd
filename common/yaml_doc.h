// A YAML document as plain values with positions: the one adapter over yaml-cpp for the
// config loaders that came after the policies (batch configs, YAML tools, pipelines). Every
// node keeps its 1-based line and column so a loader can say file:line:col for any error, and
// the typed getters below return such errors themselves. yaml-cpp and its exceptions never
// leave yaml_doc.cpp.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace v4agent {

struct YamlEntry;

struct YamlNode {
  enum class Kind { kNull, kScalar, kSequence, kMap };
  Kind kind = Kind::kNull;
  std::string scalar;
  bool quoted = false;             // a quoted scalar is always a string, never a number or bool
  std::vector<YamlNode> items;     // kSequence
  std::vector<YamlEntry> entries;  // kMap, in file order
  int line = 0, column = 0;        // 1-based; 0 when unknown

  bool IsNull() const { return kind == Kind::kNull; }
  bool IsScalar() const { return kind == Kind::kScalar; }
  bool IsSequence() const { return kind == Kind::kSequence; }
  bool IsMap() const { return kind == Kind::kMap; }
  // The value under `key` in a mapping, or nullptr.
  const YamlNode* Find(std::string_view key) const;
};

// One key: value of a mapping (a struct, not a pair: a pair needs YamlNode complete).
struct YamlEntry {
  YamlNode key, value;
};

// A parsed file: its name for messages and its root.
class YamlDoc {
 public:
  static Result<YamlDoc> Parse(const std::string& text, const std::string& file);
  static Result<YamlDoc> Load(const std::string& path);

  const YamlNode& root() const { return root_; }
  const std::string& file() const { return file_; }

  // "file:line:col: message".
  Status Error(const YamlNode& at, std::string_view message) const;
  std::string Where(const YamlNode& at) const;

  // Errors name the key's position and the keys allowed.
  Status CheckKeys(const YamlNode& map, std::initializer_list<std::string_view> allowed,
                   std::string_view what) const;
  Result<std::string> String(const YamlNode& n, std::string_view what) const;
  Result<int64_t> Int(const YamlNode& n, std::string_view what) const;
  Result<double> Number(const YamlNode& n, std::string_view what) const;
  Result<bool> Bool(const YamlNode& n, std::string_view what) const;
  // A list of strings; a single string is a list of one.
  Result<std::vector<std::string>> StringList(const YamlNode& n, std::string_view what) const;

 private:
  std::string file_;
  YamlNode root_;
};

}  // namespace v4agent
