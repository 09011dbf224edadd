// nn/layer_norm.hpp: LayerNorm over the last dimension, as torch.nn.LayerNorm(d_model, eps):
// y = (x - mean) / sqrt(var + eps) * weight + bias with the biased variance (see ops/layer_norm.hpp).
// x: [..., D] -> y: [..., D]. Parameters: "weight" [D] (starts at 1), "bias" [D] (starts at 0).
// sublayer_connection() is the residual wrapper every Transformer layer puts around its sub-layers, in the
// paper's post-norm form or the pre-norm form of GPT-2 and later models. The residual add is fused: the output starts
// as a copy of x and the sub-layer's last projection accumulates onto it.
#pragma once

#include <string>

#include "eigenformer/core/error.hpp"
#include "eigenformer/core/tensor.hpp"
#include "eigenformer/core/visit.hpp"
#include "eigenformer/ops/layer_norm.hpp"

namespace eigenformer {

struct LayerNormConfig {
  Index d_model = 512;
  double eps = 1e-5;  // HF GPT-2: layer_norm_epsilon
};

template <typename Scalar>
class LayerNorm {
 public:
  LayerNorm() = default;
  explicit LayerNorm(const LayerNormConfig& config)
      : config_(config), weight_(Shape{config.d_model}, Scalar(1)), bias_(Shape{config.d_model}) {
    if (config.d_model <= 0 || !(config.eps >= 0))
      throw RangeError("LayerNorm: d_model " + std::to_string(config.d_model) + " and eps " + std::to_string(config.eps) +
                       "; expected d_model > 0 and eps >= 0");
  }

  Tensor<Scalar> forward(TensorView<const Scalar> x) const {
    Tensor<Scalar> y(x.shape());
    forward(x, y);
    return y;
  }
  // Into a caller-owned y of x's shape; y may be x itself.
  void forward(TensorView<const Scalar> x, TensorView<Scalar> y) const {
    if (x.rank() < 1 || x.shape().back() != config_.d_model)
      throw ShapeError("LayerNorm.forward: x has shape " + x.shape().str() + "; expected [..., " + std::to_string(config_.d_model) +
                       "] (d_model)");
    if (y.shape() != x.shape())
      throw ShapeError("LayerNorm.forward: y has shape " + y.shape().str() + "; expected " + x.shape().str() + " (x's shape)");
    layer_norm_forward<Scalar>(x.matrix(), weight_.vector(), bias_.vector(), static_cast<Scalar>(config_.eps), y.matrix());
  }

  template <typename F>
  void visit_parameters(F&& f) {
    visit_parameter(f, "weight", weight_, weight_grad_);
    visit_parameter(f, "bias", bias_, bias_grad_);
  }

  const LayerNormConfig& config() const { return config_; }

 private:
  LayerNormConfig config_;
  Tensor<Scalar> weight_;  // [D], gamma
  Tensor<Scalar> bias_;    // [D], beta
  Tensor<Scalar> weight_grad_, bias_grad_;  // [D] each once training starts (train/gradients.hpp)
};

// The residual connection around a sub-layer f (attention or feed-forward), x: [B, T, D]:
//   post-norm (norm_first = false, Vaswani et al. 5.4 "Add & Norm"):  norm(x + f(x))
//   pre-norm  (norm_first = true, GPT-2):                             x + f(norm(x))
// add_f(in, y) adds the sub-layer's output onto y (y += f(in)). y starts as a copy of x, so the last projection of f,
// accumulating into it (Linear::forward_accumulate), makes the residual sum without a pass over [B, T, D] of its own.
// `in` (x, or norm(x) in a buffer of its own) is never y: no kernel writes what it reads.
template <typename Scalar, typename Sublayer>
Tensor<Scalar> sublayer_connection(bool norm_first, const LayerNorm<Scalar>& norm, TensorView<const Scalar> x, Sublayer&& add_f) {
  Tensor<Scalar> y = Tensor<Scalar>::copy_of(x);
  if (norm_first) {
    add_f(norm.forward(x).view(), y.view());  // the temporary norm(x) lives until add_f returns
    return y;
  }
  add_f(x, y.view());
  norm.forward(y, y);
  return y;
}

// The same into caller-owned buffers (decoding steps): y receives the result and tmp (x's shape) holds norm(x) in the
// pre-norm form; neither may be x. No allocation.
template <typename Scalar, typename Sublayer>
void sublayer_connection_into(bool norm_first, const LayerNorm<Scalar>& norm, TensorView<const Scalar> x, TensorView<Scalar> y,
                              TensorView<Scalar> tmp, Sublayer&& add_f) {
  y.matrix() = x.matrix();
  if (norm_first) {
    norm.forward(x, tmp);
    add_f(TensorView<const Scalar>(tmp), y);
    return;
  }
  add_f(x, y);
  norm.forward(y, y);
}

}  // namespace eigenformer
