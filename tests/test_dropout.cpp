// Dropout: the identity at inference, as torch.nn.Dropout in eval(); in training, inverted dropout whose masks come
// from a seeded Random: about p of the elements zeroed, the rest scaled by exactly 1 / (1 - p), the same mask for the
// same generator state, and a backward that multiplies by that mask.
#include "eigenformer/nn/dropout.hpp"

#include <doctest/doctest.h>

#include <cmath>

#include "eigenformer/core/random.hpp"
#include "support/gradcheck.hpp"

using namespace eigenformer;
using namespace eigenformer::testing;

TEST_CASE("Dropout: identity at inference; p must lie in [0, 1)") {
  Dropout<float> dropout(0.1);
  const Tensor<float> x = random_tensor<float>({2, 3, 4}, 1);
  const Tensor<float> y = dropout.forward(x);
  CHECK(y.shape() == x.shape());
  CHECK(y.matrix() == x.matrix());
  CHECK(dropout.p() == 0.1);
  CHECK_THROWS_WITH_AS(Dropout<float>(1.0), "Dropout: p is 1.000000; expected 0 <= p < 1", RangeError);
  CHECK_THROWS_WITH_AS(Dropout<float>(-0.5), "Dropout: p is -0.500000; expected 0 <= p < 1", RangeError);
}

TEST_CASE_TEMPLATE("Dropout.apply: about p of the elements are zero, and every kept one is x * (1 / (1 - p)) exactly", Scalar, float, double) {
  for (const double p : {0.1, 0.5, 0.9}) {
    CAPTURE(p);
    const Dropout<Scalar> dropout(p);
    const Tensor<Scalar> x = random_tensor<Scalar>({4, 250, 200}, 5);  // 200000 elements, none of them zero
    Tensor<Scalar> y = x, mask;
    Random rng(6);
    dropout.apply(y, &rng, mask);
    REQUIRE(mask.shape() == x.shape());
    const Scalar keep = static_cast<Scalar>(1.0 / (1.0 - p));
    REQUIRE((x.vector().array() != Scalar(0)).all());
    Index zeros = 0, wrong = 0;
    for (Index i = 0; i < x.size(); ++i) {
      if (mask[i] == 0) {
        ++zeros;
        if (y[i] != 0) ++wrong;
      } else if (mask[i] != keep || y[i] != x[i] * keep) {
        ++wrong;
      }
    }
    CHECK(wrong == 0);
    // The zero count is binomial(n, p): its standard deviation is sqrt(n p (1 - p)), about 0.0011 n at most here.
    const double n = static_cast<double>(x.size()), fraction = static_cast<double>(zeros) / n;
    CHECK(std::abs(fraction - p) < 5 * std::sqrt(p * (1 - p) / n));
  }
}

TEST_CASE("Dropout.apply: the same generator state gives the same mask, another seed another; checkpointed state resumes the masks") {
  const Dropout<double> dropout(0.3);
  const Tensor<double> x = random_tensor<double>({3, 7, 5}, 9);
  const auto dropped = [&](Random& rng) {
    Tensor<double> y = x, mask;
    dropout.apply(y, &rng, mask);
    return y;
  };
  Random a(11), b(11), c(12);
  const Tensor<double> ya = dropped(a), yb = dropped(b), yc = dropped(c);
  CHECK(ya.vector() == yb.vector());
  CHECK(ya.vector() != yc.vector());
  // A generator restored from another's state() draws what that one draws next (a training checkpoint).
  const RandomState saved = a.state();
  const Tensor<double> next = dropped(a);
  Random restored(999);
  restored.set_state(saved);
  CHECK(dropped(restored).vector() == next.vector());
  CHECK(next.vector() != ya.vector());  // the generator moved on: the next mask is a new one
}

TEST_CASE("Dropout.apply: with p = 0 or no generator, x is untouched bit for bit, nothing is drawn and the mask is empty") {
  const Tensor<float> x = random_tensor<float>({2, 3, 4}, 13);
  Random rng(14);
  const RandomState before = rng.state();
  Tensor<float> mask({2, 3, 4}, 1.0f);  // a previous step's mask must not survive
  Tensor<float> y = x;
  Dropout<float>(0.0).apply(y, &rng, mask);
  CHECK(y.vector() == x.vector());
  CHECK(mask.size() == 0);
  Dropout<float>(0.5).apply(y, nullptr, mask);
  CHECK(y.vector() == x.vector());
  CHECK(mask.size() == 0);
  for (int i = 0; i < 4; ++i) CHECK(rng.state().words[i] == before.words[i]);
  CHECK_FALSE(Dropout<float>(0.0).active(&rng));
  CHECK_FALSE(Dropout<float>(0.5).active(nullptr));
  CHECK(Dropout<float>(0.5).active(&rng));
  // backward with an empty mask leaves the gradient alone
  Tensor<float> d = x;
  Dropout<float>::backward(d, mask);
  CHECK(d.vector() == x.vector());
}

TEST_CASE("Dropout.backward: with the mask held fixed (the same seed), dx agrees with central differences") {
  const Dropout<double> dropout(0.4);
  Tensor<double> x = random_tensor<double>({2, 4, 3}, 15);
  const Tensor<double> dy = random_tensor<double>({2, 4, 3}, 16);
  const auto forward = [&](Tensor<double>& mask) {
    Random rng(17);
    Tensor<double> y = x;
    dropout.apply(y, &rng, mask);
    return y;
  };
  Tensor<double> mask;
  forward(mask);
  Tensor<double> dx = dy;
  Dropout<double>::backward(dx, mask);
  const auto loss = [&] {
    Tensor<double> m;
    return dot(forward(m), dy);
  };
  check_gradient("Dropout dx", x, dx, loss);
  CHECK_THROWS_WITH_AS(Dropout<double>::backward(dx, Tensor<double>({2, 4, 4})),
                       "Dropout.backward: the gradient has shape [2, 4, 3]; the saved mask [2, 4, 4]", ShapeError);
}
