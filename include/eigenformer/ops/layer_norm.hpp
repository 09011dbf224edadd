// ops/layer_norm.hpp: y = (x - mean) / sqrt(var + eps) * gamma + beta over the last dimension of each row.
// Matches torch.nn.LayerNorm: the biased variance (divided by D, not D - 1), eps inside the square root.
// x, y: [N, D] (N = B*T); gamma, beta: [D]; mean, rstd: [N], kept for the backward pass when given.
// layer_norm_backward, below the forward, takes those mean and rstd (rstd = 1 / sqrt(var + eps)) rather than
// recomputing them.
#pragma once

#include <cmath>

#include "eigenformer/core/accumulate.hpp"
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

// Forward was, per row: xhat = (x - mean) * rstd;  y = xhat * gamma + beta. With dy [N, D] and g = dy * gamma:
//   dgamma += sum over rows of dy * xhat;  dbeta += sum over rows of dy
//   dx = rstd * (g - mean(g) - xhat * mean(g * xhat))
// The dx line: dxhat = g; xhat depends on x directly (times rstd), through the mean (d mean / dx_j = 1/D) and
// through rstd (d rstd / dx_j = -rstd^3 (x_j - mean) / D = -rstd^2 xhat_j / D); summing the three paths gives
//   dx_j = rstd * (g_j - (1/D) sum_i g_i - xhat_j (1/D) sum_i g_i xhat_i).
// mean, rstd: [N], as layer_norm_forward saved them. dgamma, dbeta accumulate; dx accumulates unless told not to (a
// LayerNorm's input is usually a residual stream that has a gradient of its own). dx may be dy with Accumulate::no.
template <typename Scalar>
void layer_norm_backward(ConstMatrixMap<Scalar> dy, ConstMatrixMap<Scalar> x, ConstVectorMap<Scalar> gamma, ConstVectorMap<Scalar> mean,
                         ConstVectorMap<Scalar> rstd, MatrixMap<Scalar> dx, VectorMap<Scalar> dgamma, VectorMap<Scalar> dbeta,
                         Accumulate accumulate = Accumulate::yes) {
  const Index N = x.rows(), D = x.cols();
  EIGENFORMER_ASSERT(dy.rows() == N && dy.cols() == D && dx.rows() == N && dx.cols() == D, "dy, dx: [N, D] as x");
  EIGENFORMER_ASSERT(gamma.size() == D && dgamma.size() == D && dbeta.size() == D && mean.size() == N && rstd.size() == N,
                     "gamma, dgamma, dbeta: [D]; mean, rstd: [N]");
  Eigen::Array<Scalar, 1, Eigen::Dynamic> xhat(D), g(D);  // one row of each, reused
  for (Index r = 0; r < N; ++r) {
    xhat = (x.row(r).array() - mean[r]) * rstd[r];
    g = dy.row(r).array() * gamma.transpose().array();
    dgamma.array() += (dy.row(r).array() * xhat).transpose();
    dbeta += dy.row(r).transpose();
    const Scalar mean_g = g.sum() / Scalar(D), mean_gx = (g * xhat).sum() / Scalar(D);
    if (accumulate == Accumulate::yes)
      dx.row(r).array() += rstd[r] * (g - mean_g - xhat * mean_gx);
    else
      dx.row(r).array() = rstd[r] * (g - mean_g - xhat * mean_gx);
  }
}

}  // namespace eigenformer
