// ScriptedClient: a TEST DOUBLE that replays completions from a JSONL file (one completion
// object per line: content, reasoning_content, tool_calls[{id,name,arguments}]). It never
// looks at the prompt; it exists so the loop, tools and sandbox can be driven deterministically.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include "agent/agent_loop.h"
#include "agent/model_client.h"

namespace v4agent::agent {

class ScriptedClient : public ModelClient, public ResumableClient {
 public:
  static Result<ScriptedClient> FromFile(const std::string& path);
  explicit ScriptedClient(std::vector<Completion> script) : script_(std::move(script)) {}

  std::string Name() const override { return "scripted"; }
  // Returns the next scripted completion; an error once the script is exhausted.
  Result<Completion> Complete(const CompletionRequest& request,
                              const DeltaCallback& on_delta) override;
  // Skips n completions (resume: those turns already happened).
  Status ResumeFrom(const std::vector<Completion>& turns) override {
    next_ = std::min(script_.size(), next_ + turns.size());
    return Status::Ok();
  }
  size_t served() const { return next_; }

 private:
  std::vector<Completion> script_;
  size_t next_ = 0;
};

}  // namespace v4agent::agent
