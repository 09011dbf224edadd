// ops/activations.hpp: the feed-forward nonlinearities, applied in place to a [N, F] matrix.
//   relu:      max(x, 0)
//   gelu_erf:  0.5 x (1 + erf(x / sqrt 2))                              torch F.gelu (nn.Transformer "gelu")
//   gelu_tanh: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))          torch F.gelu(approximate="tanh"), HF "gelu_new"
// The choice is a runtime enum, switched once per call, outside the element loop.
#pragma once

#include <cmath>
#include <string>

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

}  // namespace eigenformer
