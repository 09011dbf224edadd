// nn/encoder_layer.hpp: one Transformer encoder layer (Vaswani et al. 3.1), as torch.nn.TransformerEncoderLayer
// (batch_first=True): self-attention, then the feed-forward network, each in a residual connection.
//   post-norm (the paper, norm_first=false): x = norm1(x + drop(SelfAttn(x)));  x = norm2(x + drop(FF(x)))
//   pre-norm  (GPT-2 and later, norm_first=true): x = x + drop(SelfAttn(norm1(x)));  x = x + drop(FF(norm2(x)))
// x: [B, T, D] -> [B, T, D]. options.mask: usually Mask::key_padding(lengths, T) for a padded batch.
// Dropout (p = config.dropout, PyTorch's dropout1, dropout2, and the feed-forward's inner dropout after the activation)
// acts only in a training forward whose Activations name a generator (saved->rng); otherwise drop() is the identity.
// Not done: PyTorch also drops attention weights inside self_attn (same p); we do not (see nn/multi_head_attention.hpp).
// Each residual add is fused into the sub-layer's last projection (out_proj, linear2), which accumulates onto a copy
// of x (see sublayer_connection in nn/layer_norm.hpp).
// Parameters: "self_attn.*" (MultiHeadAttention), "feed_forward.linear1.*", "feed_forward.linear2.*", "norm1.*", "norm2.*".
// (GPT-2's decoder-only block, causal and pre-norm, is GPT2Block in models/gpt2.hpp.)
#pragma once

#include <string>
#include <utility>

#include "eigenformer/core/random.hpp"
#include "eigenformer/core/tensor.hpp"
#include "eigenformer/core/visit.hpp"
#include "eigenformer/inspect/observer.hpp"
#include "eigenformer/nn/attention_options.hpp"
#include "eigenformer/nn/dropout.hpp"
#include "eigenformer/nn/feed_forward.hpp"
#include "eigenformer/nn/layer_norm.hpp"
#include "eigenformer/nn/multi_head_attention.hpp"
#include "eigenformer/ops/activations.hpp"

namespace eigenformer {

struct EncoderLayerConfig {
  Index d_model = 512;
  Index num_heads = 8;
  Index d_ff = 2048;
  Activation activation = Activation::relu;
  bool norm_first = false;      // false: post-norm (the paper); true: pre-norm
  double layer_norm_eps = 1e-5;
  double dropout = 0.1;         // in training only (PyTorch's default); the layer applies it with saved->rng set
};

template <typename Scalar>
class EncoderLayer {
 public:
  EncoderLayer() = default;
  explicit EncoderLayer(const EncoderLayerConfig& config)
      : config_(config),
        self_attn_(MultiHeadAttentionConfig{config.d_model, config.num_heads}),
        feed_forward_(FeedForwardConfig{config.d_model, config.d_ff, config.activation, config.dropout}),
        norm1_(LayerNormConfig{config.d_model, config.layer_norm_eps}),
        norm2_(LayerNormConfig{config.d_model, config.layer_norm_eps}) {}

  // What backward needs of a forward (training): each sub-layer's activations (dropout masks included), and the output
  // of the first.
  struct Activations {
    Random* rng = nullptr;  // set it to train with dropout: every mask is drawn from it, in forward order; null: none
    typename MultiHeadAttention<Scalar>::Activations self_attn;
    typename FeedForward<Scalar>::Activations feed_forward;
    SublayerActivations<Scalar> attention_residual, feed_forward_residual;
    Tensor<Scalar> h;  // [B, T, D]: after the self-attention sub-layer
  };

  // options.weights, if set, receives the self-attention weights [B, H, T, T]; options.watch, if it holds an observer,
  // is shown the residual stream, the attention's tensors and the feed-forward's hidden layer. saved: see Activations.
  Tensor<Scalar> forward(TensorView<const Scalar> x, const AttentionOptions<Scalar>& options = {}, Activations* saved = nullptr) const {
    check_shape("EncoderLayer.forward", "x", x.shape(), {"B", "T", config_.d_model}, "d_model");
    const bool pre = config_.norm_first;
    Random* rng = saved ? saved->rng : nullptr;
    if (saved) saved->feed_forward.rng = rng;
    const Watch<Scalar>& watch = options.watch;  // site "encoder.layers.L" (inspect/observer.hpp)
    AttentionOptions<Scalar> attention_options = options;
    attention_options.watch = watch.block("self_attn");
    watch.record("resid_pre", Probe::residual, x);
    Tensor<Scalar> h = sublayer_connection<Scalar>(
        pre, norm1_, x,
        [&](TensorView<const Scalar> in, TensorView<Scalar> out) {
          self_attn_.forward_accumulate(in, in, in, out, attention_options, "EncoderLayer.forward", nullptr, saved ? &saved->self_attn : nullptr);
        },
        saved ? &saved->attention_residual : nullptr, &dropout_, rng);
    watch.record("resid_mid", Probe::residual, h);
    Tensor<Scalar> y = sublayer_connection<Scalar>(
        pre, norm2_, h,
        [&](TensorView<const Scalar> in, TensorView<Scalar> out) {
          feed_forward_.forward_accumulate(in, out, saved ? &saved->feed_forward : nullptr, watch.block("feed_forward"));
        },
        saved ? &saved->feed_forward_residual : nullptr, &dropout_, rng);
    watch.record("resid_post", Probe::residual, y);
    if (saved) saved->h = std::move(h);
    return y;
  }

  // Backward of a forward that saved its activations, for dy = dL/dy [B, T, D]: returns dL/dx; every parameter's
  // gradient accumulates. x: the forward's input; options: the same mask.
  Tensor<Scalar> backward(TensorView<const Scalar> x, TensorView<const Scalar> dy, const Activations& saved,
                          const AttentionOptions<Scalar>& options = {}) {
    check_shape("EncoderLayer.backward", "dy", dy.shape(), x.shape(), "x's shape");
    const bool pre = config_.norm_first;
    const Tensor<Scalar> dh = sublayer_connection_backward<Scalar>(
        pre, norm2_, saved.h, dy, saved.feed_forward_residual,
        [&](TensorView<const Scalar> in, TensorView<const Scalar> dout, TensorView<Scalar> din) { feed_forward_.backward(in, dout, din, saved.feed_forward); });
    return sublayer_connection_backward<Scalar>(
        pre, norm1_, x, dh, saved.attention_residual,
        [&](TensorView<const Scalar> in, TensorView<const Scalar> dout, TensorView<Scalar> din) {
          self_attn_.backward(in, in, in, dout, din, din, din, saved.self_attn, options);
        });
  }

  template <typename F>
  void visit_parameters(F&& f) {
    visit_child(self_attn_, "self_attn", f);
    visit_child(feed_forward_, "feed_forward", f);
    visit_child(norm1_, "norm1", f);
    visit_child(norm2_, "norm2", f);
  }

  const EncoderLayerConfig& config() const { return config_; }

 private:
  EncoderLayerConfig config_;
  MultiHeadAttention<Scalar> self_attn_;
  FeedForward<Scalar> feed_forward_;
  LayerNorm<Scalar> norm1_, norm2_;  // [D] each
  Dropout<Scalar> dropout_{config_.dropout};  // on each sub-layer's output (PyTorch: dropout1, dropout2), training only
};

}  // namespace eigenformer
