// `v4agent tokenize`, `v4agent detokenize`, `v4agent tokenizer build-v4`.
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <iterator>

#include "apps/command.h"
#include "apps/flags.h"
#include "common/file_util.h"
#include "common/json.h"
#include "common/strings.h"
#include "engine/tokenizer/tokenizer.h"
#include "engine/tokenizer/v4_tokens.h"

namespace v4agent::apps {
namespace {

using namespace v4agent::engine;

std::string ReadStdin() {
  return std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
}

int Tokenize(const std::vector<std::string>& args) {
  auto flags = Flags::Parse(args, FlagSpec{{"tokenizer", "text"}, {"no-special"}});
  if (!flags.ok() || !flags->Get("tokenizer")) {
    std::fprintf(stderr, "usage: v4agent tokenize --tokenizer PATH [--text T] [--no-special]\n");
    return 2;
  }
  auto tok = Tokenizer::Load(*flags->Get("tokenizer"));
  if (!tok.ok()) {
    std::fprintf(stderr, "v4agent tokenize: %s\n", tok.status().ToString().c_str());
    return 1;
  }
  std::string text = flags->Get("text") ? *flags->Get("text") : ReadStdin();
  std::printf("%s\n", DumpJson(Json((*tok)->Encode(text, !flags->Has("no-special")))).c_str());
  return 0;
}

int Detokenize(const std::vector<std::string>& args) {
  auto flags = Flags::Parse(args, FlagSpec{{"tokenizer"}, {}});
  if (!flags.ok() || !flags->Get("tokenizer")) {
    std::fprintf(stderr, "usage: v4agent detokenize --tokenizer PATH < ids.json\n");
    return 2;
  }
  auto tok = Tokenizer::Load(*flags->Get("tokenizer"));
  if (!tok.ok()) {
    std::fprintf(stderr, "v4agent detokenize: %s\n", tok.status().ToString().c_str());
    return 1;
  }
  auto j = ParseJson(ReadStdin(), "stdin");
  if (!j.ok() || !j->is_array()) {
    std::fprintf(stderr, "v4agent detokenize: stdin must be a JSON array of token ids%s%s\n",
                 j.ok() ? "" : ": ", j.ok() ? "" : j.status().message().c_str());
    return 1;
  }
  std::vector<int32_t> ids;
  for (size_t i = 0; i < j->size(); ++i) {
    const Json& v = (*j)[i];
    if (!v.is_number_integer() || v.get<int64_t>() < 0 ||
        v.get<int64_t>() >= (*tok)->vocab_size()) {
      std::fprintf(stderr,
                   "v4agent detokenize: element %zu (%s) is not a token id of this tokenizer\n", i,
                   v.dump().c_str());
      return 1;
    }
    ids.push_back(v.get<int32_t>());
  }
  std::string out = (*tok)->Decode(ids);
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

int BuildV4(const std::vector<std::string>& args) {
  auto flags = Flags::Parse(args, FlagSpec{{"from", "out"}, {}});
  if (!flags.ok() || !flags->Get("from") || !flags->Get("out")) {
    std::fprintf(stderr, "usage: v4agent tokenizer build-v4 --from V3_TOKENIZER_JSON --out DIR\n");
    return 2;
  }
  auto st = BuildV4TokenizerFiles(*flags->Get("from"), *flags->Get("out"));
  if (!st.ok()) {
    std::fprintf(stderr, "v4agent tokenizer build-v4: %s\n", st.ToString().c_str());
    return 1;
  }
  std::printf("wrote %s/tokenizer.json and tokenizer_config.json\n", flags->Get("out")->c_str());
  return 0;
}

CommandRegistrar tokenize(Command{
    "tokenize", "print the token ids of text (stdin or --text) as JSON",
    "usage: v4agent tokenize --tokenizer PATH [--text T] [--no-special]\n"
    "--no-special encodes special-token spellings as ordinary text.",
    Tokenize});
CommandRegistrar detokenize(Command{"detokenize", "print the text of a JSON array of ids (stdin)",
                                    "usage: v4agent detokenize --tokenizer PATH < ids.json",
                                    Detokenize});
CommandRegistrar tokenizer_group(Command{
    "tokenizer", "tokenizer files: build-v4",
    "usage: v4agent tokenizer build-v4 --from V3_JSON --out DIR",
    [](const std::vector<std::string>& a) { return RunGroup("tokenizer", a); }});
SubcommandRegistrar build_v4(
    "tokenizer",
    Command{"build-v4", "V3 tokenizer.json + V4's added tokens -> V4 tokenizer.json",
            "usage: v4agent tokenizer build-v4 --from V3_TOKENIZER_JSON --out DIR\n"
            "Adds <think>, </think>, ｜DSML｜, <｜latest_reminder｜> and the task\n"
            "tokens with their V4 ids (specs/dsml.md §1); everything else is unchanged.",
            BuildV4});

}  // namespace
}  // namespace v4agent::apps
