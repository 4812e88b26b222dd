// Evaluation end to end on instances built here: three repositories with real Python test
// suites (unittest and pytest), bare mirrors, gold patches (all resolved), empty patches (none),
// a patch that breaks a PASS_TO_PASS test (not resolved), a missing mirror (an error while the
// rest goes on), and a second run that reuses every report. Workspaces hold nothing from after
// the base commit.
#include "batch/evaluate.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "batch/checkout.h"
#include "common/file_util.h"
#include "common/strings.h"
#include "common/subprocess.h"
#include "tests/batch/repos.h"

namespace v4agent::batch {
namespace {

namespace fs = std::filesystem;
using testing::Built;
using testing::kSpecs;
using testing::MakeRepo;
using testing::Put;
using testing::Sh;

class EvaluateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    repos_ = dir_.path() + "/repos";
    fs::create_directories(repos_);
    built_.push_back(MakeRepo(dir_.path(), repos_, "ucalc", false));
    built_.push_back(MakeRepo(dir_.path(), repos_, "pcalc", true));
    built_.push_back(MakeRepo(dir_.path(), repos_, "qcalc", true));
    for (const auto& b : built_) instances_.push_back(b.instance);
    ASSERT_TRUE(WriteFile(dir_.path() + "/specs.yaml", kSpecs).ok());
    auto specs = EvalSpecs::Load(dir_.path() + "/specs.yaml");
    ASSERT_TRUE(specs.ok()) << specs.status().ToString();
    specs_ = std::make_unique<EvalSpecs>(std::move(specs).value());
  }
  EvalOptions Options(const std::string& run) {
    EvalOptions o;
    o.repos_dir = repos_;
    o.out_dir = dir_.path() + "/out";
    o.run_id = run;
    // Two workers: a sandbox's init once deadlocked in glibc's fork() when another worker held
    // a malloc lock at clone time; this test hung about one run in ten then.
    o.workers = 2;
    o.timeout_seconds = 120;
    return o;
  }
  std::map<std::string, Prediction> Preds(const std::string& model,
                                          const std::vector<std::string>& patches) {
    std::map<std::string, Prediction> p;
    for (size_t i = 0; i < instances_.size(); ++i) {
      p[instances_[i].id] = Prediction{instances_[i].id, model, patches[i]};
    }
    return p;
  }
  ScopedTempDir dir_;
  std::string repos_;
  std::vector<Built> built_;
  std::vector<Instance> instances_;
  std::unique_ptr<EvalSpecs> specs_;
};

TEST_F(EvaluateTest, GoldResolvesEmptyAndBreakingDoNotAndResumeReusesReports) {
  auto gold = LoadPredictions("gold", instances_);
  ASSERT_TRUE(gold.ok());
  std::string details;
  auto s = Evaluate(instances_, *gold, *specs_, Options("r1"), [&](const EvalResult& e, int, int) {
    details += e.instance_id + ": " + e.outcome + " " + e.detail + "\n";
  });
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ((*s)["resolved_instances"], 3) << details;
  EXPECT_EQ((*s)["total_instances"], 3);
  const std::string report =
      dir_.path() + "/out/logs/run_evaluation/r1/gold/" + instances_[0].id + "/report.json";
  auto r = ReadJsonFile(report);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)[instances_[0].id]["resolved"], true);
  EXPECT_EQ((*r)[instances_[0].id]["tests_status"]["FAIL_TO_PASS"]["success"].size(), 1u);
  EXPECT_TRUE(fs::exists(dir_.path() + "/out/gold.r1.json"));
  auto log = ReadFile(fs::path(report).parent_path().string() + "/test_output.txt");
  ASSERT_TRUE(log.ok());
  EXPECT_NE(log->find("test_add"), std::string::npos);

  // Run again with the same run id: every report is reused, nothing runs.
  int reused = 0;
  auto again = Evaluate(instances_, *gold, *specs_, Options("r1"),
                        [&](const EvalResult& e, int, int) { reused += e.reused; });
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(reused, 3);
  EXPECT_EQ((*again)["resolved_instances"], 3);

  auto empty = Evaluate(instances_, Preds("m", {"", "", "\n"}), *specs_, Options("r2"));
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ((*empty)["resolved_instances"], 0);
  EXPECT_EQ((*empty)["empty_patch_instances"], 3);

  auto breaking =
      Evaluate(instances_,
               Preds("m", {built_[0].break_patch, built_[1].break_patch, built_[2].instance.patch}),
               *specs_, Options("r3"));
  ASSERT_TRUE(breaking.ok());
  EXPECT_EQ((*breaking)["resolved_instances"], 1) << breaking->dump(2);
  EXPECT_EQ((*breaking)["unresolved_instances"], 2);
  auto br = ReadJsonFile(dir_.path() + "/out/logs/run_evaluation/r3/m/" + instances_[1].id +
                         "/report.json");
  ASSERT_TRUE(br.ok());
  EXPECT_EQ((*br)[instances_[1].id]["tests_status"]["PASS_TO_PASS"]["failure"][0],
            "tests/test_calc.py::test_sub");
}

TEST_F(EvaluateTest, WithoutTheTestPatchNothingResolvesAndAMissingMirrorIsOneError) {
  // The test patch is what makes FAIL_TO_PASS exist: dropping it leaves the test missing.
  std::vector<Instance> ins = instances_;
  ins[0].test_patch.clear();
  ins[2].repo = "acme/absent";
  auto gold = LoadPredictions("gold", ins);
  auto s = Evaluate(ins, *gold, *specs_, Options("r4"));
  ASSERT_TRUE(s.ok());
  EXPECT_EQ((*s)["resolved_instances"], 1) << s->dump(2);
  EXPECT_EQ((*s)["unresolved_instances"], 1);
  EXPECT_EQ((*s)["error_instances"], 1);
  auto r =
      ReadJsonFile(dir_.path() + "/out/logs/run_evaluation/r4/gold/" + ins[2].id + "/report.json");
  ASSERT_TRUE(r.ok());
  EXPECT_NE((*r)[ins[2].id]["error"].get<std::string>().find("no git mirror of acme/absent"),
            std::string::npos);
}

TEST_F(EvaluateTest, WorkspaceHoldsNothingAfterTheBaseCommit) {
  const Built& b = built_[1];
  const std::string ws = dir_.path() + "/ws";
  auto mirror = FindMirror(repos_, b.instance.repo);
  ASSERT_TRUE(mirror.ok());
  ASSERT_TRUE(CheckoutAt(*mirror, b.instance.base_commit, ws).ok());
  EXPECT_EQ(Sh(ws, "git rev-parse HEAD"), b.instance.base_commit);
  EXPECT_EQ(Sh(ws, "git log --all --format=%H"), b.instance.base_commit);
  EXPECT_EQ(Sh(ws, "git tag"), "");
  EXPECT_EQ(
      Sh(ws, "git cat-file -e " + b.later_commit + " 2>/dev/null && echo present || echo absent"),
      "absent");
  EXPECT_EQ(Sh(ws, "grep -c 'upstream fix' calc.py || true"), "0");
  EXPECT_EQ(Sh(ws, "git status --porcelain"), "");
  // A commit the mirror does not have is a clear error.
  Status st = CheckoutAt(*mirror, std::string(40, 'a'), dir_.path() + "/ws2");
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("is not in the mirror"), std::string::npos) << st.message();
  // The agent's changes are the workspace diff, new files included.
  Put(ws + "/new_file.py", "x = 1\n");
  Put(ws + "/calc.py", "changed\n");
  auto diff = WorkspaceDiff(ws);
  ASSERT_TRUE(diff.ok());
  EXPECT_NE(diff->find("new_file.py"), std::string::npos);
  EXPECT_NE(diff->find("+changed"), std::string::npos);
}

}  // namespace
}  // namespace v4agent::batch
