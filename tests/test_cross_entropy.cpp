// cross_entropy_forward and cross_entropy_backward (train/cross_entropy.hpp) against torch.nn.CrossEntropyLoss with
// label smoothing and an ignore index (fixtures by tools/make_cross_entropy_fixtures.py), the backward against
// central differences, every target ignored, and the errors for bad targets.
#include "eigenformer/train/cross_entropy.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>

#include "eigenformer/core/random.hpp"
#include "support/fixtures.hpp"
#include "support/gradcheck.hpp"

using namespace eigenformer;
using namespace eigenformer::testing;

namespace {
CrossEntropyOptions options_of(const Fixture& fx) {
  CrossEntropyOptions o;
  o.label_smoothing = fx.meta_double("label_smoothing");
  o.ignore_index = fx.meta_int("ignore_index");
  return o;
}
}  // namespace

TEST_CASE_TEMPLATE("cross_entropy: loss and dlogits match torch.nn.CrossEntropyLoss (label smoothing, ignore_index)", Scalar, float, double) {
  for (const char* name : {"cross_entropy_plain", "cross_entropy_smoothing_ignore", "cross_entropy_pad_id"}) {
    CAPTURE(name);
    Fixture fx(name);
    const CrossEntropyOptions options = options_of(fx);
    const Tensor<Scalar> logits = fx.input<Scalar>("logits");
    const Tensor<std::int64_t> targets = fx.input<std::int64_t>("targets");
    Tensor<Scalar> lse({logits.dim(0)});
    const double loss = cross_entropy_forward<Scalar>(logits.matrix(), targets, options, lse.data());
    const double expected = fx.output<double>("loss")[0];
    if (std::is_same_v<Scalar, double>)
      CHECK(std::abs(loss - expected) <= 1e-10);
    else
      CHECK(std::abs(loss - expected) <= 1e-5 * std::max(1.0, std::abs(expected)));
    // With the forward's lse and without it (recomputed): the same gradient.
    Tensor<Scalar> dlogits(logits.shape()), recomputed(logits.shape());
    cross_entropy_backward<Scalar>(logits.matrix(), targets, lse.data(), options, Scalar(1), dlogits.matrix());
    cross_entropy_backward<Scalar>(logits.matrix(), targets, nullptr, options, Scalar(1), recomputed.matrix());
    check_close(dlogits, fx.output<double>("dlogits"));
    check_close(recomputed, fx.output<double>("dlogits"));
  }
}

TEST_CASE("cross_entropy_backward: agrees with central differences of the forward; scales by dloss; accumulates unless told not to") {
  const Index N = 6, V = 5;
  Tensor<double> logits = random_tensor<double>({N, V}, 101, 3.0);
  Tensor<std::int64_t> targets({N});
  for (Index n = 0; n < N; ++n) targets[n] = (3 * n + 1) % V;
  targets[2] = -1;  // ignored
  CrossEntropyOptions options;
  options.label_smoothing = 0.15;
  options.ignore_index = -1;
  const double dloss = 0.7;
  const auto loss = [&] { return dloss * cross_entropy_forward<double>(std::as_const(logits).matrix(), targets, options); };
  const Tensor<double> before = random_tensor<double>({N, V}, 102);
  Tensor<double> dlogits = before;
  cross_entropy_backward<double>(std::as_const(logits).matrix(), targets, nullptr, options, dloss, dlogits.matrix());
  Tensor<double> added({N, V});
  added.matrix() = dlogits.matrix() - before.matrix();
  check_gradient("cross_entropy_backward dlogits", logits, added, loss);
  CHECK(added.matrix().row(2).isZero(0));
  Tensor<double> written = before;
  cross_entropy_backward<double>(std::as_const(logits).matrix(), targets, nullptr, options, dloss, written.matrix(), Accumulate::no);
  CHECK((written.matrix() - added.matrix()).cwiseAbs().maxCoeff() < 1e-15);
}

TEST_CASE("cross_entropy: every target ignored gives 0 and a zero gradient (PyTorch: NaN)") {
  const Tensor<double> logits = random_tensor<double>({3, 4}, 103);
  const Tensor<std::int64_t> targets({3}, std::int64_t(-100));
  CHECK(cross_entropy_forward<double>(logits.matrix(), targets, CrossEntropyOptions{}) == 0.0);
  Tensor<double> dlogits({3, 4}, 5.0);
  cross_entropy_backward<double>(logits.matrix(), targets, nullptr, CrossEntropyOptions{}, 1.0, dlogits.matrix(), Accumulate::no);
  CHECK(dlogits.matrix().isZero(0));
}

TEST_CASE("cross_entropy: rejects a target outside the classes, the wrong number of targets and a bad label_smoothing") {
  const Tensor<float> logits({3, 4});
  Tensor<std::int64_t> targets({3});
  targets[1] = 4;
  CHECK_THROWS_WITH_AS(cross_entropy_forward<float>(logits.matrix(), targets, CrossEntropyOptions{}),
                       "cross_entropy_forward: target 4 at row 1 is outside the classes [0, 4) and is not ignore_index -100", RangeError);
  Tensor<float> dlogits({3, 4});
  CHECK_THROWS_WITH_AS(cross_entropy_backward<float>(logits.matrix(), targets, nullptr, CrossEntropyOptions{}, 1.0f, dlogits.matrix()),
                       "cross_entropy_backward: target 4 at row 1 is outside the classes [0, 4) and is not ignore_index -100", RangeError);
  CHECK_THROWS_WITH_AS(cross_entropy_forward<float>(logits.matrix(), Tensor<std::int64_t>({2}), CrossEntropyOptions{}),
                       "cross_entropy_forward: targets have shape [2]; expected [3] (one per row of logits)", ShapeError);
  CrossEntropyOptions bad;
  bad.label_smoothing = 1.5;
  CHECK_THROWS_WITH_AS(cross_entropy_forward<float>(logits.matrix(), Tensor<std::int64_t>({3}), bad),
                       "cross_entropy_forward: label_smoothing is 1.500000; expected a value in [0, 1]", RangeError);
}
