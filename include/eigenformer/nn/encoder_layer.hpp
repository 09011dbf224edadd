// nn/encoder_layer.hpp: one Transformer encoder layer (Vaswani et al. 3.1), as torch.nn.TransformerEncoderLayer
// (batch_first=True) at inference: self-attention, then the feed-forward network, each in a residual connection.
//   post-norm (the paper, norm_first=false): x = norm1(x + SelfAttn(x));  x = norm2(x + FF(x))
//   pre-norm  (GPT-2 and later, norm_first=true): x = x + SelfAttn(norm1(x));  x = x + FF(norm2(x))
// x: [B, T, D] -> [B, T, D]. options.mask: usually Mask::key_padding(lengths, T) for a padded batch.
// Each residual add is fused into the sub-layer's last projection (out_proj, linear2), which accumulates onto a copy
// of x (see sublayer_connection in nn/layer_norm.hpp).
// Parameters: "self_attn.*" (MultiHeadAttention), "feed_forward.linear1.*", "feed_forward.linear2.*", "norm1.*", "norm2.*".
// With a causal mask and norm_first this is also the GPT-2 block; step() decodes one position over a KVCache.
#pragma once

#include <string>
#include <vector>

#include "eigenformer/core/tensor.hpp"
#include "eigenformer/core/visit.hpp"
#include "eigenformer/nn/feed_forward.hpp"
#include "eigenformer/nn/layer_norm.hpp"
#include "eigenformer/nn/multi_head_attention.hpp"
#include "eigenformer/nn/scaled_dot_product_attention.hpp"
#include "eigenformer/ops/activations.hpp"

namespace eigenformer {

struct EncoderLayerConfig {
  Index d_model = 512;
  Index num_heads = 8;
  Index d_ff = 2048;
  Activation activation = Activation::relu;
  bool norm_first = false;      // false: post-norm (the paper); true: pre-norm
  double layer_norm_eps = 1e-5;
};

// Scratch for one decoding step of a layer, shared by every layer of a model; sized once by reserve().
template <typename Scalar>
struct LayerStepWorkspace {
  AttentionStepWorkspace<Scalar> attention;
  Tensor<Scalar> normed, after_attention, after_cross;  // [B, 1, D] each
  Tensor<Scalar> hidden;                                // [B, 1, F]

  void reserve(Index batch, Index d_model, Index d_ff, Index max_keys) {
    attention.reserve(batch, d_model, max_keys);
    for (Tensor<Scalar>* t : {&normed, &after_attention, &after_cross}) t->resize(Shape{batch, 1, d_model});
    hidden.resize(Shape{batch, 1, d_ff});
  }
};

template <typename Scalar>
class EncoderLayer {
 public:
  EncoderLayer() = default;
  explicit EncoderLayer(const EncoderLayerConfig& config)
      : config_(config),
        self_attn_(MultiHeadAttentionConfig{config.d_model, config.num_heads}),
        feed_forward_(FeedForwardConfig{config.d_model, config.d_ff, config.activation}),
        norm1_(LayerNormConfig{config.d_model, config.layer_norm_eps}),
        norm2_(LayerNormConfig{config.d_model, config.layer_norm_eps}) {}

  // options.weights, if set, receives the self-attention weights [B, H, T, T]; fill_cache, if given, the keys and
  // values of the T positions, so that step() can continue from them.
  Tensor<Scalar> forward(TensorView<const Scalar> x, const AttentionOptions<Scalar>& options = {}, KVCache<Scalar>* fill_cache = nullptr) const {
    check_shape("EncoderLayer.forward", "x", x.shape(), {"B", "T", config_.d_model}, "d_model");
    const bool pre = config_.norm_first;
    const Tensor<Scalar> h = sublayer_connection<Scalar>(pre, norm1_, x, [&](TensorView<const Scalar> in, TensorView<Scalar> out) {
      self_attn_.forward_accumulate(in, in, in, out, options, "EncoderLayer.forward", fill_cache);
    });
    return sublayer_connection<Scalar>(pre, norm2_, h,
                                       [&](TensorView<const Scalar> in, TensorView<Scalar> out) { feed_forward_.forward_accumulate(in, out); });
  }

  // Causal decoding, one position per item: x [B, 1, D] -> y [B, 1, D], attending to every position in `cache`
  // and itself (left_pads[b], if given: item b's first keys are padding). Equal to the last position of forward()
  // with a causal mask over the whole prefix. No allocation.
  void step(TensorView<const Scalar> x, KVCache<Scalar>& cache, LayerStepWorkspace<Scalar>& ws, TensorView<Scalar> y,
            const std::vector<Index>* left_pads = nullptr) const {
    const bool pre = config_.norm_first;
    sublayer_connection_into<Scalar>(pre, norm1_, x, ws.after_attention, ws.normed, [&](TensorView<const Scalar> in, TensorView<Scalar> out) {
      self_attn_.step(in, cache, ws.attention, out, left_pads, Accumulate::yes);
    });
    sublayer_connection_into<Scalar>(pre, norm2_, ws.after_attention, y, ws.normed, [&](TensorView<const Scalar> in, TensorView<Scalar> out) {
      feed_forward_.forward(in, out, ws.hidden, Accumulate::yes);
    });
  }

  template <typename F>
  void visit_parameters(F&& f) {
    visit_child(self_attn_, "self_attn", f);
    visit_child(feed_forward_, "feed_forward", f);
    visit_child(norm1_, "norm1", f);
    visit_child(norm2_, "norm2", f);
  }

  // Inference only: keep the attention's and the feed-forward's weights in bf16 or int8 (ops/narrow.hpp).
  void narrow_weights(WeightType type) {
    self_attn_.narrow_weights(type);
    feed_forward_.narrow_weights(type);
  }

  const EncoderLayerConfig& config() const { return config_; }

 private:
  EncoderLayerConfig config_;
  MultiHeadAttention<Scalar> self_attn_;
  FeedForward<Scalar> feed_forward_;
  LayerNorm<Scalar> norm1_, norm2_;  // [D] each
};

}  // namespace eigenformer
