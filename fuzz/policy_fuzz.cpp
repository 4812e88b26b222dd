// libFuzzer target: the policy loader on any text never crashes and never throws; a policy
// that loads decides a few commands without crashing.
#include <cstddef>
#include <cstdint>
#include <string>

#include "policies/policy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace v4agent::policies;
  auto p = LoadPolicyText(std::string(reinterpret_cast<const char*>(data), size), "fuzz.yaml");
  if (p.ok()) {
    for (const char* script : {"ls -la", "git push --force && rm -rf /", "echo 'x"}) {
      Action a;
      a.argv = {"sh", "-c", script};
      (void)Decide(*p, a, false);
    }
  }
  return 0;
}
