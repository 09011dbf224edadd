// tests/support/gradcheck.hpp: checking a backward function against central finite differences, in double.
// A test picks a fixed random upstream gradient dy and defines the scalar loss L = sum(forward(...) * dy), whose
// gradient with respect to any input is exactly what the backward returns when given dy. check_gradient then moves
// each element of that input by +-step, dL/dx_i ~ (L(x_i + step) - L(x_i - step)) / (2 step) (error O(step^2) from
// the third derivative, plus the loss's rounding over 2 step), and compares:
//   relative error = max_i |analytic_i - numeric_i| / max(max_i |numeric_i|, 1e-300)
// (the worst element measured against the gradient's scale: elementwise ratios are noise where a gradient is ~0).
// It must stay below `tolerance` (1e-6 by default). Set EIGENFORMER_GRADCHECK_REPORT=1 to print every check's error.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "eigenformer/core/tensor.hpp"

namespace eigenformer::testing {

// sum(a * b) over all elements: the loss of a forward output against a fixed upstream gradient.
inline double dot(TensorView<const double> a, TensorView<const double> b) {
  REQUIRE(a.shape() == b.shape());
  return a.vector().dot(b.vector());
}

// Compares `analytic` (what the backward gave for the input x) with central differences of loss(), which must read
// x (x is restored after each step). Returns the relative error defined above.
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
  const double relative = worst / std::max(scale, 1e-300);
  if (std::getenv("EIGENFORMER_GRADCHECK_REPORT"))
    std::printf("gradcheck %-60s %zu elements, max |grad| %.3g, relative error %.3g\n", name.c_str(), static_cast<std::size_t>(x.size()), scale,
                relative);
  INFO(name << ": worst element " << worst_at << " differs by " << worst << ", relative " << relative << " (tolerance " << tolerance
            << ", max |numeric| " << scale << ")");
  CHECK(relative < tolerance);
  return relative;
}

}  // namespace eigenformer::testing
