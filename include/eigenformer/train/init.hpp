// train/init.hpp: the starting weights of a model trained from scratch, as the PyTorch translation tutorial sets them:
//   for p in model.parameters(): if p.dim() > 1: nn.init.xavier_uniform_(p)
// Xavier (Glorot and Bengio 2010) uniform: each value drawn from U(-a, a) with a = sqrt(6 / (fan_in + fan_out)), where
// for a [rows, cols] matrix fan_in = cols and fan_out = rows (PyTorch's _calculate_fan_in_and_fan_out; a Linear's
// weight is [out, in], an Embedding's [V, D]). Parameters of rank < 2 (biases, LayerNorm's weight and bias) keep what
// their block starts them at: biases 0, LayerNorm weight 1. Fixed tables (the sinusoid) are not parameters.
// gpt2_normal_init: GPT-2's own start, as Hugging Face's GPT2PreTrainedModel._init_weights sets it (and nanoGPT):
//   every weight matrix and embedding table ~ N(0, 0.02^2), biases 0, LayerNorm weight 1 and bias 0, and the two
//   projections that end a residual branch (attn.c_proj, mlp.c_proj) ~ N(0, (0.02 / sqrt(2 n_layer))^2) (GPT-2 paper,
//   section 2.3: the residual stream's variance then does not grow with depth).
// The draws come from `rng` in visit_parameters order, so one seed gives one model on every machine.
#pragma once

#include <cmath>
#include <string>

#include "eigenformer/core/random.hpp"
#include "eigenformer/core/tensor.hpp"
#include "eigenformer/models/gpt2.hpp"

namespace eigenformer {

template <typename Model>
void xavier_uniform_init(Model& model, Random& rng) {
  model.visit_parameters([&](const std::string&, auto& value) {
    if (value.rank() < 2) return;
    // Rank 3 and 4 (none in our models today) count as PyTorch does: fan_in = dim(1) * receptive field.
    Index receptive = 1;
    for (Index i = 2; i < value.rank(); ++i) receptive *= value.dim(i);
    const double fan_in = double(value.dim(1) * receptive), fan_out = double(value.dim(0) * receptive);
    const double a = std::sqrt(6.0 / (fan_in + fan_out));
    fill_uniform(value.view(), rng, -a, a);
  });
}

template <typename Scalar>
void gpt2_normal_init(GPT2<Scalar>& model, Random& rng) {
  const double stddev = 0.02, residual_stddev = stddev / std::sqrt(2.0 * double(model.config().n_layer));
  const auto ends_with = [](const std::string& s, const std::string& tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
  };
  model.visit_parameters([&](const std::string& name, Tensor<Scalar>& value) {
    if (value.rank() < 2) {  // biases and LayerNorms: norm*.weight and ln_f.weight 1, everything else 0
      const bool norm_weight = ends_with(name, ".weight") && (name.find("norm") != std::string::npos || name.rfind("ln_", 0) == 0);
      value.fill(Scalar(norm_weight ? 1 : 0));
    } else {
      const bool residual_end = ends_with(name, "self_attn.out_proj.weight") || ends_with(name, "feed_forward.linear2.weight");
      fill_normal(value.view(), rng, 0.0, residual_end ? residual_stddev : stddev);
    }
  });
}

}  // namespace eigenformer
