// The literal spellings of DeepSeek-V4's special tokens and DSML tags, and the fixed prompt
// texts the reference encoder inserts (tools instructions, effort paragraphs). Data only: the
// bytes here must equal the reference's (tests check lengths and sha256 given in the spec).
#pragma once

#include <string_view>

namespace v4agent::dsml {

// Special tokens (spec §1). "｜" is U+FF5C, "▁" is U+2581.
inline constexpr std::string_view kBos = "<｜begin▁of▁sentence｜>";
inline constexpr std::string_view kEos = "<｜end▁of▁sentence｜>";
inline constexpr std::string_view kUser = "<｜User｜>";
inline constexpr std::string_view kAssistant = "<｜Assistant｜>";
inline constexpr std::string_view kThinkStart = "<think>";
inline constexpr std::string_view kThinkEnd = "</think>";
inline constexpr std::string_view kDsml = "｜DSML｜";
inline constexpr std::string_view kLatestReminder = "<｜latest_reminder｜>";
inline constexpr std::string_view kActionTask = "<｜action｜>";

// DSML tags (spec §4.1); the angle brackets and names are plain text around the DSML token.
inline constexpr std::string_view kToolCallsOpen = "<｜DSML｜tool_calls>";
inline constexpr std::string_view kToolCallsClose = "</｜DSML｜tool_calls>";
inline constexpr std::string_view kInvokeOpen = "<｜DSML｜invoke";
inline constexpr std::string_view kInvokeClose = "</｜DSML｜invoke>";
inline constexpr std::string_view kParameterOpen = "<｜DSML｜parameter";
inline constexpr std::string_view kParameterClose = "</｜DSML｜parameter>";
inline constexpr std::string_view kDsmlOpenTag = "<｜DSML｜";
inline constexpr std::string_view kDsmlCloseTag = "</｜DSML｜";

// The task token for a quick-instruction `task` value, or empty when unknown.
std::string_view TaskToken(std::string_view task);

// Tools block (spec §3.2): prefix + schema lines joined by "\n" + suffix.
extern const std::string_view kToolsPrefix;  // 890 bytes
extern const std::string_view kToolsSuffix;  // 99 bytes
// Response format block (spec §9): prefix + python_json(response_format).
extern const std::string_view kResponseFormatPrefix;  // 80 bytes

// Effort paragraphs (spec §6.2).
extern const std::string_view kEffortAbsoluteMax;  // TEXT_A, 476 bytes
extern const std::string_view kEffortBeyondMax;    // TEXT_B, 528 bytes

}  // namespace v4agent::dsml
