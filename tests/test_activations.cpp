// Activations: names as PyTorch and Hugging Face configs spell them, and the defining properties of each.
// Their values against PyTorch are checked through FeedForward (test_feed_forward.cpp).
#include "eigenformer/ops/activations.hpp"

#include <doctest/doctest.h>

#include <cmath>

#include "eigenformer/core/random.hpp"

using namespace eigenformer;

TEST_CASE("activation_from_name: PyTorch and Hugging Face names") {
  CHECK(activation_from_name("relu") == Activation::relu);
  CHECK(activation_from_name("gelu") == Activation::gelu_erf);
  CHECK(activation_from_name("gelu_new") == Activation::gelu_tanh);
  CHECK(activation_from_name("gelu_pytorch_tanh") == Activation::gelu_tanh);
  for (Activation a : {Activation::relu, Activation::gelu_erf, Activation::gelu_tanh}) CHECK(activation_from_name(activation_name(a)) == a);
  CHECK_THROWS_WITH_AS(activation_from_name("swish"), "activation 'swish' is not known; expected relu, gelu (gelu_erf) or gelu_new (gelu_tanh)",
                       RangeError);
}

TEST_CASE_TEMPLATE("activation_forward: relu is max(x, 0); both GELUs tend to x and 0 and stay within 1e-3 of each other", Scalar, float, double) {
  const Tensor<Scalar> x = random_tensor<Scalar>({4, 16}, 2, 2.0);
  Tensor<Scalar> r = x, e = x, t = x;
  activation_forward<Scalar>(Activation::relu, r.matrix());
  activation_forward<Scalar>(Activation::gelu_erf, e.matrix());
  activation_forward<Scalar>(Activation::gelu_tanh, t.matrix());
  for (Index i = 0; i < x.size(); ++i) {
    CHECK(r[i] == std::max(x[i], Scalar(0)));
    CHECK(std::abs(e[i] - t[i]) < 1e-3);
  }
  Tensor<Scalar> far({1, 2});
  far[0] = Scalar(10);
  far[1] = Scalar(-10);
  for (Activation a : {Activation::gelu_erf, Activation::gelu_tanh}) {
    Tensor<Scalar> y = far;
    activation_forward<Scalar>(a, y.matrix());
    CHECK(y[0] == doctest::Approx(10.0).epsilon(1e-6));
    CHECK(std::abs(y[1]) < 1e-6);
  }
}
