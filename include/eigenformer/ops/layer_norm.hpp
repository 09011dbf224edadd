// ops/layer_norm.hpp: y = (x - mean) / sqrt(var + eps) * gamma + beta over the last dimension of each row.
// Matches torch.nn.LayerNorm: the biased variance (divided by D, not D - 1), eps inside the square root.
// x, y: [N, D] (N = B*T); gamma, beta: [D]; mean, rstd: [N], kept for the backward pass when given.
#pragma once

#include <cmath>

#include "eigenformer/core/tensor.hpp"

namespace eigenformer {

template <typename Scalar>
void layer_norm_forward(ConstMatrixMap<Scalar> x, ConstVectorMap<Scalar> gamma, ConstVectorMap<Scalar> beta, Scalar eps,
                        MatrixMap<Scalar> y, Scalar* mean = nullptr, Scalar* rstd = nullptr) {
  const Index D = x.cols();
  for (Index r = 0; r < x.rows(); ++r) {
    const Scalar mu = x.row(r).sum() / Scalar(D);
    // Two passes (mean, then squared deviations): no cancellation when |mean| >> std.
    const Scalar var = (x.row(r).array() - mu).square().sum() / Scalar(D);
    const Scalar rs = Scalar(1) / std::sqrt(var + eps);
    y.row(r) = ((x.row(r).array() - mu) * rs * gamma.transpose().array() + beta.transpose().array()).matrix();
    if (mean) mean[r] = mu;
    if (rstd) rstd[r] = rs;
  }
}

}  // namespace eigenformer
