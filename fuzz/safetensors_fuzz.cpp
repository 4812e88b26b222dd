// libFuzzer target: the safetensors header parser never crashes, hangs or over-reads on
// arbitrary bytes; it either accepts them or returns an error.
#include <cstddef>
#include <cstdint>

#include "engine/checkpoint/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto f = v4agent::engine::SafetensorsFile::FromBytes({data, size}, "fuzz.safetensors");
  if (f.ok()) {
    for (const auto& t : (*f)->tensors()) {
      // Touch the first and last byte of every accepted view: they must lie inside the input.
      if (t.nbytes > 0) {
        volatile uint8_t a = t.data[0];
        volatile uint8_t b = t.data[t.nbytes - 1];
        (void)a;
        (void)b;
      }
    }
  }
  return 0;
}
