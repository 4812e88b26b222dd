// Secret files by glob (Profile::secret_patterns, peers spec §9 A6): matches in the workspace
// and under secret roots are empty and read-only to the command, including files that
// appeared after the sandbox was prepared; a file the command makes itself stays readable to
// it (documented in docs/sandbox.md) and is masked for the next command.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>

#include "common/strings.h"
#include "sandbox/secret_scan.h"
#include "tests/sandbox/sandbox_harness.h"

namespace v4agent::sandbox {
namespace {

using testing::Outcome;

TEST(SecretPatternTest, GlobSemantics) {
  struct Case {
    const char* pattern;
    const char* path;
    bool match;
  } cases[] = {
      {"**/.env", ".env", true},
      {"**/.env", "a/b/.env", true},
      {"**/.env", "a/.env.example", false},
      {".env", "deep/er/.env", true},  // no '/': any depth, as in .gitignore
      {"**/*.pem", "certs/server.pem", true},
      {"**/*.pem", ".hidden.pem", true},  // a leading dot is matched
      {"**/*.pem", "certs/server.pem.txt", false},
      {"**/id_*", "home/.ssh/id_ed25519", true},
      {"**/id_*", "src/grid_x", false},
      {"config/*.key", "config/a.key", true},
      {"config/*.key", "x/config/a.key", false},
      {"secrets/**", "secrets/a/b", true},
      {"secrets/**", "secrets", true},
      {"a/**/z", "a/z", true},
      {"a/**/z", "a/b/c/z", true},
      {"[st]ecret?", "tecrets", true},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(SecretPatternMatches(c.pattern, c.path), c.match) << c.pattern << " ~ " << c.path;
  }
}

class SecretsTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    if (GetParam() && !testing::CanDropToNobody()) GTEST_SKIP() << "needs root to drop from";
    const std::string w = ws_.path();
    ASSERT_EQ(std::system(StrCat("cd ", w,
                                 " && mkdir -p config keys sub/dir && echo TOKEN=sk-1 > .env && "
                                 "echo PEMDATA > config/prod.pem && echo KEYDATA > keys/id_rsa && "
                                 "echo TOKEN=sk-2 > sub/dir/.env && echo plain > normal.txt && "
                                 "chmod -R a+rwX .")
                              .c_str()),
              0);
  }
  Profile SecretProfile() {
    Profile p = DefaultProfile(ws_.path());
    p.secret_patterns = {"**/.env", "**/*.pem", "**/id_*"};
    return p;
  }
  Outcome Sh(const Profile& p, const std::string& script) {
    return testing::RunIn(p, {"/bin/sh", "-c", script}, GetParam());
  }
  testing::Workspace ws_;
};

constexpr char kReadAll[] =
    "cat .env config/prod.pem keys/id_rsa sub/dir/.env normal.txt; "
    "echo evil >> .env 2>&1 || echo refused";

TEST_P(SecretsTest, MatchesAreEmptyAndReadOnly) {
  Outcome o = Sh(SecretProfile(), kReadAll);
  EXPECT_EQ(o.out, "plain\nrefused\n") << o.err;
  EXPECT_EQ(*ReadFile(ws_.path() + "/.env"), "TOKEN=sk-1\n");  // the host file is untouched
  EXPECT_NE(DumpJson(o.report["limits_applied"]).find("secrets_masked=4"), std::string::npos)
      << DumpJson(o.report);
  // Control: without patterns everything reads.
  o = Sh(DefaultProfile(ws_.path()), kReadAll);
  EXPECT_EQ(o.out, "TOKEN=sk-1\nPEMDATA\nKEYDATA\nTOKEN=sk-2\nplain\n") << o.err;
}

TEST_P(SecretsTest, FileCreatedAfterThePreparedSandboxIsMasked) {
  if (GetParam()) GTEST_SKIP() << "the launcher is in-process; covered as root";
  Launcher launcher;
  const Profile p = SecretProfile();
  auto r = launcher.Run(p, {"/bin/true"});  // the next sandbox is now being prepared
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(std::system(StrCat("mkdir -p ", ws_.path(), "/later && echo LATE=sk-3 > ", ws_.path(),
                               "/later/.env")
                            .c_str()),
            0);
  r = launcher.Run(p, {"/bin/sh", "-c", "cat later/.env; echo end"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(launcher.warm_starts(), 1);  // it did run in the sandbox prepared before the file
  EXPECT_EQ(r->out.Text(), "end\n");
}

TEST_P(SecretsTest, ACommandsOwnNewSecretIsItsOwnUntilTheNextCommand) {
  const Profile p = SecretProfile();
  Outcome o = Sh(p, "echo MINE=1 > new.env && mkdir -p n && echo MINE=2 > n/.env && cat n/.env");
  EXPECT_EQ(o.out, "MINE=2\n") << o.err;
  o = Sh(p, "cat n/.env; echo end");
  EXPECT_EQ(o.out, "end\n") << o.err;
}

TEST_P(SecretsTest, SecretRootsOutsideTheWorkspace) {
  char templ[] = "/var/tmp/v4agent-secret-root-XXXXXX";
  ASSERT_NE(mkdtemp(templ), nullptr);
  const std::string root = templ;
  ASSERT_EQ(
      std::system(StrCat("mkdir -p ", root, "/proj && echo HOMESECRET > ", root,
                         "/proj/.env && echo ok > ", root, "/proj/readme && chmod -R a+rX ", root)
                      .c_str()),
      0);
  Profile p = SecretProfile();
  p.secret_roots = {root};
  Outcome o = Sh(p, StrCat("cat ", root, "/proj/.env ", root, "/proj/readme"));
  EXPECT_EQ(o.out, "ok\n") << o.err;
  p.secret_roots.clear();
  o = Sh(p, StrCat("cat ", root, "/proj/.env"));
  EXPECT_EQ(o.out, "HOMESECRET\n") << o.err;
  EXPECT_TRUE(RemoveAll(root).ok()) << root;
}

INSTANTIATE_TEST_SUITE_P(Users, SecretsTest, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "Unprivileged" : "Self"; });

}  // namespace
}  // namespace v4agent::sandbox
