// The positioned YAML document every newer config loader reads: positions, typed getters
// that name file:line:col, duplicate keys, quoted scalars staying strings, and a depth limit
// for hostile input.
#include "common/yaml_doc.h"

#include <gtest/gtest.h>

namespace v4agent {
namespace {

TEST(YamlDocTest, NodesKeepTheirPositionsAndGettersNameThem) {
  auto doc = YamlDoc::Parse("a: 1\nb:\n  - x\n  - \"7\"\nc: {d: true}\n", "f.yaml");
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  const YamlNode& root = doc->root();
  ASSERT_TRUE(root.IsMap());
  EXPECT_EQ(*doc->Int(*root.Find("a"), "a"), 1);
  const YamlNode& b = *root.Find("b");
  EXPECT_EQ(b.items[1].line, 4);
  EXPECT_EQ(b.items[1].column, 5);
  auto quoted = doc->Int(b.items[1], "b[1]");
  ASSERT_FALSE(quoted.ok());
  EXPECT_EQ(quoted.status().message(), "f.yaml:4:5: b[1] must be an integer");
  EXPECT_TRUE(*doc->Bool(*root.Find("c")->Find("d"), "d"));
  EXPECT_EQ(*doc->StringList(b, "b"), (std::vector<std::string>{"x", "7"}));
  Status keys = doc->CheckKeys(root, {"a", "b"}, "the file");
  EXPECT_EQ(keys.message(), "f.yaml:5:1: unknown key \"c\" in the file (known: a, b)");
}

TEST(YamlDocTest, BadInputIsAnErrorWithItsPosition) {
  auto dup = YamlDoc::Parse("a: 1\nb: 2\na: 3\n", "f.yaml");
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.status().message(), "f.yaml:3:1: duplicate key \"a\" (first at line 1)");
  auto syntax = YamlDoc::Parse("a: [1, 2\nb: 3\n", "f.yaml");
  ASSERT_FALSE(syntax.ok());
  EXPECT_TRUE(syntax.status().message().starts_with("f.yaml:")) << syntax.status().ToString();
  auto deep = YamlDoc::Parse(std::string(200, '[') + std::string(200, ']'), "deep.yaml");
  ASSERT_FALSE(deep.ok());
  EXPECT_NE(deep.status().message().find("nested deeper than"), std::string::npos);
  auto missing = YamlDoc::Load("/no/such/file.yaml");
  EXPECT_FALSE(missing.ok());
}

}  // namespace
}  // namespace v4agent
