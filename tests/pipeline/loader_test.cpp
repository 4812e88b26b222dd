// `pipeline check`'s errors: one table row per error class, each with its file:line:col, and
// several errors of one file reported together; cycles between files; a valid file's model.
#include "pipeline/loader.h"

#include <gtest/gtest.h>

#include "common/file_util.h"
#include "common/strings.h"

namespace v4agent::pipeline {
namespace {

class LoaderTest : public ::testing::Test {
 protected:
  std::string Put(const std::string& name, const std::string& text) {
    const std::string f = dir_.path() + "/" + name;
    V4_CHECK(WriteFile(f, text).ok());
    return f;
  }
  ScopedTempDir dir_;
};

TEST_F(LoaderTest, EachErrorClassIsNamedAtItsPosition) {
  Put("inner.yaml",
      "inputs: {who: {type: string, required: true}}\nsteps:\n  - id: hi\n"
      "    run: echo hi\n");
  const std::pair<std::string, std::string> cases[] = {
      {"steps: [{id: a, run: x}]\ncolour: red\n", ":2:1: unknown key \"colour\" in a pipeline"},
      {"steps:\n  - id: a\n    runs: x\n", ":3:5: unknown key \"runs\" in a step"},
      {"steps:\n  - id: a\n    run: x\n    retries: many\n", ":4:14: retries must be an integer"},
      {"steps:\n  - id: a\n    run: x\n    timeout: -3\n", ":4:14: timeout must be above 0"},
      {"steps:\n  - run: x\n", ":2:5: a step needs an id"},
      {"steps:\n  - id: 9a\n    run: x\n", ":2:9: step id \"9a\" must start with a letter"},
      {"steps:\n  - id: a\n    run: x\n    tool: view\n", ":2:5: step a has run and tool"},
      {"steps:\n  - id: a\n    run: x\n  - id: a\n    run: y\n",
       ":4:9: step id \"a\" is used twice"},
      {"steps:\n  - id: a\n    run: echo ${{ steps.b.stdout }}\n  - id: b\n    run: x\n",
       ":3:10: ${{ steps.b.stdout }}: step \"b\" comes later"},
      {"steps:\n  - id: a\n    run: echo ${{ steps.nope.stdout }}\n",
       ":3:10: ${{ steps.nope.stdout }}: step \"nope\" does not exist"},
      {"steps:\n  - id: a\n    run: x\n  - id: b\n    if: steps.a.patch\n    run: y\n",
       ":5:9: ${{steps.a.patch}}: a run step has no field \"patch\""},
      {"steps:\n  - id: a\n    run: echo ${{ inputs.who }}\n",
       ":3:10: ${{ inputs.who }}: there is no input \"who\""},
      {"steps:\n  - id: a\n    run: echo ${{ secrets.token }}\n",
       ":3:10: ${{ secrets.token }}: unknown name \"secrets\""},
      {"steps:\n  - id: a\n    run: echo ${{ inputs. }}\n", ":3:10: run: in ${{ inputs. }}"},
      {"steps:\n  - id: a\n    if: steps.a ==\n    run: x\n", ":3:9: if: column"},
      {"inputs: {n: {type: integer, default: ten}}\nsteps: [{id: a, run: x}]\n",
       ":1:38: input n: default must be an integer"},
      {"inputs: {n: {type: float}}\nsteps: [{id: a, run: x}]\n",
       ":1:20: type \"float\" is not string"},
      {"steps:\n  - id: a\n    tool: teleport\n", ":3:11: there is no tool \"teleport\""},
      {"steps:\n  - id: a\n    tool: view\n    with: {file: x}\n",
       ":4:12: tool view has no parameter \"file\""},
      {"policy: nowhere.yaml\nsteps: [{id: a, run: x}]\n",
       ":1:9: policy \"nowhere.yaml\" is neither"},
      {"tools: [no-such-dir]\nsteps: [{id: a, run: x}]\n", ":1:8: tools: "},
      {"steps:\n  - id: a\n    agent: {task: t, policy: ghost}\n",
       ":3:30: policy \"ghost\" is neither"},
      {"steps:\n  - id: a\n    agent: {task: t, max_steps: 0}\n",
       ":3:33: agent.max_steps must be at least 1"},
      {"steps:\n  - id: a\n    agent: {policy: read-only}\n", ":3:12: agent needs a task"},
      {"steps:\n  - id: a\n    foreach: {steps: [{id: b, run: x}]}\n",
       ":3:14: foreach needs exactly one of items, lines, glob"},
      {"steps:\n  - id: a\n    foreach: {items: x, as: steps, steps: [{id: b, run: x}]}\n",
       ":3:29: foreach.as: \"steps\" is reserved"},
      {"steps:\n  - id: a\n    foreach: {items: x, parallel: 0, steps: [{id: b, run: x}]}\n",
       ":3:35: foreach.parallel must be between 1 and 64"},
      {"steps:\n  - id: a\n    run: echo ${{ item }}\n",
       ":3:10: ${{ item }}: unknown name \"item\""},
      {"steps:\n  - id: a\n    pipeline: inner.yaml\n",
       ":3:15: pipeline inner.yaml needs input \"who\""},
      {"steps:\n  - id: a\n    pipeline: inner.yaml\n    with: {who: x, what: y}\n",
       ":4:20: pipeline inner.yaml has no input \"what\""},
      {"steps:\n  - id: a\n    pipeline: missing.yaml\n", ":3:15: pipeline missing.yaml: "},
      {"steps:\n  - id: a\n    run: x\n    cwd: sub\n    with: {a: b}\n",
       ":5:11: with: is for tool and pipeline steps"},
      {"steps:\n  - id: a\n    run: x\noutputs:\n  o: ${{ steps.z.stdout }}\n",
       ":5:6: ${{ steps.z.stdout }}: step \"z\" does not exist"},
      {"steps: []\n", ":1:8: steps must be a non-empty list"},
      {"name: [x\n", ":"},
  };
  for (const auto& [text, want] : cases) {
    const std::string f = Put("p.yaml", text);
    LoadResult r = LoadPipeline(f);
    ASSERT_FALSE(r.errors.empty()) << text;
    EXPECT_TRUE(StartsWith(r.errors[0], f + want)) << text << "\n=> " << r.errors[0];
    EXPECT_EQ(r.pipeline, nullptr);
  }
}

TEST_F(LoaderTest, AllErrorsOfAFileComeTogetherInFileOrder) {
  const std::string f =
      Put("p.yaml",
          "steps:\n  - id: a\n    run: echo ${{ inputs.x }}\n"
          "  - id: b\n    tool: nope\n  - id: c\n    run: ${{ steps.d.stdout }}\n");
  LoadResult r = LoadPipeline(f);
  ASSERT_EQ(r.errors.size(), 3u);
  EXPECT_TRUE(StartsWith(r.errors[0], f + ":3:10:"));
  EXPECT_TRUE(StartsWith(r.errors[1], f + ":5:11:"));
  EXPECT_TRUE(StartsWith(r.errors[2], f + ":7:10:"));
}

TEST_F(LoaderTest, CyclesBetweenPipelineFilesAreFound) {
  Put("a.yaml", "steps:\n  - id: call_b\n    pipeline: b.yaml\n");
  Put("b.yaml", "steps:\n  - id: call_c\n    pipeline: sub/../c.yaml\n");
  Put("c.yaml", "steps:\n  - id: back\n    pipeline: a.yaml\n");
  LoadResult r = LoadPipeline(dir_.path() + "/a.yaml");
  ASSERT_FALSE(r.errors.empty());
  EXPECT_NE(r.errors[0].find("c.yaml:3:15: pipeline files call each other in a cycle: "),
            std::string::npos)
      << r.errors[0];
  EXPECT_NE(r.errors[0].find("a.yaml -> " + dir_.path() + "/b.yaml -> " + dir_.path() +
                             "/c.yaml -> " + dir_.path() + "/a.yaml"),
            std::string::npos)
      << r.errors[0];
  Put("self.yaml", "steps:\n  - id: me\n    pipeline: self.yaml\n");
  EXPECT_FALSE(LoadPipeline(dir_.path() + "/self.yaml").errors.empty());
}

TEST_F(LoaderTest, AValidFileBecomesItsModel) {
  Put("inner.yaml",
      "inputs: {who: {type: string, required: true}}\nsteps:\n  - id: hi\n"
      "    run: echo hi\noutputs: {said: '${{ steps.hi.stdout }}'}\n");
  const std::string f = Put(
      "p.yaml",
      "name: demo\ninputs:\n  n: {type: integer, default: 2}\n  tags: {type: array, default: [a, "
      "b]}\n"
      "env: {GREETING: hello}\npolicy: read-only\nsteps:\n"
      "  - id: first\n    run: echo ${{ inputs.n }}\n    retries: 2\n    continue-on-error: true\n"
      "  - id: each\n    foreach:\n      items: ${{ inputs.tags }}\n      as: tag\n      parallel: "
      "3\n"
      "      steps:\n        - id: show\n          run: echo ${{ tag }} ${{ loop.index }}\n"
      "        - id: again\n          if: steps.show.exit_code == 0 && steps.first.outcome\n"
      "          run: echo ${{ steps.show.stdout }}\n"
      "  - id: call\n    pipeline: inner.yaml\n    with: {who: '${{ inputs.n }}'}\n"
      "  - id: look\n    tool: view\n    with: {path: README}\n"
      "outputs:\n  said: ${{ steps.call.outputs.said }}\n");
  LoadResult r = LoadPipeline(f);
  ASSERT_TRUE(r.errors.empty()) << r.errors[0];
  const Pipeline& p = *r.pipeline;
  EXPECT_EQ(p.name, "demo");
  EXPECT_EQ(p.policy, "builtin:read-only");
  ASSERT_EQ(p.steps.size(), 4u);
  EXPECT_EQ(p.steps[0].retries, 2);
  EXPECT_TRUE(p.steps[0].continue_on_error);
  EXPECT_EQ(p.steps[1].kind, Step::Kind::kForeach);
  EXPECT_EQ(p.steps[1].parallel, 3);
  EXPECT_EQ(p.steps[1].as, "tag");
  EXPECT_EQ(p.steps[1].steps.size(), 2u);
  ASSERT_NE(p.steps[2].called, nullptr);
  EXPECT_EQ(p.steps[2].called->steps[0].id, "hi");
  EXPECT_EQ(p.inputs[1].default_value, Json::array({"a", "b"}));
  EXPECT_EQ(p.digest.size(), 16u);
}

}  // namespace
}  // namespace v4agent::pipeline
