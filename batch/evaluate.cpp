#include "batch/evaluate.h"

#include <filesystem>
#include <mutex>
#include <thread>

#include "batch/checkout.h"
#include "batch/grading.h"
#include "batch/test_logs.h"
#include "common/file_util.h"
#include "common/strings.h"
#include "common/subprocess.h"
#include "sandbox/launcher.h"

namespace v4agent::batch {
namespace {

namespace fs = std::filesystem;

// Tries the harness's three ways in order; returns the one that worked, or an error with
// each one's complaint.
Result<std::string> ApplyPatch(const std::string& worktree, const std::string& patch_file) {
  const std::vector<std::pair<std::string, std::vector<std::string>>> ways = {
      {"git apply", {"git", "-C", worktree, "apply", "--verbose", "--reject", patch_file}},
      {"git apply --3way", {"git", "-C", worktree, "apply", "--verbose", "--3way", patch_file}},
      {"patch --fuzz=5", {"patch", "--batch", "--fuzz=5", "-p1", "-d", worktree, "-i", patch_file}},
  };
  std::vector<std::string> why;
  for (const auto& [name, argv] : ways) {
    V4_ASSIGN_OR_RETURN(ProcessResult r, RunProcess(argv));
    if (r.ok()) return name;
    why.push_back(StrCat(name, ": ", std::string(StripWhitespace(r.err.empty() ? r.out : r.err))));
    // --reject leaves .rej files and partial hunks behind: start the next way clean.
    RunProcess({"git", "-C", worktree, "checkout", "-q", "--", "."}).IgnoreError();
    RunProcess({"git", "-C", worktree, "clean", "-qfd"}).IgnoreError();
  }
  return FailedPreconditionError(StrJoin(why, "\n"));
}

// Runs `script` with bash in the sandbox over the worktree (no network); output merged.
Result<sandbox::RunReport> RunInSandbox(const std::string& worktree, const std::string& script,
                                        const std::vector<std::string>& env, double timeout) {
  sandbox::Profile p = sandbox::DefaultProfile(worktree);
  p.network = sandbox::NetworkMode::kNone;
  p.timeout_seconds = timeout;
  p.env = env;
  p.capture_bytes = 8 << 20;
  // The repository's own scripts run here: its .git is not ours to protect, and tests
  // may create anything in the worktree.
  p.protected_paths.clear();
  p.watched_paths.clear();
  return sandbox::Run(p, {"/bin/bash", "-c", script + " 2>&1"});
}

struct Job {
  const Instance* instance;
  const Prediction* prediction;
};

class Evaluator {
 public:
  Evaluator(const EvalSpecs& specs, const EvalOptions& options) : specs_(specs), o_(options) {}

  EvalResult Run(const Instance& in, const Prediction& pred) {
    EvalResult r;
    r.instance_id = in.id;
    const fs::path dir =
        fs::path(o_.out_dir) / "logs" / "run_evaluation" / o_.run_id / pred.model / in.id;
    const std::string report_path = (dir / "report.json").string();
    if (auto old = ReadJsonFile(report_path); old.ok() && old->contains(in.id)) {
      const Json& j = (*old)[in.id];
      r.reused = true;
      r.outcome = j.value("outcome", std::string("error"));
      r.detail = j.value("error", std::string());
      return r;
    }
    std::error_code ec;
    fs::create_directories(dir, ec);
    Json report = {{"patch_is_None", false},
                   {"patch_exists", !pred.patch.empty()},
                   {"patch_successfully_applied", false},
                   {"resolved", false}};
    auto finish = [&](const std::string& outcome, const std::string& error) {
      r.outcome = outcome;
      r.detail = error;
      report["outcome"] = outcome;
      if (!error.empty()) report["error"] = error;
      Json wrapped = {{in.id, report}};
      WriteFileAtomic(report_path, DumpJson(wrapped, 2) + "\n").IgnoreError();
      return r;
    };
    if (StripWhitespace(pred.patch).empty()) return finish("empty_patch", "");
    WriteFile((dir / "patch.diff").string(), pred.patch).IgnoreError();
    auto mirror = FindMirror(o_.repos_dir, in.repo);
    if (!mirror.ok()) return finish("error", mirror.status().message());
    auto spec = specs_.Find(in.repo, in.version);
    if (!spec.ok()) return finish("error", spec.status().message());
    const std::string work = (fs::path(o_.out_dir) / ".eval-work" / o_.run_id /
                              (in.id + "-" + std::to_string(::getpid())))
                                 .string();
    fs::remove_all(work, ec);
    struct Cleanup {
      std::string path;
      ~Cleanup() {
        std::error_code e;
        fs::remove_all(path, e);
      }
    } cleanup{work};
    if (Status st = CheckoutAt(*mirror, in.base_commit, work); !st.ok()) {
      return finish("error", st.message());
    }
    std::string log;
    auto step = [&](const std::string& what, const std::string& script,
                    double timeout) -> Result<sandbox::RunReport> {
      V4_ASSIGN_OR_RETURN(sandbox::RunReport rep, RunInSandbox(work, script, spec->env, timeout));
      log += StrCat(">>>>> ", what, ": ", script, "\n", rep.out.Text(), "\n");
      return rep;
    };
    for (const std::string& cmd : spec->install) {
      auto rep = step("install", cmd, o_.timeout_seconds);
      if (!rep.ok() || rep->ShellExitCode() != 0) {
        WriteFile((dir / "test_output.txt").string(), log).IgnoreError();
        return finish("error", StrCat("install step failed: ", cmd));
      }
    }
    const std::string patch_file = (dir / "patch.diff").string();
    auto applied = ApplyPatch(work, fs::absolute(patch_file).string());
    if (!applied.ok()) {
      WriteFile((dir / "test_output.txt").string(),
                StrCat(log, ">>>>> Patch Apply Failed:\n", applied.status().message(), "\n"))
          .IgnoreError();
      return finish("error", "the model patch does not apply");
    }
    report["patch_successfully_applied"] = true;
    log += StrCat(">>>>> Applied Patch (", *applied, ")\n");
    // The test files go back to the base commit before the test patch, as the harness does.
    const std::vector<std::string> test_files = FilesInDiff(in.test_patch);
    for (const std::string& f : test_files) {
      auto co = RunProcess({"git", "-C", work, "checkout", "-q", in.base_commit, "--", f});
      if (!co.ok() || !co->ok()) fs::remove(fs::path(work) / f, ec);  // new in test_patch
    }
    if (!in.test_patch.empty()) {
      const std::string tp = (fs::path(work).parent_path() / (in.id + ".test.diff")).string();
      WriteFile(tp, in.test_patch).IgnoreError();
      auto t = RunProcess({"git", "-C", work, "apply", "--verbose", tp});
      fs::remove(tp, ec);
      if (!t.ok() || !t->ok()) {
        WriteFile((dir / "test_output.txt").string(), log).IgnoreError();
        return finish("error", "the test patch does not apply");
      }
    }
    for (const std::string& cmd : spec->pre_test) {
      auto rep = step("pre_test", cmd, o_.timeout_seconds);
      if (!rep.ok()) return finish("error", rep.status().message());
    }
    std::string cmd = spec->test_cmd;
    for (const std::string& d : TestDirectives(spec->parser, test_files))
      cmd += " " + ShellQuote(d);
    auto rep = step("test", cmd, o_.timeout_seconds);
    WriteFile((dir / "test_output.txt").string(), log).IgnoreError();
    if (!rep.ok()) return finish("error", rep.status().message());
    if (rep->timed_out)
      return finish("error", StrCat("the tests timed out after ", o_.timeout_seconds, " s"));
    auto statuses = ParseTestLog(spec->parser, rep->out.Text());
    if (!statuses.ok()) return finish("error", statuses.status().message());
    const Grade g = GradeInstance(in, *statuses, rep->exit_code);
    report["tests_status"] = TestsStatusJson(g);
    if (!g.invalid.empty()) return finish("error", g.invalid);
    report["resolved"] = g.resolved;
    return finish(g.resolved ? "resolved" : "unresolved", "");
  }

 private:
  const EvalSpecs& specs_;
  const EvalOptions& o_;
};

}  // namespace

Result<Json> Evaluate(const std::vector<Instance>& instances,
                      const std::map<std::string, Prediction>& predictions, const EvalSpecs& specs,
                      const EvalOptions& options, const EvalProgress& progress) {
  if (options.run_id.empty()) return InvalidArgumentError("--run-id is required");
  std::vector<Job> jobs;
  std::string model;
  for (const Instance& in : instances) {
    auto p = predictions.find(in.id);
    if (p == predictions.end()) continue;
    if (model.empty()) model = p->second.model;
    jobs.push_back({&in, &p->second});
  }
  if (model.empty()) model = "none";
  Evaluator ev(specs, options);
  std::vector<EvalResult> results(jobs.size());
  std::atomic<size_t> next{0};
  std::atomic<int> done{0};
  std::mutex mu;
  auto worker = [&] {
    for (size_t i = next++; i < jobs.size(); i = next++) {
      if (options.cancel && options.cancel->load()) break;
      results[i] = ev.Run(*jobs[i].instance, *jobs[i].prediction);
      const int d = ++done;
      if (progress) {
        std::lock_guard<std::mutex> lock(mu);
        progress(results[i], d, static_cast<int>(jobs.size()));
      }
    }
  };
  std::vector<std::thread> threads;
  for (int w = 1; w < std::max(1, options.workers); ++w) threads.emplace_back(worker);
  worker();
  for (auto& t : threads) t.join();

  std::map<std::string, std::vector<std::string>> ids;
  for (const char* k :
       {"submitted", "completed", "resolved", "unresolved", "empty_patch", "error"}) {
    ids[k] = {};
  }
  for (size_t i = 0; i < jobs.size(); ++i) {
    const EvalResult& r = results[i];
    if (r.instance_id.empty()) continue;  // cancelled before it ran
    ids["submitted"].push_back(r.instance_id);
    if (r.outcome == "resolved" || r.outcome == "unresolved") {
      ids["completed"].push_back(r.instance_id);
    }
    ids[r.outcome].push_back(r.instance_id);
  }
  std::vector<std::string> incomplete;
  for (const Instance& in : instances) {
    if (!predictions.count(in.id)) incomplete.push_back(in.id);
  }
  Json summary = {{"total_instances", instances.size()}};
  for (const auto& [k, v] : ids) {
    summary[k + "_instances"] = v.size();
    summary[k + "_ids"] = v;
  }
  summary["incomplete_ids"] = incomplete;
  summary["schema_version"] = 2;
  std::error_code ec;
  fs::create_directories(options.out_dir, ec);
  const std::string path =
      (fs::path(options.out_dir) / StrCat(model, ".", options.run_id, ".json")).string();
  V4_RETURN_IF_ERROR(WriteFileAtomic(path, DumpJson(summary, 2) + "\n"));
  summary["summary_path"] = path;
  return summary;
}

}  // namespace v4agent::batch
