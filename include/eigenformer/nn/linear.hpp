// nn/linear.hpp: Linear, y = x W^T + b, as torch.nn.Linear.
// x: [..., in_features] -> y: [..., out_features]; every leading dimension is flattened into one GEMM.
// Parameters: "weight" [out, in] (PyTorch's layout), "bias" [out] (absent when config.bias is false).
// forward_accumulate adds y += x W^T + b onto a caller's y: how a residual connection's last projection adds x back.
#pragma once

#include <functional>
#include <string>

#include "eigenformer/core/error.hpp"
#include "eigenformer/core/tensor.hpp"
#include "eigenformer/core/visit.hpp"
#include "eigenformer/ops/linear.hpp"
#include "eigenformer/nn/layer_weight.hpp"

namespace eigenformer {

struct LinearConfig {
  Index in_features = 0;
  Index out_features = 0;
  bool bias = true;
};

template <typename Scalar>
class Linear {
 public:
  Linear() = default;
  explicit Linear(const LinearConfig& config)
      : config_(config), weight_(Shape{checked(config.out_features, "out_features"), checked(config.in_features, "in_features")}),
        bias_(Shape{config.bias ? config.out_features : 0}) {}

  // [..., in] -> [..., out]
  Tensor<Scalar> forward(TensorView<const Scalar> x) const {
    check_input(x);
    auto y = Tensor<Scalar>::uninitialized(x.shape().with_back(config_.out_features));
    forward(x, y);
    return y;
  }
  // The same into a caller-owned y of shape [..., out] (no allocation). add_bias = false leaves the bias to the
  // caller (a following pass that adds it on its way, as FeedForward's activation does).
  void forward(TensorView<const Scalar> x, TensorView<Scalar> y, bool add_bias = true) const {
    check_input_output(x, y.shape(), "Linear.forward");
    forward_rows(x.matrix(), 0, config_.out_features, y.matrix(), add_bias);
  }
  // y += x W^T + b into a caller's y of shape [..., out] that already holds something (the residual x of a
  // sub-layer): the kernel adds as it writes, so the sum takes no pass of its own. y must not overlap x.
  void forward_accumulate(TensorView<const Scalar> x, TensorView<Scalar> y) const {
    check_input_output(x, y.shape(), "Linear.forward_accumulate");
    const std::less<const Scalar*> before;
    if (before(x.data(), y.data() + y.size()) && before(y.data(), x.data() + x.size()))
      throw ShapeError("Linear.forward_accumulate: y overlaps x; expected separate buffers (the kernels read x while writing y)");
    forward_rows(x.matrix(), 0, config_.out_features, y.matrix(), /*add_bias=*/true, Accumulate::yes);
  }
  // Output features [row0, row0 + n) only (one part of a fused projection), into any writable [N, n] Eigen map.
  template <typename Output>
  void forward_rows(ConstMatrixMap<Scalar> x, Index row0, Index n, Output&& y, bool add_bias = true,
                    Accumulate accumulate = Accumulate::no) const {
    const Scalar* bias = config_.bias && add_bias ? bias_.data() + row0 : nullptr;
    if (weight_.type() == WeightType::full)
      linear_forward<Scalar>(x, weight_.tensor().matrix().middleRows(row0, n), bias, y, accumulate);  // ops/linear.hpp
    else
      weight_.linear(x, row0, n, bias, y, accumulate);  // narrowed for inference (nn/layer_weight.hpp)
  }

  // Backward of forward(x) -> y for dy = dL/dy [..., out]: dx += dy W (dx = dy W with Accumulate::no), and the
  // weight's and bias's gradients accumulate dy^T x and the column sums of dy (ops/linear.hpp). x: the forward's input.
  void backward(TensorView<const Scalar> x, TensorView<const Scalar> dy, TensorView<Scalar> dx, Accumulate accumulate = Accumulate::yes) {
    check_input_output(x, dy.shape(), "Linear.backward", "dy");
    if (dx.shape() != x.shape()) throw ShapeError("Linear.backward: dx has shape " + dx.shape().str() + "; expected x's " + x.shape().str());
    backward_rows(x.matrix(), 0, config_.out_features, dy.matrix(), dx.matrix(), accumulate);
  }
  // The same for output features [row0, row0 + n) only (one part of a fused projection): dy [N, n].
  template <typename InputGrad>
  void backward_rows(ConstMatrixMap<Scalar> x, Index row0, Index n, ConstMatrixMap<Scalar> dy, InputGrad&& dx,
                     Accumulate accumulate = Accumulate::yes) {
    if (weight_.type() != WeightType::full) throw ShapeError("Linear.backward: the weight was narrowed for inference; it cannot be trained");
    require_gradient(weight_grad_, weight_.tensor(), "Linear.backward");
    linear_backward<Scalar>(x, weight_.tensor().matrix().middleRows(row0, n), dy, dx, weight_grad_.matrix().middleRows(row0, n),
                            config_.bias ? bias_grad_.data() + row0 : nullptr, accumulate);
  }

  // Inference only: keep the weight in bf16 or int8 from now on (nn/layer_weight.hpp). The bias stays full width.
  void narrow_weights(WeightType type) { weight_.narrow(type, "Linear.narrow_weights"); }
  WeightType weight_type() const { return weight_.type(); }

  template <typename F>
  void visit_parameters(F&& f) {
    visit_parameter(f, "weight", weight_.visit("Linear.visit_parameters"), weight_grad_);
    if (config_.bias) visit_parameter(f, "bias", bias_, bias_grad_);
  }

  const LinearConfig& config() const { return config_; }
  // The full-width weight [out, in] (empty once narrowed).
  Tensor<Scalar>& weight() { return weight_.tensor(); }
  const Tensor<Scalar>& weight() const { return weight_.tensor(); }
  Tensor<Scalar>& bias() { return bias_; }
  const Tensor<Scalar>& bias() const { return bias_; }
  // Their gradients (empty until training starts).
  Tensor<Scalar>& weight_grad() { return weight_grad_; }
  Tensor<Scalar>& bias_grad() { return bias_grad_; }

 private:
  static Index checked(Index n, const char* name) {
    if (n <= 0) throw RangeError(std::string("Linear: ") + name + " is " + std::to_string(n) + "; expected > 0");
    return n;
  }
  void check_input(const TensorView<const Scalar>& x, const char* where = "Linear.forward") const {
    if (x.rank() < 1 || x.shape().back() != config_.in_features)
      throw ShapeError(std::string(where) + ": x has shape " + x.shape().str() + "; expected [..., " + std::to_string(config_.in_features) +
                       "] (in_features)");
  }
  void check_input_output(const TensorView<const Scalar>& x, const Shape& y, const char* where, const char* y_name = "y") const {
    check_input(x, where);
    if (y != x.shape().with_back(config_.out_features))
      throw ShapeError(std::string(where) + ": " + y_name + " has shape " + y.str() + "; expected " + x.shape().with_back(config_.out_features).str());
  }

  LinearConfig config_;
  LayerWeight<Scalar> weight_;  // [out, in]
  Tensor<Scalar> bias_;    // [out], or [0] without bias
  Tensor<Scalar> weight_grad_, bias_grad_;  // shaped as weight and bias once training starts (train/gradients.hpp)
};

}  // namespace eigenformer
