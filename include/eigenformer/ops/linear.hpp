// ops/linear.hpp: y = x W^T + b, the affine map of torch.nn.Linear (weight stored [out, in]).
// x: [N, in] (N = B*T: one GEMM for the whole batch), w: [out, in], b: [out] or none, y: [N, out].
// Hugging Face GPT-2 stores "Conv1D" weights [in, out]; the checkpoint adapter transposes them once at
// load time, so this is the only layout the kernels see.
#pragma once

#include "eigenformer/core/tensor.hpp"

namespace eigenformer {

template <typename Scalar, typename WeightMatrix>
void linear_forward(ConstMatrixMap<Scalar> x, const WeightMatrix& w, const Scalar* bias, MatrixMap<Scalar> y) {
  y.noalias() = x * w.transpose();
  if (bias) y.rowwise() += ConstVectorMap<Scalar>(bias, y.cols()).transpose();
}

}  // namespace eigenformer
