// Mask: each named constructor allows exactly what its definition says; '&' allows only what every part allows;
// a mask made for other sizes is refused with both sizes in the message.
#include "eigenformer/core/mask.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "eigenformer/core/random.hpp"

using namespace eigenformer;

namespace {
// allowed(q, k) as the mask says it for batch item b.
Tensor<double> bias_of(const Mask& m, Index b, Index T, Index S) {
  Tensor<double> bias({T, S});
  m.fill_bias<double>(b, bias.matrix());
  return bias;
}
bool allowed(const Tensor<double>& bias, Index q, Index k) { return bias.at(q, k) != -std::numeric_limits<double>::infinity(); }
}  // namespace

TEST_CASE("Mask::causal: query i sees keys 0..offset+i") {
  for (Index offset : {0, 2}) {
    CAPTURE(offset);
    const Index T = 3, S = T + offset;
    const Tensor<double> bias = bias_of(Mask::causal(T, S, offset), 0, T, S);
    for (Index q = 0; q < T; ++q)
      for (Index k = 0; k < S; ++k) {
        CHECK(allowed(bias, q, k) == (k <= offset + q));
        if (allowed(bias, q, k)) CHECK(bias.at(q, k) == 0.0);
      }
  }
}

TEST_CASE("Mask::key_padding: item b sees keys below lengths[b], in every query row") {
  const Mask m = Mask::key_padding({4, 1}, 4);
  CHECK(m.depends_on_batch());
  for (Index b = 0; b < 2; ++b) {
    const Tensor<double> bias = bias_of(m, b, 2, 4);
    for (Index q = 0; q < 2; ++q)
      for (Index k = 0; k < 4; ++k) CHECK(allowed(bias, q, k) == (k < (b == 0 ? 4 : 1)));
  }
}

TEST_CASE("Mask::left_padding: item b's first pads[b] keys are padding (prompts padded on the left)") {
  const Mask m = Mask::left_padding({0, 3}, 5) & Mask::causal(5, 5);
  for (Index b = 0; b < 2; ++b) {
    const Tensor<double> bias = bias_of(m, b, 5, 5);
    for (Index q = 0; q < 5; ++q)
      for (Index k = 0; k < 5; ++k) CHECK(allowed(bias, q, k) == (k >= (b == 0 ? 0 : 3) && k <= q));
  }
  CHECK_THROWS_WITH_AS(Mask::left_padding({6}, 5), "Mask::key_padding: length 6 of batch item 0 is outside [0, 5] (keys)", RangeError);
}

TEST_CASE("Mask::allowed: true means allowed, [T, S] shared by the batch or [B, T, S] per item") {
  Random rng(3);
  Tensor<bool> a({2, 3, 4});
  for (Index i = 0; i < a.size(); ++i) a[i] = rng.uniform() < 0.5;
  const Mask batched = Mask::allowed(a);
  CHECK(batched.depends_on_batch());
  for (Index b = 0; b < 2; ++b) {
    const Tensor<double> bias = bias_of(batched, b, 3, 4);
    for (Index q = 0; q < 3; ++q)
      for (Index k = 0; k < 4; ++k) CHECK(allowed(bias, q, k) == a.at(b, q, k));
  }
  Tensor<bool> shared({3, 4});
  shared.at(1, 2) = true;
  const Mask m = Mask::allowed(shared);
  CHECK_FALSE(m.depends_on_batch());
  const Tensor<double> bias = bias_of(m, 5, 3, 4);  // any item
  CHECK(allowed(bias, 1, 2));
  CHECK_FALSE(allowed(bias, 0, 0));
}

TEST_CASE("Mask::additive: values are added to the scores; -inf forbids; +inf and NaN are refused") {
  Tensor<double> add = random_tensor<double>({2, 3}, 5);
  add.at(0, 1) = -std::numeric_limits<double>::infinity();
  const Tensor<double> bias = bias_of(Mask::additive(add), 0, 2, 3);
  for (Index i = 0; i < add.size(); ++i) CHECK(bias[i] == add[i]);
  Tensor<float> bad({1, 2});
  bad[1] = std::numeric_limits<float>::infinity();
  CHECK_THROWS_WITH_AS(Mask::additive(bad), "Mask::additive: element 1 is inf; expected a finite value or -inf", RangeError);
  bad[1] = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_AS(Mask::additive(bad), RangeError);
}

TEST_CASE("Mask: '&' allows a key only when every part allows it, and adds the additive parts") {
  const Index T = 3, S = 5, P = 2;
  Tensor<double> add = random_tensor<double>({T, S}, 9);
  const Mask m = Mask::causal(T, S, P) & Mask::key_padding({5, 3}, S) & Mask::additive(add);
  for (Index b = 0; b < 2; ++b) {
    const Tensor<double> bias = bias_of(m, b, T, S);
    const Index len = b == 0 ? 5 : 3;
    for (Index q = 0; q < T; ++q)
      for (Index k = 0; k < S; ++k) {
        const bool expect = k <= P + q && k < len;
        CHECK(allowed(bias, q, k) == expect);
        if (expect) CHECK(bias.at(q, k) == add.at(q, k));
      }
  }
  Mask all;
  CHECK(all.empty());
  all &= Mask::causal(T, S, P);
  CHECK_FALSE(all.empty());
}

TEST_CASE("Mask: sizes are checked against the attention, and bad arguments are refused") {
  const Mask m = Mask::causal(4, 6, 2) & Mask::key_padding({6, 3}, 6);
  CHECK_NOTHROW(m.check("X", 2, 4, 6));
  CHECK_THROWS_WITH_AS(m.check("MultiHeadAttention.forward", 2, 5, 6),
                       "MultiHeadAttention.forward: causal mask made for 4 queries, 6 keys; the attention has 2 batch items, 5 queries and 6 keys",
                       ShapeError);
  CHECK_THROWS_WITH_AS(m.check("X", 3, 4, 6), "X: key padding mask made for 2 batch items, 6 keys; the attention has 3 batch items, 4 queries and 6 keys",
                       ShapeError);
  CHECK_THROWS_WITH_AS(Mask::key_padding({6, 7}, 6), "Mask::key_padding: length 7 of batch item 1 is outside [0, 6] (keys)", RangeError);
  CHECK_THROWS_WITH_AS(Mask::key_padding({}, 6), "Mask::key_padding: no lengths given; expected one per batch item", RangeError);
  CHECK_THROWS_WITH_AS(Mask::causal(2, 2, -1), "Mask::causal: queries 2, keys 2, offset -1; expected all >= 0", RangeError);
  CHECK_THROWS_WITH_AS(Mask::allowed(Tensor<bool>({4})), "Mask::allowed: matrix has shape [4]; expected [T, S] or [B, T, S]", ShapeError);
}
