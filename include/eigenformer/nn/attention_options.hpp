// nn/attention_options.hpp: what a caller may ask of any attention block (ScaledDotProductAttention,
// MultiHeadAttention, CrossAttention, and the layers that hold them), set by name:
//   AttentionOptions<float> o; o.mask = &mask; o.weights = &w; layer.forward(x, o);
// watch carries an observer (inspect/observer.hpp) down to the attention block, which reports its q, k, v, scores and
// weights to it; the layers that pass options through also report their residual stream and MLP.
#pragma once

#include "eigenformer/core/mask.hpp"
#include "eigenformer/core/tensor.hpp"
#include "eigenformer/inspect/observer.hpp"
#include "eigenformer/ops/attention.hpp"

namespace eigenformer {

template <typename Scalar>
struct AttentionOptions {
  const Mask* mask = nullptr;         // none: every key is allowed (core/mask.hpp: true means allowed)
  Tensor<Scalar>* weights = nullptr;  // when set, receives the attention weights [B, H, T, S]
  AttentionKernel kernel = AttentionKernel::flash;  // flash-style or reference (ops/attention.hpp); same result
  Watch<Scalar> watch{};              // none: nothing is reported
};

}  // namespace eigenformer
