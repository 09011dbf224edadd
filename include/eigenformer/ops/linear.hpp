// ops/linear.hpp: y = x W^T + b, the affine map of torch.nn.Linear (weight stored [out, in]).
// x: [N, in] (N = B*T: one GEMM for the whole batch), w: [out, in], b: [out] or none, y: [N, out].
// Hugging Face GPT-2 stores "Conv1D" weights [in, out]; the checkpoint adapter transposes them once at
// load time, so this is the only layout the kernels see.
#pragma once

#include "eigenformer/core/tensor.hpp"

namespace eigenformer {

// w may be any Eigen expression of a [out, in] matrix (a block of rows of a fused weight); y any writable
// [N, out] Eigen map, contiguous or strided (rows of a KV cache).
template <typename Scalar, typename WeightMatrix, typename Output>
void linear_forward(ConstMatrixMap<Scalar> x, const WeightMatrix& w, const Scalar* bias, Output&& y) {
  y.noalias() = x * w.transpose();
  if (bias) y.rowwise() += ConstVectorMap<Scalar>(bias, y.cols()).transpose();
}

}  // namespace eigenformer
