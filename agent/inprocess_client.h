// InProcessClient: the built-in V4 engine as a ModelClient. One engine Session holds the whole
// conversation; each turn appends only the newly rendered text (rewinding to the divergence
// point when the rendering is not a pure extension, which is counted) and keeps the sampled
// token ids, so nothing already in the cache is ever prefilled again. It never renders or
// parses DSML itself: a PromptRenderer (the dsml codec) does both.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "agent/agent_loop.h"
#include "agent/model_client.h"
#include "engine/model/model.h"
#include "engine/sampler/sampler.h"
#include "engine/session/prefix_store.h"
#include "engine/session/session.h"
#include "engine/tokenizer/tokenizer.h"

namespace v4agent::agent {

// Text <-> token ids (the engine tokenizer in production).
class TokenCodec {
 public:
  virtual ~TokenCodec() = default;
  virtual std::vector<int32_t> Encode(std::string_view text) const = 0;
  virtual std::string Decode(const std::vector<int32_t>& ids) const = 0;
};

// The engine's BPE tokenizer as a TokenCodec (special tokens in rendered prompts are parsed).
class EngineTokenCodec : public TokenCodec {
 public:
  explicit EngineTokenCodec(const engine::Tokenizer* tokenizer) : tokenizer_(tokenizer) {}
  std::vector<int32_t> Encode(std::string_view text) const override {
    return tokenizer_->Encode(text, /*allow_special=*/true);
  }
  std::string Decode(const std::vector<int32_t>& ids) const override {
    return tokenizer_->Decode(ids);
  }

 private:
  const engine::Tokenizer* tokenizer_;
};

// Chat messages -> prompt text and raw model output -> structured completion.
class PromptRenderer {
 public:
  virtual ~PromptRenderer() = default;
  // The whole prompt up to and including the assistant prefix of the next turn. Assistant
  // messages with `raw` must be rendered from it byte for byte.
  virtual Result<std::string> Render(const std::vector<ChatMessage>& messages,
                                     const std::vector<ToolSpec>& tools, bool thinking) const = 0;
  // Content, reasoning and tool calls of one raw turn; format_error set when malformed.
  virtual Completion Parse(const std::string& raw) const = 0;
  // How many leading bytes of Render(messages, tools, thinking) depend only on the leading
  // system messages and the tools: the block many tasks share, where the in-process client
  // puts a snapshot so a prefix store can serve it. 0 when the renderer cannot tell.
  virtual size_t SharedPrefixLength(const std::vector<ChatMessage>& messages,
                                    const std::vector<ToolSpec>& tools, bool thinking) const {
    return 0;
  }
};

// Restricts what the in-process model may generate in one turn (constrained decoding: the DSML
// grammar of the request's tools). Called on the generating thread only.
class OutputConstraint {
 public:
  virtual ~OutputConstraint() = default;
  // A turn begins; the request's tools decide the grammar.
  virtual Status Begin(const CompletionRequest& request) = 0;
  // Sets the logits of tokens that may not come next to -inf.
  virtual void Mask(std::span<float> logits) = 0;
  // The sampled token. An error ends the turn (the output so far is kept).
  virtual Status Accept(int32_t id) = 0;
};

struct InProcessOptions {
  engine::SamplerOptions sampler;
  std::shared_ptr<OutputConstraint> constraint;  // null: unconstrained
  std::vector<int32_t> stop_ids;                 // end-of-turn tokens
  engine::SessionOptions session;
  // Optional: sessions keyed by token prefix (`run --cache-dir`). The first prompt is taken
  // from it as far as it matches, and stored in it once appended.
  engine::PrefixStore* store = nullptr;
  // Optional: the session is saved here after every turn, so `run --resume` restores it
  // instead of prefilling the conversation again.
  std::string session_path;
};

class InProcessClient : public ModelClient, public ResumableClient {
 public:
  InProcessClient(engine::Model* model, const TokenCodec* codec, const PromptRenderer* renderer,
                  InProcessOptions options);
  std::string Name() const override { return "in-process"; }
  Result<Completion> Complete(const CompletionRequest& request,
                              const DeltaCallback& on_delta) override;

  // Rebuilds the cache from the ids recorded in the trajectory's turns, nothing rendered or
  // re-tokenized: from the session file when it holds them (or a prefix of them), otherwise
  // one prefill of the whole conversation.
  Status ResumeFrom(const std::vector<Completion>& turns) override;
  // Tokens the last ResumeFrom took from the session file instead of prefilling.
  int64_t resume_restored_tokens() const { return resume_restored_; }
  // Why the session file was not used on resume (empty when it was, or when none was set).
  const std::string& resume_fallback_reason() const { return resume_fallback_; }

  engine::Session& session() { return *session_; }
  int64_t rewinds() const { return rewinds_; }
  const std::vector<int32_t>& last_prompt_ids() const { return last_prompt_ids_; }

 private:
  struct Boundary {
    size_t text_end;
    int64_t token_end;
  };
  engine::Model* model_;
  const TokenCodec* codec_;
  const PromptRenderer* renderer_;
  InProcessOptions options_;
  std::unique_ptr<engine::Session> session_;
  std::string cached_text_;           // text whose tokens are exactly session_->tokens()
  std::vector<Boundary> boundaries_;  // where appends ended: the places we can rewind to
  std::vector<int32_t> last_prompt_ids_;
  int64_t rewinds_ = 0;
  int64_t resume_restored_ = 0;
  std::string resume_fallback_;

  // First turn: splits the prompt after the shared system block and takes what it can
  // from the store. Returns the ids appended (both pieces).
  Result<std::vector<int32_t>> AppendFirstPrompt(const CompletionRequest& request,
                                                 const std::string& text, int64_t* from_store);
};

}  // namespace v4agent::agent
