// LayerNorm (nn/layer_norm.hpp, ops/layer_norm.hpp) against torch.nn.LayerNorm, including rows far from zero mean.
#include "eigenformer/nn/layer_norm.hpp"

#include <doctest/doctest.h>

#include "eigenformer/core/random.hpp"
#include "support/fixtures.hpp"

using namespace eigenformer;
using namespace eigenformer::testing;

TEST_CASE_TEMPLATE("LayerNorm: matches torch.nn.LayerNorm (biased variance, eps inside the root)", Scalar, float, double) {
  Fixture fx("layer_norm");
  LayerNorm<Scalar> norm(LayerNormConfig{fx.meta_int("d_model"), fx.meta_double("eps")});
  fx.load(norm);
  Tensor<Scalar> x = fx.input<Scalar>("x");
  check_close(norm.forward(x), fx.output<double>("y"));
  norm.forward(x, x);  // in place
  check_close(x, fx.output<double>("y"));
}

TEST_CASE("layer_norm_forward: keeps the mean and 1/std of each row for the backward pass") {
  const Tensor<double> x = random_tensor<double>({3, 8}, 4, 2.0);
  const Tensor<double> gamma({8}, 1.0), beta({8});
  Tensor<double> y({3, 8});
  Tensor<double> mean({3}), rstd({3});
  layer_norm_forward<double>(x.matrix(), gamma.vector(), beta.vector(), 0.0, y.matrix(), mean.data(), rstd.data());
  for (Index r = 0; r < 3; ++r) {
    CHECK(mean[r] == doctest::Approx(x.matrix().row(r).mean()).epsilon(1e-12));
    CHECK(y.matrix().row(r).mean() == doctest::Approx(0.0).scale(1.0).epsilon(1e-12));
    CHECK(y.matrix().row(r).squaredNorm() / 8 == doctest::Approx(1.0).epsilon(1e-12));
  }
}

TEST_CASE("LayerNorm: rejects the wrong width") {
  LayerNorm<float> norm(LayerNormConfig{10});
  CHECK_THROWS_WITH_AS(norm.forward(Tensor<float>({2, 9})), "LayerNorm.forward: x has shape [2, 9]; expected [..., 10] (d_model)", ShapeError);
  Tensor<float> y({2, 5});
  CHECK_THROWS_WITH_AS(norm.forward(Tensor<float>({1, 10}), y), "LayerNorm.forward: y has shape [2, 5]; expected [1, 10] (x's shape)", ShapeError);
}
