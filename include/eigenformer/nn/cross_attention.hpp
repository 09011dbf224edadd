// nn/cross_attention.hpp: CrossAttention, multi-head attention whose queries come from one sequence and whose keys
// and values come from another (the decoder attending to the encoder output, Vaswani et al. 3.2.3; the
// `multihead_attn` of torch.nn.TransformerDecoderLayer). The memory has its own length and its own padding:
// pass Mask::key_padding(memory_lengths, S) as options.mask.
// x: [B, T, D], memory: [B, S, D] -> [B, T, D]; weights, if asked for: [B, H, T, S]. Parameters as MultiHeadAttention.
#pragma once

#include <string>

#include "eigenformer/core/tensor.hpp"
#include "eigenformer/nn/multi_head_attention.hpp"
#include "eigenformer/nn/scaled_dot_product_attention.hpp"

namespace eigenformer {

template <typename Scalar>
class CrossAttention {
 public:
  CrossAttention() = default;
  explicit CrossAttention(const MultiHeadAttentionConfig& config) : attention_(config) {}

  Tensor<Scalar> forward(TensorView<const Scalar> x, TensorView<const Scalar> memory, const AttentionOptions<Scalar>& options = {}) const {
    return attention_.forward(x, memory, memory, options, "CrossAttention.forward");
  }

  template <typename F>
  void visit_parameters(F&& f) {
    attention_.visit_parameters(f);
  }

  const MultiHeadAttentionConfig& config() const { return attention_.config(); }

 private:
  MultiHeadAttention<Scalar> attention_;
};

}  // namespace eigenformer
