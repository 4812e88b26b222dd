#include "engine/tokenizer/v4_tokens.h"

#include <filesystem>

#include "common/file_util.h"
#include "common/json.h"
#include "common/strings.h"

namespace v4agent::engine {

const std::vector<AddedTokenSpec>& V4AddedTokens() {
  static const std::vector<AddedTokenSpec> kTokens = {
      {128821, "<think>"},         {128822, "</think>"},
      {128825, "｜DSML｜"},        {128828, "<｜latest_reminder｜>"},
      {128829, "<｜action｜>"},    {128830, "<｜query｜>"},
      {128831, "<｜authority｜>"}, {128832, "<｜domain｜>"},
      {128836, "<｜title｜>"},     {128844, "<｜extracted_url｜>"},
      {128845, "<｜read_url｜>"},
  };
  return kTokens;
}

Status BuildV4TokenizerFiles(const std::string& v3_json, const std::string& out_dir) {
  V4_ASSIGN_OR_RETURN(std::string text, ReadFile(v3_json));
  // A sorted object (an insertion-ordered one is quadratic in the 128k vocabulary entries);
  // key order carries no meaning in tokenizer.json.
  V4_ASSIGN_OR_RETURN(Json j, ParseJson(text, v3_json));
  if (!j.is_object() || !j.contains("added_tokens") || !j["added_tokens"].is_array()) {
    return InvalidArgumentError(v3_json + ": missing array 'added_tokens'");
  }
  auto& added = j["added_tokens"];
  for (const auto& t : V4AddedTokens()) {
    bool present = false;
    for (const auto& a : added) {
      if (!a.contains("id") || !a.contains("content")) continue;
      if (a["id"].get<int64_t>() == t.id) {
        if (a["content"].get<std::string>() != t.content) {
          return InvalidArgumentError(StrCat(v3_json, ": id ", t.id, " is \"",
                                             a["content"].get<std::string>(), "\", V4 needs \"",
                                             t.content, "\""));
        }
        present = true;
      }
    }
    if (present) continue;
    Json e = Json::object();
    e["id"] = t.id;
    e["content"] = t.content;
    e["single_word"] = false;
    e["lstrip"] = false;
    e["rstrip"] = false;
    e["normalized"] = false;
    e["special"] = true;
    added.push_back(e);
  }
  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  if (ec) return IoError("cannot create " + out_dir + ": " + ec.message());
  V4_RETURN_IF_ERROR(WriteFileAtomic(out_dir + "/tokenizer.json", DumpJson(j, 2)));
  Json cfg = {{"add_bos_token", false},
              {"add_eos_token", false},
              {"bos_token", "<｜begin▁of▁sentence｜>"},
              {"eos_token", "<｜end▁of▁sentence｜>"},
              {"pad_token", "<｜end▁of▁sentence｜>"},
              {"clean_up_tokenization_spaces", false},
              {"legacy", true},
              {"model_max_length", 1048576},
              {"tokenizer_class", "PreTrainedTokenizerFast"},
              {"unk_token", nullptr}};
  return WriteFileAtomic(out_dir + "/tokenizer_config.json", DumpJson(cfg, 2));
}

}  // namespace v4agent::engine
