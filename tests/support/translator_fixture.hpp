// tests/support/translator_fixture.hpp: the tutorial-model fixtures of tools/make_translator_fixtures.py.
// tests/fixtures/translator/<name>/ holds config.json + model.safetensors (the PyTorch tutorial's layout, F32) and
// reference.safetensors: input.src_ids [B, S] (BOS ... EOS, padded), input.src_lengths, input.tgt_ids [B, T],
// input.tgt_lengths, output.memory [B, S, D], output.logits [B, T, V] (float64 from the stored weights),
// output.greedy_ids [B, L] (each source alone, the tutorial's greedy_decode, no BOS/EOS, padded with -1),
// output.greedy_lengths, output.greedy_stopped_at_eos.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "eigenformer/io/safetensors.hpp"

namespace eigenformer::testing {

inline const std::vector<std::string>& translator_fixture_names() {
  static const std::vector<std::string> names = {"post_relu_3layers", "pre_gelu_1layer", "post_gelu_odd", "pre_relu_2layers"};
  return names;
}
inline std::string translator_fixture_dir(const std::string& name) { return std::string(EIGENFORMER_FIXTURE_DIR) + "/translator/" + name; }

struct TranslatorReference {
  explicit TranslatorReference(const std::string& name) : file(translator_fixture_dir(name) + "/reference.safetensors") {}

  std::vector<Index> lengths(const std::string& n) const {
    const Tensor<std::int64_t> t = file.get<std::int64_t>(n);
    return std::vector<Index>(t.data(), t.data() + t.size());
  }
  // Row b of a padded id matrix, cut to `length`.
  std::vector<std::vector<std::int64_t>> rows(const std::string& ids_name, const std::string& lengths_name) const {
    const Tensor<std::int64_t> ids = file.get<std::int64_t>(ids_name);
    const std::vector<Index> len = lengths(lengths_name);
    std::vector<std::vector<std::int64_t>> out;
    for (Index b = 0; b < ids.dim(0); ++b) out.emplace_back(ids.data() + b * ids.dim(1), ids.data() + b * ids.dim(1) + len[static_cast<std::size_t>(b)]);
    return out;
  }
  std::vector<std::vector<std::int64_t>> sources() const { return rows("input.src_ids", "input.src_lengths"); }
  std::vector<std::vector<std::int64_t>> greedy() const { return rows("output.greedy_ids", "output.greedy_lengths"); }

  SafeTensors file;
};

}  // namespace eigenformer::testing
