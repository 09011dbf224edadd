// PositionalEncoding: the sinusoid table against the PyTorch translation tutorial's, learned tables, offsets.
#include "eigenformer/nn/positional_encoding.hpp"

#include <doctest/doctest.h>

#include "eigenformer/train/gradients.hpp"
#include "support/fixtures.hpp"
#include "support/gradcheck.hpp"

using namespace eigenformer;
using namespace eigenformer::testing;

TEST_CASE_TEMPLATE("PositionalEncoding: sinusoidal table and x + pe[offset:] match the PyTorch tutorial", Scalar, float, double) {
  Fixture fx("positional_encoding_sinusoidal");
  PositionalEncoding<Scalar> pe(PositionalEncodingConfig{PositionKind::sinusoidal, fx.meta_int("max_len"), fx.meta_int("d_model")});
  check_close(pe.table(), fx.output<double>("pe"));
  check_close(pe.forward(fx.input<Scalar>("x"), fx.meta_int("offset")), fx.output<double>("y"));
}

TEST_CASE_TEMPLATE("PositionalEncoding: learned table (GPT-2's wpe) is a parameter", Scalar, float, double) {
  Fixture fx("positional_encoding_learned");
  PositionalEncoding<Scalar> pe(PositionalEncodingConfig{PositionKind::learned, fx.meta_int("max_len"), fx.meta_int("d_model")});
  fx.load(pe);
  check_close(pe.forward(fx.input<Scalar>("x"), fx.meta_int("offset")), fx.output<double>("y"));
}

TEST_CASE("PositionalEncoding: positions past max_len and the wrong width are refused") {
  PositionalEncoding<float> pe(PositionalEncodingConfig{PositionKind::sinusoidal, 50, 12});
  CHECK_THROWS_WITH_AS(pe.forward(Tensor<float>({1, 5, 12}), 48), "PositionalEncoding.forward: positions [48, 53) go past max_len 50", RangeError);
  CHECK_THROWS_WITH_AS(pe.forward(Tensor<float>({1, 5, 8})), "PositionalEncoding.forward: x has shape [1, 5, 8]; expected [B, T, 12] (d_model)",
                       ShapeError);
  int parameters = 0;
  pe.visit_parameters([&](const std::string&, Tensor<float>&) { ++parameters; });
  CHECK(parameters == 0);  // the sinusoid table is fixed, not learned
}

TEST_CASE("PositionalEncoding: odd d_model ends with a sine column") {
  PositionalEncoding<double> odd(PositionalEncodingConfig{PositionKind::sinusoidal, 10, 7});
  PositionalEncoding<double> even(PositionalEncodingConfig{PositionKind::sinusoidal, 10, 8});
  // Column 6 of a 7-wide table uses frequency 10000^(-6/7); it is sin(p * that).
  for (Index p = 0; p < 10; ++p) CHECK(odd.table().at(p, 6) == doctest::Approx(std::sin(p * std::pow(10000.0, -6.0 / 7.0))).epsilon(1e-14));
  CHECK(even.table().at(3, 0) == odd.table().at(3, 0));  // column 0 does not depend on D
}

TEST_CASE("PositionalEncoding.backward: a learned table's rows gather dy over the batch at their positions; a sinusoid learns nothing") {
  PositionalEncoding<double> learned(PositionalEncodingConfig{PositionKind::learned, 7, 3});
  randomize_parameters(learned, 61);
  allocate_gradients(learned);
  Tensor<double> x = random_tensor<double>({2, 4, 3}, 62);
  const Tensor<double> dy = random_tensor<double>({2, 4, 3}, 63);
  learned.backward(dy, 2);
  const auto loss = [&] {
    Tensor<double> y = Tensor<double>::copy_of(x.view());
    learned.add_to(y, 2);
    return dot(y, dy);
  };
  check_parameter_gradients("PositionalEncoding", learned, loss);
  CHECK_THROWS_WITH_AS(learned.backward(dy, 4), doctest::Contains("positions [4, 8) go past max_len 7"), RangeError);
  PositionalEncoding<double> fixed(PositionalEncodingConfig{PositionKind::sinusoidal, 7, 3});
  fixed.backward(dy, 0);  // nothing to learn, nothing to allocate
}
