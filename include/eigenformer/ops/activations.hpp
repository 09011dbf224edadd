// ops/activations.hpp: the feed-forward nonlinearities, applied in place to a [N, F] matrix.
//   relu:      max(x, 0)
//   gelu_erf:  0.5 x (1 + erf(x / sqrt 2))                              torch F.gelu (nn.Transformer "gelu")
//   gelu_tanh: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))          torch F.gelu(approximate="tanh"), HF "gelu_new"
// The choice is a runtime enum, switched once per call, outside the element loop.
// activation_backward, below the forward, multiplies the upstream gradient by act'(pre-activation): the forward
// overwrites its input, so a caller that trains keeps a copy of the pre-activation [N, F] for it.
#pragma once

#include <cmath>
#include <string>

#include "eigenformer/core/accumulate.hpp"
#include "eigenformer/core/error.hpp"
#include "eigenformer/core/tensor.hpp"

namespace eigenformer {

enum class Activation { relu, gelu_erf, gelu_tanh };

inline const char* activation_name(Activation a) {
  switch (a) {
    case Activation::relu: return "relu";
    case Activation::gelu_erf: return "gelu_erf";
    case Activation::gelu_tanh: return "gelu_tanh";
  }
  return "?";
}

// Accepts our names and the ones PyTorch and Hugging Face configs use ("gelu" is the exact erf form,
// "gelu_new" and "gelu_pytorch_tanh" the tanh approximation).
inline Activation activation_from_name(const std::string& name) {
  if (name == "relu") return Activation::relu;
  if (name == "gelu" || name == "gelu_erf") return Activation::gelu_erf;
  if (name == "gelu_tanh" || name == "gelu_new" || name == "gelu_pytorch_tanh") return Activation::gelu_tanh;
  throw RangeError("activation '" + name + "' is not known; expected relu, gelu (gelu_erf) or gelu_new (gelu_tanh)");
}

// x = act(x + bias) in one pass over x (bias: [F], one per column, or none): the bias of the linear layer before
// the activation is added here rather than in a pass of its own.
template <typename Scalar>
void activation_forward(Activation a, MatrixMap<Scalar> x, const std::remove_const_t<Scalar>* bias = nullptr) {
  using S = std::remove_const_t<Scalar>;
  const auto apply = [&](auto&& f) {
    for (Index r = 0; r < x.rows(); ++r) {
      auto row = x.row(r).array();
      if (bias)
        row = f(row + ConstVectorMap<S>(bias, x.cols()).transpose().array());
      else
        row = f(row);
    }
  };
  switch (a) {
    case Activation::relu:
      apply([](const auto& v) { return v.cwiseMax(S(0)); });
      break;
    case Activation::gelu_erf: {
      const S inv_sqrt2 = S(0.70710678118654752440084436210485);
      apply([inv_sqrt2](const auto& v) { return v.unaryExpr([inv_sqrt2](S e) { return S(0.5) * e * (S(1) + std::erf(e * inv_sqrt2)); }); });
      break;
    }
    case Activation::gelu_tanh: {
      // Eigen's array tanh() is vectorised for float (a rational approximation, within a few ulp); a scalar
      // std::tanh per element was 5% of GPT-2's prompt time.
      const S c = S(0.79788456080286535587989211986876);  // sqrt(2 / pi)
      apply([c](const auto& v) { return S(0.5) * v * (S(1) + (c * (v + S(0.044715) * v.cube())).tanh()); });
      break;
    }
  }
}

// Forward was y = act(h + bias) elementwise (h: the pre-activation [N, F] before the forward overwrote it; bias: [F]
// or none, as given to the forward). dx = dy * act'(h + bias), with
//   relu:      act'(v) = 1 if v > 0, else 0 (0 at v = 0 too, as torch's threshold_backward)
//   gelu_erf:  act'(v) = 0.5 (1 + erf(v / sqrt 2)) + v * phi(v),  phi(v) = exp(-v^2 / 2) / sqrt(2 pi)
//   gelu_tanh: act'(v) = 0.5 (1 + t) + 0.5 v (1 - t^2) c (1 + 3 * 0.044715 v^2),  t = tanh(c (v + 0.044715 v^3)), c = sqrt(2/pi)
// dx, dy: [N, F]. dx accumulates unless told not to; with Accumulate::no, dx may be dy itself (in place). The bias's
// own gradient is the column sum of dx, which linear_backward of the layer that owns the bias adds.
template <typename Scalar>
void activation_backward(Activation a, ConstMatrixMap<Scalar> h, const Scalar* bias, ConstMatrixMap<Scalar> dy, MatrixMap<Scalar> dx,
                         Accumulate accumulate = Accumulate::yes) {
  const Index N = h.rows(), F = h.cols();
  EIGENFORMER_ASSERT(dy.rows() == N && dy.cols() == F && dx.rows() == N && dx.cols() == F, "h, dy, dx: [N, F]");
  Eigen::Array<Scalar, 1, Eigen::Dynamic> v(F), slope(F);  // one row of h + bias and of act'(h + bias)
  for (Index r = 0; r < N; ++r) {
    if (bias)
      v = h.row(r).array() + ConstVectorMap<Scalar>(bias, F).transpose().array();
    else
      v = h.row(r).array();
    switch (a) {
      case Activation::relu:
        slope = (v > Scalar(0)).template cast<Scalar>();
        break;
      case Activation::gelu_erf: {
        const Scalar inv_sqrt2 = Scalar(0.70710678118654752440084436210485), inv_sqrt_2pi = Scalar(0.39894228040143267793994605993438);
        slope = v.unaryExpr([=](Scalar e) { return Scalar(0.5) * (Scalar(1) + std::erf(e * inv_sqrt2)) + e * inv_sqrt_2pi * std::exp(Scalar(-0.5) * e * e); });
        break;
      }
      case Activation::gelu_tanh: {
        const Scalar c = Scalar(0.79788456080286535587989211986876);  // sqrt(2 / pi)
        const Eigen::Array<Scalar, 1, Eigen::Dynamic> t = (c * (v + Scalar(0.044715) * v.cube())).tanh();
        slope = Scalar(0.5) * (Scalar(1) + t) + Scalar(0.5) * v * (Scalar(1) - t.square()) * c * (Scalar(1) + Scalar(3 * 0.044715) * v.square());
        break;
      }
    }
    if (accumulate == Accumulate::yes)
      dx.row(r).array() += dy.row(r).array() * slope;
    else
      dx.row(r).array() = dy.row(r).array() * slope;
  }
}

}  // namespace eigenformer
