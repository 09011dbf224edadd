// fuzz_gpt2_config: a GPT-2 config.json (io/hf_gpt2.hpp) from arbitrary bytes: JSON syntax, repeated fields, every
// field's type and range, sizes whose products overflow, then the memory estimate a load would make from it. Nothing
// here may allocate by the config's sizes: an absurd n_embd must be refused, not attempted.
#include <cstdint>

#include "eigenformer/io/hf_gpt2.hpp"
#include "fuzz_support.hpp"

using namespace eigenformer;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::allow_library_errors([&] {
    const GPT2Config c = gpt2_config_from_json(parse_json_file(fuzz::as_text(data, size), "config.json"), "config.json");
    const MemoryEstimate one = estimate_gpt2_memory<float>(c);
    fuzz::require(one.context == c.n_positions && one.batch == 1, "defaults: batch 1, the whole context");
    const MemoryEstimate wide = estimate_gpt2_memory<double>(c, 8, c.n_positions);
    fuzz::require(wide.weight_bytes == 2 * one.weight_bytes && wide.cache_bytes == 16 * one.cache_bytes, "sizes scale with the scalar and batch");
  });
  return 0;
}
