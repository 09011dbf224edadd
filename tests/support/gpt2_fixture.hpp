// tests/support/gpt2_fixture.hpp: the GPT-2 fixtures of tools/make_gpt2_fixtures.py. tests/fixtures/gpt2/<variant>/
// holds a Hugging Face directory (config.json, model.safetensors) and reference.safetensors: input.prompt_ids [B, T]
// left-padded, input.attention_mask [B, T] (1 = real token), input.prompt_lengths [B], output.logits [B, T, V] (float64
// from the stored weights; compare only where the mask is 1), output.logits_alone_<b>, output.greedy_ids [B, N],
// output.cached_logits [B, N, V] (step 0: the prompt pass's last position; step k: the k-th cached step).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "eigenformer/io/safetensors.hpp"

namespace eigenformer::testing {

inline const std::vector<std::string>& gpt2_fixture_names() {
  static const std::vector<std::string> names = {"tiny_f32_hub", "tiny_f32_transformer_prefix", "tiny_f16", "tiny_bf16", "odd_shape",
                                                 "one_layer_one_head"};
  return names;
}
inline std::string gpt2_fixture_dir(const std::string& name) { return std::string(EIGENFORMER_FIXTURE_DIR) + "/gpt2/" + name; }

struct GPT2Reference {
  explicit GPT2Reference(const std::string& name) : file(gpt2_fixture_dir(name) + "/reference.safetensors") {}
  // Padding tokens at the start of each prompt.
  std::vector<Index> left_pads() const {
    const Tensor<std::int64_t> lengths = file.get<std::int64_t>("input.prompt_lengths");
    const Index T = file.info("input.prompt_ids").shape[1];
    std::vector<Index> pads;
    for (Index b = 0; b < lengths.size(); ++b) pads.push_back(T - lengths[b]);
    return pads;
  }
  SafeTensors file;
};

}  // namespace eigenformer::testing
