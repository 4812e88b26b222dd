// Enforces docs/architecture.md's dependency arrows on the source tree: every
// `#include "module/..."` in a module's files must name an allowed module, and third-party
// headers may appear only in the one adapter that owns them. A forbidden arrow fails CI.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

const std::map<std::string, std::set<std::string>>& AllowedModules() {
  static const std::map<std::string, std::set<std::string>> kAllowed = {
      {"common", {"common"}},
      {"engine", {"common", "engine"}},
      {"dsml", {"common", "dsml"}},
      {"sandbox", {"common", "sandbox"}},
      {"policies", {"common", "policies"}},
      {"tools", {"common", "tools", "sandbox", "policies"}},
      {"agent", {"common", "agent", "engine", "dsml", "tools", "policies"}},
      {"server", {"common", "server", "engine", "dsml"}},
      {"batch", {"common", "batch", "agent", "engine", "dsml", "tools", "policies", "sandbox"}},
      {"pipeline",
       {"common", "pipeline", "agent", "engine", "dsml", "tools", "policies", "sandbox"}},
      // apps is the top of the graph: the CLI exposes every module's commands.
      {"apps",
       {"common", "apps", "agent", "server", "engine", "dsml", "sandbox", "policies", "tools",
        "batch", "pipeline"}},
  };
  return kAllowed;
}

struct ThirdParty {
  std::regex header;
  std::string name;
  // Path prefixes (relative to the repo root) allowed to include it.
  std::vector<std::string> owners;
};

const std::vector<ThirdParty>& ThirdPartyRules() {
  static const std::vector<ThirdParty> kRules = {
      {std::regex(R"(^(seccomp\.h)$)"), "libseccomp", {"sandbox/"}},
      {std::regex(R"(^yaml-cpp/)"),
       "yaml-cpp",
       {"policies/", "batch/eval_spec.cpp", "common/yaml_doc.cpp"}},
      {std::regex(R"(^boost/)"), "Boost", {"agent/", "server/"}},
      {std::regex(R"(^openssl/)"), "OpenSSL", {"agent/", "server/"}},
      {std::regex(R"(^pcre2\.h$)"),
       "PCRE2",
       {"engine/tokenizer/", "tools/search_tool.cpp", "common/regex.cpp"}},
      {std::regex(R"(^(cuda|cuda_runtime|cublas|cublasLt|nccl|cudnn)[^/]*\.h$)"),
       "CUDA",
       {"engine/kernels/cuda/"}},
  };
  return kRules;
}

struct Violation {
  std::string file;
  int line;
  std::string text;
};

std::vector<Violation> Scan(const fs::path& root) {
  std::vector<Violation> out;
  static const std::regex kInclude(R"(^\s*#\s*include\s*([<"])([^">]+)[">])");
  for (const auto& [module, allowed] : AllowedModules()) {
    fs::path dir = root / module;
    if (!fs::exists(dir)) continue;
    for (const auto& entry : fs::recursive_directory_iterator(dir)) {
      if (!entry.is_regular_file()) continue;
      auto ext = entry.path().extension().string();
      if (ext != ".h" && ext != ".cpp" && ext != ".cu" && ext != ".cuh" && ext != ".cc") continue;
      std::string rel = fs::relative(entry.path(), root).string();
      std::ifstream in(entry.path());
      std::string line;
      int n = 0;
      while (std::getline(in, line)) {
        ++n;
        std::smatch m;
        if (!std::regex_search(line, m, kInclude)) continue;
        std::string path = m[2];
        if (m[1] == "\"") {
          auto slash = path.find('/');
          if (slash == std::string::npos) continue;  // same-folder include
          std::string target = path.substr(0, slash);
          if (AllowedModules().count(target) && !allowed.count(target)) {
            out.push_back({rel, n, module + " may not include " + target + ": " + path});
          }
          continue;
        }
        for (const auto& rule : ThirdPartyRules()) {
          if (!std::regex_search(path, rule.header)) continue;
          bool ok = false;
          for (const auto& owner : rule.owners) ok |= rel.rfind(owner, 0) == 0;
          if (!ok) out.push_back({rel, n, rule.name + " header outside its adapter: " + path});
        }
      }
    }
  }
  return out;
}

TEST(IncludeRulesTest, ModulesRespectArchitectureArrows) {
  std::vector<Violation> v = Scan(V4_SOURCE_DIR);
  std::string report;
  for (const auto& x : v) report += x.file + ":" + std::to_string(x.line) + ": " + x.text + "\n";
  EXPECT_TRUE(v.empty()) << report;
}

TEST(IncludeRulesTest, DetectsAForbiddenArrow) {
  // The checker itself must be able to fail: plant a bad include in a scratch tree.
  fs::path root = fs::temp_directory_path() / ("v4agent-arch-" + std::to_string(::getpid()));
  fs::create_directories(root / "engine");
  fs::create_directories(root / "dsml");
  std::ofstream(root / "engine" / "bad.cpp")
      << "#include \"agent/loop.h\"\n#include <boost/asio.hpp>\n";
  std::ofstream(root / "dsml" / "ok.h") << "#include \"common/status.h\"\n#include <string>\n";
  auto v = Scan(root);
  fs::remove_all(root);
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[0].file, "engine/bad.cpp");
  EXPECT_NE(v[0].text.find("may not include agent"), std::string::npos);
  EXPECT_NE(v[1].text.find("Boost"), std::string::npos);
}

}  // namespace
