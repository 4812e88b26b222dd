// Protected paths in a writable workspace (sandbox/protected_paths.h): the git-hook plant
// from the field and its variants, each run in the real sandbox (as root and as uid 65534) and
// each asserted on the host side, plus the control run without protection that shows the
// attack lands when the mechanism is off.
#include "sandbox/protected_paths.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>

#include "common/strings.h"
#include "tests/sandbox/sandbox_harness.h"

namespace v4agent::sandbox {
namespace {

namespace fs = std::filesystem;
using testing::Outcome;

// What the host sees of the protected things, to compare before and after.
std::string HostView(const std::string& ws) {
  std::string out;
  for (const char* p : {".git", ".git/hooks", ".git/config", ".bashrc", ".profile", ".zshrc",
                        ".vscode", ".envrc", ".git/commondir", ".git_old", "cfg", "b2"}) {
    const std::string path = ws + "/" + p;
    struct stat st;
    if (lstat(path.c_str(), &st) != 0) {
      out += StrCat(p, ": absent\n");
    } else if (std::string(p) == ".git" && S_ISDIR(st.st_mode)) {
      // The repository itself is writable (objects, refs, index); what matters is that it
      // is still this directory.
      out += StrCat(p, ": dir ino=", static_cast<uint64_t>(st.st_ino), "\n");
    } else if (S_ISLNK(st.st_mode)) {
      out += StrCat(p, ": symlink\n");
    } else if (S_ISDIR(st.st_mode)) {
      std::vector<std::string> names;
      for (const auto& e : fs::directory_iterator(path)) names.push_back(e.path().filename());
      std::sort(names.begin(), names.end());
      out += StrCat(p, ": dir [", StrJoin(names, " "), "]\n");
    } else {
      out += StrCat(p, ": file ", *ReadFile(path), "\n");
    }
  }
  return out;
}

// git refuses a repository owned by another user (the unprivileged runs see root's files as
// nobody's); the attacks are about what git would do, so it is told to trust it.
Profile GitProfile(const std::string& ws) {
  Profile p = DefaultProfile(ws);
  p.env = {"GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=safe.directory", "GIT_CONFIG_VALUE_0=*"};
  return p;
}

struct Row {
  const char* id;
  const char* script;
};

// Every row tries to leave something on the host that would run code or change what the
// user's git or shell does. None may change HostView.
const Row kRows[] = {
    {"issue_plant",
     "mv .git .git_old && mkdir -p .git/hooks && printf '#!/bin/sh\\necho PWNED\\n' > "
     ".git/hooks/pre-commit && chmod +x .git/hooks/pre-commit; echo hi > .profile"},
    {"rename_hooks_dir",
     "mv .git/hooks .git/h2; mkdir -p .git/hooks; echo evil > .git/hooks/post-checkout; "
     "cp -r .git/hooks /tmp/h; rm -rf .git/hooks; mv /tmp/h .git/hooks"},
    {"rename_root_entries",
     "mv .bashrc moved; echo evil > .bashrc; mv .git g2; mkdir .git; mv . ../elsewhere"},
    {"symlink_swap",
     "mkdir -p /tmp/evil/hooks; echo evil > /tmp/evil/hooks/pre-commit; rm -rf .git/hooks; "
     "ln -sfn /tmp/evil/hooks .git/hooks; ln -sfn /tmp/evil .git; rm -rf .bashrc; "
     "ln -s /tmp/evil .bashrc"},
    {"hard_links",
     "ln .git/config cfg && echo '[core] fsmonitor = x' >> cfg; ln .bashrc b2 && "
     "echo evil >> b2; ln -f cfg .git/config"},
    {"create_missing_names",
     "mkdir -p .vscode && echo '{\"tasks\":[]}' > .vscode/tasks.json; echo evil > .zshrc; "
     "echo 'eval x' > .envrc; mkdir .profile/x; echo x > .profile/y"},
    {"git_writes_config",
     "git config core.fsmonitor 'touch PWNED'; git config core.hooksPath /tmp; "
     "git -c core.hooksPath=/tmp config --add alias.x '!touch PWNED'"},
    {"rewrite_via_rename_into_place",
     "cp .git/config /tmp/c && echo '[core] fsmonitor = x' >> /tmp/c && mv -f /tmp/c .git/config; "
     "cp .bashrc b && echo evil >> b && mv -f b .bashrc"},
};

class ProtectedPathsTest : public ::testing::TestWithParam<std::tuple<bool, Row>> {
 protected:
  void SetUp() override {
    if (std::get<0>(GetParam()) && !testing::CanDropToNobody()) GTEST_SKIP() << "needs root";
    ASSERT_EQ(std::system(StrCat("cd ", ws_.path(),
                                 " && git init -q . && printf 'export X=1\\n' > .bashrc && "
                                 "echo data > file.txt && chmod -R a+rwX .")
                              .c_str()),
              0);
  }
  testing::Workspace ws_;
};

TEST_P(ProtectedPathsTest, HostSideIsUnchanged) {
  const auto& [unprivileged, row] = GetParam();
  const std::string before = HostView(ws_.path());
  Outcome o = testing::RunIn(GitProfile(ws_.path()), {"/bin/sh", "-c", row.script}, unprivileged);
  EXPECT_NE(o.code, 125) << o.err;  // the sandbox itself came up
  EXPECT_EQ(HostView(ws_.path()), before) << row.id << "\n" << o.out << o.err;
  EXPECT_FALSE(PathExists(ws_.path() + "/PWNED"));
  // No placeholder is left behind.
  for (const char* p : {".profile", ".zshrc", ".vscode", ".envrc", ".zshenv"}) {
    EXPECT_FALSE(PathExists(ws_.path() + "/" + p)) << p;
  }
}

TEST_P(ProtectedPathsTest, WithoutProtectionTheAttackLands) {
  // The control: the same rows with the mechanism switched off must change the host, or the
  // row above would pass whatever the sandbox did.
  const auto& [unprivileged, row] = GetParam();
  const std::string before = HostView(ws_.path());
  Profile p = GitProfile(ws_.path());
  p.protected_paths.clear();
  p.watched_paths.clear();
  testing::RunIn(p, {"/bin/sh", "-c", row.script}, unprivileged);
  EXPECT_NE(HostView(ws_.path()), before) << row.id;
}

std::vector<std::tuple<bool, Row>> Rows() {
  std::vector<std::tuple<bool, Row>> rows;
  for (bool unprivileged : {false, true}) {
    for (const Row& r : kRows) rows.emplace_back(unprivileged, r);
  }
  return rows;
}

INSTANTIATE_TEST_SUITE_P(Attacks, ProtectedPathsTest, ::testing::ValuesIn(Rows()),
                         [](const auto& info) {
                           return std::string(std::get<1>(info.param).id) +
                                  (std::get<0>(info.param) ? "_unprivileged" : "_self");
                         });

class ProtectedPathsUse : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    if (GetParam() && !testing::CanDropToNobody()) GTEST_SKIP() << "needs root";
    ASSERT_EQ(std::system(StrCat("cd ", ws_.path(),
                                 " && git init -q . && echo a > a.txt && git add a.txt && "
                                 "git -c user.email=a@b -c user.name=n commit -qm init && "
                                 "chmod -R a+rwX .")
                              .c_str()),
              0);
  }
  testing::Workspace ws_;
};

TEST_P(ProtectedPathsUse, GitWorksAndPlaceholdersNeverShow) {
  // The protections must not get in the way of ordinary git work, and the placeholders for
  // missing names are invisible to git (status, add -A, diff).
  Outcome o = testing::RunIn(
      GitProfile(ws_.path()),
      {"/bin/sh", "-c",
       "echo b >> a.txt && echo new > new.txt && git add -A && git status --short && "
       "git -c user.email=a@b -c user.name=n commit -qm change && git log --oneline | wc -l && "
       "git stash list && git diff HEAD~1 --stat | tail -1"},
      GetParam());
  ASSERT_EQ(o.code, 0) << o.out << o.err;
  EXPECT_EQ(o.out, "M  a.txt\nA  new.txt\n2\n 2 files changed, 2 insertions(+)\n");
  EXPECT_TRUE(o.report["protected_changes"].empty()) << DumpJson(o.report);
}

TEST_P(ProtectedPathsUse, AWatchedPathThatAppearsIsQuarantinedAndReported) {
  Outcome o =
      testing::RunIn(GitProfile(ws_.path()),
                     {"/bin/sh", "-c", "mkdir -p x && echo ../x > .git/commondir"}, GetParam());
  EXPECT_EQ(o.code, 0) << o.err;
  EXPECT_FALSE(PathExists(ws_.path() + "/.git/commondir"));
  ASSERT_EQ(o.report["protected_changes"].size(), 1u) << DumpJson(o.report);
  const std::string change = o.report["protected_changes"][0];
  EXPECT_NE(change.find(".git/commondir: appeared"), std::string::npos) << change;
  const std::string moved = change.substr(change.find("moved to ") + 9);
  EXPECT_EQ(*ReadFile(moved), "../x\n");  // quarantined, not lost
  EXPECT_TRUE(RemoveAll(moved).ok()) << moved;
}

TEST(ProtectedPathsPlain, AWorkspaceWithoutGitGetsOnePlaceholderForIt) {
  // No .git at all: .git itself is the placeholder (for .git/hooks and .git/config at once),
  // so no repository with hooks can be planted; nothing is left behind or reported.
  testing::Workspace ws;
  Outcome o = testing::RunIn(
      GitProfile(ws.path()),
      {"/bin/sh", "-c", "ls -d .git && git init -q . 2>&1 | head -1; echo x > f; echo done"},
      false);
  EXPECT_NE(o.out.find(".git\n"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("done"), std::string::npos) << o.out << o.err;
  EXPECT_TRUE(o.report["protected_changes"].empty()) << DumpJson(o.report);
  EXPECT_FALSE(PathExists(ws.path() + "/.git"));
  EXPECT_TRUE(PathExists(ws.path() + "/f"));
}

// Two commands at once on one workspace without .git, started and ended at staggered times:
// one command's placeholder for .git comes and goes while the other's sandbox plans its
// mounts. Planning must not bind it (its init would find it removed and fail to start: seen
// in CI as "the sandbox could not start (step bind_open)" from a foreach with `parallel: 2`).
TEST(ProtectedPathsPlain, PlaceholdersOfConcurrentCommandsNeverBreakASandboxStart) {
  testing::Workspace ws;
  std::atomic<int> failed{0};
  std::string first_error;
  std::mutex mu;
  auto worker = [&](int id) {
    for (int i = 0; i < 60; ++i) {
      auto r =
          sandbox::Run(GitProfile(ws.path()),
                       {"/bin/sh", "-c", (i + id) % 3 == 0 ? "true" : "sleep 0.00$((RANDOM % 9))"});
      std::string error;
      if (!r.ok()) {
        error = r.status().ToString();
      } else if (r->setup_failed()) {
        error = StrCat("setup failed at step ", r->failed_step);
      }
      if (!error.empty()) {
        std::lock_guard<std::mutex> lock(mu);
        if (failed++ == 0) first_error = error;
      }
    }
  };
  std::thread a(worker, 0), b(worker, 1);
  a.join();
  b.join();
  EXPECT_EQ(failed.load(), 0) << first_error;
  EXPECT_FALSE(PathExists(ws.path() + "/.git"));
}

INSTANTIATE_TEST_SUITE_P(Users, ProtectedPathsUse, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "Unprivileged" : "Self"; });

}  // namespace
}  // namespace v4agent::sandbox
