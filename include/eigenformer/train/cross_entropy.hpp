// train/cross_entropy.hpp: the classification loss of language modelling and translation, as
// torch.nn.CrossEntropyLoss(ignore_index=i, label_smoothing=eps, reduction='mean') in PyTorch 1.13:
//   log p = log_softmax(logits row)          (the row's maximum subtracted first: lse = m + log sum exp(x - m))
//   loss_n = (1 - eps) * (-log p[y_n]) + eps * mean over all V classes of (-log p[c])
//   loss = sum of loss_n over rows with y_n != ignore_index, divided by the number of such rows.
// logits: [N, V] (N = B*T, V classes); targets: [N] class ids (std::int64_t, as token ids are); lse: [N], optional.
// Deviation: when every target is ignored, PyTorch divides 0 by 0 and returns NaN; we return 0 and a zero gradient.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>

#include "eigenformer/core/accumulate.hpp"
#include "eigenformer/core/error.hpp"
#include "eigenformer/core/tensor.hpp"

namespace eigenformer {

struct CrossEntropyOptions {
  double label_smoothing = 0.0;      // eps, in [0, 1]; the paper trains with 0.1
  std::int64_t ignore_index = -100;  // PyTorch's default; a padding id (often 0) in translation
};

namespace detail {
// Targets come from the caller's data: checked before anything is computed. Returns the number of rows not ignored.
template <typename Scalar>
Index check_cross_entropy(const char* where, ConstMatrixMap<Scalar> logits, TensorView<const std::int64_t> targets,
                          const CrossEntropyOptions& options) {
  const Index N = logits.rows(), V = logits.cols();
  if (targets.rank() != 1 || targets.dim(0) != N)
    throw ShapeError(std::string(where) + ": targets have shape " + targets.shape().str() + "; expected [" + std::to_string(N) + "] (one per row of logits)");
  if (!(options.label_smoothing >= 0 && options.label_smoothing <= 1))
    throw RangeError(std::string(where) + ": label_smoothing is " + std::to_string(options.label_smoothing) + "; expected a value in [0, 1]");
  Index kept = 0;
  for (Index n = 0; n < N; ++n) {
    const std::int64_t y = targets.data()[n];
    if (y == options.ignore_index) continue;
    if (y < 0 || y >= V)
      throw RangeError(std::string(where) + ": target " + std::to_string(y) + " at row " + std::to_string(n) + " is outside the classes [0, " +
                       std::to_string(V) + ") and is not ignore_index " + std::to_string(options.ignore_index));
    ++kept;
  }
  return kept;
}

// log sum_c exp(x_c) of one row, its maximum subtracted first so that exp cannot overflow.
template <typename Row>
typename Row::Scalar log_sum_exp(const Row& x) {
  using Scalar = typename Row::Scalar;
  const Scalar m = x.maxCoeff();
  return m + std::log((x.array() - m).exp().sum());
}
}  // namespace detail

// The mean loss over the rows whose target is not ignored (summed in double). lse, when not null, receives [N]: each
// row's log-sum-exp, which cross_entropy_backward can reuse instead of a second pass of exp.
template <typename Scalar>
double cross_entropy_forward(ConstMatrixMap<Scalar> logits, TensorView<const std::int64_t> targets, const CrossEntropyOptions& options,
                             Scalar* lse = nullptr) {
  const Index kept = detail::check_cross_entropy<Scalar>("cross_entropy_forward", logits, targets, options);
  const double eps = options.label_smoothing;
  double total = 0;
  for (Index n = 0; n < logits.rows(); ++n) {
    const Scalar row_lse = detail::log_sum_exp(logits.row(n));
    if (lse) lse[n] = row_lse;
    const std::int64_t y = targets.data()[n];
    if (y == options.ignore_index) continue;
    // -log p[c] = lse - x_c, so the mean over c of -log p[c] is lse - mean(x).
    total += (1 - eps) * double(row_lse - logits(n, y)) + eps * double(row_lse - logits.row(n).mean());
  }
  if (kept == 0) return 0.0;
  return total / double(kept);
}

// Forward was loss = (1/K) sum over kept rows n of (1 - eps)(lse_n - x_{n,y}) + eps (lse_n - mean_c x_{n,c})
// (K kept rows). With d lse_n / d x_{n,j} = p_{n,j}:
//   dlogits_{n,j} = dloss / K * (p_{n,j} - (1 - eps) [j == y_n] - eps / V)   for a kept row; 0 for an ignored one.
// lse: [N] from cross_entropy_forward, or null to recompute it. dloss: the gradient arriving at the loss (1 when it
// is the objective). dlogits: [N, V]; accumulates unless told not to.
template <typename Scalar>
void cross_entropy_backward(ConstMatrixMap<Scalar> logits, TensorView<const std::int64_t> targets, const Scalar* lse,
                            const CrossEntropyOptions& options, Scalar dloss, MatrixMap<Scalar> dlogits,
                            Accumulate accumulate = Accumulate::yes) {
  const Index kept = detail::check_cross_entropy<Scalar>("cross_entropy_backward", logits, targets, options);
  const Index N = logits.rows(), V = logits.cols();
  EIGENFORMER_ASSERT(dlogits.rows() == N && dlogits.cols() == V, "dlogits: [N, V] as logits");
  if (accumulate == Accumulate::no) dlogits.setZero();
  if (kept == 0) return;
  const Scalar scale = dloss / Scalar(kept), eps = Scalar(options.label_smoothing);
  for (Index n = 0; n < N; ++n) {
    const std::int64_t y = targets.data()[n];
    if (y == options.ignore_index) continue;
    Scalar row_lse;
    if (lse)
      row_lse = lse[n];
    else
      row_lse = detail::log_sum_exp(logits.row(n));
    dlogits.row(n).array() += scale * ((logits.row(n).array() - row_lse).exp() - eps / Scalar(V));
    dlogits(n, y) -= scale * (1 - eps);
  }
}

}  // namespace eigenformer
