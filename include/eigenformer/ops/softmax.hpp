// ops/softmax.hpp: softmax over each row of a [N, S] matrix, in place: y = exp(x - max) / sum exp(x - max).
// Entries of -inf (masked keys) get weight exactly 0. A row that is -inf everywhere (every key masked)
// becomes all zeros instead of PyTorch's NaN: a row that may attend to nothing contributes nothing.
// softmax_rows_backward, below the forward, needs only the output y.
#pragma once

#include <limits>

#include "eigenformer/core/accumulate.hpp"
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

// Forward was y_j = exp(x_j - max) / sum_k exp(x_k - max) per row, so dy_i/dx_j = y_i (delta_ij - y_j) and
//   dx_j = sum_i dy_i y_i (delta_ij - y_j) = y_j (dy_j - sum_i dy_i y_i)     (rowsum(dy * y), one number per row)
// y, dy, dx: [N, S]. Where y is 0 (a masked entry, or a row with nothing allowed) dx is 0: no gradient reaches a
// masked score. dx accumulates unless told not to; with Accumulate::no, dx may be dy itself (in place).
template <typename Scalar>
void softmax_rows_backward(ConstMatrixMap<Scalar> y, ConstMatrixMap<Scalar> dy, MatrixMap<Scalar> dx, Accumulate accumulate = Accumulate::yes) {
  EIGENFORMER_ASSERT(dy.rows() == y.rows() && dy.cols() == y.cols() && dx.rows() == y.rows() && dx.cols() == y.cols(), "y, dy, dx: [N, S]");
  for (Index r = 0; r < y.rows(); ++r) {
    const Scalar dot = dy.row(r).dot(y.row(r));
    if (accumulate == Accumulate::yes)
      dx.row(r).array() += y.row(r).array() * (dy.row(r).array() - dot);
    else
      dx.row(r).array() = y.row(r).array() * (dy.row(r).array() - dot);
  }
}

}  // namespace eigenformer
