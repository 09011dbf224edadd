// nn/dropout.hpp: Dropout with probability p. At inference (the only mode until training lands) it is the
// identity, as torch.nn.Dropout in eval(): forward returns its input unchanged. The block exists so that
// models state where the paper puts dropout (p = 0.1 after each sub-layer and on the embeddings).
#pragma once

#include <string>

#include "eigenformer/core/error.hpp"
#include "eigenformer/core/tensor.hpp"

namespace eigenformer {

template <typename Scalar>
class Dropout {
 public:
  explicit Dropout(double p = 0.1) : p_(p) {
    if (!(p >= 0.0 && p < 1.0)) throw RangeError("Dropout: p is " + std::to_string(p) + "; expected 0 <= p < 1");
  }

  Tensor<Scalar> forward(TensorView<const Scalar> x) const { return Tensor<Scalar>::copy_of(x); }
  // In place: nothing to do at inference.
  void apply(TensorView<Scalar>) const {}

  template <typename F>
  void visit_parameters(F&&) {}

  double p() const { return p_; }

 private:
  double p_;
};

}  // namespace eigenformer
