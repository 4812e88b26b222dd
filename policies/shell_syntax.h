// A static reading of a bash script: every simple command bash could execute, at any depth
// (command and process substitutions, backticks, subshells, groups, if/while/until/for/case
// bodies, function bodies, here-documents with expansions), with each word as bash would
// pass it after quoting (single, double, $'...' ANSI-C, $"...", backslashes, line
// continuations) and brace expansion; the assignments before each command and its
// redirections. Whatever cannot be known statically (parameter expansions, substitutions'
// output, globs, arithmetic) is marked unknown rather than guessed, and what cannot be parsed
// makes the analysis incomplete. A caller must never become more permissive because of an
// unknown or an incomplete analysis. Parses only; never runs anything.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace v4agent::policies {

struct ShellWord {
  std::string text;    // the value; unknown parts are left out
  bool known = true;   // false: parts of the value come from expansions or globs
  bool glob = false;   // unquoted * ? [ or an extglob: bash may replace it with file names
  std::string source;  // as written, for messages
};

struct ShellRedirect {
  std::string op;    // < > >> >| <> <& >& &> &>> << <<- <<<
  int fd = -1;       // explicit descriptor number, or -1
  ShellWord target;  // file, descriptor or here-document delimiter
  // True when this redirection can create or change a file: output to a path that is not
  // /dev/null (or a descriptor duplication).
  bool Writes() const;
};

struct ShellCommand {
  std::vector<std::pair<std::string, ShellWord>> assignments;  // NAME=value before the command
  std::vector<ShellWord> words;                                // the program and its arguments
  std::vector<ShellRedirect> redirects;
  int depth = 0;        // 0: top level; inside substitutions, subshells and bodies: deeper
  std::string context;  // "", "$(...)", "`...`", "<(...)", ">(...)", "(...)", "function NAME"...
  // Texts of the words, unknown parts left out (for display and rule matching).
  std::vector<std::string> Argv() const;
  bool AllKnown() const;
};

struct ShellAnalysis {
  std::vector<ShellCommand> commands;  // in source order, nested ones after their parent
  bool complete = true;                // false: something could not be parsed or understood
  std::vector<std::string> problems;   // why not complete
  std::vector<std::string> functions;  // names of functions the script defines
};

ShellAnalysis AnalyzeShell(std::string_view script);

// The whole-word value of $'...' contents (without the quotes): \n \t \\ \' \" \xHH \NNN
// \uHHHH \UHHHHHHHH \cX \e \a \b \f \r \v \?.
std::string DecodeAnsiC(std::string_view body);

}  // namespace v4agent::policies
