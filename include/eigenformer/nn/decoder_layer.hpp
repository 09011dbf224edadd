// nn/decoder_layer.hpp: one Transformer decoder layer (Vaswani et al. 3.1), as torch.nn.TransformerDecoderLayer
// (batch_first=True): masked self-attention, cross-attention over the encoder output (memory), then the feed-forward
// network, each in a residual connection.
//   post-norm: x = norm1(x + drop(SelfAttn(x)));  x = norm2(x + drop(CrossAttn(x, mem)));  x = norm3(x + drop(FF(x)))
//   pre-norm:  x = x + drop(SelfAttn(norm1(x)));  x = x + drop(CrossAttn(norm2(x), mem));  x = x + drop(FF(norm3(x)))
// x: [B, T, D], memory: [B, S, D] -> [B, T, D]. self_mask: usually Mask::causal(T, T) & Mask::key_padding(lengths, T);
// memory_mask: Mask::key_padding(memory_lengths, S). Each residual add is fused into the sub-layer's last projection,
// which accumulates onto a copy of x (see sublayer_connection in nn/layer_norm.hpp).
// Dropout (p = config.dropout: PyTorch's dropout1, dropout2, dropout3, and the feed-forward's inner dropout) acts only
// in a training forward whose Activations name a generator (saved->rng); otherwise drop() is the identity. PyTorch's
// dropout on the attention weights inside self_attn and multihead_attn is not done (see nn/multi_head_attention.hpp).
// Parameters: "self_attn.*", "cross_attn.*" (PyTorch: multihead_attn), "feed_forward.linear1/2.*", "norm1/2/3.*".
// Incremental decoding: start() once per source, then step() per new position, into preallocated buffers
// (nn/kv_cache.hpp).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "eigenformer/core/mask.hpp"
#include "eigenformer/core/random.hpp"
#include "eigenformer/core/tensor.hpp"
#include "eigenformer/core/visit.hpp"
#include "eigenformer/inspect/observer.hpp"
#include "eigenformer/nn/cross_attention.hpp"
#include "eigenformer/nn/dropout.hpp"
#include "eigenformer/nn/encoder_layer.hpp"
#include "eigenformer/nn/feed_forward.hpp"
#include "eigenformer/nn/kv_cache.hpp"
#include "eigenformer/nn/layer_norm.hpp"
#include "eigenformer/nn/multi_head_attention.hpp"
#include "eigenformer/ops/activations.hpp"

namespace eigenformer {

// The decoder layer has the encoder layer's settings (nn.TransformerDecoderLayer takes the same arguments).
using DecoderLayerConfig = EncoderLayerConfig;

template <typename Scalar>
struct DecoderLayerOptions {
  const Mask* self_mask = nullptr;                  // over [T, T]; causal for autoregressive decoding
  const Mask* memory_mask = nullptr;                // over [T, S]; the memory's padding
  Tensor<Scalar>* self_attention_weights = nullptr;   // receives [B, H, T, T] when set
  Tensor<Scalar>* cross_attention_weights = nullptr;  // receives [B, H, T, S] when set
  AttentionKernel kernel = AttentionKernel::flash;    // both attentions' kernel (ops/attention.hpp)
  Watch<Scalar> watch{};  // an observer (inspect/observer.hpp), site "decoder.layers.L"; none: nothing is reported
};

template <typename Scalar>
class DecoderLayer {
 public:
  DecoderLayer() = default;
  explicit DecoderLayer(const DecoderLayerConfig& config)
      : config_(config),
        self_attn_(MultiHeadAttentionConfig{config.d_model, config.num_heads}),
        cross_attn_(MultiHeadAttentionConfig{config.d_model, config.num_heads}),
        feed_forward_(FeedForwardConfig{config.d_model, config.d_ff, config.activation, config.dropout}),
        norm1_(LayerNormConfig{config.d_model, config.layer_norm_eps}),
        norm2_(LayerNormConfig{config.d_model, config.layer_norm_eps}),
        norm3_(LayerNormConfig{config.d_model, config.layer_norm_eps}) {}

  // What backward needs of a forward (training): each sub-layer's activations (dropout masks included), and the
  // outputs of the first two.
  struct Activations {
    Random* rng = nullptr;  // set it to train with dropout: every mask is drawn from it, in forward order; null: none
    typename MultiHeadAttention<Scalar>::Activations self_attn, cross_attn;
    typename FeedForward<Scalar>::Activations feed_forward;
    SublayerActivations<Scalar> self_residual, cross_residual, feed_forward_residual;
    Tensor<Scalar> h, c;  // [B, T, D]: after self-attention, after cross-attention
  };

  // saved: see Activations.
  Tensor<Scalar> forward(TensorView<const Scalar> x, TensorView<const Scalar> memory, const DecoderLayerOptions<Scalar>& options = {},
                         Activations* saved = nullptr) const {
    check_shape("DecoderLayer.forward", "x", x.shape(), {"B", "T", config_.d_model}, "d_model");
    check_shape("DecoderLayer.forward", "memory", memory.shape(), {x.dim(0), "S", config_.d_model}, "batch of x, d_model");
    const Watch<Scalar>& watch = options.watch;
    const AttentionOptions<Scalar> self_options{options.self_mask, options.self_attention_weights, options.kernel, watch.block("self_attn")};
    const AttentionOptions<Scalar> cross_options{options.memory_mask, options.cross_attention_weights, options.kernel, watch.block("cross_attn")};
    const bool pre = config_.norm_first;
    Random* rng = saved ? saved->rng : nullptr;
    if (saved) saved->feed_forward.rng = rng;
    watch.record("resid_pre", Probe::residual, x);
    Tensor<Scalar> h = sublayer_connection<Scalar>(
        pre, norm1_, x,
        [&](TensorView<const Scalar> in, TensorView<Scalar> out) {
          self_attn_.forward_accumulate(in, in, in, out, self_options, "DecoderLayer.forward", nullptr, saved ? &saved->self_attn : nullptr);
        },
        saved ? &saved->self_residual : nullptr, &dropout_, rng);
    watch.record("resid_mid", Probe::residual, h);
    Tensor<Scalar> c = sublayer_connection<Scalar>(
        pre, norm2_, h,
        [&](TensorView<const Scalar> in, TensorView<Scalar> out) {
          cross_attn_.forward_accumulate(in, memory, out, cross_options, saved ? &saved->cross_attn : nullptr);
        },
        saved ? &saved->cross_residual : nullptr, &dropout_, rng);
    watch.record("resid_cross", Probe::residual, c);
    Tensor<Scalar> y = sublayer_connection<Scalar>(
        pre, norm3_, c,
        [&](TensorView<const Scalar> in, TensorView<Scalar> out) {
          feed_forward_.forward_accumulate(in, out, saved ? &saved->feed_forward : nullptr, watch.block("feed_forward"));
        },
        saved ? &saved->feed_forward_residual : nullptr, &dropout_, rng);
    watch.record("resid_post", Probe::residual, y);
    if (saved) saved->h = std::move(h), saved->c = std::move(c);
    return y;
  }

  // Backward of a forward that saved its activations, for dy = dL/dy [B, T, D]: returns dL/dx, and dmemory [B, S, D]
  // += the memory's gradient; every parameter's gradient accumulates. x, memory: the forward's inputs; options: the
  // same masks.
  Tensor<Scalar> backward(TensorView<const Scalar> x, TensorView<const Scalar> memory, TensorView<const Scalar> dy, TensorView<Scalar> dmemory,
                          const Activations& saved, const DecoderLayerOptions<Scalar>& options = {}) {
    check_shape("DecoderLayer.backward", "dy", dy.shape(), x.shape(), "x's shape");
    check_shape("DecoderLayer.backward", "dmemory", dmemory.shape(), memory.shape(), "memory's shape");
    const AttentionOptions<Scalar> self_options{options.self_mask, nullptr, options.kernel};
    const AttentionOptions<Scalar> cross_options{options.memory_mask, nullptr, options.kernel};
    const bool pre = config_.norm_first;
    const Tensor<Scalar> dc = sublayer_connection_backward<Scalar>(
        pre, norm3_, saved.c, dy, saved.feed_forward_residual,
        [&](TensorView<const Scalar> in, TensorView<const Scalar> dout, TensorView<Scalar> din) { feed_forward_.backward(in, dout, din, saved.feed_forward); });
    const Tensor<Scalar> dh = sublayer_connection_backward<Scalar>(
        pre, norm2_, saved.h, dc, saved.cross_residual,
        [&](TensorView<const Scalar> in, TensorView<const Scalar> dout, TensorView<Scalar> din) {
          cross_attn_.backward(in, memory, dout, din, dmemory, saved.cross_attn, cross_options);
        });
    return sublayer_connection_backward<Scalar>(
        pre, norm1_, x, dh, saved.self_residual,
        [&](TensorView<const Scalar> in, TensorView<const Scalar> dout, TensorView<Scalar> din) {
          self_attn_.backward(in, in, in, dout, din, din, din, saved.self_attn, self_options);
        });
  }

  // Decoding, once per source: project memory [B, S, D] into cache.memory; make room for `capacity` target
  // positions in cache.self.
  void start(TensorView<const Scalar> memory, Index capacity, DecoderLayerCache<Scalar>& cache) const {
    cross_attn_.cache_memory(memory, cache.memory);
    cache.self.reserve(memory.dim(0), capacity, config_.d_model);
  }
  // Decoding, once per position: x [B, 1, D] (the newest target position) -> y [B, 1, D], attending to every
  // earlier position through cache.self and to the first memory_lengths[b] memory positions. Equal to the
  // last position of forward() on the whole prefix with a causal mask. No allocation without an observer; watch (site
  // "decoder.layers.L"), as in forward(), for this one position.
  void step(TensorView<const Scalar> x, DecoderLayerCache<Scalar>& cache, const std::vector<Index>& memory_lengths,
            LayerStepWorkspace<Scalar>& ws, TensorView<Scalar> y, const Watch<Scalar>& watch = {}) const {
    const bool pre = config_.norm_first;
    watch.record("resid_pre", Probe::residual, x);
    sublayer_connection_into<Scalar>(pre, norm1_, x, ws.after_attention, ws.normed, [&](TensorView<const Scalar> in, TensorView<Scalar> out) {
      self_attn_.step(in, cache.self, ws.attention, out, nullptr, Accumulate::yes, watch.block("self_attn"));
    });
    watch.record("resid_mid", Probe::residual, ws.after_attention);
    sublayer_connection_into<Scalar>(pre, norm2_, ws.after_attention, ws.after_cross, ws.normed,
                                     [&](TensorView<const Scalar> in, TensorView<Scalar> out) {
                                       cross_attn_.attend(in, cache.memory, memory_lengths, ws.attention, out, Accumulate::yes,
                                                          watch.block("cross_attn"));
                                     });
    watch.record("resid_cross", Probe::residual, ws.after_cross);
    sublayer_connection_into<Scalar>(pre, norm3_, ws.after_cross, y, ws.normed, [&](TensorView<const Scalar> in, TensorView<Scalar> out) {
      feed_forward_.forward(in, out, ws.hidden, Accumulate::yes);
    });
    watch.block("feed_forward").record("hidden", Probe::mlp, ws.hidden);
    watch.record("resid_post", Probe::residual, y);
  }

  template <typename F>
  void visit_parameters(F&& f) {
    visit_child(self_attn_, "self_attn", f);
    visit_child(cross_attn_, "cross_attn", f);
    visit_child(feed_forward_, "feed_forward", f);
    visit_child(norm1_, "norm1", f);
    visit_child(norm2_, "norm2", f);
    visit_child(norm3_, "norm3", f);
  }

  const DecoderLayerConfig& config() const { return config_; }

 private:
  DecoderLayerConfig config_;
  MultiHeadAttention<Scalar> self_attn_;
  CrossAttention<Scalar> cross_attn_;
  FeedForward<Scalar> feed_forward_;
  LayerNorm<Scalar> norm1_, norm2_, norm3_;  // [D] each
  Dropout<Scalar> dropout_{config_.dropout};  // on each sub-layer's output (PyTorch: dropout1, 2, 3), training only
};

}  // namespace eigenformer
