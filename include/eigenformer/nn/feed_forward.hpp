// nn/feed_forward.hpp: the position-wise feed-forward network, y = dropout(act(x W1^T + b1)) W2^T + b2
// (Vaswani et al. 3.3), as torch.nn.TransformerEncoderLayer's linear1 -> activation -> dropout -> linear2. The dropout
// (config.dropout; 0 for GPT-2's MLP, which has none there) acts only in a training forward whose Activations name a
// generator (nn/dropout.hpp); otherwise it is the identity.
// x, y: [B, T, D], flattened to [B*T, D] so that one GEMM serves the whole batch; the hidden layer is [B*T, F].
// Parameters: "linear1.weight" [F, D], "linear1.bias" [F], "linear2.weight" [D, F], "linear2.bias" [D].
// forward_accumulate and Accumulate::yes add the result onto a caller's y (y += FF(x)): linear2 accumulates into y,
// which is how a residual connection adds x back without a pass of its own.
// watch (inspect/observer.hpp), when it holds an observer, is shown the hidden layer act(x W1^T + b1) as "hidden".
#pragma once

#include <string>
#include <utility>

#include "eigenformer/core/error.hpp"
#include "eigenformer/core/random.hpp"
#include "eigenformer/core/tensor.hpp"
#include "eigenformer/core/visit.hpp"
#include "eigenformer/inspect/observer.hpp"
#include "eigenformer/nn/dropout.hpp"
#include "eigenformer/nn/linear.hpp"
#include "eigenformer/ops/activations.hpp"

namespace eigenformer {

struct FeedForwardConfig {
  Index d_model = 512;
  Index d_ff = 2048;
  Activation activation = Activation::relu;  // relu | gelu_erf | gelu_tanh (HF "gelu_new")
  double dropout = 0.0;  // on the hidden layer in training (nn.TransformerEncoderLayer: dropout); HF GPT-2's MLP has none
};

template <typename Scalar>
class FeedForward {
 public:
  FeedForward() = default;
  explicit FeedForward(const FeedForwardConfig& config)
      : config_(config),
        linear1_(LinearConfig{config.d_model, config.d_ff}),
        linear2_(LinearConfig{config.d_ff, config.d_model}) {}

  // What backward needs of a forward (training): both sides of the activation, and the dropout mask.
  struct Activations {
    Random* rng = nullptr;   // set it to train with dropout: the hidden layer's mask is drawn from it; null: no dropout
    Tensor<Scalar> pre;      // [..., F]: x W1^T, before the bias b1 and the activation
    Tensor<Scalar> hidden;   // [..., F]: dropout(act(pre + b1)), linear2's input
    Tensor<Scalar> dropout;  // [..., F]: the hidden layer's mask (nn/dropout.hpp); empty when nothing was dropped
  };

  Tensor<Scalar> forward(TensorView<const Scalar> x, Activations* saved = nullptr) const {
    check_input(x, "FeedForward.forward");
    Tensor<Scalar> y(x.shape());
    run(x, y, Accumulate::no, saved);
    return y;  // [..., D]
  }
  // y += FF(x), y [..., D] (it holds the residual). x may be y itself: linear2 reads only the hidden layer.
  void forward_accumulate(TensorView<const Scalar> x, TensorView<Scalar> y, Activations* saved = nullptr, const Watch<Scalar>& watch = {}) const {
    check_input(x, "FeedForward.forward_accumulate");
    run(x, y, Accumulate::yes, saved, watch);
  }

  // Backward of a forward that saved its activations, for dy = dL/dy [..., D]: dx += dL/dx (Accumulate::no: dx =),
  // and both layers' gradients accumulate. x: the forward's input.
  //   dhidden = (dy W2) * m;  dpre = dhidden * act'(pre + b1);  dx = dpre W1   (db1 = column sums of dpre; m: the mask)
  void backward(TensorView<const Scalar> x, TensorView<const Scalar> dy, TensorView<Scalar> dx, const Activations& saved,
                Accumulate accumulate = Accumulate::yes) {
    check_input(x, "FeedForward.backward");
    if (saved.pre.shape() != x.shape().with_back(config_.d_ff))
      throw ShapeError("FeedForward.backward: the saved activations hold " + saved.pre.shape().str() + "; expected a forward of x " + x.shape().str());
    Tensor<Scalar> d(saved.hidden.shape());  // dhidden, then dpre in place
    linear2_.backward(saved.hidden, dy, d, Accumulate::no);
    Dropout<Scalar>::backward(d, saved.dropout);
    activation_backward<Scalar>(config_.activation, saved.pre.matrix(), linear1_.config().bias ? linear1_.bias().data() : nullptr,
                                std::as_const(d).matrix(), d.matrix(), Accumulate::no);
    linear1_.backward(x, d, dx, accumulate);
  }

  // Into caller-owned buffers: y [..., D] and hidden [..., F] (no allocation). y = FF(x), or y += FF(x) with
  // Accumulate::yes.
  void forward(TensorView<const Scalar> x, TensorView<Scalar> y, TensorView<Scalar> hidden, Accumulate accumulate = Accumulate::no) const {
    hidden_layer(x, hidden);
    if (accumulate == Accumulate::yes)
      linear2_.forward_accumulate(hidden, y);
    else
      linear2_.forward(hidden, y);
  }

  template <typename F>
  void visit_parameters(F&& f) {
    visit_child(linear1_, "linear1", f);
    visit_child(linear2_, "linear2", f);
  }

  // Inference only: keep both weights in bf16 or int8 (nn/layer_weight.hpp).
  void narrow_weights(WeightType type) {
    linear1_.narrow_weights(type);
    linear2_.narrow_weights(type);
  }

  const FeedForwardConfig& config() const { return config_; }

 private:
  void check_input(const TensorView<const Scalar>& x, const char* where) const {
    if (x.rank() < 1 || x.shape().back() != config_.d_model)
      throw ShapeError(std::string(where) + ": x has shape " + x.shape().str() + "; expected [..., " + std::to_string(config_.d_model) +
                       "] (d_model)");
  }
  // y = FF(x) or y += FF(x); in training the hidden layer lives in `saved` (pre is kept before the activation), and is
  // dropped out when saved->rng is set.
  void run(const TensorView<const Scalar>& x, TensorView<Scalar> y, Accumulate accumulate, Activations* saved, const Watch<Scalar>& watch = {}) const {
    if (!saved) {
      Tensor<Scalar> h(x.shape().with_back(config_.d_ff));  // [..., F]
      forward(x, y, h, accumulate);
      watch.record("hidden", Probe::mlp, h);
      return;
    }
    saved->pre.resize(x.shape().with_back(config_.d_ff));
    linear1_.forward(x, saved->pre, /*add_bias=*/false);
    saved->hidden = saved->pre;
    activation_forward<Scalar>(config_.activation, saved->hidden.matrix(), linear1_.config().bias ? linear1_.bias().data() : nullptr);
    dropout_.apply(saved->hidden, saved->rng, saved->dropout);
    watch.record("hidden", Probe::mlp, saved->hidden);
    if (accumulate == Accumulate::yes)
      linear2_.forward_accumulate(saved->hidden, y);
    else
      linear2_.forward(saved->hidden, y);
  }
  // hidden = act(x W1^T + b1). For many rows (a GEMM) the bias is added inside the activation's pass; the
  // streaming kernel for few rows adds it as it stores each result.
  void hidden_layer(const TensorView<const Scalar>& x, TensorView<Scalar> hidden) const {
    const bool separate_bias = x.size() / config_.d_model > kStreamRows && linear1_.config().bias;
    linear1_.forward(x, hidden, /*add_bias=*/!separate_bias);
    activation_forward<Scalar>(config_.activation, hidden.matrix(), separate_bias ? linear1_.bias().data() : nullptr);
  }

  FeedForwardConfig config_;
  Linear<Scalar> linear1_;  // [F, D]
  Linear<Scalar> linear2_;  // [D, F]
  Dropout<Scalar> dropout_{config_.dropout};  // on the hidden layer, training only
};

}  // namespace eigenformer
