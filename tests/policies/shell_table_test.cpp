// The policy's shell front end against a table of our own: commands and scripts with the
// decision each must get under approval: untrusted (allow = known safe, run without asking)
// and under the shipped workspace-write policy (approval: never, deny rules). The labels are
// facts, not opinions: every row whose harm can show offline is run in a throwaway sandbox
// (isolation only, protected paths off, so harm can land) on a seeded git workspace, and the
// workspace and repository state before and after are compared: a row labelled harmful must
// change them, a harmless one must not. Rows about the network or the host (git push, sudo,
// rm -rf ~) are decided by rules and not run.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>

#include "common/file_util.h"
#include "common/strings.h"
#include "policies/policy.h"
#include "sandbox/launcher.h"

namespace v4agent::policies {
namespace {

enum Harm { kHarmless, kHarmful, kNotRun };
enum Exp { A, D };  // allow, deny (ask becomes deny without a terminal)

struct Row {
  const char* script;
  Exp untrusted;
  Exp workspace_write;
  Harm harm;
};

const Row kRows[] = {
    // Reading: known safe.
    {"ls", A, A, kHarmless},
    {"ls -la", A, A, kHarmless},
    {"ls -la src", A, A, kHarmless},
    {"cat README.md", A, A, kHarmless},
    {"head -n 5 README.md", A, A, kHarmless},
    {"tail -n 2 README.md", A, A, kHarmless},
    {"wc -l README.md", A, A, kHarmless},
    {"grep -rn TODO .", A, A, kHarmless},
    {"grep -o 'def [a-z_]*' src/app.py", A, A, kHarmless},
    {"rg -o 'def \\w+' src", A, A, kHarmless},
    {"rg -n -i todo", A, A, kHarmless},
    {"rg --files", A, A, kHarmless},
    {"rg -l def -g '*.py'", A, A, kHarmless},
    {"rg --files -g '!*.md'", A, A, kHarmless},
    {"find . -name '*.py'", A, A, kHarmless},
    {"find . -type f -name '*.md' -print", A, A, kHarmless},
    {"find src -maxdepth 1 -type f", A, A, kHarmless},
    {"find . -newer README.md -print", A, A, kHarmless},
    {"find . -name '-delete'", A, A, kHarmless},
    {"git status", A, A, kHarmless},
    {"git status --short", A, A, kHarmless},
    {"git log --oneline -5", A, A, kHarmless},
    {"git log -M --stat", A, A, kHarmless},
    {"git diff", A, A, kHarmless},
    {"git diff -M HEAD", A, A, kHarmless},
    {"git diff --stat -- '*.py'", A, A, kHarmless},
    {"git show HEAD --stat", A, A, kHarmless},
    {"git show --name-only HEAD~1", A, A, kHarmless},
    {"git show HEAD:README.md", A, A, kHarmless},
    {"git branch", A, A, kHarmless},
    {"git branch -a -v", A, A, kHarmless},
    {"git branch --show-current", A, A, kHarmless},
    {"git branch --list 'ma*'", A, A, kHarmless},
    {"git branch -l x", A, A, kHarmless},
    {"git -C . status", A, A, kHarmless},
    {"git --no-pager log -1", A, A, kHarmless},
    {"git rev-parse HEAD", A, A, kHarmless},
    {"git ls-files", A, A, kHarmless},
    {"git blame src/app.py", A, A, kHarmless},
    {"git grep -n def", A, A, kHarmless},
    {"git tag -l", A, A, kHarmless},
    {"git tag -l 'v*'", A, A, kHarmless},
    {"git tag --contains HEAD", A, A, kHarmless},
    {"git config --get user.name", A, A, kHarmless},
    {"git stash list", A, A, kHarmless},
    {"git describe --always", A, A, kHarmless},
    {"git log --format='%H %s' -3", A, A, kHarmless},
    {"git log -p -- src", A, A, kHarmless},
    {"git log --all --graph --oneline", A, A, kHarmless},
    {"git log --author=me --since=yesterday", A, A, kHarmless},
    {"git diff HEAD~1 --name-only", A, A, kHarmless},
    {"git remote -v", A, A, kHarmless},
    {"git reflog", A, A, kHarmless},
    {"git worktree list", A, A, kHarmless},
    {"git submodule status", A, A, kHarmless},
    {"git log --grep='git push'", A, A, kHarmless},
    {"git log -- 'rm -rf /'", A, A, kHarmless},
    {"sed -n 1,3p README.md", A, A, kHarmless},
    {"sed -n '2p' README.md", A, A, kHarmless},
    {"sed -n '$p' README.md", A, A, kHarmless},
    {"sed -n 1,2p README.md nums.txt", A, A, kHarmless},
    {"sort README.md", A, A, kHarmless},
    {"sort -n -r nums.txt", A, A, kHarmless},
    {"sort -k2 -t, nums.txt", A, A, kHarmless},
    {"uniq nums.txt", A, A, kHarmless},
    {"uniq -c nums.txt", A, A, kHarmless},
    {"cut -d: -f1 /etc/passwd", A, A, kHarmless},
    {"tr a-z A-Z < README.md", A, A, kHarmless},
    {"base64 README.md", A, A, kHarmless},
    {"base64 -d enc.txt", A, A, kHarmless},
    {"numfmt --to=iec 1048576", A, A, kHarmless},
    {"tac README.md", A, A, kHarmless},
    {"expr 1 + 2", A, A, kHarmless},
    {"paste README.md nums.txt", A, A, kHarmless},
    {"rev README.md", A, A, kHarmless},
    {"seq 3", A, A, kHarmless},
    {"echo hello", A, A, kHarmless},
    {"printf '%s\\n' a b", A, A, kHarmless},
    {"pwd", A, A, kHarmless},
    {"cd src && ls", A, A, kHarmless},
    {"diff README.md nums.txt", A, A, kHarmless},
    {"stat README.md", A, A, kHarmless},
    {"du -sh .", A, A, kHarmless},
    {"file README.md", A, A, kHarmless},
    {"which python3", A, A, kHarmless},
    {"date +%Y", A, A, kHarmless},
    {"date +%s", A, A, kHarmless},
    {"ls | wc -l", A, A, kHarmless},
    {"cat README.md | grep -i intro | head -1", A, A, kHarmless},
    {"cat README.md nums.txt | sort | uniq -c | sort -rn | head", A, A, kHarmless},
    {"ls && pwd", A, A, kHarmless},
    {"true || false", A, A, kHarmless},
    {"for f in *.md; do wc -l \"$f\"; done", A, A, kHarmless},
    {"if [ -f README.md ]; then cat README.md; fi", A, A, kHarmless},
    {"echo $(ls)", A, A, kHarmless},
    {"cat `ls README.md`", A, A, kHarmless},
    {"cat \"$(ls README.md)\"", A, A, kHarmless},
    {"grep -l def $(find . -name '*.py')", A, A, kHarmless},
    {"env ls", A, A, kHarmless},
    {"env -i ls", A, A, kHarmless},
    {"env LC_ALL=C ls", A, A, kHarmless},
    {"LC_ALL=C sort README.md", A, A, kHarmless},
    {"TZ=UTC date", A, A, kHarmless},
    {"nice -n 5 ls", A, A, kHarmless},
    {"timeout 5 cat README.md", A, A, kHarmless},
    {"stdbuf -oL ls", A, A, kHarmless},
    {"nohup ls", A, A, kHarmless},
    {"time ls", A, A, kHarmless},
    {"exec ls", A, A, kHarmless},
    {"command ls", A, A, kHarmless},
    {"command -v git", A, A, kHarmless},
    {"builtin echo hi", A, A, kHarmless},
    {"type ls", A, A, kHarmless},
    {"xargs echo < nums.txt", A, A, kHarmless},
    {"printf 'x' | xargs cat", A, A, kHarmless},
    {"printf 'x\\n' | xargs -I{} echo {}", A, A, kHarmless},
    {"seq 3 | xargs -n1 echo", A, A, kHarmless},
    {"find . -type f | xargs grep -l def", A, A, kHarmless},
    {"find . -maxdepth 1 -name '*.md' -print0 | xargs -0 wc -l", A, A, kHarmless},
    {"ls 2>/dev/null", A, A, kHarmless},
    {"ls > /dev/null 2>&1", A, A, kHarmless},
    {"echo hi 1>&2", A, A, kHarmless},
    {"echo hi >&2", A, A, kHarmless},
    {"echo hi &>/dev/null", A, A, kHarmless},
    {"cat < README.md", A, A, kHarmless},
    {"wc -l < README.md", A, A, kHarmless},
    {"grep x README.md || echo none", A, A, kHarmless},
    {"echo ~", A, A, kHarmless},
    {"ls ~", A, A, kHarmless},
    {"cd /tmp && ls", A, A, kHarmless},
    {"cd .. && ls", A, A, kHarmless},
    {"pwd; cd src; pwd", A, A, kHarmless},
    {"true; false; true", A, A, kHarmless},
    {"! false", A, A, kHarmless},
    {"(ls)", A, A, kHarmless},
    {"{ ls; pwd; }", A, A, kHarmless},
    {"ls | grep -v x | sort", A, A, kHarmless},
    {"ls |& grep x", A, A, kHarmless},
    {"seq 1 3 | while read i; do echo $i; done", A, A, kHarmless},
    {"echo $HOME", A, A, kHarmless},
    {"echo \"$USER\"", A, A, kHarmless},
    {"[ -d src ] && echo yes", A, A, kHarmless},
    {"test -f README.md", A, A, kHarmless},
    {"echo {a,b}.txt", A, A, kHarmless},
    {"echo {1..5}", A, A, kHarmless},
    {"ls -- *", A, A, kHarmless},
    {"cat * 2>/dev/null", A, A, kHarmless},
    {"head -1 *", A, A, kHarmless},
    {"grep -r --include='*.py' def .", A, A, kHarmless},
    {"ls -- -delete", A, A, kHarmless},
    {"cat -- -delete", A, A, kHarmless},
    {"echo a #; touch PWNED", A, A, kHarmless},
    {"echo 'touch PWNED'", A, A, kHarmless},
    {"echo \"touch PWNED; rm -rf x\"", A, A, kHarmless},
    {"grep 'rm -rf' README.md", A, A, kHarmless},
    {"echo 'git reset --hard'", A, A, kHarmless},
    {"ls; echo done > /dev/null", A, A, kHarmless},
    {"set -x; ls", A, A, kHarmless},
    {"x=1; echo $x", A, A, kHarmless},
    // Harmless, but not known safe: they ask.
    {"find . -name '*.py' -exec ls {} \\;", D, A, kHarmless},
    {"sed 's/a/b/' README.md", D, A, kHarmless},
    {"awk '{print $1}' README.md", D, A, kHarmless},
    {"git --git-dir=.git status", D, A, kHarmless},
    {"rg -z def", D, A, kHarmless},
    {"env FOO=1 ls", D, A, kHarmless},
    {"alias ls='touch PWNED'; ls", D, A, kHarmless},
    {"echo x > >(cat)", D, A, kHarmless},
    {"git stash show", A, A, kHarmless},
    // Writes, deletes or runs code: never known safe; the sandbox confines them under
    // workspace-write.
    {"touch PWNED", D, A, kHarmful},
    {"echo x > out.txt", D, A, kHarmful},
    {"ls > out.txt", D, A, kHarmful},
    {"ls -la > listing.txt", D, A, kHarmful},
    {"echo hi >> README.md", D, A, kHarmful},
    {"echo hi &> out.txt", D, A, kHarmful},
    {"echo hi >| out.txt", D, A, kHarmful},
    {"printf '%s' x > out.txt", D, A, kHarmful},
    {"base64 README.md > enc2.txt", D, A, kHarmful},
    {"find . -{delete,print}", D, A, kHarmful},
    {"find . -delete", D, A, kHarmful},
    {"find . -del*", D, A, kHarmful},
    {"find . -fprint list.txt", D, A, kHarmful},
    {"find . -fprint0 list.bin", D, A, kHarmful},
    {"find . -fls list.txt", D, A, kHarmful},
    {"find . -execdir touch PWNED \\;", D, A, kHarmful},
    {"find . -name README.md -exec rm {} \\;", D, A, kHarmful},
    {"rg --pre{=,=sh} p payload.sh", D, A, kHarmful},
    {"rg --pre ./payload.sh def .", D, A, kHarmful},
    {"echo \"\\\n\" ; touch PWNED", D, A, kHarmful},
    {"echo $'\\'' ; touch PWNED ; echo \\'", D, A, kHarmful},
    {"GIT_EXTERNAL_DIFF='touch PWNED; true' git diff", D, A, kHarmful},
    {"env touch PWNED", D, A, kHarmful},
    {"env -S 'touch PWNED'", D, A, kHarmful},
    {"git branch NEW", D, A, kHarmful},
    {"git branch new-branch", D, A, kHarmful},
    {"git branch -dv x", D, A, kHarmful},
    {"git branch -D x", D, A, kHarmful},
    {"git branch -f x HEAD~1", D, A, kHarmful},
    {"git branch -m x y", D, A, kHarmful},
    {"git grep -O'touch PWNED' def", D, A, kHarmful},
    {"sed -ni 1p README.md", D, A, kHarmful},
    {"sed --in-place=.bak s/a/b/ README.md", D, A, kHarmful},
    {"sed -i s/a/b/ README.md", D, A, kHarmful},
    {"sed -n '1e touch PWNED' README.md", D, A, kHarmful},
    {"sed -n '1w out.txt' README.md", D, A, kHarmful},
    {"sort -oFILE README.md", D, A, kHarmful},
    {"sort -o out.txt README.md", D, A, kHarmful},
    {"sort --output=out.txt nums.txt", D, A, kHarmful},
    {"sort -u nums.txt -o nums.txt", D, A, kHarmful},
    {"uniq README.md out.txt", D, A, kHarmful},
    {"x=$(true); rm -rf src", D, A, kHarmful},
    {"echo $(touch PWNED)", D, A, kHarmful},
    {"echo \"$(touch PWNED)\"", D, A, kHarmful},
    {"echo ${x:-$(touch PWNED)}", D, A, kHarmful},
    {"echo $((1 + $(touch PWNED; echo 1)))", D, A, kHarmful},
    {"[[ $(touch PWNED) ]]", D, A, kHarmful},
    {"cat <(touch PWNED)", D, A, kHarmful},
    {"diff <(touch PWNED) README.md", D, A, kHarmful},
    {"cat <<EOF\n$(touch PWNED)\nEOF", D, A, kHarmful},
    {"cat <<-EOF\n\t`touch PWNED`\n\tEOF", D, A, kHarmful},
    {"ls `touch PWNED`", D, A, kHarmful},
    {"f() { touch PWNED; }; f", D, A, kHarmful},
    {"function f { touch PWNED; }; f", D, A, kHarmful},
    {"bash -c 'touch PWNED'", D, A, kHarmful},
    {"sh -c \"echo x > out.txt\"", D, A, kHarmful},
    {"eval 'touch PWNED'", D, A, kHarmful},
    {"builtin eval 'touch PWNED'", D, A, kHarmful},
    {"xargs touch < names.txt", D, A, kHarmful},
    {"printf 'README.md' | xargs rm", D, A, kHarmful},
    {"timeout 5 touch PWNED", D, A, kHarmful},
    {"timeout --foreground 5 touch PWNED", D, A, kHarmful},
    {"nice rm README.md", D, A, kHarmful},
    {"nice -n 10 -- touch PWNED", D, A, kHarmful},
    {"command touch PWNED", D, A, kHarmful},
    {"exec touch PWNED", D, A, kHarmful},
    {"tee out.txt < README.md", D, A, kHarmful},
    {"echo x | tee out.txt", D, A, kHarmful},
    {"ls -la | tee listing.txt", D, A, kHarmful},
    {"cp README.md copy.md", D, A, kHarmful},
    {"mv README.md moved.md", D, A, kHarmful},
    {"mkdir newdir", D, A, kHarmful},
    {"rm -- -delete", D, A, kHarmful},
    {"ln -s README.md link", D, A, kHarmful},
    {"chmod +x README.md", D, A, kHarmful},
    {"truncate -s 0 README.md", D, A, kHarmful},
    {"dd if=/dev/zero of=out.bin count=1", D, A, kHarmful},
    {"install -m 644 README.md copy", D, A, kHarmful},
    {"umask 077; touch x", D, A, kHarmful},
    {"git add -A", D, A, kHarmful},
    {"git commit -qam x", D, A, kHarmful},
    {"git stash", D, A, kHarmful},
    {"git checkout -qb newbranch", D, A, kHarmful},
    {"git config user.name x", D, A, kHarmful},
    {"git remote add x y", D, A, kHarmful},
    {"git tag v1", D, A, kHarmful},
    {"git notes add -m x", D, A, kHarmful},
    {"git update-ref refs/heads/y HEAD", D, A, kHarmful},
    {"git log > log.txt", D, A, kHarmful},
    {"git diff --output=d.txt", D, A, kHarmful},
    {"git -c alias.x='!touch PWNED' x", D, A, kHarmful},
    {"python3 -c \"open('PWNED','w')\"", D, A, kHarmful},
    {"perl -e 'open F,\">PWNED\"'", D, A, kHarmful},
    {"node -e \"require('fs').writeFileSync('PWNED','')\"", D, A, kHarmful},
    {"awk 'BEGIN{system(\"touch PWNED\")}'", D, A, kHarmful},
    {"./payload.sh", D, A, kHarmful},
    {"sh payload.sh", D, A, kHarmful},
    {". ./payload.sh", D, A, kHarmful},
    {"source payload.sh", D, A, kHarmful},
    {"make -s", D, A, kHarmful},
    {"PATH=.:$PATH ls", D, A, kHarmful},
    {"shopt -s expand_aliases\nalias ls='touch PWNED'\nls", D, A, kHarmful},
    {"cat README.md > /dev/null; touch PWNED", D, A, kHarmful},
    {"{ touch PWNED; }", D, A, kHarmful},
    {"(touch PWNED)", D, A, kHarmful},
    {"ls && touch PWNED", D, A, kHarmful},
    {"true && touch PWNED", D, A, kHarmful},
    {"if true; then touch PWNED; fi", D, A, kHarmful},
    {"while false; do :; done; touch PWNED", D, A, kHarmful},
    {"case x in x) touch PWNED;; esac", D, A, kHarmful},
    {"for i in 1; do touch PWNED; done", D, A, kHarmful},
    {"ls; # comment\ntouch PWNED", D, A, kHarmful},
    {"touch PWN\\ED", D, A, kHarmful},
    {"touch \"PW\"'NED'", D, A, kHarmful},
    {"t\\ouch PWNED", D, A, kHarmful},
    {"{touch,PWNED}", D, A, kHarmful},
    {"$'\\x74ouch' PWNED", D, A, kHarmful},
    // The program's name is not known before it runs: nothing can be checked, so the
    // strictest rule of the policy decides.
    {"tou$()ch PWNED", D, D, kHarmful},
    {"`echo touch` PWNED", D, D, kHarmful},
    {"$(echo touch) PWNED", D, D, kHarmful},
    {"cmd=touch; $cmd PWNED", D, D, kHarmful},
    {"bash -c \"$x\"", D, D, kHarmless},
    {"eval \"$cmd\"", D, D, kHarmless},
    // Deny rules of workspace-write, through every disguise.
    {"git reset --hard HEAD~1", D, D, kHarmful},
    {"git reset -q --hard", D, D, kHarmful},
    {"git clean -fdx", D, D, kHarmful},
    {"git clean --force", D, D, kHarmful},
    {"git clean -d -f", D, D, kHarmful},
    {"git -C . clean -fdx", D, D, kHarmful},
    {"git checkout -- .", D, D, kHarmful},
    {"echo $(date); git reset --hard HEAD~1", D, D, kHarmful},
    {"x=$(true); git reset --hard", D, D, kHarmful},
    {"ls && (cd src && git clean -fdx)", D, D, kHarmful},
    {"sh -c 'git reset --hard'", D, D, kHarmful},
    {"echo $(git clean -fdx)", D, D, kHarmful},
    {"git push origin main", D, D, kNotRun},
    {"git -C . push", D, D, kNotRun},
    {"cat <<EOF\nx\nEOF\ngit push --force", D, D, kNotRun},
    {"env GIT_TRACE=1 git push", D, D, kNotRun},
    {"timeout 9 git push", D, D, kNotRun},
    {"sh -c 'git push'", D, D, kNotRun},
    {"f() { git push; }; f", D, D, kNotRun},
    {"x=$(true); rm -rf ~", D, D, kNotRun},
    {"rm -rf /", D, D, kNotRun},
    {"rm -r -f -- /", D, D, kNotRun},
    {"sudo rm -rf /", D, D, kNotRun},
    {"sudo -u root ls", D, D, kNotRun},
    // Not demonstrable offline or without a terminal; decided all the same.
    {"LD_PRELOAD=/tmp/x.so ls", D, A, kNotRun},
    {"PAGER='touch PWNED' git log", D, A, kNotRun},
    {"git log --ext-diff -p", D, A, kNotRun},
    {"date -s now", D, A, kNotRun},
    {"find . -name README.md -ok rm {} \\;", D, A, kNotRun},
    {"git reflog expire --all", D, A, kNotRun},
    {"curl http://example.com", D, A, kNotRun},
};

// Everything that would show harm: the files (path, type, mode, size, content) outside .git
// and the repository's refs, HEAD, index entries, stash, config and notes.
std::string StateOf(const std::string& ws) {
  std::string out;
  namespace fs = std::filesystem;
  std::vector<std::string> lines;
  for (auto it = fs::recursive_directory_iterator(ws); it != fs::recursive_directory_iterator();
       ++it) {
    const std::string rel = fs::relative(it->path(), ws).string();
    if (rel == ".git" || StartsWith(rel, ".git/")) {
      if (rel == ".git") it.disable_recursion_pending();
      continue;
    }
    std::error_code ec;
    const auto st = fs::symlink_status(it->path(), ec);
    std::string line =
        StrCat(rel, " ", static_cast<int>(st.type()), " ", static_cast<int>(st.permissions()));
    if (st.type() == fs::file_type::regular) line += " " + ReadFile(it->path()).value_or("?");
    lines.push_back(line);
  }
  std::sort(lines.begin(), lines.end());
  out = StrJoin(lines, "\n");
  const std::string git =
      StrCat("cd '", ws,
             "' && cat .git/HEAD && git for-each-ref && git ls-files -s && git stash list && "
             "git config --local -l && git notes list 2>/dev/null");
  FILE* p = popen(git.c_str(), "r");
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  pclose(p);
  return out;
}

class ShellTableTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    template_ = new ScopedTempDir();
    const std::string t = template_->path() + "/ws";
    const std::string seed =
        StrCat("mkdir -p ", t, "/src && cd ", t,
               " && printf 'intro line\\nsecond a\\nthird\\n' > README.md"
               " && printf '3\\n1\\n2\\n1\\n' > nums.txt"
               " && printf 'def main():\\n    pass\\n' > src/app.py"
               " && printf '#!/bin/sh\\ntouch PWNED\\n' > payload.sh && chmod +x payload.sh"
               " && printf '#!/bin/sh\\ntouch PWNED\\n' > ls && chmod +x ls"
               " && printf 'PWNED\\n' > names.txt"
               " && printf 'all:\\n\\ttouch PWNED\\n' > Makefile"
               " && printf 'aGVsbG8K\\n' > enc.txt && : > ./-delete"
               " && git init -q . && git config user.email t@t && git config user.name t"
               " && git add -A && git commit -qm one && printf 'more\\n' >> README.md"
               " && git commit -qam two && git branch x"
               " && printf 'def main():\\n    return 1\\n' > src/app.py && echo u > untracked.txt"
               " && echo u > src/untracked.py"
               " && chmod -R a+rwX .");
    ASSERT_EQ(std::system(seed.c_str()), 0);
  }
  static void TearDownTestSuite() {
    delete template_;
    template_ = nullptr;
  }
  static ScopedTempDir* template_;
};
ScopedTempDir* ShellTableTest::template_ = nullptr;

Action Sh(const std::string& script) {
  Action a;
  a.kind = Action::kExec;
  a.argv = {"bash", "-c", script};
  return a;
}

TEST_F(ShellTableTest, DecisionsInBothModes) {
  auto ww = BuiltinPolicy("workspace-write");
  ASSERT_TRUE(ww.ok());
  Policy untrusted = *ww;
  untrusted.approval = Approval::kUntrusted;
  untrusted.rules.clear();
  int rows = 0;
  for (const Row& r : kRows) {
    ++rows;
    const Decision u = Decide(untrusted, Sh(r.script));
    EXPECT_EQ(u.verdict == Verdict::kAllow ? A : D, r.untrusted)
        << "untrusted: " << r.script << "\n  " << u.reason << "\n  " << StrJoin(u.trace, "\n  ");
    const Decision w = Decide(*ww, Sh(r.script));
    EXPECT_EQ(w.verdict == Verdict::kAllow ? A : D, r.workspace_write)
        << "workspace-write: " << r.script << "\n  " << w.reason << "\n  "
        << StrJoin(w.trace, "\n  ");
    // What untrusted mode runs without asking must be harmless.
    if (r.untrusted == A) {
      EXPECT_EQ(r.harm, kHarmless) << r.script;
    }
  }
  EXPECT_GE(rows, 200);
}

TEST_F(ShellTableTest, LabelsAreFactsWhenRun) {
  sandbox::Launcher launcher;
  int ran = 0;
  // Each row runs on a fresh copy of one template, so every copy's state before its run is the
  // same (StateOf names paths relative to the copy): it is read once, from the first copy.
  std::string pristine;
  for (const Row& r : kRows) {
    if (r.harm == kNotRun) continue;
    ScopedTempDir dir;
    const std::string ws = dir.path() + "/ws";
    ASSERT_EQ(std::system(StrCat("cp -a ", template_->path(), "/ws ", ws).c_str()), 0);
    if (pristine.empty()) pristine = StateOf(ws);
    const std::string& before = pristine;
    sandbox::Profile p = sandbox::DefaultProfile(ws);
    p.protected_paths.clear();  // isolation only: the harm must be able to land here
    p.watched_paths.clear();
    p.timeout_seconds = 20;
    p.env = {"GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=safe.directory", "GIT_CONFIG_VALUE_0=*"};
    auto report = launcher.Run(p, {"/bin/bash", "-c", r.script});
    ASSERT_TRUE(report.ok()) << report.status().ToString();
    const std::string after = StateOf(ws);
    if (r.harm == kHarmful) {
      EXPECT_NE(before, after) << "labelled harmful but changed nothing: " << r.script << "\n"
                               << report->err.Text();
    } else {
      EXPECT_EQ(before, after) << "labelled harmless but changed the workspace: " << r.script;
    }
    ++ran;
  }
  EXPECT_GE(ran, 180);
}

}  // namespace
}  // namespace v4agent::policies
