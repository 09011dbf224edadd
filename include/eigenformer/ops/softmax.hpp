// ops/softmax.hpp: softmax over each row of a [N, S] matrix, in place: y = exp(x - max) / sum exp(x - max).
// Entries of -inf (masked keys) get weight exactly 0. A row that is -inf everywhere (every key masked)
// becomes all zeros instead of PyTorch's NaN: a row that may attend to nothing contributes nothing.
#pragma once

#include <limits>

#include "eigenformer/core/tensor.hpp"

namespace eigenformer {

template <typename Scalar>
void softmax_rows(MatrixMap<Scalar> x) {
  using S = std::remove_const_t<Scalar>;
  for (Index r = 0; r < x.rows(); ++r) {
    auto row = x.row(r);
    const S m = row.maxCoeff();
    if (m == -std::numeric_limits<S>::infinity()) {
      row.setZero();
      continue;
    }
    // Eigen's vectorised exp clamps its argument (in double, exp(-inf) comes out near 1e-308, not 0), so rows with
    // masked entries set them to exactly zero by hand. That select() is evaluated one element at a time; rows
    // with nothing masked take the vectorised exp.
    if ((row.array() == -std::numeric_limits<S>::infinity()).any())
      row = (row.array() == -std::numeric_limits<S>::infinity()).select(S(0), (row.array() - m).exp());
    else
      row = (row.array() - m).exp();
    row /= row.sum();
  }
}

}  // namespace eigenformer
