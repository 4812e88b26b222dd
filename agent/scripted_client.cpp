#include "agent/scripted_client.h"

#include "common/file_util.h"
#include "common/strings.h"

namespace v4agent::agent {

Result<ScriptedClient> ScriptedClient::FromFile(const std::string& path) {
  V4_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  std::vector<Completion> script;
  int line_no = 0;
  for (const std::string& line : StrSplit(text, '\n')) {
    ++line_no;
    if (StripWhitespace(line).empty()) continue;
    std::string where = StrCat(path, ":", line_no);
    V4_ASSIGN_OR_RETURN(Json j, ParseJson(line, where));
    V4_ASSIGN_OR_RETURN(Completion c, CompletionFromJson(j, where));
    script.push_back(std::move(c));
  }
  return ScriptedClient(std::move(script));
}

Result<Completion> ScriptedClient::Complete(const CompletionRequest& /*request*/,
                                            const DeltaCallback& on_delta) {
  if (next_ >= script_.size()) {
    return OutOfRangeError(StrCat("scripted client: script has only ", script_.size(),
                                  " completions; turn ", next_ + 1, " asked for another"));
  }
  Completion c = script_[next_++];
  if (on_delta) {
    if (!c.reasoning_content.empty()) on_delta({"reasoning", c.reasoning_content});
    if (!c.content.empty()) on_delta({"content", c.content});
  }
  if (c.tokens_generated == 0) {
    c.tokens_generated = static_cast<int64_t>((c.content.size() + c.reasoning_content.size()) / 4);
  }
  return c;
}

}  // namespace v4agent::agent
