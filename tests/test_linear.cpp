// Linear (nn/linear.hpp, ops/linear.hpp) against torch.nn.Linear.
#include "eigenformer/nn/linear.hpp"

#include <doctest/doctest.h>

#include "support/fixtures.hpp"

using namespace eigenformer;
using namespace eigenformer::testing;

TEST_CASE_TEMPLATE("Linear: matches torch.nn.Linear, with and without bias", Scalar, float, double) {
  for (const char* name : {"linear", "linear_no_bias"}) {
    CAPTURE(name);
    Fixture fx(name);
    Linear<Scalar> linear(LinearConfig{fx.meta_int("in_features"), fx.meta_int("out_features"), fx.file().contains("param.bias")});
    fx.load(linear);
    const Tensor<Scalar> x = fx.input<Scalar>("x");
    check_close(linear.forward(x), fx.output<double>("y"));
    Tensor<Scalar> y(x.shape().with_back(fx.meta_int("out_features")));  // into a caller's buffer
    linear.forward(x, y);
    check_close(y, fx.output<double>("y"));
  }
}

TEST_CASE("Linear: rejects the wrong width and bad sizes") {
  Linear<float> linear(LinearConfig{5, 7});
  CHECK_THROWS_WITH_AS(linear.forward(Tensor<float>({2, 3, 4})), "Linear.forward: x has shape [2, 3, 4]; expected [..., 5] (in_features)", ShapeError);
  Tensor<float> y({2, 6});
  CHECK_THROWS_WITH_AS(linear.forward(Tensor<float>({2, 5}), y), "Linear.forward: y has shape [2, 6]; expected [2, 7]", ShapeError);
  CHECK_THROWS_WITH_AS(Linear<float>(LinearConfig{0, 3}), "Linear: in_features is 0; expected > 0", RangeError);
}
