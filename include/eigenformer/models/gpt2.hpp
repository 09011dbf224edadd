// models/gpt2.hpp: GPT-2 (Radford et al. 2019) as a decoder-only stack of our blocks, matching Hugging Face's
// GPT2LMHeadModel at inference:
//   x = wte[ids] + wpe[positions]                                              ids: [B, T] -> x: [B, T, D]
//   n_layer x GPT2Block: x = x + Attn(ln_1(x)); x = x + MLP(ln_2(x))       (causal self-attention, tanh GELU)
//   logits = ln_f(x) wte^T                                    (the output projection is tied to the token embedding)
// Prompts of different lengths are padded on the LEFT (left_pads[b] padding tokens first); their keys are masked and
// item b's token t sits at position t - left_pads[b], as Hugging Face derives positions from the attention mask.
// Decoding: start() processes the prompt at once and fills a KV cache per layer; decode_step() then costs one position
// and allocates nothing. Parameters: "wte.weight" [V, D], "wpe.weight" [n_positions, D], "h.N.*" (GPT2Block:
// self_attn.in_proj [3D, D], self_attn.out_proj, feed_forward.linear1 [F, D], feed_forward.linear2, norm1 = ln_1,
// norm2 = ln_2), "ln_f.*". io/hf_gpt2.hpp maps the Hugging Face names and Conv1D layouts onto these.
// Dropout, as HF in train(): embd_pdrop on wte + wpe, resid_pdrop on each block's attention output and MLP output
// (after attn.c_proj and mlp.c_proj). Only the training forward drops, and only when the caller names a generator:
// saved.rng = &rng (core/random.hpp); forward(ids), start and decode_step never drop. attn_pdrop (dropout on the
// attention weights) is read and written but not applied (see nn/multi_head_attention.hpp).
// Inspection: forward(ids, left_pads, &observer) shows an observer (inspect/observer.hpp) the residual stream, each
// block's q, k, v, attention scores and weights, the MLP's hidden layer and the logits, under Hugging Face's names;
// start and decode_step take one too, and show it each new position's part.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "eigenformer/core/error.hpp"
#include "eigenformer/core/mask.hpp"
#include "eigenformer/core/random.hpp"
#include "eigenformer/core/tensor.hpp"
#include "eigenformer/core/visit.hpp"
#include "eigenformer/inspect/observer.hpp"
#include "eigenformer/nn/attention_options.hpp"
#include "eigenformer/nn/dropout.hpp"
#include "eigenformer/nn/embedding.hpp"
#include "eigenformer/nn/feed_forward.hpp"
#include "eigenformer/nn/kv_cache.hpp"
#include "eigenformer/nn/layer_norm.hpp"
#include "eigenformer/nn/layer_weight.hpp"
#include "eigenformer/nn/multi_head_attention.hpp"
#include "eigenformer/nn/positional_encoding.hpp"
#include "eigenformer/ops/activations.hpp"
#include "eigenformer/ops/linear.hpp"

namespace eigenformer {

// Defaults are GPT-2 small (124M). Field names are Hugging Face's config.json names.
struct GPT2Config {
  Index n_layer = 12;
  Index n_head = 12;
  Index n_embd = 768;
  Index n_positions = 1024;  // the context
  Index vocab_size = 50257;
  Index n_inner = 0;         // the MLP's width; 0 (HF: null) means 4 * n_embd
  double layer_norm_epsilon = 1e-5;
  Activation activation = Activation::gelu_tanh;  // HF activation_function "gelu_new"
  std::int64_t bos_token_id = 50256;
  std::int64_t eos_token_id = 50256;
  double embd_pdrop = 0.1;   // dropout on wte + wpe, training only
  double resid_pdrop = 0.1;  // dropout on each block's attention and MLP outputs, training only
  double attn_pdrop = 0.1;   // kept for the config file; dropout on the attention weights is not applied

  Index d_ff() const { return n_inner > 0 ? n_inner : 4 * n_embd; }
  void validate(const std::string& where = "GPT2Config") const {
    const std::pair<Index, const char*> sizes[] = {
        {n_layer, "n_layer"}, {n_head, "n_head"}, {n_embd, "n_embd"}, {n_positions, "n_positions"}, {vocab_size, "vocab_size"}};
    for (const auto& [v, name] : sizes) check_config_size(where, name, v);
    if (n_embd % n_head != 0)
      throw RangeError(where + ": n_embd " + std::to_string(n_embd) + " is not a multiple of n_head " + std::to_string(n_head));
    if (n_inner < 0) throw RangeError(where + ": n_inner is " + std::to_string(n_inner) + "; expected > 0 or null");
    if (n_inner > 0) check_config_size(where, "n_inner", n_inner);
    if (!(layer_norm_epsilon >= 0)) throw RangeError(where + ": layer_norm_epsilon is " + std::to_string(layer_norm_epsilon) + "; expected >= 0");
    for (const auto& [p, name] : {std::pair{embd_pdrop, "embd_pdrop"}, std::pair{resid_pdrop, "resid_pdrop"}, std::pair{attn_pdrop, "attn_pdrop"}})
      if (!(p >= 0 && p < 1)) throw RangeError(where + ": " + name + " is " + detail::number_text(p) + "; expected 0 <= " + name + " < 1");
    for (const auto& [id, name] : {std::pair{bos_token_id, "bos_token_id"}, std::pair{eos_token_id, "eos_token_id"}})
      if (id < 0 || id >= vocab_size)
        throw RangeError(where + ": " + name + " " + std::to_string(id) + " is outside the vocabulary [0, " + std::to_string(vocab_size) + ")");
  }
};

// One GPT-2 block (Hugging Face's GPT2Block; nanoGPT's Block): pre-norm, causal self-attention, then the MLP, each
// in a residual connection whose add is fused into the sub-layer's last projection (nn/layer_norm.hpp):
//   x = x + drop(Attn(ln_1(x)));  x = x + drop(MLP(ln_2(x)))                 x: [B, T, D] -> [B, T, D]
// drop: HF's resid_dropout and mlp.dropout (p = resid_pdrop), in a training forward with saved->rng set only.
// Parameters (our names; io/hf_gpt2.hpp maps them): "self_attn.*" (attn.c_attn, attn.c_proj), "feed_forward.*"
// (mlp.c_fc, mlp.c_proj), "norm1.*" (ln_1), "norm2.*" (ln_2). step() decodes one position over a KVCache.
template <typename Scalar>
class GPT2Block {
 public:
  explicit GPT2Block(const GPT2Config& c)
      : self_attn_(MultiHeadAttentionConfig{c.n_embd, c.n_head}),
        feed_forward_(FeedForwardConfig{c.n_embd, c.d_ff(), c.activation}),
        norm1_(LayerNormConfig{c.n_embd, c.layer_norm_epsilon}),
        norm2_(LayerNormConfig{c.n_embd, c.layer_norm_epsilon}),
        resid_dropout_(c.resid_pdrop) {}

  // What backward needs of a forward (training), as EncoderLayer's.
  struct Activations {
    Random* rng = nullptr;  // set it to train with dropout: both residual masks are drawn from it; null: none
    typename MultiHeadAttention<Scalar>::Activations self_attn;
    typename FeedForward<Scalar>::Activations feed_forward;
    SublayerActivations<Scalar> attention_residual, feed_forward_residual;  // ln_1(x), ln_2(h), statistics, dropout masks
    Tensor<Scalar> h;  // [B, T, D]: x + Attn(ln_1(x))
  };

  // options.mask: causal, and the left padding of a batch of prompts. fill_cache, if given, receives the keys and
  // values of the T positions, so that step() can continue from them. saved: see Activations.
  Tensor<Scalar> forward(TensorView<const Scalar> x, const AttentionOptions<Scalar>& options, KVCache<Scalar>* fill_cache = nullptr,
                         Activations* saved = nullptr) const {
    Random* rng = saved ? saved->rng : nullptr;
    const Watch<Scalar>& watch = options.watch;  // site "h.L" (inspect/observer.hpp)
    AttentionOptions<Scalar> attention_options = options;
    attention_options.watch = watch.block("attn");
    watch.record("resid_pre", Probe::residual, x);
    Tensor<Scalar> h = sublayer_connection<Scalar>(
        /*norm_first=*/true, norm1_, x,
        [&](TensorView<const Scalar> in, TensorView<Scalar> out) {
          self_attn_.forward_accumulate(in, in, in, out, attention_options, "GPT2Block.forward", fill_cache, saved ? &saved->self_attn : nullptr);
        },
        saved ? &saved->attention_residual : nullptr, &resid_dropout_, rng);
    watch.record("resid_mid", Probe::residual, h);
    Tensor<Scalar> y = sublayer_connection<Scalar>(
        /*norm_first=*/true, norm2_, h,
        [&](TensorView<const Scalar> in, TensorView<Scalar> out) {
          feed_forward_.forward_accumulate(in, out, saved ? &saved->feed_forward : nullptr, watch.block("mlp"));
        },
        saved ? &saved->feed_forward_residual : nullptr, &resid_dropout_, rng);
    watch.record("resid_post", Probe::residual, y);
    if (saved) saved->h = std::move(h);
    return y;
  }

  // Backward of a forward that saved its activations, for dy [B, T, D]: returns dL/dx; every parameter's gradient
  // accumulates. x: the forward's input; options: the same mask.
  Tensor<Scalar> backward(TensorView<const Scalar> x, TensorView<const Scalar> dy, const Activations& saved, const AttentionOptions<Scalar>& options) {
    check_shape("GPT2Block.backward", "dy", dy.shape(), x.shape(), "x's shape");
    const Tensor<Scalar> dh = sublayer_connection_backward<Scalar>(
        /*norm_first=*/true, norm2_, saved.h, dy, saved.feed_forward_residual,
        [&](TensorView<const Scalar> in, TensorView<const Scalar> dout, TensorView<Scalar> din) { feed_forward_.backward(in, dout, din, saved.feed_forward); });
    return sublayer_connection_backward<Scalar>(
        /*norm_first=*/true, norm1_, x, dh, saved.attention_residual,
        [&](TensorView<const Scalar> in, TensorView<const Scalar> dout, TensorView<Scalar> din) {
          self_attn_.backward(in, in, in, dout, din, din, din, saved.self_attn, options);
        });
  }

  // One position per item: x [B, 1, D] -> y [B, 1, D], attending to every position in `cache` and itself
  // (left_pads[b], if given: item b's first keys are padding). Equal to the last position of forward() over the
  // whole prefix. No allocation without an observer; watch (site "h.L"), as in forward(), for this one position.
  void step(TensorView<const Scalar> x, KVCache<Scalar>& cache, LayerStepWorkspace<Scalar>& ws, TensorView<Scalar> y,
            const std::vector<Index>* left_pads = nullptr, const Watch<Scalar>& watch = {}) const {
    watch.record("resid_pre", Probe::residual, x);
    sublayer_connection_into<Scalar>(/*norm_first=*/true, norm1_, x, ws.after_attention, ws.normed,
                                     [&](TensorView<const Scalar> in, TensorView<Scalar> out) {
                                       self_attn_.step(in, cache, ws.attention, out, left_pads, Accumulate::yes, watch.block("attn"));
                                     });
    watch.record("resid_mid", Probe::residual, ws.after_attention);
    sublayer_connection_into<Scalar>(/*norm_first=*/true, norm2_, ws.after_attention, y, ws.normed,
                                     [&](TensorView<const Scalar> in, TensorView<Scalar> out) {
                                       feed_forward_.forward(in, out, ws.hidden, Accumulate::yes);
                                     });
    watch.block("mlp").record("hidden", Probe::mlp, ws.hidden);
    watch.record("resid_post", Probe::residual, y);
  }

  template <typename F>
  void visit_parameters(F&& f) {
    visit_child(self_attn_, "self_attn", f);
    visit_child(feed_forward_, "feed_forward", f);
    visit_child(norm1_, "norm1", f);
    visit_child(norm2_, "norm2", f);
  }

  // Inference only: keep the attention's and the MLP's weights in bf16 or int8 (nn/layer_weight.hpp).
  void narrow_weights(WeightType type) {
    self_attn_.narrow_weights(type);
    feed_forward_.narrow_weights(type);
  }

 private:
  MultiHeadAttention<Scalar> self_attn_;  // HF: attn
  FeedForward<Scalar> feed_forward_;      // HF: mlp
  LayerNorm<Scalar> norm1_, norm2_;       // HF: ln_1, ln_2; [D] each
  Dropout<Scalar> resid_dropout_;         // HF: attn.resid_dropout and mlp.dropout (resid_pdrop), training only
};

// What GPT2::backward needs of a training forward: the ids, the mask, every block's input and activations.
template <typename Scalar>
struct GPT2Activations {
  Random* rng = nullptr;  // set it to train with dropout (embd_pdrop, resid_pdrop): every mask is drawn from it; null: none
  Tensor<std::int64_t> ids;                            // [B, T]
  Tensor<Scalar> embedding_dropout;                    // [B, T, D]: the mask on wte + wpe (HF: drop); empty if none
  Mask mask;                                           // causal over [T, T]
  std::vector<Tensor<Scalar>> inputs;                  // per block: its input [B, T, D]
  std::vector<typename GPT2Block<Scalar>::Activations> blocks;
  Tensor<Scalar> output;                               // [B, T, D]: the last block's output, ln_f's input
  typename LayerNorm<Scalar>::Activations ln_f;
  Tensor<Scalar> normed;                               // [B, T, D]: ln_f(output), the tied projection's input
};

// What one generation needs, sized once by GPT2::start().
template <typename Scalar>
struct GPT2DecodeState {
  std::vector<KVCache<Scalar>> layers;  // per block: [B, capacity, D] keys and values
  LayerStepWorkspace<Scalar> workspace;
  Tensor<Scalar> x, y;                  // [B, 1, D]
  Tensor<Scalar> logits;                // [B, V]: the newest position's logits
  std::vector<Index> left_pads;         // [B]
  Index length = 0;                     // positions in the cache (padding included)
  Index capacity = 0;
};

template <typename Scalar>
class GPT2 {
 public:
  explicit GPT2(const GPT2Config& config)
      : config_((config.validate(), config)),
        wte_(EmbeddingConfig{config.vocab_size, config.n_embd}),
        wpe_(PositionalEncodingConfig{PositionKind::learned, config.n_positions, config.n_embd}),
        ln_f_(LayerNormConfig{config.n_embd, config.layer_norm_epsilon}) {
    for (Index i = 0; i < config.n_layer; ++i) blocks_.emplace_back(config);
  }

  // ids [B, T] (left_pads[b] padding tokens first, or none) -> logits [B, T, V] at every position. observer, if
  // given, is shown what it asks for on the way (inspect/observer.hpp); the logits are the same with or without.
  Tensor<Scalar> forward(TensorView<const std::int64_t> ids, const std::vector<Index>& left_pads = {}, Observer<Scalar>* observer = nullptr) const {
    Tensor<Scalar> x = run_blocks("GPT2.forward", ids, left_pads, nullptr, observer);
    auto logits = Tensor<Scalar>::uninitialized(Shape{ids.dim(0), ids.dim(1), config_.vocab_size});
    ln_f_.forward(x, x);
    wte_.table().linear(std::as_const(x).matrix(), 0, config_.vocab_size, nullptr, logits.matrix());
    Watch<Scalar>{observer, {}}.record("logits", Probe::logits, logits);
    return logits;
  }

  // Training: forward over ids [B, T] (no padding: a batch of equal-length windows of text) keeping in `saved` what
  // backward needs -> logits [B, T, V]. With saved.rng null (or every p 0), bit for bit forward(ids); with a
  // generator, dropout draws its masks from it: embeddings, then each block in order.
  Tensor<Scalar> forward(TensorView<const std::int64_t> ids, GPT2Activations<Scalar>& saved) const {
    const char* where = "GPT2.forward";
    check_ids(where, ids, {});
    const Index T = ids.dim(1);
    saved.ids = Tensor<std::int64_t>::copy_of(ids);
    saved.mask = Mask::causal(T, T);
    Tensor<Scalar> x = wte_.forward(ids);
    wpe_.add_to(x, 0);
    drop_.apply(x, saved.rng, saved.embedding_dropout);
    saved.inputs.resize(blocks_.size());
    saved.blocks.resize(blocks_.size());
    for (std::size_t l = 0; l < blocks_.size(); ++l) {
      saved.inputs[l] = std::move(x);
      saved.blocks[l].rng = saved.rng;
      x = blocks_[l].forward(saved.inputs[l], {&saved.mask}, nullptr, &saved.blocks[l]);
    }
    saved.output = std::move(x);
    saved.normed = ln_f_.forward(saved.output, &saved.ln_f);
    auto logits = Tensor<Scalar>::uninitialized(Shape{ids.dim(0), T, config_.vocab_size});
    linear_forward<Scalar>(std::as_const(saved.normed).matrix(), wte_.weight().matrix(), nullptr, logits.matrix());
    return logits;
  }

  // Backward of that forward for dlogits = dL/dlogits [B, T, V]: every parameter's gradient accumulates. wte gets
  // two contributions, as the output projection (dlogits^T ln_f(x)) and as the table rows the ids looked up.
  void backward(TensorView<const Scalar> dlogits, const GPT2Activations<Scalar>& saved) {
    check_shape("GPT2.backward", "dlogits", dlogits.shape(), {saved.ids.dim(0), saved.ids.dim(1), config_.vocab_size},
                "the forward's batch and length, vocab_size");
    require_gradient(wte_.weight_grad(), wte_.weight(), "GPT2.backward");
    auto dnormed = Tensor<Scalar>::uninitialized(saved.normed.shape());
    linear_backward<Scalar>(saved.normed.matrix(), std::as_const(wte_.weight()).matrix(), dlogits.matrix(), dnormed.matrix(),
                            wte_.weight_grad().matrix(), nullptr, Accumulate::no);
    auto dx = Tensor<Scalar>::uninitialized(saved.output.shape());
    ln_f_.backward(saved.output, dnormed, dx, saved.ln_f, Accumulate::no);
    for (std::size_t l = blocks_.size(); l-- > 0;) dx = blocks_[l].backward(saved.inputs[l], dx, saved.blocks[l], {&saved.mask});
    Dropout<Scalar>::backward(dx, saved.embedding_dropout);
    wpe_.backward(dx, 0);
    wte_.backward(saved.ids, dx);
  }

  // Starts a generation: processes the prompt [B, T] at once, filling every layer's cache, and sizes `state` for
  // `capacity` positions in all (prompt included; at most n_positions). state.logits holds the last position's.
  // observer, if given, is shown what forward() shows, but the logits of the last position only ([B, 1, V]).
  void start(TensorView<const std::int64_t> prompt, const std::vector<Index>& left_pads, Index capacity, GPT2DecodeState<Scalar>& state,
             Observer<Scalar>* observer = nullptr) const {
    const char* where = "GPT2.start";
    check_shape(where, "prompt", prompt.shape(), {"B", "T"});
    const Index B = prompt.dim(0), T = prompt.dim(1), D = config_.n_embd;
    if (capacity < T || capacity > config_.n_positions)
      throw RangeError(std::string(where) + ": room for " + std::to_string(capacity) + " positions; expected from the prompt's " +
                       std::to_string(T) + " to n_positions " + std::to_string(config_.n_positions));
    state.layers.resize(blocks_.size());
    for (KVCache<Scalar>& c : state.layers) c.reserve(B, capacity, D);
    state.workspace.reserve(B, D, config_.d_ff(), capacity);
    state.x.resize(Shape{B, 1, D});
    state.y.resize(Shape{B, 1, D});
    state.logits.resize(Shape{B, config_.vocab_size});
    state.left_pads = left_pads.empty() ? std::vector<Index>(static_cast<std::size_t>(B), 0) : left_pads;
    state.capacity = capacity;
    Tensor<Scalar> x = run_blocks(where, prompt, state.left_pads, &state.layers, observer);
    state.length = T;
    // Only the last position's logits are needed to continue.
    for (Index b = 0; b < B; ++b) state.x.slice(b).matrix() = x.slice(b).matrix().bottomRows(1);
    project_logits(state, observer);
  }

  // One new position per item: tokens [B] -> state.logits [B, V]. Equal to the last position of forward() on the
  // whole sequence so far. No allocation. observer, if given, is shown this position's part of what forward() shows
  // (q, the residual stream, the hidden layer: [B, 1, .]; k and v: every cached position, [B, L, D]; scores and
  // weights: [B, H, 1, L]; logits: [B, 1, V]), at the price of the copies it takes.
  void decode_step(TensorView<const std::int64_t> tokens, GPT2DecodeState<Scalar>& state, Observer<Scalar>* observer = nullptr) const {
    if (state.length >= state.capacity)
      throw RangeError("GPT2.decode_step: all " + std::to_string(state.capacity) + " positions of the cache are used (n_positions " +
                       std::to_string(config_.n_positions) + ")");
    check_shape("GPT2.decode_step", "tokens", tokens.shape(), {state.x.dim(0)}, "one token per batch item");
    wte_.forward(tokens, state.x);
    wpe_.add_to(state.x, state.length, &state.left_pads);
    for (std::size_t l = 0; l < blocks_.size(); ++l) {
      blocks_[l].step(state.x, state.layers[l], state.workspace, state.y, &state.left_pads, Watch<Scalar>{observer, {}}.layer("h", static_cast<Index>(l)));
      std::swap(state.x, state.y);
    }
    ++state.length;
    project_logits(state, observer);
  }

  template <typename F>
  void visit_parameters(F&& f) {
    visit_child(wte_, "wte", f);
    visit_child(wpe_, "wpe", f);
    for (std::size_t i = 0; i < blocks_.size(); ++i) visit_child(blocks_[i], "h." + std::to_string(i), f);
    visit_child(ln_f_, "ln_f", f);
  }

  // Inference only: keep every matrix (the token table, which is also the output projection, and every block's
  // projections) in bf16 or int8 from now on; LayerNorms, biases and the position table stay full width. Decoding
  // streams the weights, so this cuts its time nearly in proportion to their bytes. See nn/layer_weight.hpp.
  void narrow_weights(WeightType type) {
    wte_.narrow_weights(type);
    for (GPT2Block<Scalar>& block : blocks_) block.narrow_weights(type);
    weight_type_ = type;
  }
  WeightType weight_type() const { return weight_type_; }

  const GPT2Config& config() const { return config_; }

 private:
  // Embeddings and every block over ids [B, T]; the blocks' keys and values go into `caches` when given.
  Tensor<Scalar> run_blocks(const char* where, const TensorView<const std::int64_t>& ids, const std::vector<Index>& left_pads,
                            std::vector<KVCache<Scalar>>* caches, Observer<Scalar>* observer = nullptr) const {
    check_ids(where, ids, left_pads);
    const Index T = ids.dim(1);
    Tensor<Scalar> x = wte_.forward(ids);
    wpe_.add_to(x, 0, left_pads.empty() ? nullptr : &left_pads);
    Mask mask = Mask::causal(T, T);
    if (!left_pads.empty()) mask &= Mask::left_padding(left_pads, T);
    AttentionOptions<Scalar> options;
    options.mask = &mask;
    for (std::size_t l = 0; l < blocks_.size(); ++l) {
      options.watch = Watch<Scalar>{observer, {}}.layer("h", static_cast<Index>(l));
      x = blocks_[l].forward(x, options, caches ? &(*caches)[l] : nullptr);
    }
    return x;
  }

  void check_ids(const char* where, const TensorView<const std::int64_t>& ids, const std::vector<Index>& left_pads) const {
    check_shape(where, "ids", ids.shape(), {"B", "T"});
    const Index B = ids.dim(0), T = ids.dim(1);
    if (T > config_.n_positions)
      throw RangeError(std::string(where) + ": " + std::to_string(T) + " tokens are more than the context of " + std::to_string(config_.n_positions) +
                       " positions (n_positions)");
    if (!left_pads.empty() && static_cast<Index>(left_pads.size()) != B)
      throw ShapeError(std::string(where) + ": " + std::to_string(left_pads.size()) + " left paddings for a batch of " + std::to_string(B));
  }

  // state.x [B, 1, D] -> ln_f -> state.logits [B, V] (tied to wte).
  void project_logits(GPT2DecodeState<Scalar>& state, Observer<Scalar>* observer) const {
    ln_f_.forward(state.x, state.y);
    wte_.table().linear(std::as_const(state.y).matrix(), 0, config_.vocab_size, nullptr, state.logits.matrix());
    record_newest_logits(observer, state.logits);
  }

  GPT2Config config_;
  Embedding<Scalar> wte_;             // [V, D], also the output projection
  PositionalEncoding<Scalar> wpe_;    // learned, [n_positions, D]
  Dropout<Scalar> drop_{config_.embd_pdrop};  // HF: drop, on wte + wpe; training only
  std::vector<GPT2Block<Scalar>> blocks_;
  LayerNorm<Scalar> ln_f_;            // [D]
  WeightType weight_type_ = WeightType::full;
};

}  // namespace eigenformer
