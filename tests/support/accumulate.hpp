// tests/support/accumulate.hpp: the check for every kernel and block that can add its result onto a caller's buffer
// (Accumulate::yes, forward_accumulate): a buffer that held `residual` must end up holding residual + result, where
// `result` is what the same call writes without accumulating. An accumulating GEMM adds the same terms in another
// order, so the bits may differ; the tolerance is relative to the largest |residual| + |result| of the buffer:
// double 1e-12, float 1e-5.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <type_traits>

#include "eigenformer/core/tensor.hpp"

namespace eigenformer::testing {

template <typename DA, typename DR, typename DY>
void check_accumulated(const Eigen::MatrixBase<DA>& accumulated, const Eigen::MatrixBase<DR>& residual, const Eigen::MatrixBase<DY>& result) {
  using Scalar = typename DA::Scalar;
  REQUIRE(accumulated.rows() == residual.rows());
  REQUIRE(accumulated.cols() == residual.cols());
  REQUIRE(accumulated.rows() == result.rows());
  REQUIRE(accumulated.cols() == result.cols());
  const RowMatrix<double> r = residual.template cast<double>(), y = result.template cast<double>();
  const double scale = std::max(1e-300, (r.cwiseAbs() + y.cwiseAbs()).maxCoeff());
  const double error = (accumulated.template cast<double>() - (r + y)).cwiseAbs().maxCoeff();
  const double tolerance = std::is_same_v<Scalar, double> ? 1e-12 : 1e-5;
  INFO("max |accumulated - (residual + result)| = " << error << ", relative " << error / scale << " (tolerance " << tolerance << ")");
  CHECK(error <= tolerance * scale);
}

}  // namespace eigenformer::testing
