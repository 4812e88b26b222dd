// libFuzzer target: the pipeline loader (and the YAML document under it) on any text never
// crashes or throws; errors come back as file:line:col text.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "common/file_util.h"
#include "pipeline/loader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace v4agent;
  static const std::string dir = [] {
    char tmpl[] = "/tmp/v4-pipeline-fuzz-XXXXXX";
    return std::string(mkdtemp(tmpl));
  }();
  const std::string file = dir + "/p.yaml";
  if (!WriteFile(file, std::string(reinterpret_cast<const char*>(data), size)).ok()) return 0;
  pipeline::LoadResult r = pipeline::LoadPipeline(file);
  (void)r;
  return 0;
}
