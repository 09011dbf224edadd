// train/init.hpp: the starting weights of a model trained from scratch, as the PyTorch translation tutorial sets them:
//   for p in model.parameters(): if p.dim() > 1: nn.init.xavier_uniform_(p)
// Xavier (Glorot and Bengio 2010) uniform: each value drawn from U(-a, a) with a = sqrt(6 / (fan_in + fan_out)), where
// for a [rows, cols] matrix fan_in = cols and fan_out = rows (PyTorch's _calculate_fan_in_and_fan_out; a Linear's
// weight is [out, in], an Embedding's [V, D]). Parameters of rank < 2 (biases, LayerNorm's weight and bias) keep what
// their block starts them at: biases 0, LayerNorm weight 1. Fixed tables (the sinusoid) are not parameters.
// The draws come from `rng` in visit_parameters order, so one seed gives one model on every machine.
#pragma once

#include <cmath>
#include <string>

#include "eigenformer/core/random.hpp"
#include "eigenformer/core/tensor.hpp"

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

}  // namespace eigenformer
