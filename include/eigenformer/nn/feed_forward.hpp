// nn/feed_forward.hpp: the position-wise feed-forward network, y = act(x W1^T + b1) W2^T + b2
// (Vaswani et al. 3.3), as torch.nn.TransformerEncoderLayer's linear1 -> activation -> linear2 at inference.
// x, y: [B, T, D], flattened to [B*T, D] so that one GEMM serves the whole batch; the hidden layer is [B*T, F].
// Parameters: "linear1.weight" [F, D], "linear1.bias" [F], "linear2.weight" [D, F], "linear2.bias" [D].
// forward_accumulate and Accumulate::yes add the result onto a caller's y (y += FF(x)): linear2 accumulates into y,
// which is how a residual connection adds x back without a pass of its own.
#pragma once

#include <string>

#include "eigenformer/core/error.hpp"
#include "eigenformer/core/tensor.hpp"
#include "eigenformer/core/visit.hpp"
#include "eigenformer/nn/linear.hpp"
#include "eigenformer/ops/activations.hpp"

namespace eigenformer {

struct FeedForwardConfig {
  Index d_model = 512;
  Index d_ff = 2048;
  Activation activation = Activation::relu;  // relu | gelu_erf | gelu_tanh (HF "gelu_new")
};

template <typename Scalar>
class FeedForward {
 public:
  FeedForward() = default;
  explicit FeedForward(const FeedForwardConfig& config)
      : config_(config), linear1_(LinearConfig{config.d_model, config.d_ff}), linear2_(LinearConfig{config.d_ff, config.d_model}) {}

  Tensor<Scalar> forward(TensorView<const Scalar> x) const {
    check_input(x, "FeedForward.forward");
    Tensor<Scalar> h(x.shape().with_back(config_.d_ff));  // [..., F]
    hidden_layer(x, h);
    return linear2_.forward(h);  // [..., D]
  }
  // y += FF(x), y [..., D] (it holds the residual). x may be y itself: linear2 reads only the hidden layer.
  void forward_accumulate(TensorView<const Scalar> x, TensorView<Scalar> y) const {
    check_input(x, "FeedForward.forward_accumulate");
    Tensor<Scalar> h(x.shape().with_back(config_.d_ff));  // [..., F]
    hidden_layer(x, h);
    linear2_.forward_accumulate(h, y);
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
  // hidden = act(x W1^T + b1). For many rows (Eigen's GEMM) the bias is added inside the activation's pass; the
  // streaming kernel for few rows adds it as it stores each result.
  void hidden_layer(const TensorView<const Scalar>& x, TensorView<Scalar> hidden) const {
    const bool separate_bias = x.size() / config_.d_model > kStreamRows && linear1_.config().bias;
    linear1_.forward(x, hidden, /*add_bias=*/!separate_bias);
    activation_forward<Scalar>(config_.activation, hidden.matrix(), separate_bias ? linear1_.bias().data() : nullptr);
  }

  FeedForwardConfig config_;
  Linear<Scalar> linear1_;  // [F, D]
  Linear<Scalar> linear2_;  // [D, F]
};

}  // namespace eigenformer
