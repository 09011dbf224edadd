// LayerNorm (nn/layer_norm.hpp, ops/layer_norm.hpp) against torch.nn.LayerNorm, including rows far from zero mean;
// layer_norm_backward against central differences.
#include "eigenformer/nn/layer_norm.hpp"

#include "eigenformer/nn/linear.hpp"

#include <doctest/doctest.h>

#include "eigenformer/core/random.hpp"
#include "eigenformer/train/gradients.hpp"
#include "support/fixtures.hpp"
#include "support/gradcheck.hpp"

#include <cstdint>
#include <utility>

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

TEST_CASE("layer_norm_backward: dx, dgamma and dbeta agree with central differences, from the forward's saved mean and rstd") {
  const Index N = 4, D = 7;
  // Rows far from zero mean (offset 3) and with a small spread in one row: the saved statistics must be reused as is.
  Tensor<double> x = random_tensor<double>({N, D}, 31, 2.0), gamma = random_tensor<double>({D}, 32), beta = random_tensor<double>({D}, 33);
  x.matrix().array() += 3.0;
  x.matrix().row(2) *= 0.05;
  const double eps = 1e-5;
  const Tensor<double> dy = random_tensor<double>({N, D}, 34), dx_before = random_tensor<double>({N, D}, 35);
  const auto loss = [&] {
    Tensor<double> y({N, D});
    layer_norm_forward<double>(std::as_const(x).matrix(), std::as_const(gamma).vector(), std::as_const(beta).vector(), eps, y.matrix());
    return dot(y, dy);
  };
  Tensor<double> y({N, D}), mean({N}), rstd({N});
  layer_norm_forward<double>(std::as_const(x).matrix(), std::as_const(gamma).vector(), std::as_const(beta).vector(), eps, y.matrix(), mean.data(),
                             rstd.data());
  Tensor<double> dx = dx_before, dgamma({D}), dbeta({D});
  layer_norm_backward<double>(dy.matrix(), std::as_const(x).matrix(), std::as_const(gamma).vector(), std::as_const(mean).vector(),
                              std::as_const(rstd).vector(), dx.matrix(), dgamma.vector(), dbeta.vector());
  Tensor<double> dx_only({N, D});
  dx_only.matrix() = dx.matrix() - dx_before.matrix();
  check_gradient("layer_norm_backward dx", x, dx_only, loss);
  check_gradient("layer_norm_backward dgamma", gamma, dgamma, loss);
  check_gradient("layer_norm_backward dbeta", beta, dbeta, loss);
  // Accumulate::no writes dx, here in place over a copy of dy; dgamma and dbeta always accumulate.
  Tensor<double> in_place = dy, dgamma_twice = dgamma, dbeta_twice = dbeta;
  layer_norm_backward<double>(ConstMatrixMap<double>(in_place.data(), N, D), std::as_const(x).matrix(), std::as_const(gamma).vector(),
                              std::as_const(mean).vector(), std::as_const(rstd).vector(), in_place.matrix(), dgamma_twice.vector(),
                              dbeta_twice.vector(), Accumulate::no);
  CHECK((in_place.matrix() - dx_only.matrix()).cwiseAbs().maxCoeff() < 1e-12);
  CHECK((dgamma_twice.vector() - 2 * dgamma.vector()).cwiseAbs().maxCoeff() < 1e-12);
  CHECK((dbeta_twice.vector() - 2 * dbeta.vector()).cwiseAbs().maxCoeff() < 1e-12);
}

TEST_CASE("LayerNorm.backward: dx, weight and bias gradients agree with central differences; dx accumulates unless told not to") {
  LayerNorm<double> norm(LayerNormConfig{6, 1e-5});
  randomize_parameters(norm, 41);
  allocate_gradients(norm);
  Tensor<double> x = random_tensor<double>({2, 3, 6}, 42);
  const Tensor<double> dy = random_tensor<double>({2, 3, 6}, 43);
  const auto loss = [&] { return dot(norm.forward(x), dy); };
  LayerNorm<double>::Activations saved;
  const Tensor<double> y = norm.forward(x, &saved);
  CHECK(y.vector() == norm.forward(x).vector());  // saving changes nothing
  Tensor<double> dx({2, 3, 6}, 7.0);
  norm.backward(x, dy, dx, saved, Accumulate::no);
  check_gradient("LayerNorm dx", x, dx, loss);
  check_parameter_gradients("LayerNorm", norm, loss);
  Tensor<double> dx_twice = dx;
  norm.backward(x, dy, dx_twice, saved);
  CHECK((dx_twice.vector() - 2 * dx.vector()).cwiseAbs().maxCoeff() < 1e-14);
  CHECK_THROWS_WITH_AS(norm.backward(x, dy, dx, LayerNorm<double>::Activations{}), doctest::Contains("expected x's shape and a forward of this x"),
                       ShapeError);
}

TEST_CASE("sublayer_connection_backward: pre-norm and post-norm residual connections agree with central differences") {
  for (const bool norm_first : {true, false}) {
    CAPTURE(norm_first);
    LayerNorm<double> norm(LayerNormConfig{5, 1e-5});
    Linear<double> f(LinearConfig{5, 5});
    randomize_parameters(norm, 44);
    randomize_parameters(f, 45);
    allocate_gradients(norm);
    allocate_gradients(f);
    Tensor<double> x = random_tensor<double>({2, 4, 5}, 46);
    const Tensor<double> dy = random_tensor<double>({2, 4, 5}, 47);
    const auto add_f = [&](TensorView<const double> in, TensorView<double> out) { f.forward_accumulate(in, out); };
    const auto loss = [&] { return dot(sublayer_connection<double>(norm_first, norm, x, add_f), dy); };
    SublayerActivations<double> saved;
    const Tensor<double> y = sublayer_connection<double>(norm_first, norm, x, add_f, &saved);
    CHECK(y.vector() == sublayer_connection<double>(norm_first, norm, x, add_f).vector());
    const Tensor<double> dx = sublayer_connection_backward<double>(
        norm_first, norm, x, dy, saved, [&](TensorView<const double> in, TensorView<const double> dout, TensorView<double> din) { f.backward(in, dout, din); });
    check_gradient("sublayer dx", x, dx, loss);
    check_parameter_gradients("sublayer norm", norm, loss);
    check_parameter_gradients("sublayer f", f, loss);
  }
}

TEST_CASE("sublayer_connection: dropout on the sub-layer's output in training; backward agrees with central differences with the mask held fixed") {
  for (const bool norm_first : {true, false}) {
    CAPTURE(norm_first);
    LayerNorm<double> norm(LayerNormConfig{5, 1e-5});
    Linear<double> f(LinearConfig{5, 5});
    randomize_parameters(norm, 54);
    randomize_parameters(f, 55);
    allocate_gradients(norm);
    allocate_gradients(f);
    Tensor<double> x = random_tensor<double>({2, 4, 5}, 56);
    const Tensor<double> dy = random_tensor<double>({2, 4, 5}, 57);
    const Dropout<double> dropout(0.4), none(0.0);
    const auto add_f = [&](TensorView<const double> in, TensorView<double> out) { f.forward_accumulate(in, out); };
    const auto train = [&](SublayerActivations<double>& saved, const Dropout<double>& d, std::uint64_t seed) {
      Random rng(seed);
      return sublayer_connection<double>(norm_first, norm, x, add_f, &saved, &d, &rng);
    };
    // p = 0, or no generator: bit for bit the inference connection, and no mask.
    const Tensor<double> inference = sublayer_connection<double>(norm_first, norm, x, add_f);
    SublayerActivations<double> saved;
    CHECK(train(saved, none, 58).vector() == inference.vector());
    CHECK(saved.dropout.size() == 0);
    CHECK(sublayer_connection<double>(norm_first, norm, x, add_f, &saved, &dropout, nullptr).vector() == inference.vector());
    // p = 0.4: some of f's output is dropped; the same seed repeats the output, another seed does not.
    const Tensor<double> y = train(saved, dropout, 58);
    REQUIRE(saved.dropout.shape() == x.shape());
    CHECK((saved.dropout.vector().array() == 0.0).any());
    CHECK(y.vector() != inference.vector());
    SublayerActivations<double> again;
    CHECK(train(again, dropout, 58).vector() == y.vector());
    CHECK(train(again, dropout, 59).vector() != y.vector());
    const Tensor<double> dx = sublayer_connection_backward<double>(
        norm_first, norm, x, dy, saved, [&](TensorView<const double> in, TensorView<const double> dout, TensorView<double> din) { f.backward(in, dout, din); });
    const auto loss = [&] {
      SublayerActivations<double> s;
      return dot(train(s, dropout, 58), dy);
    };
    check_gradient("sublayer+dropout dx", x, dx, loss);
    check_parameter_gradients("sublayer+dropout norm", norm, loss);
    check_parameter_gradients("sublayer+dropout f", f, loss);
  }
}
