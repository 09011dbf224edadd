// ops/linear.hpp: the affine map of torch.nn.Linear,
//   y = x W^T + b          x: [N, in] (N = B*T: one GEMM for the whole batch), W: [out, in], b: [out] or none, y: [N, out]
// linear_reference is that line of algebra as Eigen code; linear_forward is what the blocks call: the same product,
// for many rows (a prompt, a training batch) by ops/gemm.hpp's kernel in float (Eigen's GEMM for double, or on a CPU
// without AVX2), and by the streaming kernel of ops/linear_stream.hpp for few rows (decoding), where reading each
// weight once matters more than arithmetic. Hugging Face GPT-2 stores "Conv1D" weights [in, out]; its checkpoint
// adapter transposes them once at load time, so W is always [out, in].
// Accumulate::yes adds y += x W^T + b onto what y holds: a residual connection puts x in y first and lets the
// sub-layer's last projection add onto it. The GEMM adds as it stores, so the residual sum costs no pass of its own.
// y must not overlap x.
// linear_backward, below the forward: dx = dy W, dW += dy^T x, db += column sums of dy.
#pragma once

#include "eigenformer/core/tensor.hpp"
#include "eigenformer/core/threading.hpp"
#include "eigenformer/ops/gemm.hpp"
#include "eigenformer/ops/linear_stream.hpp"

namespace eigenformer {

namespace detail {
// Whether an Eigen expression is a row-major block of memory that ops/gemm.hpp can read or write through strides.
template <typename Matrix>
constexpr bool gemm_layout = (int(std::decay_t<Matrix>::Flags) & Eigen::DirectAccessBit) && (int(std::decay_t<Matrix>::Flags) & Eigen::RowMajorBit);
// A row-major matrix as a GemmOperand: as it is ((i, k) = m(i, k)), or transposed ((i, k) = m(k, i)).
template <typename Matrix>
GemmOperand gemm_rows(const Matrix& m) { return {m.data(), m.outerStride(), 1}; }
template <typename Matrix>
GemmOperand gemm_columns(const Matrix& m) { return {m.data(), 1, m.outerStride()}; }
}  // namespace detail

// y = x W^T + b, plainly. The reference the faster paths are tested against.
template <typename Scalar>
void linear_reference(ConstMatrixMap<Scalar> x, ConstMatrixMap<Scalar> w, const Scalar* bias, MatrixMap<Scalar> y) {
  y.noalias() = x * w.transpose();
  if (bias) y.rowwise() += ConstVectorMap<Scalar>(bias, w.rows()).transpose();
}

// The same, choosing the kernel by the number of rows of x. w may be any Eigen expression of an [out, in] matrix (a
// block of rows of a fused weight); y any writable [N, out] Eigen map, contiguous or strided (rows of a KV cache).
// Accumulate::yes: y += x W^T + b.
template <typename Scalar, typename WeightMatrix, typename Output>
void linear_forward(ConstMatrixMap<Scalar> x, const WeightMatrix& w, const Scalar* bias, Output&& y,
                    Accumulate accumulate = Accumulate::no) {
  constexpr bool streamable = (int(WeightMatrix::Flags) & Eigen::DirectAccessBit) && (int(WeightMatrix::Flags) & Eigen::RowMajorBit);
  if constexpr (streamable) {
    if (x.rows() <= kStreamRows && w.innerStride() == 1) {
      linear_stream<Scalar>(x, w.data(), w.outerStride(), w.rows(), bias, y, nullptr, accumulate);
      return;
    }
  }
#if !defined(EIGENFORMER_USE_BLAS)
  if constexpr (std::is_same_v<Scalar, float> && streamable && detail::gemm_layout<Output>) {
    if (w.innerStride() == 1 && y.innerStride() == 1 &&
        gemm(x.rows(), w.rows(), x.cols(), detail::gemm_rows(x), detail::gemm_rows(w), {y.data(), y.outerStride(), 1}, bias, accumulate))
      return;
  }
#endif
  num_threads();  // applies the library's default thread count to Eigen's GEMM if nothing has yet
  if (accumulate == Accumulate::yes)
    y.noalias() += x * w.transpose();  // Eigen's GEMM adds onto y as it goes: no zeroing pass
  else
    y.noalias() = x * w.transpose();
  if (bias) y.rowwise() += ConstVectorMap<Scalar>(bias, y.cols()).transpose();
}

// Forward was y = x W^T + b, i.e. y[n, o] = sum_i x[n, i] W[o, i] + b[o]. With dy = dL/dy [N, out]:
//   dL/dx[n, i] = sum_o dy[n, o] W[o, i]   ->  dx  = dy W       [N, in]
//   dL/dW[o, i] = sum_n dy[n, o] x[n, i]   ->  dW += dy^T x     [out, in]
//   dL/db[o]    = sum_n dy[n, o]           ->  db += colsum(dy) [out]   (db null: the layer has no bias)
// dW and db always accumulate (gradients are zeroed once per step); dx accumulates unless `accumulate` says no,
// because x usually also feeds a residual path whose gradient is already there. w and dw may be any Eigen
// expressions of [out, in] matrices (a block of rows of a fused weight and of its gradient), dx any writable [N, in]
// map. dx must not overlap dy, and dw must not overlap x or dy.
template <typename Scalar, typename WeightMatrix, typename InputGrad, typename WeightGrad>
void linear_backward(ConstMatrixMap<Scalar> x, const WeightMatrix& w, ConstMatrixMap<Scalar> dy, InputGrad&& dx, WeightGrad&& dw,
                     Scalar* db, Accumulate accumulate = Accumulate::yes) {
  EIGENFORMER_ASSERT(dy.rows() == x.rows() && dy.cols() == w.rows() && w.cols() == x.cols(), "x [N, in], W [out, in], dy [N, out]");
  EIGENFORMER_ASSERT(dx.rows() == x.rows() && dx.cols() == x.cols() && dw.rows() == w.rows() && dw.cols() == w.cols(),
                     "dx like x, dW like W");
#if !defined(EIGENFORMER_USE_BLAS)
  // ops/gemm.hpp computes C[i, j] = sum_k A(i, k) B(j, k), reading A, B and C through strides:
  //   dx[n, i] = sum_o dy[n, o] W[o, i]:  A = dy as it is, B = W transposed, C = dx;
  //   dW[o, i] = sum_n x[n, i] dy[n, o]:  A = x transposed, B = dy transposed, C = dW transposed (C[i, o] = dW[o, i]),
  //   which lets the kernel store whole vectors along dW's rows.
  if constexpr (std::is_same_v<Scalar, float> && detail::gemm_layout<WeightMatrix> && detail::gemm_layout<InputGrad> &&
                detail::gemm_layout<WeightGrad>) {
    if (w.innerStride() == 1 && dx.innerStride() == 1 && dw.innerStride() == 1 && gemm_kernel() != detail::NarrowKernel::portable) {
      gemm(x.rows(), x.cols(), w.rows(), detail::gemm_rows(dy), detail::gemm_columns(w), {dx.data(), dx.outerStride(), 1}, nullptr,
           accumulate);
      gemm(w.cols(), w.rows(), x.rows(), detail::gemm_columns(x), detail::gemm_columns(dy), {dw.data(), 1, dw.outerStride()}, nullptr,
           Accumulate::yes);
      if (db) VectorMap<Scalar>(db, dy.cols()) += dy.colwise().sum().transpose();
      return;
    }
  }
#endif
  num_threads();  // applies the library's default thread count to Eigen's GEMM if nothing has yet
  if (accumulate == Accumulate::yes)
    dx.noalias() += dy * w;
  else
    dx.noalias() = dy * w;
  dw.noalias() += dy.transpose() * x;
  if (db) VectorMap<Scalar>(db, dy.cols()) += dy.colwise().sum().transpose();
}

}  // namespace eigenformer
