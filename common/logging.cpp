#include "common/logging.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace v4agent {
namespace {

LogLevel LevelFromEnv() {
  const char* env = std::getenv("V4AGENT_LOG_LEVEL");
  if (env == nullptr) return LogLevel::kWarning;
  if (std::strcmp(env, "debug") == 0) return LogLevel::kDebug;
  if (std::strcmp(env, "info") == 0) return LogLevel::kInfo;
  if (std::strcmp(env, "error") == 0) return LogLevel::kError;
  return LogLevel::kWarning;
}

std::atomic<int>& Level() {
  static std::atomic<int> level(static_cast<int>(LevelFromEnv()));
  return level;
}

}  // namespace

void SetLogLevel(LogLevel level) { Level().store(static_cast<int>(level)); }
LogLevel GetLogLevel() { return static_cast<LogLevel>(Level().load()); }

namespace internal {

LogMessage::LogMessage(LogLevel level, const char* file, int line) {
  static const char* kNames[] = {"D", "I", "W", "E"};
  const char* base = std::strrchr(file, '/');
  stream_ << kNames[static_cast<int>(level)] << " " << (base ? base + 1 : file) << ":" << line
          << "] ";
}

LogMessage::~LogMessage() {
  static std::mutex mu;
  stream_ << "\n";
  std::lock_guard<std::mutex> lock(mu);
  std::fputs(stream_.str().c_str(), stderr);
}

}  // namespace internal
}  // namespace v4agent
