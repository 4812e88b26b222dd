// DsmlGrammar: a byte-level automaton of well-formed V4 output for a set of tools — optional
// reasoning, free content, then a DSML tool-call block whose tool names, parameter names,
// string="true|false" flags and JSON values follow the tools' schemas, then end of turn.
// Every text it accepts parses and validates with ParseCompletion (tested). Free-text parts
// have byte budgets after which only their closing marker may follow, so a model that never
// stops talking is steered to finish. Text only: mapping bytes to tokens is the engine's job.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "dsml/conversation.h"

namespace v4agent::dsml {

struct ConstraintOptions {
  ThinkingMode mode = ThinkingMode::kThinking;
  bool require_tool_call = true;  // false: the turn may end with content only
  int max_calls = 1;              // invokes per turn
  int reasoning_budget = 1500;    // bytes of reasoning before </think> is forced
  int content_budget = 400;       // bytes of content before the tool block (or EOS) is forced
  int string_budget = 600;        // bytes of a string="true" value
  int json_budget = 160;          // bytes of a string="false" value
};

class DsmlGrammar {
 public:
  // `tools`: an OpenAI tools array. Error when a name would break the tags (contains '"').
  static Result<DsmlGrammar> Create(const OrderedJson& tools, const ConstraintOptions& options);

  // A small value type: copy it to explore alternatives.
  struct State {
    uint8_t phase = 0;
    uint8_t json_kind = 0;              // string="false" value: what the schema asks for
    uint16_t choice = 0;                // literal-choice phase: which choice
    uint16_t pos = 0;                   // bytes matched in the choice / literal
    uint64_t alive = 0;                 // choice alternatives still possible
    std::array<uint8_t, 3> progress{};  // free text: matched bytes of each marker
    int32_t budget = 0;
    int16_t tool = -1;
    uint64_t used = 0;  // parameters written in this invoke
    uint8_t calls = 0;
    // JSON value.
    uint8_t jdepth = 0;
    uint8_t jstack = 0;  // bit i: container at depth i is an object
    uint8_t jstate = 0;
    uint8_t jflags = 0;
    uint8_t jcount = 0;  // digits / literal progress / string length class
  };

  State Start() const;
  // Consumes one byte; false when it is not allowed (s is then unspecified: copy before).
  bool Advance(State& s, uint8_t byte) const;
  // Only the end-of-turn token may come next.
  bool ExpectsEnd(const State& s) const;
  bool Done(const State& s) const;
  // Free text with no marker in progress: any byte in SafeBytes() keeps the state as it is
  // (apart from the budget), so tokens made only of such bytes are allowed without a walk.
  bool InPlainText(const State& s) const;
  // Bytes of free text left before the closing marker is forced.
  int FreeBudget(const State& s) const { return s.budget; }
  // Bytes that never start or continue a marker (everything but '<' and, in JSON strings,
  // '"' and '\\').
  static bool SafeTextByte(uint8_t b) { return b != '<'; }

 private:
  struct Alt {
    std::string text;
    int action = 0;
    int arg = 0;
  };
  struct Choice {
    std::vector<Alt> alts;
  };
  struct Marker {
    std::string text;
    int action = 0;  // kMark* below
    int commit = 0;  // once this many bytes match, only the marker may continue
    std::vector<int> fail;
  };
  struct FreeSpec {
    std::vector<Marker> markers;  // markers[0] is what a spent budget forces
  };
  struct Param {
    std::string name;
    bool is_string = true;
    uint8_t json_kind = 0;
    bool required = false;
  };
  struct ToolInfo {
    std::string name;
    std::vector<Param> params;
    uint16_t params_choice = 0, names_choice = 0;
  };

  void EnterChoice(State& s, int choice, uint64_t alive) const;
  void EnterFree(State& s, int phase, int budget) const;
  void EnterParams(State& s) const;
  void AfterParam(State& s) const;
  bool AdvanceChoice(State& s, uint8_t b) const;
  bool AdvanceFree(State& s, uint8_t b) const;
  bool AdvanceJson(State& s, uint8_t b) const;
  void Act(State& s, int action, int arg) const;

  ConstraintOptions options_;
  std::vector<ToolInfo> tools_;
  std::vector<Choice> choices_;
  std::array<FreeSpec, 3> free_;  // reasoning, content, string value
  uint16_t invoke_choice_ = 0, tool_choice_ = 0, after_invoke_choice_ = 0, close_param_choice_ = 0;
};

}  // namespace v4agent::dsml
