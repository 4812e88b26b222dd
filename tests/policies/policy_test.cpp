// Policies: every shipped file loads (and equals its compiled-in copy), decisions table by
// table, rule examples checked at load, and loader errors naming file:line:column.
#include "policies/policy.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>

#include "common/file_util.h"

namespace v4agent::policies {
namespace {

const std::string kDir = std::string(V4_SOURCE_DIR) + "/policies";

Policy Load(const std::string& name) {
  auto p = LoadPolicyFile(kDir + "/" + name + ".yaml");
  EXPECT_TRUE(p.ok()) << p.status().ToString();
  return p.ok() ? *p : Policy{};
}

Action Exec(std::vector<std::string> argv) {
  Action a;
  a.kind = Action::kExec;
  a.argv = std::move(argv);
  return a;
}

Action Sh(const std::string& script) { return Exec({"bash", "-c", script}); }

TEST(PolicyLoadTest, EveryShippedAndExampleFileLoads) {
  int n = 0;
  for (const auto& dir : {kDir, std::string(V4_SOURCE_DIR) + "/examples"}) {
    for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
      if (e.path().extension() != ".yaml") continue;
      // Examples hold other YAML too (Kubernetes manifests, specs): policies say so in the name.
      if (dir != kDir && e.path().filename().string().find("policy") == std::string::npos) {
        continue;
      }
      auto p = LoadPolicyFile(e.path().string());
      EXPECT_TRUE(p.ok()) << p.status().ToString();
      ++n;
    }
  }
  EXPECT_GE(n, 3);
  for (const char* name : {"read-only", "workspace-write", "full-access"}) {
    auto b = BuiltinPolicy(name);
    ASSERT_TRUE(b.ok()) << name;
    Policy f = Load(name);
    EXPECT_EQ(b->mode, f.mode);
    EXPECT_EQ(b->rules.size(), f.rules.size());
    EXPECT_EQ(b->tools_allowed, f.tools_allowed);
  }
  EXPECT_FALSE(BuiltinPolicy("yolo").ok());
}

struct Row {
  const char* policy;
  Action action;
  Verdict verdict;
  const char* rule;  // substring of the deciding rule
};

TEST(PolicyDecideTest, Table) {
  auto tool = [](const char* t) {
    Action a;
    a.kind = Action::kTool;
    a.tool = t;
    return a;
  };
  auto path = [](Action::Kind k, const char* p) {
    Action a;
    a.kind = k;
    a.path = p;
    return a;
  };
  const Row rows[] = {
      {"workspace-write", Exec({"ls", "-la"}), Verdict::kAllow, "approval=never"},
      {"workspace-write", Exec({"make", "-j2"}), Verdict::kAllow, "approval=never"},
      {"workspace-write", Exec({"git", "push", "origin", "main"}), Verdict::kDeny, "no-git-push"},
      {"workspace-write", Exec({"/usr/bin/git", "push"}), Verdict::kDeny, "no-git-push"},
      {"workspace-write", Sh("cd x && git reset --hard"), Verdict::kDeny, "no-history-rewrite"},
      {"workspace-write", Sh("make test | tee log; git clean -fdx"), Verdict::kDeny,
       "no-history-rewrite"},
      {"workspace-write", Sh("echo 'git push' > notes.txt"), Verdict::kAllow, "approval=never"},
      {"workspace-write", Sh("sudo rm -rf /"), Verdict::kDeny, "no-sudo"},
      {"workspace-write", Exec({"rm", "-rf", "/"}), Verdict::kDeny, "no-rm-root"},
      {"workspace-write", Exec({"rm", "-rf", "build"}), Verdict::kAllow, "approval=never"},
      {"workspace-write", tool("bash"), Verdict::kAllow, "tools.allow"},
      {"workspace-write", tool("browser"), Verdict::kDeny, "tools.allow"},
      {"workspace-write", path(Action::kWrite, "src/main.c"), Verdict::kAllow, "sandbox.mode"},
      {"workspace-write", path(Action::kWrite, ".git/hooks/pre-commit"), Verdict::kDeny,
       "protected"},
      {"workspace-write", path(Action::kWrite, "./.git/config"), Verdict::kDeny, "protected"},
      {"workspace-write", path(Action::kWrite, ".github/workflows/x.yml"), Verdict::kAllow,
       "sandbox.mode"},
      {"workspace-write", path(Action::kRead, "~/.ssh/id_rsa"), Verdict::kDeny, "hidden"},
      {"read-only", Exec({"ls"}), Verdict::kAllow, "approval=untrusted"},
      {"read-only", Exec({"git", "status"}), Verdict::kAllow, "approval=untrusted"},
      {"read-only", Exec({"git", "commit", "-m", "x"}), Verdict::kDeny, "approval=untrusted"},
      {"read-only", Exec({"find", ".", "-name", "*.py"}), Verdict::kAllow, "approval=untrusted"},
      {"read-only", Exec({"find", ".", "-delete"}), Verdict::kDeny, "approval=untrusted"},
      {"read-only", Exec({"sed", "-i", "s/a/b/", "f"}), Verdict::kDeny, "approval=untrusted"},
      {"read-only", Sh("ls && cat a.txt | grep x"), Verdict::kAllow, "approval=untrusted"},
      {"read-only", Sh("ls && rm a.txt"), Verdict::kDeny, "approval=untrusted"},
      {"read-only", Sh("echo $(rm -rf x)"), Verdict::kDeny, "approval=untrusted"},
      {"read-only", Sh("python3 -m unittest test_stats"), Verdict::kAllow, "allow-test-runners"},
      {"read-only", path(Action::kWrite, "a.txt"), Verdict::kDeny, "sandbox.mode"},
      {"read-only", tool("create"), Verdict::kDeny, "tools.allow"},
      {"full-access", Exec({"curl", "https://example.com"}), Verdict::kAllow, "approval=never"},
      {"full-access", Exec({"sudo", "-i"}), Verdict::kDeny, "no-sudo"},
  };
  for (const Row& r : rows) {
    Decision d = Decide(Load(r.policy), r.action);
    const std::string what =
        r.action.argv.empty() ? r.action.tool + r.action.path : r.action.argv.back();
    EXPECT_EQ(d.verdict, r.verdict) << r.policy << ": " << what << " -> " << d.rule;
    EXPECT_NE(d.rule.find(r.rule), std::string::npos)
        << r.policy << ": " << what << " -> " << d.rule;
    EXPECT_FALSE(d.reason.empty());
  }
}

TEST(PolicyDecideTest, AskBecomesDenyOnlyWithoutAnyoneToAsk) {
  Policy p = Load("read-only");
  Decision d = Decide(p, Exec({"make", "install"}), /*interactive=*/true);
  EXPECT_EQ(d.verdict, Verdict::kAsk);
  d = Decide(p, Exec({"make", "install"}), false);
  EXPECT_EQ(d.verdict, Verdict::kDeny);
  EXPECT_TRUE(d.asked_as_denied);
  EXPECT_NE(d.reason.find("non-interactive"), std::string::npos);
}

TEST(PolicyDecideTest, StrictestRuleWins) {
  auto p = LoadPolicyText(R"(
rules:
  - {id: allow-git, prefix: [git], decision: allow}
  - {id: ask-commit, prefix: [git, commit], decision: ask}
  - {id: deny-amend, regex: 'commit .*--amend', decision: deny}
)",
                          "t.yaml");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(Decide(*p, Exec({"git", "log"}), true).rule, "allow-git");
  EXPECT_EQ(Decide(*p, Exec({"git", "commit", "-m", "x"}), true).rule, "ask-commit");
  EXPECT_EQ(Decide(*p, Exec({"git", "commit", "--amend"}), true).rule, "deny-amend");
}

// A rule whose regex backtracks exponentially ((a+)+$ against a long run of a's and one other
// byte) is decided within the regex's limits, in milliseconds, and an undecidable match never
// lets the command through: it counts for deny rules and not for allow rules. (With
// std::regex the 40 a's here take about 2^16 times the 1.25 s that 24 took.)
TEST(PolicyDecideTest, BacktrackingRegexesAreBoundedAndNeverAllow) {
  auto p = LoadPolicyText(R"(
approval: untrusted
rules:
  - {id: allow-a, regex: '(a+)+$', decision: allow}
  - {id: deny-b, regex: '(b+)+$', decision: deny}
)",
                          "t.yaml");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  const std::string as(40, 'a'), bs(40, 'b');
  const auto start = std::chrono::steady_clock::now();
  Decision allow = Decide(*p, Exec({"frobnicate", as + "!"}), true);
  Decision deny = Decide(*p, Exec({"frobnicate", bs + "!"}), true);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LT(seconds, 5.0);
  EXPECT_NE(allow.verdict, Verdict::kAllow) << allow.rule;
  EXPECT_NE(allow.rule, "allow-a");
  EXPECT_EQ(deny.verdict, Verdict::kDeny);
  EXPECT_EQ(deny.rule, "deny-b");
  // Patterns that do match within the limits still decide as written.
  EXPECT_EQ(Decide(*p, Exec({"frobnicate", "aaa"}), true).rule, "allow-a");
}

TEST(ShellSplitTest, SimpleCommandsQuotesAndRefusals) {
  auto s = SplitShell("A=1 make -j2 && echo 'a b' \"c\\\"d\" | wc -l; ls > out.txt\n# c\npwd");
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(s->size(), 5u);
  EXPECT_EQ((*s)[0], (std::vector<std::string>{"make", "-j2"}));
  EXPECT_EQ((*s)[1], (std::vector<std::string>{"echo", "a b", "c\"d"}));
  EXPECT_EQ((*s)[3], (std::vector<std::string>{"ls"}));
  EXPECT_EQ((*s)[4], (std::vector<std::string>{"pwd"}));
  EXPECT_FALSE(SplitShell("echo 'open").ok());
  // Substitutions and here-documents are read, the commands inside them included.
  s = SplitShell("echo `id` $(date) <<EOF\n$(whoami)\nEOF");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  ASSERT_EQ(s->size(), 4u);
  EXPECT_EQ((*s)[0][0], "echo");
  EXPECT_EQ((*s)[1], (std::vector<std::string>{"id"}));
  EXPECT_EQ((*s)[2], (std::vector<std::string>{"date"}));
  EXPECT_EQ((*s)[3], (std::vector<std::string>{"whoami"}));
}

struct BadCase {
  const char* yaml;
  const char* where;  // "t.yaml:L:C"
  const char* what;   // substring of the message
};

TEST(PolicyLoadTest, NetworkAllowlistAndSecrets) {
  auto p = LoadPolicyText(
      "sandbox:\n  network: {allow: [pypi.org, \"*.pythonhosted.org\"]}\n"
      "  secrets: [\"**/.env\", \"**/*.pem\"]\n  secret_roots: [\"~\"]\n",
      "t.yaml");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_FALSE(p->network);
  EXPECT_EQ(p->network_allow, (std::vector<std::string>{"pypi.org", "*.pythonhosted.org"}));
  EXPECT_EQ(p->secrets, (std::vector<std::string>{"**/.env", "**/*.pem"}));
  EXPECT_EQ(p->secret_roots, (std::vector<std::string>{"~"}));
}

TEST(PolicyLoadTest, ErrorsNameFileLineAndColumn) {
  const BadCase cases[] = {
      {"sandbox:\n  mode: rw\n", "t.yaml:2:9", "sandbox.mode must be"},
      {"sandbx: {}\n", "t.yaml:1:1", "unknown key \"sandbx\""},
      {"sandbox:\n  network: maybe\n", "t.yaml:2:12", "true or false"},
      {"sandbox:\n  limits: {memory_mb: -5}\n", "t.yaml:2:23", "non-negative"},
      {"approval: sometimes\n", "t.yaml:1:11", "approval must be"},
      {"rules:\n  - id: x\n    decision: deny\n", "t.yaml:2:5", "exactly one of prefix and regex"},
      {"rules:\n  - id: x\n    regex: '(['\n    decision: deny\n", "t.yaml:3:12", "bad regex"},
      {"rules:\n  - id: x\n    prefix: [ls]\n    decision: nope\n", "t.yaml:4:15",
       "allow, ask or deny"},
      {"rules:\n  - id: x\n    prefix: [ls]\n    decision: deny\n    match: [\"cat a\"]\n",
       "t.yaml:5:13", "does not match"},
      {"rules:\n  - id: x\n    prefix: [ls]\n    decision: deny\n    not_match: [\"ls -la\"]\n",
       "t.yaml:5:17", "matches the rule"},
      {"rules:\n  - {id: a, prefix: [ls], decision: deny}\n  - {id: a, prefix: [cat], decision: "
       "deny}\n",
       "t.yaml:3:5", "duplicate rule id"},
      {"budgets:\n  command_timeout: {default: 900, max: 60}\n", "t.yaml:2:20", "must not exceed"},
      {"sandbox: {mode: [a\n", "t.yaml:", "flow"},
      {"version: 2\n", "t.yaml:1:10", "version 1"},
      {"tools: {allow: bash}\n", "t.yaml:1:16", "list of strings"},
      {"", "t.yaml", "empty"},
      {"sandbox:\n  network: {allow: []}\n", "t.yaml:2:20", "empty allowlist"},
      {"sandbox:\n  network: {allow: [\"a b\"]}\n", "t.yaml:2:21", "is not a host"},
      {"sandbox:\n  network: {deny: [x]}\n", "t.yaml:2:13", "unknown key \"deny\""},
      {"sandbox:\n  secrets: \"**/.env\"\n", "t.yaml:2:12", "list of strings"},
  };
  for (const BadCase& c : cases) {
    auto p = LoadPolicyText(c.yaml, "t.yaml");
    ASSERT_FALSE(p.ok()) << c.yaml;
    const std::string msg(p.status().message());
    EXPECT_EQ(msg.rfind(c.where, 0), 0u) << "want " << c.where << " got " << msg;
    EXPECT_NE(msg.find(c.what), std::string::npos) << msg;
  }
}

}  // namespace
}  // namespace v4agent::policies
