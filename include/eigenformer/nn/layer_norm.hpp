// nn/layer_norm.hpp: LayerNorm over the last dimension, as torch.nn.LayerNorm(d_model, eps):
// y = (x - mean) / sqrt(var + eps) * weight + bias with the biased variance (see ops/layer_norm.hpp).
// x: [..., D] -> y: [..., D]. Parameters: "weight" [D] (starts at 1), "bias" [D] (starts at 0).
// sublayer_connection() is the residual wrapper every Transformer layer puts around its sub-layers, in the
// paper's post-norm form or the pre-norm form of GPT-2 and later models, with dropout on the sub-layer's output in
// training. The residual add is fused: the output starts as a copy of x and the sub-layer's last projection
// accumulates onto it.
#pragma once

#include <string>
#include <utility>

#include "eigenformer/core/error.hpp"
#include "eigenformer/core/random.hpp"
#include "eigenformer/core/tensor.hpp"
#include "eigenformer/core/visit.hpp"
#include "eigenformer/nn/dropout.hpp"
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

  // What backward needs of a forward: each row's mean and 1 / sqrt(var + eps), [N] each (N = rows of x).
  struct Activations {
    Tensor<Scalar> mean, rstd;
  };

  Tensor<Scalar> forward(TensorView<const Scalar> x, Activations* saved = nullptr) const {
    Tensor<Scalar> y(x.shape());
    forward(x, y, saved);
    return y;
  }
  // Into a caller-owned y of x's shape; y may be x itself. saved (training): receives mean and rstd.
  void forward(TensorView<const Scalar> x, TensorView<Scalar> y, Activations* saved = nullptr) const {
    check_input("LayerNorm.forward", x);
    if (y.shape() != x.shape())
      throw ShapeError("LayerNorm.forward: y has shape " + y.shape().str() + "; expected " + x.shape().str() + " (x's shape)");
    Scalar *mean = nullptr, *rstd = nullptr;
    if (saved) {
      saved->mean.resize(Shape{x.size() / config_.d_model});
      saved->rstd.resize(Shape{x.size() / config_.d_model});
      mean = saved->mean.data(), rstd = saved->rstd.data();
    }
    layer_norm_forward<Scalar>(x.matrix(), weight_.vector(), bias_.vector(), static_cast<Scalar>(config_.eps), y.matrix(), mean, rstd);
  }

  // Backward of forward(x) -> y: dx += dL/dx (dx = dL/dx with Accumulate::no) for dy = dL/dy; the weight's and bias's
  // gradients accumulate. x: the forward's input, unchanged; saved: what that forward kept. See ops/layer_norm.hpp.
  void backward(TensorView<const Scalar> x, TensorView<const Scalar> dy, TensorView<Scalar> dx, const Activations& saved,
                Accumulate accumulate = Accumulate::yes) {
    check_input("LayerNorm.backward", x);
    if (dy.shape() != x.shape() || dx.shape() != x.shape() || saved.mean.size() != x.size() / config_.d_model)
      throw ShapeError("LayerNorm.backward: dy " + dy.shape().str() + ", dx " + dx.shape().str() + " and " + saved.mean.shape().str() +
                       " saved rows for x " + x.shape().str() + "; expected x's shape and a forward of this x");
    require_gradient(weight_grad_, weight_, "LayerNorm.backward");
    layer_norm_backward<Scalar>(dy.matrix(), x.matrix(), std::as_const(weight_).vector(), saved.mean.vector(), saved.rstd.vector(), dx.matrix(),
                                weight_grad_.vector(), bias_grad_.vector(), accumulate);
  }

  template <typename F>
  void visit_parameters(F&& f) {
    visit_parameter(f, "weight", weight_, weight_grad_);
    visit_parameter(f, "bias", bias_, bias_grad_);
  }

  const LayerNormConfig& config() const { return config_; }

 private:
  void check_input(const char* where, const TensorView<const Scalar>& x) const {
    if (x.rank() < 1 || x.shape().back() != config_.d_model)
      throw ShapeError(std::string(where) + ": x has shape " + x.shape().str() + "; expected [..., " + std::to_string(config_.d_model) +
                       "] (d_model)");
  }
  LayerNormConfig config_;
  Tensor<Scalar> weight_;  // [D], gamma
  Tensor<Scalar> bias_;    // [D], beta
  Tensor<Scalar> weight_grad_, bias_grad_;  // [D] each once training starts (train/gradients.hpp)
};

// What the backward of a residual connection needs (training): the input of its norm, the norm's statistics, and the
// dropout mask on the sub-layer's output.
template <typename Scalar>
struct SublayerActivations {
  Tensor<Scalar> normed;   // pre-norm: norm(x) [B, T, D], the sub-layer's input
  Tensor<Scalar> sum;      // post-norm: x + dropout(f(x)) [B, T, D], the norm's input
  Tensor<Scalar> dropout;  // [B, T, D]: 0 or 1 / (1 - p) per element (nn/dropout.hpp); empty when nothing was dropped
  typename LayerNorm<Scalar>::Activations norm;
};

// The residual connection around a sub-layer f (attention or feed-forward), x: [B, T, D]:
//   post-norm (norm_first = false, Vaswani et al. 5.4 "Add & Norm"):  norm(x + dropout(f(x)))
//   pre-norm  (norm_first = true, GPT-2):                             x + dropout(f(norm(x)))
// add_f(in, y) adds the sub-layer's output onto y (y += f(in)). y starts as a copy of x, so the last projection of f,
// accumulating into it (Linear::forward_accumulate), makes the residual sum without a pass over [B, T, D] of its own.
// `in` (x, or norm(x) in a buffer of its own) is never y: no kernel writes what it reads.
// In training, saved keeps what sublayer_connection_backward needs (the sub-layer keeps its own). Dropout happens only
// there, and only when dropout->active(rng): then f(in) goes to a buffer of its own, is masked, and is added to y.
// Otherwise (inference; or p = 0, or no generator) the arithmetic is exactly the inference one.
template <typename Scalar, typename Sublayer>
Tensor<Scalar> sublayer_connection(bool norm_first, const LayerNorm<Scalar>& norm, TensorView<const Scalar> x, Sublayer&& add_f,
                                   SublayerActivations<Scalar>* saved = nullptr, const Dropout<Scalar>* dropout = nullptr,
                                   Random* rng = nullptr) {
  Tensor<Scalar> y = Tensor<Scalar>::copy_of(x);
  if (!saved) {
    if (norm_first) {
      add_f(norm.forward(x).view(), y.view());  // the temporary norm(x) lives until add_f returns
      return y;
    }
    add_f(x, y.view());
    norm.forward(y, y);
    return y;
  }
  // Training: y += dropout(f(in)).
  const auto add_dropped_f = [&](TensorView<const Scalar> in) {
    if (!dropout || !dropout->active(rng)) {
      saved->dropout.resize(Shape{0});
      add_f(in, y.view());
      return;
    }
    Tensor<Scalar> f(x.shape());  // zeros, f(in) accumulates into it
    add_f(in, f.view());
    dropout->apply(f, rng, saved->dropout);
    y.matrix() += f.matrix();
  };
  if (norm_first) {
    saved->normed = norm.forward(x, &saved->norm);
    add_dropped_f(std::as_const(saved->normed).view());
    return y;
  }
  add_dropped_f(x);
  saved->sum = y;
  norm.forward(y, y, &saved->norm);
  return y;
}

// Backward of sublayer_connection for dy = dL/dy [B, T, D]; returns dL/dx. x: the forward's input. backward_f(in, dout,
// din) is the sub-layer's backward: din += its input gradient for dout = dL/d f(in). m: the dropout mask (1 if none).
//   pre-norm,  y = x + m * f(norm(x)):  dx = dy + norm'(f'(m * dy))
//   post-norm, y = norm(x + m * f(x)):  ds = norm'(dy);  dx = ds + f'(m * ds)
template <typename Scalar, typename SublayerBackward>
Tensor<Scalar> sublayer_connection_backward(bool norm_first, LayerNorm<Scalar>& norm, TensorView<const Scalar> x, TensorView<const Scalar> dy,
                                            const SublayerActivations<Scalar>& saved, SublayerBackward&& backward_f) {
  const bool dropped = saved.dropout.size() > 0;
  if (norm_first) {
    Tensor<Scalar> dx = Tensor<Scalar>::copy_of(dy);
    Tensor<Scalar> dnormed(x.shape());
    if (dropped) {
      Tensor<Scalar> df = Tensor<Scalar>::copy_of(dy);
      Dropout<Scalar>::backward(df, saved.dropout);
      backward_f(saved.normed.view(), std::as_const(df).view(), dnormed.view());
    } else {
      backward_f(saved.normed.view(), dy, dnormed.view());
    }
    norm.backward(x, dnormed, dx, saved.norm);
    return dx;
  }
  Tensor<Scalar> dsum(x.shape());
  norm.backward(saved.sum, dy, dsum, saved.norm, Accumulate::no);
  Tensor<Scalar> dx = dsum;
  if (dropped) Dropout<Scalar>::backward(dsum, saved.dropout);
  backward_f(x, std::as_const(dsum).view(), dx.view());
  return dx;
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
