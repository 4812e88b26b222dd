#include "batch/batch_run.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "agent/tool_registry_executor.h"
#include "batch/checkout.h"
#include "common/file_util.h"
#include "common/stopwatch.h"
#include "common/strings.h"

namespace v4agent::batch {
namespace {

namespace fs = std::filesystem;

constexpr char kDefaultTemplate[] =
    "<problem_statement>\n{problem_statement}\n</problem_statement>\n\n"
    "The repository {repo} is checked out in the workspace at the commit where this issue was "
    "reported. Change the source (not the tests) so the issue is resolved, check it by running "
    "the relevant tests, then submit.";

// preds.jsonl: read with a torn last line dropped (and cut from the file), appended one whole
// line per write under an exclusive lock, fsync'd before the instance counts as done.
class PredsFile {
 public:
  explicit PredsFile(std::string path) : path_(std::move(path)) {}

  Result<std::set<std::string>> Recover() {
    std::set<std::string> ids;
    if (!PathExists(path_)) return ids;
    V4_ASSIGN_OR_RETURN(std::string text, ReadFile(path_));
    size_t keep = 0, start = 0;
    while (start < text.size()) {
      const size_t nl = text.find('\n', start);
      if (nl == std::string::npos) break;  // a torn last line
      auto j = ParseJson(std::string_view(text).substr(start, nl - start), path_);
      if (!j.ok() || !j->contains("instance_id")) break;
      ids.insert((*j)["instance_id"].get<std::string>());
      keep = nl + 1;
      start = nl + 1;
    }
    if (keep < text.size()) {
      if (::truncate(path_.c_str(), static_cast<off_t>(keep)) != 0) {
        return ErrnoError(StrCat(path_, ": cannot drop a torn last line"), errno);
      }
    }
    return ids;
  }

  Status Append(const Json& line) {
    const std::string text = DumpJson(line) + "\n";
    std::lock_guard<std::mutex> lock(mu_);
    const int fd = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return ErrnoError(StrCat(path_, ": cannot open"), errno);
    ::flock(fd, LOCK_EX);  // shards of one machine may share an output directory
    const ssize_t n = ::write(fd, text.data(), text.size());
    const int err = errno;
    ::fsync(fd);
    ::close(fd);
    if (n != static_cast<ssize_t>(text.size())) return ErrnoError(StrCat(path_, ": write"), err);
    return Status::Ok();
  }

 private:
  std::string path_;
  std::mutex mu_;
};

Json OutcomeJson(const InstanceOutcome& o) {
  return Json{{"instance_id", o.instance_id},
              {"status", o.status},
              {"detail", o.detail},
              {"tokens_prefilled", o.tokens_prefilled},
              {"tokens_reused", o.tokens_reused},
              {"tokens_from_store", o.tokens_from_store},
              {"tokens_generated", o.tokens_generated},
              {"seconds", o.seconds},
              {"patch_bytes", o.patch_bytes}};
}

InstanceOutcome OutcomeFromJson(const Json& j) {
  InstanceOutcome o;
  o.instance_id = j.value("instance_id", std::string());
  o.status = j.value("status", std::string("error"));
  o.detail = j.value("detail", std::string());
  o.tokens_prefilled = j.value("tokens_prefilled", int64_t{0});
  o.tokens_reused = j.value("tokens_reused", int64_t{0});
  o.tokens_from_store = j.value("tokens_from_store", int64_t{0});
  o.tokens_generated = j.value("tokens_generated", int64_t{0});
  o.seconds = j.value("seconds", 0.0);
  o.patch_bytes = j.value("patch_bytes", size_t{0});
  return o;
}

Json Summarize(const std::vector<InstanceOutcome>& all, size_t total, double seconds) {
  std::map<std::string, int> by_status;
  int64_t prefilled = 0, reused = 0, from_store = 0, generated = 0;
  int with_patch = 0;
  for (const auto& o : all) {
    by_status[o.status]++;
    prefilled += o.tokens_prefilled;
    reused += o.tokens_reused;
    from_store += o.tokens_from_store;
    generated += o.tokens_generated;
    with_patch += o.patch_bytes > 0;
  }
  return Json{{"total_instances", total},
              {"finished_instances", all.size()},
              {"by_status", by_status},
              {"instances_with_patch", with_patch},
              {"tokens_prefilled", prefilled},
              {"tokens_reused", reused},
              {"tokens_from_store", from_store},
              {"tokens_generated", generated},
              {"seconds", seconds}};
}

}  // namespace

std::string TaskText(const Instance& in, const BatchOptions& o) {
  std::string t = o.task_template.empty() ? kDefaultTemplate : o.task_template;
  if (o.include_hints && !in.hints_text.empty() && o.task_template.empty()) {
    t += "\n\n<hints>\n{hints_text}\n</hints>";
  }
  // Values last, so text inside a problem statement is never expanded.
  std::map<std::string, std::string> vals = {{"{repo}", in.repo},
                                             {"{instance_id}", in.id},
                                             {"{base_commit}", in.base_commit},
                                             {"{version}", in.version},
                                             {"{hints_text}", o.include_hints ? in.hints_text : ""},
                                             {"{problem_statement}", in.problem_statement}};
  std::string out;
  for (size_t i = 0; i < t.size();) {
    bool done = false;
    if (t[i] == '{') {
      for (const auto& [k, v] : vals) {
        if (t.compare(i, k.size(), k) == 0) {
          out += v;
          i += k.size();
          done = true;
          break;
        }
      }
    }
    if (!done) out += t[i++];
  }
  return out;
}

Result<Json> RunBatch(const std::vector<Instance>& instances, const BatchOptions& o,
                      const BatchProgress& progress) {
  if (!o.make_client) return InvalidArgumentError("batch: no model client");
  std::error_code ec;
  fs::create_directories(fs::path(o.out_dir) / "instances", ec);
  if (ec) return IoError(StrCat(o.out_dir, ": cannot create: ", ec.message()));
  PredsFile preds((fs::path(o.out_dir) / "preds.jsonl").string());
  V4_ASSIGN_OR_RETURN(std::set<std::string> predicted, preds.Recover());

  Stopwatch clock;
  std::vector<InstanceOutcome> finished;
  std::vector<const Instance*> pending;
  for (const Instance& in : instances) {
    const std::string status = (fs::path(o.out_dir) / "instances" / in.id / "status.json").string();
    auto old = ReadJsonFile(status);
    if (old.ok()) {
      InstanceOutcome out = OutcomeFromJson(*old);
      out.reused = true;
      finished.push_back(out);
    } else if (predicted.count(in.id)) {
      // Killed between the prediction and the status file: the prediction stands.
      InstanceOutcome out;
      out.instance_id = in.id;
      out.status = "unknown";
      out.detail = "finished by an earlier run that stopped before writing its status";
      out.reused = true;
      WriteFileAtomic(status, DumpJson(OutcomeJson(out), 2) + "\n").IgnoreError();
      finished.push_back(out);
    } else {
      pending.push_back(&in);
    }
  }
  int done = 0;
  std::mutex mu;
  for (const auto& f : finished) {
    if (progress) progress(f, ++done, static_cast<int>(instances.size()));
  }
  std::atomic<size_t> next{0};
  Status first_error;
  auto worker = [&](int w) {
    // A per-worker workspace path keeps the system prompt identical across its instances, so
    // a prefix store serves it after the first.
    const std::string ws = (fs::path(o.out_dir) / ".work" / StrCat("worker-", w)).string();
    for (size_t i = next++; i < pending.size(); i = next++) {
      if (o.cancel && o.cancel->load()) break;
      const Instance& in = *pending[i];
      InstanceOutcome out;
      out.instance_id = in.id;
      Stopwatch sw;
      const fs::path dir = fs::path(o.out_dir) / "instances" / in.id;
      std::error_code e;
      fs::create_directories(dir, e);
      const std::string traj = (dir / "trajectory.jsonl").string();
      fs::remove(traj, e);  // an unfinished attempt restarts clean
      fs::remove(traj + ".v4s", e);
      fs::remove_all(ws, e);
      auto run = [&]() -> Status {
        // A client per instance: each run starts its own conversation (a scripted client
        // from its first completion, the in-process engine from the prefix store).
        V4_ASSIGN_OR_RETURN(auto client, o.make_client(w));
        V4_ASSIGN_OR_RETURN(std::string mirror, FindMirror(o.repos_dir, in.repo));
        V4_RETURN_IF_ERROR(CheckoutAt(mirror, in.base_commit, ws));
        V4_ASSIGN_OR_RETURN(auto executor,
                            agent::RegistryExecutor::Create(ws, o.policy, o.cancel, o.yaml_tools));
        agent::LoopOptions lo;
        lo.system_prompt = agent::DefaultSystemPrompt(ws);
        lo.task = TaskText(in, o);
        lo.thinking = o.thinking;
        lo.effort = o.effort;
        lo.max_tokens_per_turn = o.max_tokens_per_turn;
        lo.budgets = o.budgets;
        lo.trajectory_path = traj;
        lo.workspace = ws;
        lo.interrupt = o.cancel;
        V4_ASSIGN_OR_RETURN(agent::RunSummary s, agent::RunAgent(*client, *executor, lo));
        out.status = agent::ExitStatusName(s.status);
        out.detail = s.detail;
        out.tokens_prefilled = s.tokens_prefilled;
        out.tokens_reused = s.tokens_reused;
        out.tokens_from_store = s.tokens_from_store;
        out.tokens_generated = s.tokens_generated;
        if (s.status == agent::ExitStatus::kInterrupted) return CancelledError("interrupted");
        V4_ASSIGN_OR_RETURN(std::string diff, WorkspaceDiff(ws));
        out.patch_bytes = diff.size();
        return preds.Append(Json{
            {"instance_id", in.id}, {"model_name_or_path", o.model_name}, {"model_patch", diff}});
      };
      Status st = run();
      fs::remove_all(ws, e);
      out.seconds = sw.ElapsedSeconds();
      if (st.code() == StatusCode::kCancelled) break;  // not finished: rerun next time
      if (!st.ok()) {
        // A per-instance failure (no mirror, no commit) is recorded; the batch goes on. It
        // still gets an empty prediction so the evaluation counts it.
        out.status = "error";
        out.detail = st.message();
        preds
            .Append(Json{
                {"instance_id", in.id}, {"model_name_or_path", o.model_name}, {"model_patch", ""}})
            .IgnoreError();
      }
      WriteFileAtomic((dir / "status.json").string(), DumpJson(OutcomeJson(out), 2) + "\n")
          .IgnoreError();
      std::lock_guard<std::mutex> lock(mu);
      finished.push_back(out);
      if (progress) progress(out, ++done, static_cast<int>(instances.size()));
    }
  };
  std::vector<std::thread> threads;
  for (int w = 1; w < std::max(1, o.workers); ++w) threads.emplace_back(worker, w);
  worker(0);
  for (auto& t : threads) t.join();
  fs::remove_all(fs::path(o.out_dir) / ".work", ec);
  Json summary = Summarize(finished, instances.size(), clock.ElapsedSeconds());
  V4_RETURN_IF_ERROR(WriteFileAtomic((fs::path(o.out_dir) / "summary.json").string(),
                                     DumpJson(summary, 2) + "\n"));
  return summary;
}

Result<Json> MergeBatches(const std::vector<std::string>& shard_dirs, const std::string& out) {
  std::error_code ec;
  fs::create_directories(fs::path(out) / "instances", ec);
  if (ec) return IoError(StrCat(out, ": cannot create: ", ec.message()));
  std::map<std::string, std::string> lines;  // by instance id: one line each
  std::vector<InstanceOutcome> all;
  for (const std::string& d : shard_dirs) {
    const std::string p = (fs::path(d) / "preds.jsonl").string();
    V4_ASSIGN_OR_RETURN(std::string text, ReadFile(p));
    int n = 0;
    for (const std::string& line : StrSplit(text, '\n')) {
      ++n;
      if (StripWhitespace(line).empty()) continue;
      V4_ASSIGN_OR_RETURN(Json j, ParseJson(line, StrCat(p, ":", n)));
      const std::string id = j.value("instance_id", std::string());
      if (id.empty()) return InvalidArgumentError(StrCat(p, ":", n, ": no instance_id"));
      lines[id] = DumpJson(j);
    }
    for (const auto& e : fs::directory_iterator(fs::path(d) / "instances", ec)) {
      const fs::path target = fs::path(out) / "instances" / e.path().filename();
      fs::copy(e.path(), target, fs::copy_options::recursive | fs::copy_options::overwrite_existing,
               ec);
      auto st = ReadJsonFile((e.path() / "status.json").string());
      if (st.ok()) all.push_back(OutcomeFromJson(*st));
    }
  }
  std::string merged;
  for (const auto& [id, line] : lines) merged += line + "\n";
  V4_RETURN_IF_ERROR(WriteFileAtomic((fs::path(out) / "preds.jsonl").string(), merged));
  double seconds = 0;
  for (const auto& o : all) seconds += o.seconds;
  Json summary = Summarize(all, lines.size(), seconds);
  summary["shards"] = shard_dirs;
  V4_RETURN_IF_ERROR(
      WriteFileAtomic((fs::path(out) / "summary.json").string(), DumpJson(summary, 2) + "\n"));
  return summary;
}

}  // namespace v4agent::batch
