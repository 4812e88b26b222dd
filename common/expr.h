// The expression language of pipelines and YAML tools: `${{ ... }}` in a string. A small
// language of our own (grammar in docs/pipelines.md), evaluated over JSON values: literals,
// context lookups (`inputs.name`, `steps.test.outputs.exit_code`, `args.pattern`), `.` and
// `[ ]` access, `! && || == != < <= > >=`, parentheses and a fixed set of pure functions.
// Nothing here runs a program or reads a file; evaluation is bounded (input size, nesting,
// output size) so a hostile expression costs little.
//
// Values: missing properties are null; `&&`/`||` return an operand, as in GitHub Actions;
// falsy values are null, false, 0, "" and []. Comparisons of strings ignore nothing (exact).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/json.h"
#include "common/status.h"

namespace v4agent::expr {

struct Node;

// A parsed expression. Errors name the column (1-based, within the expression).
class Expression {
 public:
  static Result<Expression> Parse(std::string_view text);
  Expression(Expression&&) noexcept;
  Expression& operator=(Expression&&) noexcept;
  ~Expression();

  // `context`: an object whose keys are the identifiers an expression may start with.
  // `status` answers success() / failure() / cancelled() (one of "success", "failure",
  // "cancelled"; always() is true).
  Result<Json> Evaluate(const Json& context, std::string_view status = "success") const;

  // Every context path the expression reads, as far as it is static: `steps.test.outputs`
  // gives {"steps", "test", "outputs"}; a computed index ends the path.
  const std::vector<std::vector<std::string>>& references() const { return refs_; }
  const std::string& text() const { return text_; }

 private:
  Expression() = default;
  std::string text_;
  std::unique_ptr<Node> root_;
  std::vector<std::vector<std::string>> refs_;
};

// A string with `${{ expr }}` parts. Parse errors give the byte offset in the whole string.
class Template {
 public:
  static Result<Template> Parse(std::string_view text);
  // The whole string is one `${{ expr }}` (then Evaluate keeps the value's type).
  bool is_single() const { return parts_.size() == 1 && parts_[0].is_expr; }
  bool has_expressions() const;
  // Text with each expression's value stringified (strings as is, null as "", others as JSON);
  // for a single expression, its value.
  Result<Json> Evaluate(const Json& context, std::string_view status = "success") const;
  Result<std::string> Render(const Json& context, std::string_view status = "success") const;
  std::vector<const Expression*> expressions() const;
  // For shell scripts: each expression becomes a reference to an environment variable whose
  // value is added to `env` as "PREFIXn=value", written so that it is always exactly one word
  // ("${PREFIXn}" outside quotes, ${PREFIXn} inside "...", closing and reopening '...'), so no
  // value is ever parsed as shell code, split or globbed. `inlined` (optional) gets the script
  // with each value pasted in as the same single quoted word, for a policy to judge.
  Result<std::string> RenderForShell(const Json& context, std::string_view status,
                                     const std::string& prefix, std::vector<std::string>* env,
                                     std::string* inlined = nullptr) const;

 private:
  struct Part {
    bool is_expr = false;
    std::string text;
    std::shared_ptr<Expression> expr;
  };
  std::vector<Part> parts_;
};

bool Truthy(const Json& value);
std::string ToText(const Json& value);  // strings as is, null as "", others as compact JSON

// The names of the functions, for docs and error messages.
const std::vector<std::string>& FunctionNames();

}  // namespace v4agent::expr
