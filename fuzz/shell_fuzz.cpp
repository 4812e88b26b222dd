// libFuzzer target: shell scripts through the policy's front end with an oracle. For any
// script S, a git push appended after it must be denied by the shipped workspace-write policy
// (its no-git-push rule), and a touch appended must never be auto-allowed under approval:
// untrusted. Whatever S does to the parse (open quotes, here-documents, continuations,
// substitutions), the decision may only become stricter. Also: never a crash or a throw.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "policies/policy.h"
#include "policies/shell_syntax.h"

namespace {

v4agent::policies::Decision DecideScript(const v4agent::policies::Policy& p,
                                         const std::string& script) {
  v4agent::policies::Action a;
  a.argv = {"bash", "-c", script};
  return v4agent::policies::Decide(p, a, false);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace v4agent::policies;
  static const Policy ww = *BuiltinPolicy("workspace-write");
  static const Policy untrusted = [] {
    Policy p = *BuiltinPolicy("workspace-write");
    p.approval = Approval::kUntrusted;
    p.rules.clear();
    return p;
  }();
  const std::string s(reinterpret_cast<const char*>(data), size);
  (void)AnalyzeShell(s);
  if (DecideScript(ww, s + "\n;git push origin main").verdict == Verdict::kAllow) std::abort();
  if (DecideScript(untrusted, s + "\n;touch PWNED").verdict == Verdict::kAllow) std::abort();
  return 0;
}
