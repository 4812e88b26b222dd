#include "policies/safe_commands.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <regex>
#include <set>

#include "common/strings.h"

namespace v4agent::policies {
namespace {

std::string Base(const std::string& p) {
  const size_t slash = p.rfind('/');
  return slash == std::string::npos || slash + 1 >= p.size() ? p : p.substr(slash + 1);
}

// Options of one program (or git subcommand) written as a compact list: "-x" a short flag,
// "-x#" a short flag with an argument (attached or the next word), "--name" a long flag,
// "--name#" with an argument (=value or the next word), "--name=" with an optional =value,
// "--name*" any long option that starts so (never takes the next word), "-x=" a short flag
// with an optional attached value (-M, -M50%), "-#" a numeric option such as -5.
struct OptionSpec {
  std::set<char> short_flags, short_args, short_optional;
  std::set<std::string> long_flags, long_args, long_optional;
  std::vector<std::string> long_prefixes;
  bool numeric = false;
  explicit OptionSpec(const char* text) {
    for (const auto& t : StrSplit(text, ' ')) {
      if (t.empty()) continue;
      if (t == "-#") {
        numeric = true;
      } else if (StartsWith(t, "--")) {
        const char last = t.back();
        const std::string name = t.substr(0, t.size() - 1);
        if (last == '#') {
          long_args.insert(name);
        } else if (last == '=') {
          long_optional.insert(name);
        } else if (last == '*') {
          long_prefixes.push_back(name);
        } else {
          long_flags.insert(t);
        }
      } else if (t.size() == 2) {
        short_flags.insert(t[1]);
      } else if (t.size() == 3 && t[2] == '#') {
        short_args.insert(t[1]);
      } else if (t.size() == 3 && t[2] == '=') {
        short_optional.insert(t[1]);  // -M or -M50%: a value only when attached
      }
    }
  }
};

struct ParsedArgs {
  std::vector<const ShellWord*> operands;  // before and after --
  std::vector<std::string> options;        // as written, for checks like "is -l present"
  std::string problem;                     // "": all options allowed
};

// Reads words[from..] against `spec`. An unknown word before "--" may be an option (a glob
// can expand to "-delete"): not allowed unless `unknown_operands_ok` (a program with no
// harmful options at all).
ParsedArgs ParseOptions(const std::vector<ShellWord>& words, size_t from, const OptionSpec& spec,
                        bool unknown_operands_ok) {
  ParsedArgs p;
  bool options_done = false;
  for (size_t i = from; i < words.size(); ++i) {
    const ShellWord& w = words[i];
    if (options_done) {
      p.operands.push_back(&w);
      continue;
    }
    if (!w.known) {
      if (!unknown_operands_ok) {
        p.problem = StrCat("\"", w.source, "\" is not known before the command runs");
        return p;
      }
      p.operands.push_back(&w);
      continue;
    }
    const std::string& a = w.text;
    if (a == "--") {
      options_done = true;
      continue;
    }
    if (a.size() < 2 || a[0] != '-') {
      p.operands.push_back(&w);
      continue;
    }
    p.options.push_back(a);
    if (StartsWith(a, "--")) {
      const size_t eq = a.find('=');
      const std::string name = a.substr(0, eq);
      if (spec.long_flags.count(name) && eq == std::string::npos) continue;
      if (spec.long_optional.count(name)) continue;
      if (spec.long_args.count(name)) {
        if (eq == std::string::npos) {
          if (i + 1 >= words.size() || !words[i + 1].known) {
            p.problem = StrCat(name, " needs a known argument");
            return p;
          }
          ++i;
        }
        continue;
      }
      bool prefixed = false;
      for (const auto& pre : spec.long_prefixes) prefixed = prefixed || StartsWith(a, pre);
      if (prefixed) continue;
      p.problem = StrCat("the option ", name, " is not among the known harmless ones");
      return p;
    }
    if (spec.numeric && std::all_of(a.begin() + 1, a.end(), [](char c) {
          return std::isdigit(static_cast<unsigned char>(c));
        })) {
      continue;
    }
    for (size_t k = 1; k < a.size(); ++k) {
      const char c = a[k];
      if (spec.short_flags.count(c)) continue;
      if (spec.short_optional.count(c)) break;  // the rest of the cluster is its value
      if (spec.short_args.count(c)) {
        if (k + 1 == a.size()) {
          if (i + 1 >= words.size() || !words[i + 1].known) {
            p.problem = StrCat("-", std::string(1, c), " needs a known argument");
            return p;
          }
          ++i;
        }
        break;  // the rest of the cluster is the argument
      }
      p.problem = StrCat("the option -", std::string(1, c), " (in ", a,
                         ") is not among the known harmless ones");
      return p;
    }
  }
  return p;
}

// Whether option word `a` takes the next word as its argument under `spec`.
bool TakesNextWord(const std::string& a, const OptionSpec& spec) {
  if (StartsWith(a, "--")) return a.find('=') == std::string::npos && spec.long_args.count(a);
  for (size_t k = 1; k < a.size(); ++k) {
    if (spec.short_args.count(a[k])) return k + 1 == a.size();
    if (!spec.short_flags.count(a[k])) return false;
  }
  return false;
}

// Programs without a single option that writes a file or runs another program (GNU
// coreutils, grep, diffutils, procps, util-linux as in Debian 12): any option, any operand.
const std::set<std::string>& AnyOptionPrograms() {
  static const std::set<std::string> k = {
      "cat",      "head",      "tail",      "wc",     "nl",     "tac",      "rev",     "base64",
      "base32",   "basename",  "dirname",   "seq",    "expr",   "numfmt",   "paste",   "cut",
      "tr",       "pwd",       "true",      "false",  "echo",   "printf",   "test",    "[",
      "[[",       "id",        "whoami",    "uname",  "groups", "printenv", "which",   "type",
      "readlink", "realpath",  "stat",      "du",     "df",     "cmp",      "comm",    "diff",
      "sha1sum",  "sha256sum", "sha512sum", "md5sum", "b2sum",  "cksum",    "ls",      "fold",
      "fmt",      "expand",    "unexpand",  "column", "od",     "hexdump",  "strings", "sleep",
      "nproc",    "getconf",   "locale",    "tty",    "arch",   "logname",  "uptime",  "free",
      "cd",       "grep",      "egrep",     "fgrep",  "zcat",   "zgrep",    ":",       "pushd",
      "popd",     "dirs",      "jobs",      "wait",   "read",   "command",  "env",     "nice",
      "set",      "shift",     "getopts",   "hash",   "umask"};
  return k;
}

struct ProgramSpec {
  OptionSpec options;
  int max_operands = -1;  // -1: any
};

const std::map<std::string, ProgramSpec>& ProgramSpecs() {
  static const std::map<std::string, ProgramSpec> k = {
      {"sort",
       {OptionSpec("-b -d -f -g -i -M -h -n -R -r -V -k# -t# -u -s -c -C -z -m -S# -T# "
                   "--check= --key# --field-separator# --numeric-sort --general-numeric-sort "
                   "--human-numeric-sort --month-sort --version-sort --random-sort --reverse "
                   "--unique --stable --ignore-case --ignore-leading-blanks --dictionary-order "
                   "--ignore-nonprinting --zero-terminated --buffer-size# --temporary-directory# "
                   "--parallel# --merge --sort# --debug"),
        -1}},
      // uniq's second operand is an output file.
      {"uniq",
       {OptionSpec("-c -d -D -u -i -f# -s# -w# -z --count --repeated --unique --ignore-case "
                   "--skip-fields# --skip-chars# --check-chars# --zero-terminated "
                   "--all-repeated= --group="),
        1}},
      {"file",
       {OptionSpec("-b -i -L -h -z -Z -k -s -N -0 -e# -F# -r -l -p -E --mime --mime-type "
                   "--mime-encoding --brief --dereference --no-dereference --keep-going "
                   "--special-files --uncompress --no-pad --print0 --raw --separator# "
                   "--exclude# --extension --apple --preserve-date"),
        -1}},
      {"tree",
       {OptionSpec("-a -d -f -i -l -L# -P# -I# -s -h -p -u -g -D -F -C -n -x -J -X -t -r -U "
                   "-v -c -q -N -Q -A -S --noreport --dirsfirst --charset# --du --prune "
                   "--filelimit# --sort# --gitignore --matchdirs --ignore-case --si --inodes "
                   "--device --timefmt# --noreport --filesfirst --info --fromfile"),
        -1}},
      {"rg",
       {OptionSpec("-i -S -s -w -v -n -N -l -c -o -u -t# -T# -g# -e# -F -x -A# -B# -C# -m# "
                   "-d# -L -H -I -P -U -0 -q -a -j# -M# -E# -r# -f# -h -V "
                   "--hidden --no-ignore* --follow --files --files-with-matches "
                   "--files-without-match --count --count-matches --json --vimgrep --heading "
                   "--no-heading --color# --colors# --column --no-line-number --line-number "
                   "--with-filename --no-filename --sort# --sortr# --type# --type-not# "
                   "--type-list --pcre2 --engine# --multiline --multiline-dotall --null "
                   "--only-matching --passthru --replace# --stats --trim --smart-case "
                   "--case-sensitive --ignore-case --word-regexp --line-regexp --invert-match "
                   "--fixed-strings --threads# --max-filesize# --max-columns# "
                   "--max-columns-preview --max-count# --max-depth# --one-file-system "
                   "--no-messages --quiet --debug --trace --encoding# --crlf --text --binary "
                   "--unrestricted --context# --after-context# --before-context# "
                   "--context-separator# --field-match-separator# --field-context-separator# "
                   "--path-separator# --no-config --glob# --iglob# --regexp# --file# "
                   "--ignore-file# --byte-offset --vimgrep --no-unicode --no-pcre2-unicode "
                   "--auto-hybrid-regex --dfa-size-limit# --regex-size-limit# --mmap --no-mmap "
                   "--null-data --line-buffered --block-buffered --glob-case-insensitive "
                   "--no-require-git --ignore-dot --no-ignore-dot --include-zero --max-depth# "
                   "--files-without-match --help --version"),
        -1}},
      {"date",
       {OptionSpec("-d# -f# -I= -R -r# -u --date# --file# --iso-8601= --rfc-email --rfc-3339# "
                   "--reference# --utc --universal --debug"),
        1}},
      {"xargs", {OptionSpec(""), -1}},
  };
  return k;
}

// sed without writing or running anything: -n and print scripts of line addresses only.
std::string SedReason(const CommandView& c) {
  static const OptionSpec spec(
      "-n -E -r -s -z -u -e# --quiet --silent --regexp-extended "
      "--separate --null-data --unbuffered --posix --expression#");
  ParsedArgs a = ParseOptions(c.words, 1, spec, false);
  if (!a.problem.empty()) return a.problem;
  std::vector<std::string> scripts;
  for (size_t i = 1; i < c.words.size(); ++i) {
    const std::string& w = c.words[i].text;
    if (w == "-e" || w == "--expression") {
      if (i + 1 < c.words.size()) scripts.push_back(c.words[i + 1].text);
    } else if (StartsWith(w, "-e") && w.size() > 2) {
      scripts.push_back(w.substr(2));
    } else if (StartsWith(w, "--expression=")) {
      scripts.push_back(w.substr(13));
    }
  }
  size_t first_file = 0;
  if (scripts.empty()) {
    if (a.operands.empty()) return "sed without a script";
    if (!a.operands[0]->known) return "sed's script is not known";
    scripts.push_back(a.operands[0]->text);
    first_file = 1;
  }
  if (std::find(a.options.begin(), a.options.end(), "-n") == a.options.end() &&
      std::find(a.options.begin(), a.options.end(), "--quiet") == a.options.end() &&
      std::find(a.options.begin(), a.options.end(), "--silent") == a.options.end()) {
    return "sed without -n";
  }
  static const std::regex kPrint(R"(^\s*((\d+|\$)(,(\d+|\$))?\s*p\s*;?\s*)+$)");
  for (const auto& s : scripts) {
    if (!std::regex_match(s, kPrint)) {
      return StrCat("the sed script \"", s,
                    "\" is not a line-range print (only N,Mp is known safe)");
    }
  }
  for (size_t k = first_file; k < a.operands.size(); ++k) {
    if (!a.operands[k]->known) return "a file operand of sed is not known";
  }
  return "";
}

// find with tests and printing actions only (no -delete, -exec*, -ok*, -fprint*, -fls).
std::string FindReason(const CommandView& c) {
  static const std::set<std::string> kNoArg = {"-print",
                                               "-print0",
                                               "-ls",
                                               "-prune",
                                               "-quit",
                                               "-true",
                                               "-false",
                                               "-not",
                                               "!",
                                               "-a",
                                               "-and",
                                               "-o",
                                               "-or",
                                               "(",
                                               ")",
                                               ",",
                                               "-empty",
                                               "-readable",
                                               "-writable",
                                               "-executable",
                                               "-depth",
                                               "-xdev",
                                               "-mount",
                                               "-follow",
                                               "-daystart",
                                               "-noleaf",
                                               "-nouser",
                                               "-nogroup",
                                               "-d",
                                               "-ignore_readdir_race",
                                               "-noignore_readdir_race"};
  static const std::set<std::string> kOneArg = {
      "-name",   "-iname",    "-path",  "-ipath",  "-wholename", "-iwholename", "-regex",
      "-iregex", "-type",     "-xtype", "-size",   "-mtime",     "-mmin",       "-atime",
      "-amin",   "-ctime",    "-cmin",  "-newer",  "-anewer",    "-cnewer",     "-user",
      "-group",  "-uid",      "-gid",   "-perm",   "-maxdepth",  "-mindepth",   "-links",
      "-inum",   "-samefile", "-lname", "-ilname", "-regextype", "-printf",     "-used",
      "-fstype", "-context"};
  size_t i = 1;
  // Leading -H -L -P -D... and the paths.
  while (i < c.words.size() && c.words[i].known &&
         (c.words[i].text == "-H" || c.words[i].text == "-L" || c.words[i].text == "-P" ||
          StartsWith(c.words[i].text, "-O"))) {
    ++i;
  }
  for (; i < c.words.size(); ++i) {
    const ShellWord& w = c.words[i];
    if (!w.known) return StrCat("\"", w.source, "\" is not known before find runs");
    const std::string& t = w.text;
    if (kNoArg.count(t)) continue;
    if (kOneArg.count(t)) {
      if (i + 1 >= c.words.size() || !c.words[i + 1].known) {
        return StrCat(t, " needs a known argument");
      }
      ++i;
      continue;
    }
    if (StartsWith(t, "-newer") && t.size() == 8) {  // -newerXY REF
      ++i;
      continue;
    }
    if (!t.empty() && (t[0] == '-' || t[0] == '(' || t[0] == ')' || t[0] == '!')) {
      return StrCat("find ", t, " is not among the known harmless tests and actions");
    }
    // A path operand (only before the expression in GNU find, but harmless anywhere).
  }
  return "";
}

// git: global options first (code-running ones are not safe), then a read-only subcommand
// with its allowed options.
std::string GitReason(const CommandView& c) {
  size_t i = 1;
  for (; i < c.words.size(); ++i) {
    const ShellWord& w = c.words[i];
    if (!w.known) return "a git global option is not known";
    const std::string& t = w.text;
    if (t == "-C") {
      if (i + 1 >= c.words.size() || !c.words[i + 1].known) return "git -C needs a known path";
      ++i;
      continue;
    }
    if (t == "--no-pager" || t == "-P" || t == "--no-optional-locks" || t == "-p" ||
        t == "--paginate" || t == "--literal-pathspecs" || t == "--no-replace-objects" ||
        t == "--glob-pathspecs" || t == "--noglob-pathspecs" || t == "--icase-pathspecs" ||
        StartsWith(t, "--namespace=") || t == "--no-advice") {
      continue;
    }
    if (t == "-c" || StartsWith(t, "--config-env") || StartsWith(t, "--git-dir") ||
        StartsWith(t, "--work-tree") || StartsWith(t, "--exec-path") || t == "--bare") {
      return StrCat("git ", t, " can make git run other programs (configuration, hooks)");
    }
    if (StartsWith(t, "-")) return StrCat("the git option ", t, " is not known");
    break;
  }
  if (i >= c.words.size()) return "";  // plain `git`: prints usage
  const std::string sub = c.words[i].text;
  static const char kDiffLike[] =
      "-p -u -s -U# -n# -i -w -b -R -z -W -a -l# -M= -C= -B= -D -S# -G# -O# -g -L# -# "
      "--stat* --numstat --shortstat --name-only --name-status --summary --oneline --format* "
      "--pretty* --graph --decorate* --all --branches* --tags* --remotes* --max-count* "
      "--skip* --since* --after* --until* --before* --author* --committer* --grep* "
      "--regexp-ignore-case --pickaxe* --find-renames* --find-copies* --no-renames "
      "--ignore-all-space --ignore-space-change --ignore-blank-lines --ignore-space-at-eol "
      "--ignore-cr-at-eol --word-diff* --color* --no-color --abbrev* --no-abbrev --full-index "
      "--binary --cached --staged --merge-base --reverse --first-parent --no-merges --merges "
      "--follow --date* --relative* --raw --check --exit-code --quiet --patch --no-patch "
      "--minimal --patience --histogram --diff-algorithm* --ignore-submodules* --submodule* "
      "--dirstat* --compact-summary --left-right --cherry* --boundary --topo-order --date-order "
      "--author-date-order --full-history --simplify* --ancestry-path --source --log-size "
      "--notes* --no-notes --show-notes* --diff-filter* --function-context --text "
      "--no-ext-diff --no-textconv --src-prefix* --dst-prefix* --no-prefix --line-prefix* "
      "--ita-invisible-in-index --ws-error-highlight* --color-moved* --color-words* "
      "--indent-heuristic --no-indent-heuristic --expand-tabs* --encoding* --walk-reflogs "
      "--mailmap --use-mailmap --no-walk* --do-walk --no-decorate --parents --children "
      "--count --not --default* --remove-empty --show-linear-break* --show-pulls --exclude* "
      "--unified* --inter-hunk-context* --output-indicator* --no-color-moved* --anchored* "
      "--irreversible-delete --break-rewrites* --find-object* --rotate-to* --skip-to* "
      "--stat-width* --stat-name-width* --stat-count* --show-signature-never --numbered "
      "--invert-grep --all-match --basic-regexp --extended-regexp --fixed-strings "
      "--perl-regexp --no-standard-notes --standard-notes --clear-decorations --in-commit-order";
  struct Sub {
    const char* name;
    const char* options;
    bool operands_need_listing = false;  // operands only with -l/--list (branch, tag)
  };
  static const Sub kSubs[] = {
      {"status",
       "-s -b -v -u= -z --short --branch --long --porcelain= --verbose --untracked-files= "
       "--ignore-submodules= --ignored= --column= --no-column --ahead-behind "
       "--no-ahead-behind --renames --no-renames --find-renames= --show-stash"},
      {"log", kDiffLike},
      {"show", kDiffLike},
      {"diff", kDiffLike},
      {"whatchanged", kDiffLike},
      {"shortlog", "-n -s -e -c -w= --numbered --summary --email --committer --format* --group*"},
      {"branch",
       "-a -r -l -v -i --all --remotes --list --verbose --show-current --contains# "
       "--no-contains# --merged# --no-merged# --sort# --points-at# --format# --color= "
       "--no-color --column= --no-column --ignore-case --abbrev= --no-abbrev",
       true},
      {"tag",
       "-l -n= -i --list --contains# --no-contains# --merged# --no-merged# --points-at# "
       "--sort# --format# --color= --column= --no-column --ignore-case",
       true},
      {"rev-parse",
       "--show-toplevel --show-prefix --show-cdup --git-dir --git-common-dir --absolute-git-dir "
       "--is-inside-work-tree --is-inside-git-dir --is-bare-repository --is-shallow-repository "
       "--abbrev-ref* --short* --verify --quiet -q --symbolic --symbolic-full-name --all "
       "--branches* --tags* --remotes* --default# --revs-only --no-revs --flags --no-flags "
       "--sq --sq-quote --not --show-object-format* --show-ref-format --local-env-vars "
       "--git-path# --since* --until* --after* --before* --disambiguate*"},
      {"ls-files",
       "-z -c -d -m -o -i -s -u -k -t -v -f -x# -X# --cached --deleted --modified --others "
       "--ignored --stage --unmerged --killed --directory --no-empty-directory --exclude* "
       "--exclude-from# --exclude-per-directory# --exclude-standard --error-unmatch "
       "--full-name --abbrev* --debug --eol --recurse-submodules --sparse --format*"},
      {"ls-tree",
       "-d -r -t -l -z --name-only --name-status --object-only --full-name --full-tree "
       "--abbrev* --long --format*"},
      {"cat-file", "-t -s -e -p --batch* --follow-symlinks --unordered --allow-unknown-type"},
      {"blame",
       "-b -l -t -s -n -e -w -c -f -p -M= -C= -L# --root --show-stats --score-debug "
       "--show-name --show-number --show-email --porcelain --line-porcelain --incremental "
       "--date* --color-lines --color-by-age --progress --no-progress --abbrev* "
       "--ignore-rev# --ignore-revs-file#"},
      {"grep",
       "-i -v -w -n -l -L -c -h -H -e# -E -F -G -P -o -q -r -z -p -W -f# -A# -B# -C# -m# -I "
       "--only-matching --cached --untracked --no-index --count --name-only "
       "--files-with-matches --files-without-match --full-name --recursive --max-depth# "
       "--null --break --heading --color* --no-color --show-function --function-context "
       "--threads# --and --or --not --all-match --column --max-count# --ignore-case "
       "--invert-match --word-regexp --line-number --text --basic-regexp --extended-regexp "
       "--fixed-strings --perl-regexp --quiet --exclude-standard --recurse-submodules "
       "--after-context# --before-context# --context#"},
      {"describe",
       "--tags --all --long --abbrev* --always --dirty* --broken* --exact-match --contains "
       "--first-parent --match# --exclude# --candidates#"},
      {"rev-list", kDiffLike},
      {"merge-base", "-a --all --octopus --independent --is-ancestor --fork-point"},
      {"name-rev", "--tags --refs# --exclude# --all --name-only --no-undefined --always"},
      {"show-ref",
       "-d -s -q --head --dereference --hash* --abbrev* --tags --heads --verify "
       "--exists --quiet"},
      {"for-each-ref",
       "--count# --sort# --format# --color* --points-at# --merged* "
       "--no-merged* --contains* --no-contains* --ignore-case --exclude#"},
      {"count-objects", "-v -H --verbose --human-readable"},
      {"version", "--build-options"},
      {"var", "-l"},
      {"cherry", "-v --abbrev*"},
  };
  for (const Sub& s : kSubs) {
    if (sub != s.name) continue;
    ParsedArgs a = ParseOptions(c.words, i + 1, OptionSpec(s.options), false);
    if (!a.problem.empty()) return StrCat("git ", sub, ": ", a.problem);
    if (s.operands_need_listing && !a.operands.empty()) {
      const bool listing =
          std::any_of(a.options.begin(), a.options.end(), [](const std::string& o) {
            return o == "-l" || o == "--list" ||
                   (o.size() > 1 && o[0] == '-' && o[1] != '-' && o.find('l') != std::string::npos);
          });
      if (!listing) return StrCat("git ", sub, " with a name creates it");
    }
    return "";
  }
  if (sub == "stash" || sub == "reflog" || sub == "remote" || sub == "config" ||
      sub == "worktree" || sub == "submodule") {
    const std::string next = i + 1 < c.words.size() ? c.words[i + 1].text : "";
    const bool known = i + 1 >= c.words.size() || c.words[i + 1].known;
    if (!known) return StrCat("git ", sub, " with an unknown argument");
    if ((sub == "stash" && (next == "list" || next == "show")) ||
        (sub == "reflog" && (next.empty() || next == "show")) ||
        (sub == "remote" && (next.empty() || next == "-v" || next == "--verbose")) ||
        (sub == "worktree" && next == "list") || (sub == "submodule" && next == "status")) {
      for (size_t k = i + 2; k < c.words.size(); ++k) {
        if (!c.words[k].known) return StrCat("git ", sub, " with an unknown argument");
      }
      if (sub == "stash" && next == "show") return "";
      return "";
    }
    if (sub == "config") {
      static const OptionSpec spec(
          "-l -z --list --get# --get-all# --get-regexp# --get-urlmatch# --show-origin "
          "--show-scope --name-only --null --local --global --system --worktree --file# "
          "--blob# --type# --bool --int --bool-or-int --path --expiry-date --includes "
          "--no-includes --default#");
      ParsedArgs a = ParseOptions(c.words, i + 1, spec, false);
      if (!a.problem.empty()) return StrCat("git config: ", a.problem);
      const bool reading =
          std::any_of(a.options.begin(), a.options.end(), [](const std::string& o) {
            return o == "-l" || o == "--list" || StartsWith(o, "--get");
          });
      if (!reading) return "git config without --get or --list may set a value";
      return "";
    }
    return StrCat("git ", sub, " ", next, " is not known to be read-only");
  }
  return StrCat("git ", sub, " is not known to be read-only");
}

}  // namespace

bool IsHarmlessVariable(const std::string& name) {
  static const std::set<std::string> k = {
      "LANG",       "LANGUAGE",    "TZ",        "COLUMNS",     "LINES",
      "TERM",       "NO_COLOR",    "CLICOLOR",  "FORCE_COLOR", "COLORTERM",
      "GREP_COLOR", "GREP_COLORS", "LS_COLORS", "TIME_STYLE",  "POSIXLY_CORRECT"};
  return k.count(name) > 0 || StartsWith(name, "LC_");
}

std::string NotKnownSafeReason(const CommandView& c) {
  for (const auto& [name, value] : c.assignments) {
    if (!IsHarmlessVariable(name)) {
      return StrCat("the assignment ", name, "=... can change what the program runs");
    }
  }
  for (const auto& r : c.redirects) {
    if (r.Writes()) {
      return StrCat("the redirection ", r.op, " ", r.target.source, " writes a file");
    }
  }
  if (c.words.empty()) return "";  // only assignments of harmless names, or redirections in
  if (!c.words[0].known) return "the program's name is not known before the command runs";
  const std::string prog = Base(c.words[0].text);
  if (AnyOptionPrograms().count(prog)) {
    if (prog == "hostname" && c.words.size() > 1) return "hostname with an operand sets it";
    return "";
  }
  if (prog == "git") return GitReason(c);
  if (prog == "find") return FindReason(c);
  if (prog == "sed") return SedReason(c);
  const auto& specs = ProgramSpecs();
  auto it = specs.find(prog);
  if (it == specs.end()) return StrCat("\"", prog, "\" is not a known read-only command");
  ParsedArgs a = ParseOptions(c.words, 1, it->second.options, false);
  if (!a.problem.empty()) return StrCat(prog, ": ", a.problem);
  if (it->second.max_operands >= 0 &&
      static_cast<int>(a.operands.size()) > it->second.max_operands) {
    return StrCat(prog, " with more than ", it->second.max_operands,
                  " operand(s) writes or changes something");
  }
  if (prog == "date" && !a.operands.empty() && !StartsWith(a.operands[0]->text, "+")) {
    return "date with an operand that is not +FORMAT sets the clock";
  }
  for (const ShellWord* w : a.operands) {
    if (!w->known) return StrCat(prog, ": \"", w->source, "\" is not known");
  }
  return "";
}

std::optional<Unwrapped> Unwrap(const CommandView& c) {
  if (c.words.empty() || !c.words[0].known) return std::nullopt;
  const std::string prog = Base(c.words[0].text);
  Unwrapped u;
  u.wrapper = prog;
  u.inner.redirects = c.redirects;
  auto rest_from = [&](size_t i) {
    u.inner.words.assign(c.words.begin() + static_cast<long>(std::min(i, c.words.size())),
                         c.words.end());
  };
  auto skip_options = [&](size_t i, const OptionSpec& spec) -> size_t {
    // Options of the wrapper, up to its first operand; an unknown word ends it unsafely.
    for (; i < c.words.size(); ++i) {
      const ShellWord& w = c.words[i];
      if (!w.known) {
        u.wrapper_safe = false;
        return i;
      }
      if (w.text == "--") return i + 1;
      if (w.text.size() < 2 || w.text[0] != '-') return i;
      std::vector<ShellWord> one = {w};
      if (TakesNextWord(w.text, spec) && i + 1 < c.words.size()) one.push_back(c.words[++i]);
      if (!ParseOptions(one, 0, spec, false).problem.empty()) u.wrapper_safe = false;
    }
    return i;
  };
  u.inner.assignments = c.assignments;
  if (prog == "env") {
    // -S / --split-string runs its argument as a command line: not a harmless option.
    size_t i = skip_options(1, OptionSpec("-i -0 -u# -C# -v --ignore-environment --null "
                                          "--unset# --chdir# --debug"));
    for (size_t k = 1; k < i && k < c.words.size(); ++k) {
      const std::string& t = c.words[k].text;
      if (StartsWith(t, "-S") || StartsWith(t, "--split-string")) {
        u.wrapper_safe = false;
        // What it runs is a command line of its own: read it as a script.
        return std::nullopt;
      }
    }
    for (; i < c.words.size(); ++i) {
      const ShellWord& w = c.words[i];
      const size_t eq = w.text.find('=');
      if (!w.known || eq == std::string::npos || eq == 0) break;
      u.inner.assignments.emplace_back(w.text.substr(0, eq),
                                       ShellWord{w.text.substr(eq + 1), true, false, w.source});
    }
    if (i >= c.words.size()) return std::nullopt;  // env alone prints the environment
    rest_from(i);
    return u;
  }
  if (prog == "nice") {
    rest_from(skip_options(1, OptionSpec("-n# --adjustment# -#")));
  } else if (prog == "timeout") {
    size_t i = skip_options(1, OptionSpec("-s# -k# -v --signal# --kill-after# --preserve-status "
                                          "--foreground --verbose"));
    rest_from(i + 1);  // the duration
  } else if (prog == "stdbuf") {
    rest_from(skip_options(1, OptionSpec("-i# -o# -e# --input# --output# --error#")));
  } else if (prog == "ionice") {
    rest_from(skip_options(1, OptionSpec("-c# -n# -t --class# --classdata# --ignore")));
  } else if (prog == "nohup" || prog == "setsid" || prog == "exec" || prog == "builtin") {
    rest_from(skip_options(1, OptionSpec("-c -f -w -l -a# --ctty --fork --wait")));
  } else if (prog == "command") {
    size_t i = 1;
    while (i < c.words.size() && c.words[i].known && c.words[i].text == "-p") ++i;
    if (i < c.words.size() && c.words[i].known &&
        (c.words[i].text == "-v" || c.words[i].text == "-V")) {
      return std::nullopt;  // command -v NAME only looks it up
    }
    rest_from(i);
  } else if (prog == "time") {
    rest_from(skip_options(1, OptionSpec("-p -v -f# --format# --portability --verbose --quiet")));
  } else if (prog == "sudo" || prog == "doas" || prog == "su") {
    u.wrapper_safe = false;
    rest_from(skip_options(1, OptionSpec("-u# -g# -E -H -n -i -s -k -S --user# --group# "
                                         "--preserve-env= --non-interactive --login --shell")));
  } else if (prog == "xargs") {
    size_t i = skip_options(1, OptionSpec("-0 -r -t -p -x -n# -L# -I# -i= -d# -P# -s# -E# -e= "
                                          "-a# --null --no-run-if-empty --verbose --interactive "
                                          "--exit --max-args# --max-lines# --replace= "
                                          "--delimiter# --max-procs# --max-chars# --eof= "
                                          "--arg-file# --process-slot-var#"));
    rest_from(i);
    if (u.inner.words.empty()) u.inner.words.push_back(ShellWord{"echo", true, false, "echo"});
    // The command gets operands from the input: not known.
    u.inner.words.push_back(ShellWord{"", false, false, "(xargs input)"});
  } else if (prog == "find") {
    // find ... -exec CMD ... ; : the command with find's file names (not known).
    for (size_t i = 1; i < c.words.size(); ++i) {
      const std::string& t = c.words[i].text;
      if (t == "-exec" || t == "-execdir" || t == "-ok" || t == "-okdir") {
        for (size_t k = i + 1; k < c.words.size(); ++k) {
          const std::string& x = c.words[k].text;
          if (c.words[k].known && (x == ";" || x == "+")) break;
          ShellWord w = c.words[k];
          if (w.known && w.text.find("{}") != std::string::npos) w.known = false;
          u.inner.words.push_back(w);
        }
        u.wrapper_safe = false;
        return u.inner.words.empty() ? std::nullopt : std::optional<Unwrapped>(u);
      }
    }
    return std::nullopt;
  } else {
    return std::nullopt;
  }
  if (u.inner.words.empty()) return std::nullopt;
  return u;
}

std::optional<NestedScript> NestedShellScript(const CommandView& c) {
  if (c.words.empty() || !c.words[0].known) return std::nullopt;
  const std::string prog = Base(c.words[0].text);
  if (prog == "env") {
    // env -S 'cmd args' / --split-string=...: a command line of its own.
    for (size_t i = 1; i < c.words.size(); ++i) {
      const ShellWord& w = c.words[i];
      if (!w.known) return std::nullopt;
      if (w.text == "-S" || w.text == "--split-string") {
        if (i + 1 >= c.words.size()) return NestedScript{"", false};
        return NestedScript{c.words[i + 1].text, c.words[i + 1].known};
      }
      if (StartsWith(w.text, "-S")) return NestedScript{w.text.substr(2), true};
      if (StartsWith(w.text, "--split-string=")) return NestedScript{w.text.substr(15), true};
      if (w.text == "-u" || w.text == "-C" || w.text == "--unset" || w.text == "--chdir") {
        ++i;  // the option's argument
        continue;
      }
      if (w.text.empty() || w.text[0] != '-') break;
    }
    return std::nullopt;
  }
  if (prog == "eval") {
    NestedScript s;
    for (size_t i = 1; i < c.words.size(); ++i) {
      if (i > 1) s.text += " ";
      s.text += c.words[i].text;
      s.known = s.known && c.words[i].known;
    }
    return s;
  }
  if (prog != "sh" && prog != "bash" && prog != "dash" && prog != "zsh" && prog != "ksh" &&
      prog != "rbash") {
    return std::nullopt;
  }
  // sh [-options] -c SCRIPT [name args...]: the first operand after an option cluster with c.
  for (size_t i = 1; i < c.words.size(); ++i) {
    const ShellWord& w = c.words[i];
    if (!w.known) return NestedScript{"", false};
    if (w.text == "--" || w.text.empty() || w.text[0] != '-' || StartsWith(w.text, "--")) {
      if (StartsWith(w.text, "--") && w.text != "--") continue;  // --norc, --posix, ...
      return std::nullopt;  // a script file or nothing: the program runs a file
    }
    if (w.text.find('c') != std::string::npos) {
      if (i + 1 >= c.words.size()) return NestedScript{"", false};
      return NestedScript{c.words[i + 1].text, c.words[i + 1].known};
    }
    if (w.text == "-o" || w.text == "+o" || w.text == "-O" || w.text == "+O") ++i;
  }
  return std::nullopt;
}

std::vector<std::string> RuleArgv(const std::vector<std::string>& argv, bool expand_flags) {
  std::vector<std::string> out;
  if (argv.empty()) return out;
  out.push_back(Base(argv[0]));
  size_t i = 1;
  if (out[0] == "git") {
    for (; i < argv.size(); ++i) {
      const std::string& t = argv[i];
      if (t == "-C" || t == "-c" || t == "--git-dir" || t == "--work-tree" || t == "--namespace" ||
          t == "--config-env" || t == "--exec-path") {
        ++i;
        continue;
      }
      if (StartsWith(t, "-") && t != "-") continue;
      break;
    }
  }
  for (; i < argv.size(); ++i) {
    const std::string& t = argv[i];
    if (expand_flags && t.size() > 2 && t[0] == '-' && t[1] != '-' &&
        std::all_of(t.begin() + 1, t.end(),
                    [](char ch) { return std::isalpha(static_cast<unsigned char>(ch)); })) {
      for (size_t k = 1; k < t.size(); ++k) out.push_back(std::string("-") + t[k]);
    } else {
      out.push_back(t);
    }
  }
  return out;
}

}  // namespace v4agent::policies
