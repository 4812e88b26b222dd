// Reads the §10 example files of tests/dsml/cases (input JSON + expected bytes).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "common/file_util.h"

namespace v4agent::dsml::testing {

inline std::string CaseDir() { return std::string(V4_SOURCE_DIR) + "/tests/dsml/cases"; }

// Case names (file stems) having a file with `ext` (e.g. ".prompt").
inline std::vector<std::string> CasesWith(const std::string& ext) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(CaseDir())) {
    const std::string name = e.path().filename().string();
    if (name.size() > ext.size() && name.compare(name.size() - ext.size(), ext.size(), ext) == 0) {
      out.push_back(name.substr(0, name.size() - ext.size()));
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

inline std::string ReadCase(const std::string& name) {
  auto r = ReadFile(CaseDir() + "/" + name);
  return r.ok() ? *r : std::string();
}

}  // namespace v4agent::dsml::testing
