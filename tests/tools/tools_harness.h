// A temporary workspace with a tool context and the default registry, for the tool tests.
#pragma once

#include <sys/stat.h>

#include <cstdlib>

#include "common/file_util.h"
#include "common/strings.h"
#include "tools/registry.h"

namespace v4agent::tools::testing {

class Workspace {
 public:
  explicit Workspace(const std::string& policy = "workspace-write")
      : Workspace(*policies::BuiltinPolicy(policy)) {}
  explicit Workspace(const policies::Policy& policy) {
    chmod(dir_.path().c_str(), 0777);
    auto ctx = MakeContext(dir_.path(), policy);
    V4_CHECK(ctx.ok()) << ctx.status().ToString();
    ctx_ = std::move(ctx).value();
  }
  ToolResult Call(const std::string& tool, const Json& args) {
    return Invoke(registry_, *ctx_, tool, DumpJson(args));
  }
  ToolResult CallRaw(const std::string& tool, const std::string& args) {
    return Invoke(registry_, *ctx_, tool, args);
  }
  void Write(const std::string& rel, const std::string& text) {
    const std::string p = dir_.path() + "/" + rel;
    std::string parent = p.substr(0, p.rfind('/'));
    V4_CHECK(std::system(("mkdir -p '" + parent + "'").c_str()) == 0);
    V4_CHECK(WriteFile(p, text).ok());
  }
  std::string Read(const std::string& rel) {
    auto r = ReadFile(dir_.path() + "/" + rel);
    return r.ok() ? *r : "<missing>";
  }
  bool Exists(const std::string& rel) { return PathExists(dir_.path() + "/" + rel); }
  int Sh(const std::string& cmd) {
    return std::system(("cd '" + dir_.path() + "' && " + cmd).c_str());
  }
  const std::string& path() const { return dir_.path(); }
  ToolContext& ctx() { return *ctx_; }

 private:
  ScopedTempDir dir_;
  Registry registry_ = Registry::Default();
  std::unique_ptr<ToolContext> ctx_;
};

}  // namespace v4agent::tools::testing
