// softmax_rows: rows sum to one, masked (-inf) entries get exactly zero, an all-masked row is all zeros.
#include "eigenformer/ops/softmax.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "eigenformer/core/random.hpp"

using namespace eigenformer;

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
