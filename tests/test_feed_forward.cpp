// FeedForward against Linear -> activation -> Linear in PyTorch, for ReLU, exact GELU and tanh GELU; its accumulating
// forms add onto y what forward() returns.
#include "eigenformer/nn/feed_forward.hpp"

#include <doctest/doctest.h>

#include <cstdint>

#include "eigenformer/core/random.hpp"
#include "eigenformer/train/gradients.hpp"
#include "support/accumulate.hpp"
#include "support/fixtures.hpp"
#include "support/gradcheck.hpp"

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

TEST_CASE_TEMPLATE("FeedForward: forward_accumulate and forward(..., Accumulate::yes) add forward's result onto y", Scalar, float, double) {
  const Index D = 12, F = 40;
  for (WeightType type : {WeightType::full, WeightType::bf16, WeightType::int8}) {
    FeedForward<Scalar> ff(FeedForwardConfig{D, F, Activation::gelu_tanh});
    Random rng(31);
    ff.visit_parameters([&](const std::string&, Tensor<Scalar>& t) { fill_normal(t.view(), rng, 0.0, 0.3); });
    ff.narrow_weights(type);  // full: keeps the weights as they are
    for (Index T : {1, 2, 3, 4, 5, 16, 17, 40}) {  // rows: the streaming kernel up to 16, Eigen's GEMM beyond
      CAPTURE(weight_type_name(type));
      CAPTURE(T);
      const Tensor<Scalar> x = random_tensor<Scalar>({1, T, D}, 32 + T), residual = random_tensor<Scalar>({1, T, D}, 33 + T);
      const Tensor<Scalar> plain = ff.forward(x);
      Tensor<Scalar> y = residual;
      ff.forward_accumulate(x, y);
      check_accumulated(y.matrix(), residual.matrix(), plain.matrix());
      Tensor<Scalar> into = residual, hidden({1, T, F});  // the no-allocation form
      ff.forward(x, into, hidden, Accumulate::yes);
      check_accumulated(into.matrix(), residual.matrix(), plain.matrix());
      Tensor<Scalar> in_place = x;  // x += FF(x): linear2 reads the hidden layer, not x
      ff.forward_accumulate(in_place, in_place);
      check_accumulated(in_place.matrix(), x.matrix(), plain.matrix());
    }
  }
}

TEST_CASE("FeedForward.backward: with each activation, dx and both layers' gradients agree with central differences") {
  for (const Activation activation : {Activation::relu, Activation::gelu_erf, Activation::gelu_tanh}) {
    CAPTURE(activation_name(activation));
    FeedForward<double> ff(FeedForwardConfig{4, 7, activation});
    randomize_parameters(ff, 71);
    allocate_gradients(ff);
    Tensor<double> x = random_tensor<double>({2, 3, 4}, 72);
    const Tensor<double> dy = random_tensor<double>({2, 3, 4}, 73);
    const auto loss = [&] { return dot(ff.forward(x), dy); };
    FeedForward<double>::Activations saved;
    CHECK(ff.forward(x, &saved).vector() == ff.forward(x).vector());
    Tensor<double> dx({2, 3, 4});
    ff.backward(x, dy, dx, saved);
    check_gradient("FeedForward dx", x, dx, loss);
    check_parameter_gradients("FeedForward", ff, loss);
  }
}

TEST_CASE("FeedForward: dropout on the hidden layer in training only; backward agrees with central differences with the mask held fixed") {
  const Index D = 4, F = 7;
  FeedForward<double> ff(FeedForwardConfig{D, F, Activation::gelu_erf, 0.4});
  randomize_parameters(ff, 81);
  allocate_gradients(ff);
  Tensor<double> x = random_tensor<double>({2, 3, D}, 82);
  const Tensor<double> dy = random_tensor<double>({2, 3, D}, 83);
  const auto train = [&](FeedForward<double>::Activations& saved, std::uint64_t seed) {
    Random rng(seed);
    saved.rng = &rng;
    Tensor<double> y = ff.forward(x, &saved);
    saved.rng = nullptr;  // rng dies here
    return y;
  };
  const Tensor<double> inference = ff.forward(x);
  // No generator: the inference result bit for bit; p = 0 with a generator: the same.
  FeedForward<double>::Activations saved;
  CHECK(ff.forward(x, &saved).vector() == inference.vector());
  CHECK(saved.dropout.size() == 0);
  FeedForward<double> no_dropout(FeedForwardConfig{D, F, Activation::gelu_erf, 0.0});
  randomize_parameters(no_dropout, 81);
  FeedForward<double>::Activations zero;
  Random unused(84);
  zero.rng = &unused;
  CHECK(no_dropout.forward(x, &zero).vector() == no_dropout.forward(x).vector());
  CHECK(zero.dropout.size() == 0);
  // p = 0.4: the mask sits on the hidden layer; same seed, same output; another seed, another.
  const Tensor<double> y = train(saved, 85);
  REQUIRE(saved.dropout.shape() == Shape{2, 3, F});
  CHECK((saved.dropout.vector().array() == 0.0).any());
  CHECK(y.vector() != inference.vector());
  FeedForward<double>::Activations again;
  CHECK(train(again, 85).vector() == y.vector());
  CHECK(train(again, 86).vector() != y.vector());
  Tensor<double> dx({2, 3, D});
  ff.backward(x, dy, dx, saved);
  const auto loss = [&] {
    FeedForward<double>::Activations s;
    return dot(train(s, 85), dy);
  };
  check_gradient("FeedForward+dropout dx", x, dx, loss);
  check_parameter_gradients("FeedForward+dropout", ff, loss);
}
