// Tool output as the model sees it: head and tail within a byte budget, with an explicit
// "[... N bytes elided ...]" marker and a hint on how to see the rest.
#pragma once

#include <string>

namespace v4agent::tools {

std::string HeadTail(const std::string& text, size_t budget, const std::string& hint);

}  // namespace v4agent::tools
