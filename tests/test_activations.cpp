// Activations: names as PyTorch and Hugging Face configs spell them, and the defining properties of each.
// Their values against PyTorch are checked through FeedForward (test_feed_forward.cpp); activation_backward against
// central differences of activation_forward.
#include "eigenformer/ops/activations.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <utility>

#include "eigenformer/core/random.hpp"
#include "support/gradcheck.hpp"

using namespace eigenformer;
using namespace eigenformer::testing;

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

TEST_CASE("activation_backward: dy * act'(h + bias) agrees with central differences, for h and for the bias") {
  const Index N = 5, F = 9;
  Tensor<double> h = random_tensor<double>({N, F}, 41, 2.0), bias = random_tensor<double>({F}, 42, 0.5);
  // relu has a kink at 0: keep every h and h + bias at least 1e-3 away from it, far beyond the difference step.
  for (Index r = 0; r < N; ++r)
    for (Index c = 0; c < F; ++c)
      while (std::abs(h.at(r, c)) < 1e-3 || std::abs(h.at(r, c) + bias[c]) < 1e-3) h.at(r, c) += 2.5e-3;
  const Tensor<double> dy = random_tensor<double>({N, F}, 43), dx_before = random_tensor<double>({N, F}, 44);
  for (Activation a : {Activation::relu, Activation::gelu_erf, Activation::gelu_tanh}) {
    CAPTURE(activation_name(a));
    for (bool with_bias : {false, true}) {
      CAPTURE(with_bias);
      const double* b = with_bias ? bias.data() : nullptr;
      const auto loss = [&] {
        Tensor<double> y = h;
        activation_forward<double>(a, y.matrix(), with_bias ? bias.data() : nullptr);
        return dot(y, dy);
      };
      Tensor<double> dx = dx_before;
      activation_backward<double>(a, std::as_const(h).matrix(), b, dy.matrix(), dx.matrix());
      Tensor<double> dx_only({N, F});
      dx_only.matrix() = dx.matrix() - dx_before.matrix();
      const std::string name = std::string("activation_backward ") + activation_name(a) + (with_bias ? " (with bias)" : "");
      check_gradient(name + " dh", h, dx_only, loss);
      if (with_bias) {
        // The bias's gradient is the column sum of dh (what linear_backward adds for the layer that owns it).
        Tensor<double> dbias({F});
        dbias.vector() = dx_only.matrix().colwise().sum().transpose();
        check_gradient(name + " dbias", bias, dbias, loss);
      }
      // Accumulate::no writes, in place over dy.
      Tensor<double> in_place = dy;
      activation_backward<double>(a, std::as_const(h).matrix(), b, ConstMatrixMap<double>(in_place.data(), N, F), in_place.matrix(), Accumulate::no);
      CHECK((in_place.matrix() - dx_only.matrix()).cwiseAbs().maxCoeff() < 1e-13);
    }
  }
}
