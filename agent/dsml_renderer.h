// DsmlRenderer: the PromptRenderer the in-process client uses, built on the dsml codec. Chat
// messages become the reference encoder's conversation (the tools on the system message,
// assistant turns from their raw bytes when known, tool results as tool messages), and a raw
// completion is parsed back with the streaming parser against the same tools.
#pragma once

#include <string>
#include <vector>

#include "agent/inprocess_client.h"
#include "dsml/conversation.h"

namespace v4agent::agent {

struct DsmlRendererOptions {
  bool thinking = true;         // used when a request does not say
  std::string effort = "high";  // "none" / "high" / "max"
  // Keep reasoning of earlier turns even without tools, so a conversation only ever extends
  // the cache (spec dsml §7.3 (a)); agent runs declare tools, where it is kept anyway.
  bool drop_thinking = false;
  dsml::EffortTable effort_table = dsml::EffortTable::kPreview;
};

class DsmlRenderer : public PromptRenderer {
 public:
  explicit DsmlRenderer(DsmlRendererOptions options) : options_(std::move(options)) {}
  Result<std::string> Render(const std::vector<ChatMessage>& messages,
                             const std::vector<ToolSpec>& tools, bool thinking) const override;
  // Parses against the tools and mode of the last Render.
  Completion Parse(const std::string& raw) const override;
  // Up to the first user turn's marker: the system prompt and tools block.
  size_t SharedPrefixLength(const std::vector<ChatMessage>& messages,
                            const std::vector<ToolSpec>& tools, bool thinking) const override;

  // The conversation object Render encodes (for `dsml render` style debugging and tests).
  Result<dsml::Conversation> ToConversation(const std::vector<ChatMessage>& messages,
                                            const std::vector<ToolSpec>& tools,
                                            bool thinking) const;

 private:
  DsmlRendererOptions options_;
  mutable OrderedJson last_tools_;
  mutable bool last_thinking_ = true;
};

}  // namespace v4agent::agent
