// FeedForward against Linear -> activation -> Linear in PyTorch, for ReLU, exact GELU and tanh GELU.
#include "eigenformer/nn/feed_forward.hpp"

#include <doctest/doctest.h>

#include "support/fixtures.hpp"

using namespace eigenformer;
using namespace eigenformer::testing;

TEST_CASE_TEMPLATE("FeedForward: matches torch for relu, gelu (erf) and gelu (tanh)", Scalar, float, double) {
  for (const char* act : {"relu", "gelu_erf", "gelu_tanh"}) {
    CAPTURE(act);
    Fixture fx(std::string("feed_forward_") + act);
    FeedForward<Scalar> ff(FeedForwardConfig{fx.meta_int("d_model"), fx.meta_int("d_ff"), activation_from_name(fx.meta("activation"))});
    fx.load(ff);
    check_close(ff.forward(fx.input<Scalar>("x")), fx.output<double>("y"));
  }
}

TEST_CASE("FeedForward: rejects the wrong width") {
  FeedForward<float> ff(FeedForwardConfig{8, 32});
  CHECK_THROWS_WITH_AS(ff.forward(Tensor<float>({2, 3, 5})), "FeedForward.forward: x has shape [2, 3, 5]; expected [..., 8] (d_model)", ShapeError);
}
