// tests/support/gradcheck.hpp: checking a backward function against central finite differences, in double.
// A test picks a fixed random upstream gradient dy and defines the scalar loss L = sum(forward(...) * dy), whose
// gradient with respect to any input is exactly what the backward returns when given dy. check_gradient then moves
// each element of that input by +-step, dL/dx_i ~ (L(x_i + step) - L(x_i - step)) / (2 step) (error O(step^2) from
// the third derivative, plus the loss's rounding over 2 step), and compares:
//   relative error = max_i |analytic_i - numeric_i| / max(max_i |numeric_i|, 1e-300)
// (the worst element measured against the gradient's scale: elementwise ratios are noise where a gradient is ~0).
// It must stay below `tolerance` (1e-6 by default). A gradient that is zero in exact arithmetic is checked to be as small
// as the differences' rounding noise instead. Set EIGENFORMER_GRADCHECK_REPORT=1 to print every check's error.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "eigenformer/core/random.hpp"
#include "eigenformer/core/tensor.hpp"

namespace eigenformer::testing {

// sum(a * b) over all elements: the loss of a forward output against a fixed upstream gradient.
inline double dot(TensorView<const double> a, TensorView<const double> b) {
  REQUIRE(a.shape() == b.shape());
  return a.vector().dot(b.vector());
}

// Compares `analytic` (what the backward gave for the input x) with central differences of loss(), which must read
// x (x is restored after each step). Returns the relative error defined above.
// Below this, every numeric derivative is rounding noise of a loss of order 1 (~1e-16 / step).
constexpr double kZeroGradient = 1e-8;

template <typename Loss>
double check_gradient(const std::string& name, TensorView<double> x, TensorView<const double> analytic, Loss&& loss, double step = 1e-5,
                      double tolerance = 1e-6) {
  REQUIRE(x.shape() == analytic.shape());
  double worst = 0, scale = 0;
  Index worst_at = -1;
  for (Index i = 0; i < x.size(); ++i) {
    const double saved = x.data()[i];
    x.data()[i] = saved + step;
    const double up = loss();
    x.data()[i] = saved - step;
    const double down = loss();
    x.data()[i] = saved;
    const double numeric = (up - down) / (2 * step);
    const double a = analytic.data()[i];
    REQUIRE_MESSAGE(std::isfinite(a), name << ": the analytic gradient at element " << i << " is " << a);
    scale = std::max(scale, std::abs(numeric));
    if (std::abs(a - numeric) > worst) {
      worst = std::abs(a - numeric);
      worst_at = i;
    }
  }
  // A gradient that is zero in exact arithmetic (the key projection's bias: softmax ignores a shift shared by every
  // key) leaves only rounding noise in the differences: then the analytic gradient must be as small as that noise.
  if (scale < kZeroGradient) {
    double largest = 0;
    for (Index i = 0; i < x.size(); ++i) largest = std::max(largest, std::abs(analytic.data()[i]));
    INFO(name << ": a gradient that is zero up to rounding, |numeric| < " << kZeroGradient << "; largest |analytic| " << largest);
    CHECK(largest < kZeroGradient);
    return 0.0;
  }
  const double relative = worst / std::max(scale, 1e-300);
  if (std::getenv("EIGENFORMER_GRADCHECK_REPORT"))
    std::printf("gradcheck %-60s %zu elements, max |grad| %.3g, relative error %.3g\n", name.c_str(), static_cast<std::size_t>(x.size()), scale,
                relative);
  INFO(name << ": worst element " << worst_at << " differs by " << worst << ", relative " << relative << " (tolerance " << tolerance
            << ", max |numeric| " << scale << ")");
  CHECK(relative < tolerance);
  return relative;
}

// check_gradient for every parameter of a block (visited with its gradient, core/visit.hpp), named
// "<what> <parameter name>". The block's gradients must hold what one backward accumulated for this loss.
template <typename Block, typename Loss>
void check_parameter_gradients(const std::string& what, Block& block, Loss&& loss, double step = 1e-5, double tolerance = 1e-6) {
  int visited = 0;
  block.visit_parameters([&](const std::string& name, Tensor<double>& value, Tensor<double>& grad) {
    ++visited;
    check_gradient(what + " " + name, value, grad, loss, step, tolerance);
  });
  CHECK(visited > 0);
}

// Fills every parameter of a block with normal values of the given spread (seeded): blocks start with zero biases
// and unit norms, which would leave some gradients untested.
template <typename Block>
void randomize_parameters(Block& block, std::uint64_t seed, double stddev = 0.5) {
  Random rng(seed);
  block.visit_parameters([&](const std::string&, Tensor<double>& t) { fill_normal(t.view(), rng, 0.0, stddev); });
}

}  // namespace eigenformer::testing
