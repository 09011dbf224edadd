// tests/support/toy_model.hpp: a stand-in model for the tests of train/ (optimiser, clipping, checkpoints), with no
// forward or backward of its own: four parameters with gradients beside them, visited as every block visits its own
// (core/visit.hpp), under the names tools/make_adamw_fixtures.py gives PyTorch's parameters. Also check_relative,
// the comparison those PyTorch fixtures are held to.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "eigenformer/core/tensor.hpp"
#include "eigenformer/core/visit.hpp"
#include "eigenformer/io/safetensors.hpp"

namespace eigenformer::testing {

template <typename Scalar>
struct ToyModel {
  Tensor<Scalar> weight{Shape{3, 4}}, bias{Shape{3}}, norm_weight{Shape{4}}, embedding{Shape{5, 4}};
  Tensor<Scalar> weight_grad, bias_grad, norm_weight_grad, embedding_grad;  // empty until allocate_gradients

  template <typename F>
  void visit_parameters(F&& f) {
    visit_parameter(f, "linear.weight", weight, weight_grad);
    visit_parameter(f, "linear.bias", bias, bias_grad);
    visit_parameter(f, "norm.weight", norm_weight, norm_weight_grad);
    visit_parameter(f, "embedding.weight", embedding, embedding_grad);
  }

  // Every parameter (or, with grad, every gradient) from `file`'s tensors prefix + name, converted to Scalar.
  void read(const SafeTensors& file, const std::string& prefix, bool grad = false) {
    visit_parameters([&](const std::string& name, Tensor<Scalar>& value, Tensor<Scalar>& g) {
      Tensor<Scalar>& into = grad ? g : value;
      into = file.get<Scalar>(prefix + name);
    });
  }
};

// |actual - expected| <= tol * |expected| for every element (a zero expects an exact zero); reports the worst.
template <typename A, typename E>
void check_relative(TensorView<const A> actual, TensorView<const E> expected, double tol) {
  REQUIRE_MESSAGE(actual.shape() == expected.shape(), "shape " << actual.shape().str() << " vs expected " << expected.shape().str());
  double worst = 0.0;
  Index worst_at = -1;
  for (Index i = 0; i < actual.size(); ++i) {
    const double a = static_cast<double>(actual[i]), e = static_cast<double>(expected[i]);
    const double err = std::abs(a - e) / std::max(std::abs(e), std::numeric_limits<double>::min());
    if (!(err <= worst)) {  // also catches NaN
      worst = std::isnan(err) ? INFINITY : err;
      worst_at = i;
    }
  }
  INFO("worst element " << worst_at << " of shape " << actual.shape().str() << ": relative error " << worst << " (tolerance " << tol << ")");
  CHECK(worst <= tol);
}
template <typename A, typename E>
void check_relative(const Tensor<A>& actual, const Tensor<E>& expected, double tol) {
  check_relative<A, E>(actual.view(), expected.view(), tol);
}

}  // namespace eigenformer::testing
