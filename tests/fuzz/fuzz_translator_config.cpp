// fuzz_translator_config: the translation tutorial model's config.json (io/pytorch_transformer.hpp) from arbitrary
// bytes: JSON syntax, repeated fields, every field's type and range, sizes whose products overflow, then the memory
// estimate a load would make from it. Nothing here may allocate by the config's sizes.
#include <cstdint>

#include "eigenformer/io/pytorch_transformer.hpp"
#include "fuzz_support.hpp"

using namespace eigenformer;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::allow_library_errors([&] {
    const TransformerConfig c = transformer_config_from_json(parse_json_file(fuzz::as_text(data, size), "config.json"), "config.json");
    const MemoryEstimate one = estimate_transformer_memory<float>(c);
    fuzz::require(one.context == c.max_len && one.batch == 1, "defaults: batch 1, max_len positions");
    const MemoryEstimate wide = estimate_transformer_memory<double>(c, 8, c.max_len);
    fuzz::require(wide.weight_bytes == 2 * one.weight_bytes && wide.cache_bytes == 16 * one.cache_bytes, "sizes scale with the scalar and batch");
  });
  return 0;
}
