// nn/cross_attention.hpp: CrossAttention, multi-head attention whose queries come from one sequence and whose keys
// and values come from another (the decoder attending to the encoder output, Vaswani et al. 3.2.3; the
// `multihead_attn` of torch.nn.TransformerDecoderLayer). The memory has its own length and its own padding:
// pass Mask::key_padding(memory_lengths, S) as options.mask.
// x: [B, T, D], memory: [B, S, D] -> [B, T, D]; weights, if asked for: [B, H, T, S]. Parameters as MultiHeadAttention.
// forward_accumulate and attend(..., Accumulate::yes) add the result onto a caller's y (the residual x, put there first).
#pragma once

#include <string>
#include <vector>

#include "eigenformer/core/tensor.hpp"
#include "eigenformer/nn/attention_options.hpp"
#include "eigenformer/nn/kv_cache.hpp"
#include "eigenformer/nn/multi_head_attention.hpp"

namespace eigenformer {

template <typename Scalar>
class CrossAttention {
 public:
  CrossAttention() = default;
  explicit CrossAttention(const MultiHeadAttentionConfig& config) : attention_(config) {}

  using Activations = typename MultiHeadAttention<Scalar>::Activations;  // what backward needs (training)

  Tensor<Scalar> forward(TensorView<const Scalar> x, TensorView<const Scalar> memory, const AttentionOptions<Scalar>& options = {},
                         Activations* saved = nullptr) const {
    return attention_.forward(x, memory, memory, options, "CrossAttention.forward", nullptr, saved);
  }
  // y += CrossAttn(x, memory), y [B, T, D].
  void forward_accumulate(TensorView<const Scalar> x, TensorView<const Scalar> memory, TensorView<Scalar> y,
                          const AttentionOptions<Scalar>& options = {}, Activations* saved = nullptr) const {
    attention_.forward_accumulate(x, memory, memory, y, options, "CrossAttention.forward_accumulate", nullptr, saved);
  }
  // Backward of a forward that saved its activations, for dy [B, T, D]: dx [B, T, D] and dmemory [B, S, D] += their
  // gradients (the memory's keys and values both add to dmemory); the projections' gradients accumulate.
  void backward(TensorView<const Scalar> x, TensorView<const Scalar> memory, TensorView<const Scalar> dy, TensorView<Scalar> dx,
                TensorView<Scalar> dmemory, const Activations& saved, const AttentionOptions<Scalar>& options = {}) {
    attention_.backward(x, memory, memory, dy, dx, dmemory, dmemory, saved, options);
  }

  // Decoding: the memory's keys and values are projected once into `cache`; then each step's x [B, 1, D] attends to
  // the first memory_lengths[b] of them (see MultiHeadAttention::cache_memory and attend; watch, as there).
  void cache_memory(TensorView<const Scalar> memory, KVCache<Scalar>& cache) const { attention_.cache_memory(memory, cache); }
  void attend(TensorView<const Scalar> x, const KVCache<Scalar>& cache, const std::vector<Index>& memory_lengths,
              AttentionStepWorkspace<Scalar>& ws, TensorView<Scalar> y, Accumulate accumulate = Accumulate::no,
              const Watch<Scalar>& watch = {}) const {
    attention_.attend(x, cache, memory_lengths, ws, y, accumulate, watch);
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
