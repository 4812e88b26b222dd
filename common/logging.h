// Leveled logging to stderr: V4_LOG(INFO) << "...". The level comes from V4AGENT_LOG_LEVEL
// (debug|info|warning|error, default warning) or SetLogLevel(). Never writes to stdout, which
// belongs to the program's output (JSON, prompts, token ids).
#pragma once

#include <sstream>

namespace v4agent {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();

namespace internal {
class LogMessage {
 public:
  LogMessage(LogLevel level, const char* file, int line);
  ~LogMessage();
  std::ostream& stream() { return stream_; }

 private:
  std::ostringstream stream_;
};
}  // namespace internal

}  // namespace v4agent

#define V4_LOG_LEVEL_DEBUG ::v4agent::LogLevel::kDebug
#define V4_LOG_LEVEL_INFO ::v4agent::LogLevel::kInfo
#define V4_LOG_LEVEL_WARNING ::v4agent::LogLevel::kWarning
#define V4_LOG_LEVEL_ERROR ::v4agent::LogLevel::kError

#define V4_LOG(severity)                                    \
  if (V4_LOG_LEVEL_##severity < ::v4agent::GetLogLevel()) { \
  } else                                                    \
    ::v4agent::internal::LogMessage(V4_LOG_LEVEL_##severity, __FILE__, __LINE__).stream()
