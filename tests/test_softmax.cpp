// softmax_rows: rows sum to one, masked (-inf) entries get exactly zero, an all-masked row is all zeros.
// softmax_rows_backward against central differences, with masked entries and an all-masked row.
#include "eigenformer/ops/softmax.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "eigenformer/core/random.hpp"
#include "support/gradcheck.hpp"

using namespace eigenformer;
using namespace eigenformer::testing;

TEST_CASE_TEMPLATE("softmax_rows: normalised rows, invariant to a shift, exact zeros where masked", Scalar, float, double) {
  const Scalar ninf = -std::numeric_limits<Scalar>::infinity();
  Tensor<Scalar> x = random_tensor<Scalar>({3, 5}, 11, 3.0);
  Tensor<Scalar> shifted = x;
  shifted.matrix().array() += Scalar(100);  // exp would overflow without the max subtraction
  x.at(1, 2) = ninf;
  shifted.at(1, 2) = ninf;
  for (Index k = 0; k < 5; ++k) x.at(2, k) = shifted.at(2, k) = ninf;  // a fully masked row
  softmax_rows<Scalar>(x.matrix());
  softmax_rows<Scalar>(shifted.matrix());
  for (Index r = 0; r < 2; ++r) CHECK(x.matrix().row(r).sum() == doctest::Approx(1.0).epsilon(1e-6));
  CHECK(x.at(1, 2) == Scalar(0));
  for (Index k = 0; k < 5; ++k) CHECK(x.at(2, k) == Scalar(0));
  CHECK((x.matrix() - shifted.matrix()).cwiseAbs().maxCoeff() < Scalar(1e-6));
  CHECK(x.matrix().allFinite());
}

TEST_CASE("softmax_rows: ratios are exp of the differences") {
  Tensor<double> x({1, 3});
  x[0] = 0.5;
  x[1] = -1.25;
  x[2] = 2.0;
  const Tensor<double> in = x;
  softmax_rows<double>(x.matrix());
  CHECK(x[0] / x[1] == doctest::Approx(std::exp(in[0] - in[1])).epsilon(1e-14));
  CHECK(x[2] / x[0] == doctest::Approx(std::exp(in[2] - in[0])).epsilon(1e-14));
}

TEST_CASE("softmax_rows_backward: y * (dy - rowsum(dy * y)) agrees with central differences; zero where masked, never NaN") {
  const double ninf = -std::numeric_limits<double>::infinity();
  const Index N = 4, S = 6;
  Tensor<double> x = random_tensor<double>({N, S}, 51, 2.0);
  x.at(1, 0) = x.at(1, 4) = ninf;                          // masked entries
  for (Index k = 0; k < S; ++k) x.at(3, k) = ninf;         // a row with nothing allowed
  const Tensor<double> dy = random_tensor<double>({N, S}, 52), dx_before = random_tensor<double>({N, S}, 53);
  const auto loss = [&] {
    Tensor<double> y = x;
    softmax_rows<double>(y.matrix());
    return dot(y, dy);
  };
  Tensor<double> y = x;
  softmax_rows<double>(y.matrix());
  Tensor<double> dx = dx_before;
  softmax_rows_backward<double>(std::as_const(y).matrix(), dy.matrix(), dx.matrix());
  Tensor<double> dx_only({N, S});
  dx_only.matrix() = dx.matrix() - dx_before.matrix();
  // The difference steps leave -inf entries at -inf: their numerical gradient is 0, as the analytic one must be.
  check_gradient("softmax_rows_backward dx", x, dx_only, loss);
  CHECK(dx_only.at(1, 0) == 0.0);
  CHECK(dx_only.at(1, 4) == 0.0);
  for (Index k = 0; k < S; ++k) CHECK(dx_only.at(3, k) == 0.0);
  CHECK(dx_only.matrix().allFinite());
  // Each row's gradient sums to zero (softmax is invariant to a shift of its row).
  CHECK(dx_only.matrix().rowwise().sum().cwiseAbs().maxCoeff() < 1e-14);
  // Accumulate::no writes, in place over dy.
  Tensor<double> in_place = dy;
  softmax_rows_backward<double>(std::as_const(y).matrix(), ConstMatrixMap<double>(in_place.data(), N, S), in_place.matrix(), Accumulate::no);
  CHECK((in_place.matrix() - dx_only.matrix()).cwiseAbs().maxCoeff() < 1e-15);
}
