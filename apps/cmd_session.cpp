// `v4agent session inspect FILE` and `v4agent session list DIR`: what saved sessions hold
// (tokens, bytes per part, the model that wrote them), without loading a model.
#include <cstdio>
#include <ctime>

#include "apps/command.h"
#include "apps/flags.h"
#include "common/json.h"
#include "common/strings.h"
#include "engine/session/prefix_store.h"
#include "engine/session/session_file.h"

namespace v4agent::apps {
namespace {

using namespace v4agent::engine;

std::string ModelLine(const Json& meta) {
  if (!meta.is_object() || !meta.contains("model")) return "?";
  const Json& m = meta["model"];
  return StrCat("config ", m.value("config_hash", std::string("?")), " tensors ",
                m.value("tensor_digest", std::string("?")), " (", m.value("dir", std::string("?")),
                "), numerics ", meta.value("numerics", std::string("?")), ", qat_sim ",
                meta.value("qat_sim", true) ? "on" : "off", ", kv ",
                meta.value("kv_layout", std::string("?")));
}

int Inspect(const std::vector<std::string>& args) {
  auto flags = Flags::Parse(args, FlagSpec{{}, {"json"}});
  if (!flags.ok() || flags->positional().size() != 1) {
    std::fprintf(stderr, "usage: v4agent session inspect FILE [--json]\n%s\n",
                 flags.ok() ? "" : flags.status().message().c_str());
    return 2;
  }
  auto info = InspectSessionFile(flags->positional()[0]);
  if (!info.ok()) {
    std::fprintf(stderr, "v4agent session inspect: %s\n", info.status().ToString().c_str());
    return 1;
  }
  if (flags->Has("json")) {
    Json j = info->meta;
    j["path"] = info->path;
    j["file_bytes"] = info->file_size;
    j["bytes"] = {{"history", info->history_bytes},
                  {"state", info->state_bytes},
                  {"snapshots", info->snapshot_bytes}};
    j["checksum"] = "ok";
    std::printf("%s\n", DumpJson(j, 2).c_str());
    return 0;
  }
  const Json& m = info->meta;
  std::printf("session      %s (format version %u, checksum ok)\n", info->path.c_str(),
              info->version);
  std::printf("created      %s\n", m.value("created", std::string("?")).c_str());
  std::printf("model        %s\n", ModelLine(m).c_str());
  std::printf("tokens       %lld (MTP layer %lld)\n", static_cast<long long>(info->tokens),
              static_cast<long long>(m.value("mtp_length", int64_t{0})));
  std::printf("snapshots    %lld at", static_cast<long long>(info->snapshots));
  for (const Json& s : m.value("snapshots", Json::array())) {
    std::printf(" %lld", static_cast<long long>(s.value("length", int64_t{0})));
  }
  std::printf("\n");
  std::printf("bytes        %s total: history %s, state + tokens + logits %s, snapshots %s\n",
              HumanBytes(info->file_size).c_str(), HumanBytes(info->history_bytes).c_str(),
              HumanBytes(info->state_bytes).c_str(), HumanBytes(info->snapshot_bytes).c_str());
  if (info->tokens > 0) {
    std::printf("per token    %.1f B of history\n",
                static_cast<double>(info->history_bytes) / static_cast<double>(info->tokens));
  }
  return 0;
}

int List(const std::vector<std::string>& args) {
  auto flags = Flags::Parse(args, FlagSpec{{}, {"json"}});
  if (!flags.ok() || flags->positional().size() != 1) {
    std::fprintf(stderr, "usage: v4agent session list DIR [--json]\n%s\n",
                 flags.ok() ? "" : flags.status().message().c_str());
    return 2;
  }
  auto entries = ListSessionDir(flags->positional()[0]);
  if (!entries.ok()) {
    std::fprintf(stderr, "v4agent session list: %s\n", entries.status().ToString().c_str());
    return 1;
  }
  uint64_t total = 0;
  Json out = Json::array();
  for (const PrefixEntry& e : *entries) {
    total += e.bytes;
    char when[32] = "?";
    const std::time_t t = static_cast<std::time_t>(e.last_used_ns / 1000000000);
    std::tm tm{};
    gmtime_r(&t, &tm);
    std::strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
    if (flags->Has("json")) {
      out.push_back({{"path", e.path},
                     {"tokens", e.tokens.size()},
                     {"bytes", e.bytes},
                     {"last_used", when},
                     {"error", e.why_not}});
    } else {
      std::printf("%-40s %9zu tokens %11s  used %s UTC%s%s\n", e.path.c_str(), e.tokens.size(),
                  HumanBytes(e.bytes).c_str(), when,
                  e.why_not.empty() ? "" : "  UNREADABLE: ", e.why_not.c_str());
    }
  }
  if (flags->Has("json")) {
    std::printf("%s\n", DumpJson(out, 2).c_str());
  } else {
    std::printf("%zu sessions, %s\n", entries->size(), HumanBytes(total).c_str());
  }
  return 0;
}

SubcommandRegistrar inspect_registrar(
    "session", Command{"inspect", "show a session file: tokens, bytes per part, model",
                       "usage: v4agent session inspect FILE [--json]", Inspect});
SubcommandRegistrar list_registrar(
    "session", Command{"list", "list the session files of a directory (a --cache-dir store)",
                       "usage: v4agent session list DIR [--json]", List});
CommandRegistrar registrar(Command{
    "session", "inspect saved sessions and session stores",
    "usage: v4agent session (inspect FILE | list DIR) [--json]\n"
    "Session files are written by `model generate --save-session`, by in-process runs (beside\n"
    "the trajectory) and by `run --cache-dir` stores; docs/sessions.md describes the format.",
    [](const std::vector<std::string>& args) { return RunGroup("session", args); }});

}  // namespace
}  // namespace v4agent::apps
