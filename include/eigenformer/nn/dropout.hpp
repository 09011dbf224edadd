// nn/dropout.hpp: inverted dropout (Srivastava et al. 2014; Vaswani et al. 5.4), as torch.nn.Dropout(p):
//   training:  y = x * m,  m[i] = 0 with probability p, else 1 / (1 - p)      (kept values scaled up, so E[y] = x)
//   backward:  dx = dy * m, with the forward's mask
//   inference: y = x, as torch.nn.Dropout in eval(): nothing is drawn or copied.
// x, y, m: any shape. The mask is a Tensor of x's shape holding 0 or 1 / (1 - p), kept in the caller's Activations.
// It is drawn from a Random (core/random.hpp), one uniform() per element in row-major order, element i dropped when
// that draw is < p: a seed gives the same masks on every platform, and a generator restored with set_state() (a
// training checkpoint) draws the masks it would have drawn. Masks never depend on x's values.
// Blocks hold a Dropout wherever PyTorch's nn.Transformer layers and Hugging Face's GPT-2 put one, and drop only in a
// training forward whose Activations name a generator (their `rng`); with no generator, or p = 0, that forward is bit
// for bit the inference one.
#pragma once

#include <string>

#include "eigenformer/core/error.hpp"
#include "eigenformer/core/random.hpp"
#include "eigenformer/core/tensor.hpp"

namespace eigenformer {

template <typename Scalar>
class Dropout {
 public:
  explicit Dropout(double p = 0.1) : p_(p) {
    if (!(p >= 0.0 && p < 1.0)) throw RangeError("Dropout: p is " + std::to_string(p) + "; expected 0 <= p < 1");
  }

  // Inference: the identity (a copy of x).
  Tensor<Scalar> forward(TensorView<const Scalar> x) const { return Tensor<Scalar>::copy_of(x); }

  // Training, in place: x *= m, with m drawn from rng into mask (x's shape). When dropout is not active (rng null or
  // p = 0) nothing is drawn, x is unchanged and mask is left empty, which backward reads as "nothing dropped".
  void apply(TensorView<Scalar> x, Random* rng, Tensor<Scalar>& mask) const {
    if (!active(rng)) {
      mask.resize(Shape{0});
      return;
    }
    mask.resize(x.shape());
    const Scalar keep = static_cast<Scalar>(1.0 / (1.0 - p_));
    for (Index i = 0; i < mask.size(); ++i) mask[i] = rng->uniform() < p_ ? Scalar(0) : keep;
    x.vector().array() *= mask.vector().array();
  }

  // Backward of apply, in place: d = dL/dy becomes dL/dx = d * m. An empty mask (nothing was dropped) leaves d as is.
  static void backward(TensorView<Scalar> d, const Tensor<Scalar>& mask) {
    if (mask.size() == 0) return;
    if (mask.shape() != d.shape())
      throw ShapeError("Dropout.backward: the gradient has shape " + d.shape().str() + "; the saved mask " + mask.shape().str());
    d.vector().array() *= mask.vector().array();
  }

  // True when apply() would drop: a generator to draw from, and p > 0.
  bool active(const Random* rng) const { return rng != nullptr && p_ > 0; }

  template <typename F>
  void visit_parameters(F&&) {}

  double p() const { return p_; }

 private:
  double p_;
};

}  // namespace eigenformer
