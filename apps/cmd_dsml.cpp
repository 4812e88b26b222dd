// `v4agent dsml render|parse`: the DSML codec on the command line. render reads one request
// object and writes the prompt bytes exactly (no added newline); parse reads a completion on
// stdin and prints the events (JSONL) or the parsed message in the reference's shape.
#include <cstdio>
#include <iostream>
#include <iterator>

#include "apps/command.h"
#include "apps/flags.h"
#include "common/file_util.h"
#include "dsml/prompt_encoder.h"
#include "dsml/stream_parser.h"

namespace v4agent::apps {
namespace {

constexpr char kRenderUsage[] =
    "usage: v4agent dsml render --input FILE\n"
    "FILE holds {\"messages\": [...], \"thinking_mode\": \"thinking\"|\"chat\",\n"
    "\"reasoning_effort\": null|\"high\"|\"max\", \"drop_thinking\": true|false} (optional:\n"
    "\"effort_table\": \"preview\"|\"0731\", \"add_bos\": bool); messages in the OpenAI chat\n"
    "format with tools on system messages, as DeepSeek's reference encoder takes them. The\n"
    "prompt goes to stdout byte for byte, special tokens as their spellings. FILE - reads stdin.";

constexpr char kParseUsage[] =
    "usage: v4agent dsml parse [--thinking-mode thinking|chat] [--format events|message]\n"
    "                          [--tools FILE]\n"
    "Parses a model completion read from stdin (special tokens as their spellings, EOS\n"
    "included). events: one JSON object per line; message: one JSON object in the reference's\n"
    "shape (role, reasoning_content, content, tool_calls with JSON-string arguments) plus\n"
    "finish_reason and errors. --tools FILE (an OpenAI tools array) checks calls against the\n"
    "schemas. The input is fed to the streaming parser in 4 KiB chunks.";

Result<std::string> ReadInput(const std::string& path) {
  if (path == "-") {
    return std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  }
  return ReadFile(path);
}

int Render(const std::vector<std::string>& args) {
  auto flags = Flags::Parse(args, FlagSpec{{"input"}, {}});
  if (!flags.ok() || !flags->Get("input")) {
    std::fprintf(stderr, "%s\n%s\n",
                 flags.ok() ? "--input is required" : flags.status().message().c_str(),
                 kRenderUsage);
    return 2;
  }
  const std::string path = *flags->Get("input");
  auto text = ReadInput(path);
  if (!text.ok()) {
    std::fprintf(stderr, "v4agent dsml render: %s\n", text.status().ToString().c_str());
    return 1;
  }
  auto request = ParseOrderedJson(*text, path);
  if (!request.ok()) {
    std::fprintf(stderr, "v4agent dsml render: %s\n", request.status().ToString().c_str());
    return 1;
  }
  auto conv = dsml::ConversationFromJson(*request, path);
  if (!conv.ok()) {
    std::fprintf(stderr, "v4agent dsml render: %s\n", conv.status().ToString().c_str());
    return 1;
  }
  auto prompt = dsml::RenderPrompt(*conv);
  if (!prompt.ok()) {
    std::fprintf(stderr, "v4agent dsml render: %s: %s\n", path.c_str(),
                 prompt.status().ToString().c_str());
    return 1;
  }
  std::fwrite(prompt->data(), 1, prompt->size(), stdout);
  return 0;
}

int Parse(const std::vector<std::string>& args) {
  auto flags = Flags::Parse(args, FlagSpec{{"thinking-mode", "format", "tools"}, {}});
  if (!flags.ok()) {
    std::fprintf(stderr, "%s\n%s\n", flags.status().message().c_str(), kParseUsage);
    return 2;
  }
  auto mode = dsml::ParseThinkingMode(flags->GetOr("thinking-mode", "thinking"));
  const std::string format = flags->GetOr("format", "message");
  if (!mode.ok() || (format != "events" && format != "message")) {
    std::fprintf(stderr, "%s\n%s\n",
                 mode.ok() ? "--format must be events or message" : mode.status().message().c_str(),
                 kParseUsage);
    return 2;
  }
  OrderedJson tools;
  if (auto path = flags->Get("tools")) {
    auto text = ReadFile(*path);
    auto j = text.ok() ? ParseOrderedJson(*text, *path) : Result<OrderedJson>(text.status());
    if (!j.ok() || !j->is_array()) {
      std::fprintf(stderr, "v4agent dsml parse: --tools %s: %s\n", path->c_str(),
                   j.ok() ? "must hold a JSON array of tools" : j.status().ToString().c_str());
      return 1;
    }
    tools = std::move(j).value();
  }
  const OrderedJson* tools_ptr = tools.is_null() ? nullptr : &tools;
  const std::string input((std::istreambuf_iterator<char>(std::cin)),
                          std::istreambuf_iterator<char>());
  if (format == "message") {
    dsml::ParsedMessage m = dsml::ParseCompletion(input, *mode, tools_ptr);
    std::printf("%s\n", DumpJson(dsml::ParsedMessageToJson(m)).c_str());
    return 0;
  }
  dsml::StreamParser parser(*mode, tools_ptr);
  std::vector<dsml::Event> events;
  auto flush = [&] {
    for (const auto& e : events) std::printf("%s\n", DumpJson(dsml::EventToJson(e)).c_str());
    events.clear();
  };
  for (size_t at = 0; at < input.size(); at += 4096) {
    parser.Feed(std::string_view(input).substr(at, 4096), &events);
    flush();
  }
  parser.Finish(&events);
  flush();
  return 0;
}

SubcommandRegistrar render_registrar("dsml", Command{"render",
                                                     "render a conversation to the V4 "
                                                     "prompt text",
                                                     kRenderUsage, Render});
SubcommandRegistrar parse_registrar("dsml", Command{"parse",
                                                    "parse a model completion into "
                                                    "reasoning, content and tool calls",
                                                    kParseUsage, Parse});
CommandRegistrar registrar(Command{
    "dsml", "render V4 prompts and parse DSML completions",
    "usage: v4agent dsml SUBCOMMAND [ARGS...] (v4agent dsml --help lists them)",
    [](const std::vector<std::string>& args) { return RunGroup("dsml", args); }});

}  // namespace
}  // namespace v4agent::apps
