// The V4 prompt encoder: Conversation -> the exact prompt text DeepSeek's reference encoder
// (encoding_dsv4.py) produces, special tokens as their spellings (spec §2-§7). Also the
// incremental form a live session needs: the text to append, or where the full render stops
// being an extension of what is already in the cache. Text only; never tokenizes.
#pragma once

#include <cstddef>
#include <string>

#include "common/status.h"
#include "dsml/conversation.h"

namespace v4agent::dsml {

// The whole prompt. Errors name the message and field (bad arguments JSON, unknown effort).
Result<std::string> RenderPrompt(const Conversation& conversation);

struct AppendResult {
  // True when render(after) starts with render(before): append `text_to_append` to the cache.
  bool pure_extension = false;
  std::string text_to_append;
  // Otherwise: the first byte where the two renders differ. The cache must be rewound to a
  // token boundary at or before this offset and render(after) appended from there.
  size_t diverge_offset = 0;
};

// `before` is the conversation whose render is already in the cache; `after` extends it.
Result<AppendResult> RenderAppend(const Conversation& before, const Conversation& after);

// The tools block for an OpenAI tools list (spec §3.2), "## Tools ... calls.\n".
Result<std::string> RenderToolsBlock(const OrderedJson& tools);

// One assistant tool_calls list as the DSML block, without the leading "\n\n" (spec §4.1).
Result<std::string> RenderToolCalls(const OrderedJson& tool_calls, std::string_view where);

}  // namespace v4agent::dsml
