// Dropout at inference: the identity, as torch.nn.Dropout in eval().
#include "eigenformer/nn/dropout.hpp"

#include <doctest/doctest.h>

#include "eigenformer/core/random.hpp"

using namespace eigenformer;

TEST_CASE("Dropout: identity at inference; p must lie in [0, 1)") {
  Dropout<float> dropout(0.1);
  const Tensor<float> x = random_tensor<float>({2, 3, 4}, 1);
  const Tensor<float> y = dropout.forward(x);
  CHECK(y.shape() == x.shape());
  CHECK(y.matrix() == x.matrix());
  CHECK(dropout.p() == 0.1);
  CHECK_THROWS_WITH_AS(Dropout<float>(1.0), "Dropout: p is 1.000000; expected 0 <= p < 1", RangeError);
}
