// `v4agent model compare A B`: compares two goldens-format result files tensor by tensor
// (max abs difference, per-row top-1 agreement for logits, exact equality for token ids).
#include <cmath>
#include <cstdio>

#include "apps/command.h"
#include "apps/flags.h"
#include "engine/checkpoint/safetensors.h"

namespace v4agent::apps {
namespace {

using namespace v4agent::engine;

constexpr char kUsage[] =
    "usage: v4agent model compare OURS.safetensors REFERENCE.safetensors [--tolerance X]\n"
    "Compares every tensor the two files share; exits 1 when a float tensor differs by more\n"
    "than the tolerance (default 2e-4) or integer tensors differ.";

int Run(const std::vector<std::string>& args) {
  auto flags = Flags::Parse(args, FlagSpec{{"tolerance"}, {}});
  if (!flags.ok() || flags->positional().size() != 2) {
    std::fprintf(stderr, "%s\n", kUsage);
    return 2;
  }
  auto tol = flags->GetDouble("tolerance", 2e-4);
  auto a = Checkpoint::Open(flags->positional()[0]);
  auto b = Checkpoint::Open(flags->positional()[1]);
  if (!tol.ok() || !a.ok() || !b.ok()) {
    std::fprintf(stderr, "v4agent model compare: %s\n",
                 !tol.ok() ? tol.status().message().c_str()
                 : !a.ok() ? a.status().ToString().c_str()
                           : b.status().ToString().c_str());
    return 1;
  }
  bool ok = true;
  int shared = 0;
  for (const TensorView* ta : (*a)->tensors()) {
    const TensorView* tb = (*b)->Find(ta->name);
    if (tb == nullptr) continue;
    ++shared;
    if (ta->shape != tb->shape || ta->dtype != tb->dtype) {
      std::printf("%-16s shape/dtype differ: %s vs %s\n", ta->name.c_str(), ta->Describe().c_str(),
                  tb->Describe().c_str());
      ok = false;
      continue;
    }
    if (ta->dtype == DType::kI32) {
      auto x = ta->Copy<int32_t>(), y = tb->Copy<int32_t>();
      bool eq = std::equal(x.begin(), x.end(), y.begin(), y.end());
      std::printf("%-16s %s\n", ta->name.c_str(), eq ? "identical" : "DIFFERENT");
      ok &= eq;
      continue;
    }
    if (ta->dtype != DType::kF32) continue;
    auto x = ta->Copy<float>(), y = tb->Copy<float>();
    double max_abs = 0;
    for (size_t i = 0; i < x.size(); ++i)
      max_abs = std::max(max_abs, std::fabs(double(x[i]) - y[i]));
    std::string extra;
    if (ta->shape.size() == 2) {
      const int64_t rows = ta->shape[0], cols = ta->shape[1];
      int64_t agree = 0;
      for (int64_t r = 0; r < rows; ++r) {
        auto xa = std::max_element(x.begin() + r * cols, x.begin() + (r + 1) * cols) - x.begin();
        auto ya = std::max_element(y.begin() + r * cols, y.begin() + (r + 1) * cols) - y.begin();
        agree += xa == ya;
      }
      extra = ", top-1 agrees on " + std::to_string(agree) + "/" + std::to_string(rows) + " rows";
    }
    const bool pass = max_abs <= *tol;
    std::printf("%-16s max abs %.3g%s %s\n", ta->name.c_str(), max_abs, extra.c_str(),
                pass ? "ok" : "EXCEEDS TOLERANCE");
    ok &= pass;
  }
  if (shared == 0) {
    std::fprintf(stderr, "v4agent model compare: the files share no tensor names\n");
    return 1;
  }
  return ok ? 0 : 1;
}

SubcommandRegistrar registrar("model",
                              Command{"compare",
                                      "compare two result files (e.g. score output vs a golden)",
                                      kUsage, Run});

}  // namespace
}  // namespace v4agent::apps
