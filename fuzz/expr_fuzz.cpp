// libFuzzer target: the expression language on any text: parsing never crashes, a parsed
// expression evaluates over a fixed context without crashing, and a template renders (also
// for the shell) within its bounds.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/expr.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace v4agent;
  const std::string text(reinterpret_cast<const char*>(data), size);
  static const Json ctx = Json::parse(R"({"inputs": {"a": "x", "n": 3, "l": [1, "two", null]},
      "steps": {"s": {"stdout": "a\nb", "exit_code": 1, "outputs": {"k": "v"}}},
      "env": {"HOME": "/root"}})");
  if (auto e = expr::Expression::Parse(text); e.ok()) {
    (void)e->Evaluate(ctx, "success");
    (void)e->Evaluate(ctx, "failure");
  }
  if (auto t = expr::Template::Parse(text); t.ok()) {
    (void)t->Evaluate(ctx);
    std::vector<std::string> env;
    std::string inlined;
    (void)t->RenderForShell(ctx, "success", "V", &env, &inlined);
  }
  return 0;
}
