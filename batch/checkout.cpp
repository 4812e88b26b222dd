#include "batch/checkout.h"

#include <filesystem>

#include "common/strings.h"
#include "common/subprocess.h"

namespace v4agent::batch {
namespace {

namespace fs = std::filesystem;

Result<ProcessResult> Git(const std::string& dir, std::vector<std::string> args) {
  std::vector<std::string> argv = {
      "git", "-C", dir, "-c", "protocol.version=2", "-c", "advice.detachedHead=false"};
  argv.insert(argv.end(), args.begin(), args.end());
  ProcessOptions o;
  // No user or system config of this machine changes what the workspace holds.
  o.env = {"GIT_CONFIG_NOSYSTEM=1",      "GIT_TERMINAL_PROMPT=0",
           "GIT_AUTHOR_NAME=v4agent",    "GIT_AUTHOR_EMAIL=v4agent@localhost",
           "GIT_COMMITTER_NAME=v4agent", "GIT_COMMITTER_EMAIL=v4agent@localhost"};
  return RunProcess(argv, o);
}

}  // namespace

Result<std::string> FindMirror(const std::string& repos_dir, const std::string& repo) {
  const size_t slash = repo.find('/');
  if (slash == std::string::npos) {
    return InvalidArgumentError(StrCat("repo '", repo, "': expected owner/name"));
  }
  const std::string owner = repo.substr(0, slash), name = repo.substr(slash + 1);
  std::vector<std::string> tried;
  for (const std::string& rel : {owner + "__" + name + ".git", owner + "__" + name,
                                 owner + "/" + name + ".git", owner + "/" + name}) {
    const fs::path p = fs::path(repos_dir) / rel;
    std::error_code ec;
    if (fs::is_directory(p / "objects", ec) || fs::is_directory(p / ".git", ec)) {
      return p.string();
    }
    tried.push_back(p.string());
  }
  return NotFoundError(
      StrCat("no git mirror of ", repo, " (looked at ", StrJoin(tried, ", "), ")"));
}

Status CheckoutAt(const std::string& mirror, const std::string& commit, const std::string& dest) {
  std::error_code ec;
  if (fs::exists(dest, ec)) return AlreadyExistsError(StrCat(dest, ": already exists"));
  fs::create_directories(dest, ec);
  if (ec) return IoError(StrCat(dest, ": cannot create: ", ec.message()));
  V4_ASSIGN_OR_RETURN(ProcessResult init, Git(dest, {"init", "-q", "-b", "main"}));
  if (!init.ok()) return InternalError(StrCat("git init ", dest, ": ", init.err));
  const std::string source = fs::absolute(mirror).string();
  V4_ASSIGN_OR_RETURN(ProcessResult fetch, Git(dest, {"fetch", "-q", "--update-head-ok",
                                                      "--no-tags", "--no-write-fetch-head", source,
                                                      StrCat(commit, ":refs/heads/main")}));
  if (!fetch.ok()) {
    return NotFoundError(StrCat("commit ", commit, " is not in the mirror ", mirror, ": ",
                                std::string(StripWhitespace(fetch.err))));
  }
  V4_ASSIGN_OR_RETURN(ProcessResult co, Git(dest, {"checkout", "-q", "-f", "main"}));
  if (!co.ok()) return InternalError(StrCat("git checkout in ", dest, ": ", co.err));
  return Status::Ok();
}

Result<std::string> WorkspaceDiff(const std::string& workspace) {
  // Intent-to-add makes new files part of the diff without staging their content.
  V4_ASSIGN_OR_RETURN(ProcessResult add, Git(workspace, {"add", "-A", "-N"}));
  if (!add.ok()) return InternalError(StrCat("git add -N in ", workspace, ": ", add.err));
  V4_ASSIGN_OR_RETURN(ProcessResult diff, Git(workspace, {"diff", "--binary", "HEAD"}));
  if (!diff.ok()) return InternalError(StrCat("git diff in ", workspace, ": ", diff.err));
  return diff.out;
}

}  // namespace v4agent::batch
