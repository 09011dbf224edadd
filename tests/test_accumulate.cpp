// core/accumulate.hpp: the one contract every kernel that takes an Accumulate keeps, checked here over all of them
// (linear_forward, softmax_rows_backward, layer_norm_backward, activation_backward, cross_entropy_backward):
//   Accumulate::no   the output is the result alone: what the buffer held before does not matter (two different
//                    starting buffers give the same bits);
//   Accumulate::yes  the output is what the buffer held plus that result (support/accumulate.hpp's tolerance).
// Each kernel's own test checks the result's values; this one checks only how it meets the caller's buffer.
#include "eigenformer/core/accumulate.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "eigenformer/core/random.hpp"
#include "eigenformer/core/tensor.hpp"
#include "eigenformer/ops/activations.hpp"
#include "eigenformer/ops/layer_norm.hpp"
#include "eigenformer/ops/linear.hpp"
#include "eigenformer/ops/softmax.hpp"
#include "eigenformer/train/cross_entropy.hpp"
#include "support/accumulate.hpp"

using namespace eigenformer;
using namespace eigenformer::testing;

namespace {

// A kernel under test: writes or adds its [rows, cols] result into `out`.
template <typename Scalar>
struct Kernel {
  std::string name;
  Index rows, cols;
  std::function<void(MatrixMap<Scalar> out, Accumulate)> run;
};

template <typename Scalar>
Tensor<Scalar> uniform_tensor(const Shape& shape, Random& rng, double lo = -1, double hi = 1) {
  Tensor<Scalar> t(shape);
  fill_uniform(t.view(), rng, lo, hi);
  return t;
}

template <typename Scalar>
std::vector<Kernel<Scalar>> kernels(Random& rng) {
  const Index N = 5, D = 7, F = 9;
  // The inputs live as long as the kernels: held by shared pointers the lambdas capture.
  auto x = std::make_shared<Tensor<Scalar>>(uniform_tensor<Scalar>({N, D}, rng));
  auto w = std::make_shared<Tensor<Scalar>>(uniform_tensor<Scalar>({F, D}, rng));
  auto bias = std::make_shared<Tensor<Scalar>>(uniform_tensor<Scalar>({F}, rng));
  auto dy = std::make_shared<Tensor<Scalar>>(uniform_tensor<Scalar>({N, D}, rng));
  auto h = std::make_shared<Tensor<Scalar>>(uniform_tensor<Scalar>({N, F}, rng, -3, 3));
  auto dh = std::make_shared<Tensor<Scalar>>(uniform_tensor<Scalar>({N, F}, rng));
  auto gamma = std::make_shared<Tensor<Scalar>>(uniform_tensor<Scalar>({D}, rng, 0.5, 1.5));
  auto mean = std::make_shared<Tensor<Scalar>>(uniform_tensor<Scalar>({N}, rng));
  auto rstd = std::make_shared<Tensor<Scalar>>(uniform_tensor<Scalar>({N}, rng, 0.5, 2));
  // Softmax rows: positive, summing to 1.
  auto y = std::make_shared<Tensor<Scalar>>(uniform_tensor<Scalar>({N, D}, rng, 0.1, 1));
  for (Index r = 0; r < N; ++r) y->matrix().row(r) /= y->matrix().row(r).sum();
  auto targets = std::make_shared<Tensor<std::int64_t>>(Shape{N});
  for (Index i = 0; i < N; ++i) (*targets)[i] = static_cast<std::int64_t>(rng.integer(0, D - 1));

  std::vector<Kernel<Scalar>> k;
  k.push_back({"linear_forward", N, F, [=](MatrixMap<Scalar> out, Accumulate a) {
                 linear_forward<Scalar>(std::as_const(*x).matrix(), std::as_const(*w).matrix(), bias->data(), out, a);
               }});
  k.push_back({"softmax_rows_backward", N, D, [=](MatrixMap<Scalar> out, Accumulate a) {
                 softmax_rows_backward<Scalar>(std::as_const(*y).matrix(), std::as_const(*dy).matrix(), out, a);
               }});
  k.push_back({"layer_norm_backward (dx)", N, D, [=](MatrixMap<Scalar> out, Accumulate a) {
                 Tensor<Scalar> dgamma({D}, Scalar(0)), dbeta({D}, Scalar(0));  // always accumulate: not under test
                 layer_norm_backward<Scalar>(std::as_const(*dy).matrix(), std::as_const(*x).matrix(), std::as_const(*gamma).vector(),
                                             std::as_const(*mean).vector(), std::as_const(*rstd).vector(), out, dgamma.vector(),
                                             dbeta.vector(), a);
               }});
  for (Activation act : {Activation::relu, Activation::gelu_erf, Activation::gelu_tanh})
    k.push_back({std::string("activation_backward ") + activation_name(act), N, F, [=](MatrixMap<Scalar> out, Accumulate a) {
                   activation_backward<Scalar>(act, std::as_const(*h).matrix(), bias->data(), std::as_const(*dh).matrix(), out, a);
                 }});
  k.push_back({"cross_entropy_backward", N, D, [=](MatrixMap<Scalar> out, Accumulate a) {
                 cross_entropy_backward<Scalar>(std::as_const(*x).matrix(), targets->view(), nullptr, CrossEntropyOptions{}, Scalar(1), out, a);
               }});
  return k;
}

}  // namespace

TEST_CASE_TEMPLATE("Accumulate: no writes the result whatever the buffer held; yes adds it onto the buffer, in every kernel that takes it",
                   Scalar, float, double) {
  Random rng(11);
  const std::vector<Kernel<Scalar>> all = kernels<Scalar>(rng);
  CHECK(all.size() == 7);
  for (const Kernel<Scalar>& kernel : all) {
    CAPTURE(kernel.name);
    const Shape shape{kernel.rows, kernel.cols};
    Tensor<Scalar> zeros(shape, Scalar(0)), held = uniform_tensor<Scalar>(shape, rng, -5, 5);
    Tensor<Scalar> written = held;
    kernel.run(zeros.matrix(), Accumulate::no);
    kernel.run(written.matrix(), Accumulate::no);
    CHECK(written.matrix() == zeros.matrix());  // the bits, not a tolerance: "no" never reads the buffer
    CHECK(written.matrix().cwiseAbs().maxCoeff() > Scalar(0));  // a result to add, not nothing
    Tensor<Scalar> added = held;
    kernel.run(added.matrix(), Accumulate::yes);
    check_accumulated(added.matrix(), held.matrix(), written.matrix());
  }
}
