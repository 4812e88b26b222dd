// The pipeline/tool expression language: a table of expressions and their values over one
// context, a table of errors with their columns, templates, the references a check reads, and
// the bounds that keep hostile input cheap.
#include "common/expr.h"

#include <gtest/gtest.h>

namespace v4agent::expr {
namespace {

Json Context() {
  return Json::parse(R"({
    "inputs": {"name": "median", "count": 3, "flag": false, "empty": ""},
    "steps": {"test": {"exit_code": 1, "stdout": "a\n\nb\r\nc\n", "outcome": "failure",
                       "outputs": {"files": ["x.py", "y.py"], "n": 2.5}}},
    "env": {"HOME": "/root"},
    "list": [1, "two", null]
  })");
}

struct Case {
  const char* expr;
  Json want;
};

TEST(ExprTest, ExpressionsEvaluateToTheirValues) {
  const Case cases[] = {
      {"inputs.name", "median"},
      {"inputs.missing", nullptr},
      {"inputs.missing.deeper", nullptr},
      {"steps.test.exit_code", 1},
      {"steps.test.exit_code != 0", true},
      {"steps['test'].outputs.files[1]", "y.py"},
      {"list[-1]", nullptr},
      {"list[1]", "two"},
      {"list[7]", nullptr},
      {"inputs.count >= 3 && inputs.count < 4", true},
      {"inputs.flag || 'fallback'", "fallback"},
      {"inputs.empty || inputs.name", "median"},
      {"inputs.name && inputs.count", 3},
      {"!inputs.flag", true},
      {"!!list", true},
      {"inputs.count == 3.0", true},
      {"'a' < 'b'", true},
      {"-2 < 1", true},
      {"2.5 == steps.test.outputs.n", true},
      {"inputs.count > 2 ? 'many' : 'few'", "many"},
      {"contains(steps.test.outputs.files, 'x.py')", true},
      {"contains('hello world', 'o w')", true},
      {"startsWith(env.HOME, '/ro') && endsWith(env.HOME, 'ot')", true},
      {"length(steps.test.outputs.files) == 2", true},
      {"length('abc')", 3},
      {"join(steps.test.outputs.files, ' ')", "x.py y.py"},
      {"join(steps.test.outputs.files)", "x.py,y.py"},
      {"lines(steps.test.stdout)", Json::array({"a", "b", "c"})},
      {"trim('  x ')", "x"},
      {"format('{0}-{1} {{literal}}', inputs.name, inputs.count)", "median-3 {literal}"},
      {"toJSON(list)", "[1,\"two\",null]"},
      {"fromJSON('{\"a\": [1]}').a[0]", 1},
      {"'it''s'", "it's"},
      {"\"double\"", "double"},
      {"(true || false) && null", nullptr},
      {"success()", true},
      {"failure()", false},
      {"always()", true},
  };
  for (const Case& c : cases) {
    auto e = Expression::Parse(c.expr);
    ASSERT_TRUE(e.ok()) << c.expr << ": " << e.status().ToString();
    auto v = e->Evaluate(Context());
    ASSERT_TRUE(v.ok()) << c.expr << ": " << v.status().ToString();
    EXPECT_EQ(*v, c.want) << c.expr;
  }
  auto f = Expression::Parse("failure() && !success()");
  EXPECT_EQ(*f->Evaluate(Context(), "failure"), true);
}

TEST(ExprTest, ErrorsNameTheColumn) {
  const std::pair<const char*, const char*> cases[] = {
      {"inputs.", "column 8: expected a name after '.'"},
      {"inputs.name ==", "column 15: the expression ends too early"},
      {"(a", "column 3: expected ')' at the end"},
      {"a b", "column 3: unexpected 'b'"},
      {"'open", "column 1: unterminated string"},
      {"a $ b", "column 3: unexpected character '$'"},
      {"exec('rm -rf /')", "column 1: unknown function exec()"},
      {"a[1", "column 4: expected ']' at the end"},
      {"a ? b", "column 6: expected ':' at the end"},
      {"99999999999999999999", "column 1: number out of range"},
  };
  for (const auto& [text, want] : cases) {
    auto e = Expression::Parse(text);
    ASSERT_FALSE(e.ok()) << text;
    EXPECT_TRUE(e.status().message().starts_with(want)) << text << ": " << e.status().message();
  }
  // Type errors surface when evaluated.
  const std::pair<const char*, const char*> runtime[] = {
      {"inputs.name < 3", "cannot compare string < number"},
      {"startsWith(3, 'a')", "startsWith(): argument 1 must be a string, not number"},
      {"format('{2}', 1)", "format(): no argument {2}"},
      {"fromJSON('{')", "invalid JSON"},
      {"trim()", "trim() takes 1 arguments, not 0"},
  };
  for (const auto& [text, want] : runtime) {
    auto e = Expression::Parse(text);
    ASSERT_TRUE(e.ok()) << text << e.status().ToString();
    auto v = e->Evaluate(Context());
    ASSERT_FALSE(v.ok()) << text;
    EXPECT_NE(v.status().message().find(want), std::string::npos) << v.status().message();
  }
}

TEST(ExprTest, ReferencesAreTheStaticPathsRead) {
  auto e = Expression::Parse(
      "steps.test.outputs.files[inputs.i] && steps['lint'].exit_code == env.X || length(list)");
  ASSERT_TRUE(e.ok());
  std::vector<std::vector<std::string>> want = {{"steps", "test", "outputs", "files"},
                                                {"inputs", "i"},
                                                {"steps", "lint", "exit_code"},
                                                {"env", "X"},
                                                {"list"}};
  EXPECT_EQ(e->references(), want);
}

TEST(ExprTest, TemplatesKeepTypesForOneExpressionAndRenderTextOtherwise) {
  auto one = Template::Parse("${{ steps.test.outputs.files }}");
  ASSERT_TRUE(one.ok());
  EXPECT_TRUE(one->is_single());
  EXPECT_EQ(*one->Evaluate(Context()), Json::array({"x.py", "y.py"}));
  auto text = Template::Parse("run ${{inputs.name}} x${{ inputs.count }} ${{ inputs.none }}!");
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text->Render(Context()), "run median x3 !");
  auto plain = Template::Parse("no expressions {here}");
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE(plain->has_expressions());
  EXPECT_EQ(*plain->Render(Context()), "no expressions {here}");
  auto bad = Template::Parse("a ${{ inputs.name ");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "offset 2: '${{' without its '}}'");
  auto bad2 = Template::Parse("ab ${{ inputs. }}");
  ASSERT_FALSE(bad2.ok());
  EXPECT_TRUE(bad2.status().message().starts_with("in ${{ inputs. }} at offset 3: column 10"))
      << bad2.status().message();
}

TEST(ExprTest, HostileInputIsBounded) {
  EXPECT_FALSE(Expression::Parse(std::string(100000, 'a')).ok());
  EXPECT_FALSE(Expression::Parse(std::string(500, '(') + "1" + std::string(500, ')')).ok());
  EXPECT_FALSE(Expression::Parse(std::string(500, '!') + "1").ok());
  std::string chain = "a";
  for (int i = 0; i < 2000; ++i) chain += ".b";
  EXPECT_FALSE(Expression::Parse(chain).ok());
  // A format that would grow without bound stops at the result limit.
  Json ctx{{"s", std::string(600 * 1024, 'x')}};
  auto e = Expression::Parse("format('{0}{0}', s)");
  ASSERT_TRUE(e.ok());
  EXPECT_FALSE(e->Evaluate(ctx).ok());
}

}  // namespace
}  // namespace v4agent::expr
