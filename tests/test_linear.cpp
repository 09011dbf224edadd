// Linear (nn/linear.hpp, ops/linear.hpp) against torch.nn.Linear; both kernels of linear_forward against an exact sum;
// Accumulate::yes and forward_accumulate add onto y what the plain call writes. linear_backward against central
// differences, through blocks of wider weight and gradient matrices as a fused projection has them.
#include "eigenformer/nn/linear.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>

#include "eigenformer/core/random.hpp"
#include "eigenformer/core/threading.hpp"
#include "support/accumulate.hpp"
#include "support/fixtures.hpp"
#include "eigenformer/train/gradients.hpp"
#include "support/gradcheck.hpp"

using namespace eigenformer;
using namespace eigenformer::testing;

TEST_CASE_TEMPLATE("Linear: matches torch.nn.Linear, with and without bias", Scalar, float, double) {
  for (const char* name : {"linear", "linear_no_bias"}) {
    CAPTURE(name);
    Fixture fx(name);
    Linear<Scalar> linear(LinearConfig{fx.meta_int("in_features"), fx.meta_int("out_features"), fx.file().contains("param.bias")});
    fx.load(linear);
    const Tensor<Scalar> x = fx.input<Scalar>("x");
    check_close(linear.forward(x), fx.output<double>("y"));
    Tensor<Scalar> y(x.shape().with_back(fx.meta_int("out_features")));  // into a caller's buffer
    linear.forward(x, y);
    check_close(y, fx.output<double>("y"));
  }
}

TEST_CASE("Linear: rejects the wrong width and bad sizes") {
  Linear<float> linear(LinearConfig{5, 7});
  CHECK_THROWS_WITH_AS(linear.forward(Tensor<float>({2, 3, 4})), "Linear.forward: x has shape [2, 3, 4]; expected [..., 5] (in_features)", ShapeError);
  Tensor<float> y({2, 6});
  CHECK_THROWS_WITH_AS(linear.forward(Tensor<float>({2, 5}), y), "Linear.forward: y has shape [2, 6]; expected [2, 7]", ShapeError);
  CHECK_THROWS_WITH_AS(Linear<float>(LinearConfig{0, 3}), "Linear: in_features is 0; expected > 0", RangeError);
}

TEST_CASE_TEMPLATE("linear_forward: the streaming kernel (few rows) and Eigen's GEMM (many) both give x W^T + b", Scalar, float, double) {
  // Sizes that leave remainders everywhere: rows of x not a multiple of 4, K not a multiple of any SIMD width,
  // output features not a multiple of the kernel's groups or chunks, a weight that is a block of a wider matrix.
  const Index K = 37, N_out = 133, stride = 41;
  const Tensor<Scalar> wide = random_tensor<Scalar>({N_out + 3, stride}, 1), bias = random_tensor<Scalar>({N_out}, 2);
  const auto w = wide.matrix().block(2, 1, N_out, K);  // rows 41 apart, starting mid-row
  for (Index M : {1, 2, 3, 4, 5, 7, 8, 15, 16, 17, 40}) {
    CAPTURE(M);
    const Tensor<Scalar> x = random_tensor<Scalar>({M, K}, 3 + M);
    // Exact reference in long double, element by element.
    Tensor<double> expected({M, N_out});
    for (Index m = 0; m < M; ++m)
      for (Index n = 0; n < N_out; ++n) {
        long double sum = bias[n];
        for (Index k = 0; k < K; ++k) sum += static_cast<long double>(x.at(m, k)) * w(n, k);
        expected.at(m, n) = static_cast<double>(sum);
      }
    const double tolerance = std::is_same_v<Scalar, double> ? 1e-13 : 1e-5;
    Tensor<Scalar> y({M, N_out}), no_bias({M, N_out});
    linear_forward<Scalar>(x.matrix(), w, bias.data(), y.matrix());
    linear_forward<Scalar>(x.matrix(), w, nullptr, no_bias.matrix());
    CHECK((y.matrix().template cast<double>() - expected.matrix()).cwiseAbs().maxCoeff() <= tolerance);
    RowMatrix<double> with_bias_added = no_bias.matrix().template cast<double>();
    for (Index m = 0; m < M; ++m)
      for (Index n = 0; n < N_out; ++n) with_bias_added(m, n) += static_cast<double>(bias[n]);
    CHECK((with_bias_added - expected.matrix()).cwiseAbs().maxCoeff() <= tolerance);
    // Into a strided output (every other row of a buffer), and on 1 or 2 threads: the same bits.
    Tensor<Scalar> buffer({2 * M, N_out});
    StridedMatrixMap<Scalar> strided(buffer.data(), M, N_out, Eigen::OuterStride<>(2 * N_out));
    const int before = num_threads();
    for (int threads : {1, 2}) {
      set_num_threads(threads);
      linear_forward<Scalar>(x.matrix(), w, bias.data(), strided);
      CHECK(MatrixMap<Scalar>(buffer.data(), 2 * M, N_out)(Eigen::seq(0, 2 * M - 1, 2), Eigen::all) == y.matrix());
    }
    set_num_threads(before);
  }
}

TEST_CASE_TEMPLATE("linear_forward: Accumulate::yes adds x W^T + b onto y, in every kernel", Scalar, float, double) {
  // 1 to 16 rows: the streaming kernel (remainders of 1, 2 and 3 rows); 17 and 40: the GEMM (ops/gemm.hpp or
  // Eigen's). The larger size splits the streaming kernel over threads; the weight is a strided block.
  struct Size { Index K, n_out, stride; };
  for (const Size size : {Size{37, 133, 41}, Size{260, 300, 263}}) {
    const Tensor<Scalar> wide = random_tensor<Scalar>({size.n_out + 3, size.stride}, 11), bias = random_tensor<Scalar>({size.n_out}, 12);
    const auto w = wide.matrix().block(2, 1, size.n_out, size.K);
    for (Index M : {1, 2, 3, 4, 5, 16, 17, 40}) {
      CAPTURE(size.K);
      CAPTURE(M);
      const Tensor<Scalar> x = random_tensor<Scalar>({M, size.K}, 13 + M), residual = random_tensor<Scalar>({M, size.n_out}, 14 + M);
      for (const Scalar* b : {bias.data(), static_cast<const Scalar*>(nullptr)}) {
        CAPTURE(b != nullptr);
        Tensor<Scalar> plain({M, size.n_out}), y = residual;
        linear_forward<Scalar>(x.matrix(), w, b, plain.matrix());
        linear_forward<Scalar>(x.matrix(), w, b, y.matrix(), Accumulate::yes);
        check_accumulated(y.matrix(), residual.matrix(), plain.matrix());
        // Into strided rows (every other row of a buffer), on 1 and 2 threads; the rows between are left alone.
        Tensor<Scalar> buffer({2 * M, size.n_out});
        const int before = num_threads();
        for (int threads : {1, 2}) {
          set_num_threads(threads);
          buffer.fill(Scalar(0.5));
          StridedMatrixMap<Scalar> strided(buffer.data(), M, size.n_out, Eigen::OuterStride<>(2 * size.n_out));
          strided = residual.matrix();
          linear_forward<Scalar>(x.matrix(), w, b, strided, Accumulate::yes);
          check_accumulated(strided, residual.matrix(), plain.matrix());
          CHECK((MatrixMap<Scalar>(buffer.data(), 2 * M, size.n_out)(Eigen::seq(1, 2 * M - 1, 2), Eigen::all).array() == Scalar(0.5)).all());
        }
        set_num_threads(before);
      }
    }
  }
}

TEST_CASE_TEMPLATE("Linear: forward_accumulate adds forward's result onto y", Scalar, float, double) {
  Linear<Scalar> linear(LinearConfig{29, 19});
  Random rng(15);
  linear.visit_parameters([&](const std::string&, Tensor<Scalar>& t) { fill_normal(t.view(), rng); });
  for (Index T : {1, 2, 3, 4, 5, 16, 17, 33}) {  // [2, T, in]: rows B*T = 2 .. 66
    CAPTURE(T);
    const Tensor<Scalar> x = random_tensor<Scalar>({2, T, 29}, 16 + T), residual = random_tensor<Scalar>({2, T, 19}, 17 + T);
    Tensor<Scalar> y = residual;
    linear.forward_accumulate(x, y);
    check_accumulated(y.matrix(), residual.matrix(), linear.forward(x).matrix());
  }
}

TEST_CASE("Linear: forward_accumulate refuses the wrong shape and a y that overlaps x") {
  Linear<float> linear(LinearConfig{4, 4});
  Tensor<float> x({3, 4}), y({3, 5});
  CHECK_THROWS_WITH_AS(linear.forward_accumulate(x, y), "Linear.forward_accumulate: y has shape [3, 5]; expected [3, 4]", ShapeError);
  CHECK_THROWS_WITH_AS(linear.forward_accumulate(Tensor<float>({3, 5}), y),
                       "Linear.forward_accumulate: x has shape [3, 5]; expected [..., 4] (in_features)", ShapeError);
  Tensor<float> both({4, 4});  // x is rows 0-1; y rows 1-2 overlap it, rows 2-3 do not
  CHECK_THROWS_WITH_AS(linear.forward_accumulate(TensorView<const float>(both.data(), Shape{2, 4}), TensorView<float>(both.data() + 4, Shape{2, 4})),
                       "Linear.forward_accumulate: y overlaps x; expected separate buffers (the kernels read x while writing y)", ShapeError);
  CHECK_NOTHROW(linear.forward_accumulate(TensorView<const float>(both.data(), Shape{2, 4}), TensorView<float>(both.data() + 8, Shape{2, 4})));
  CHECK_THROWS_WITH_AS(linear.forward_accumulate(both, both),
                       "Linear.forward_accumulate: y overlaps x; expected separate buffers (the kernels read x while writing y)", ShapeError);
}

TEST_CASE("linear_backward: dx, dW and db agree with central differences; dx accumulates unless told not to") {
  const Index N = 5, in = 4, out = 3;
  // W and its gradient are [out, in] blocks of wider matrices (rows 1.., columns 2..), as in a fused q/k/v weight:
  // the gradient of the whole wide matrix is checked, zero outside the block.
  Tensor<double> x = random_tensor<double>({N, in}, 21), wide = random_tensor<double>({out + 2, in + 3}, 22), b = random_tensor<double>({out}, 23);
  const Tensor<double> dy = random_tensor<double>({N, out}, 24), dx_before = random_tensor<double>({N, in}, 25);
  const auto loss = [&] {
    Tensor<double> y({N, out});
    linear_forward<double>(std::as_const(x).matrix(), std::as_const(wide).matrix().block(1, 2, out, in), b.data(), y.matrix());
    return dot(y, dy);
  };
  Tensor<double> dx = dx_before, dwide({out + 2, in + 3}), db({out});
  linear_backward<double>(std::as_const(x).matrix(), wide.matrix().block(1, 2, out, in), dy.matrix(), dx.matrix(), dwide.matrix().block(1, 2, out, in), db.data());
  Tensor<double> dx_only({N, in});
  dx_only.matrix() = dx.matrix() - dx_before.matrix();
  check_gradient("linear_backward dx", x, dx_only, loss);
  check_gradient("linear_backward dW", wide, dwide, loss);
  check_gradient("linear_backward db", b, db, loss);
  // Accumulate::no writes dx; without a bias, db is not needed; dW always accumulates.
  Tensor<double> dx_written = dx_before, dwide_twice = dwide;
  linear_backward<double>(std::as_const(x).matrix(), wide.matrix().block(1, 2, out, in), dy.matrix(), dx_written.matrix(),
                          dwide_twice.matrix().block(1, 2, out, in), nullptr, Accumulate::no);
  CHECK((dx_written.matrix() - dx_only.matrix()).cwiseAbs().maxCoeff() < 1e-14);
  CHECK((dwide_twice.matrix() - 2 * dwide.matrix()).cwiseAbs().maxCoeff() < 1e-14);
}

TEST_CASE("Linear.backward: dx, weight and bias gradients agree with central differences; a part of the rows alone too") {
  Linear<double> layer(LinearConfig{4, 6});
  randomize_parameters(layer, 31);
  allocate_gradients(layer);
  Tensor<double> x = random_tensor<double>({2, 3, 4}, 32);
  const Tensor<double> dy = random_tensor<double>({2, 3, 6}, 33);
  const auto loss = [&] { return dot(layer.forward(x), dy); };
  Tensor<double> dx({2, 3, 4});
  layer.backward(x, dy, dx);
  check_gradient("Linear dx", x, dx, loss);
  check_parameter_gradients("Linear", layer, loss);

  // Rows [2, 5) only (one part of a fused projection): gradients outside them stay zero.
  zero_gradients(layer);
  const Tensor<double> dpart = random_tensor<double>({6, 3}, 34);
  Tensor<double> dx_part({6, 4});
  layer.backward_rows(std::as_const(x).matrix(), 2, 3, dpart.matrix(), dx_part.matrix());
  const auto part_loss = [&] {
    const Tensor<double> y = layer.forward(x);
    return (std::as_const(y).matrix(6, 6).middleCols(2, 3).array() * dpart.matrix().array()).sum();
  };
  check_gradient("Linear rows dx", x, dx_part.view().reshaped({2, 3, 4}), part_loss);
  check_parameter_gradients("Linear rows", layer, part_loss);
}

TEST_CASE("Linear.backward: refuses to run before allocate_gradients, on a narrowed weight, and on a dy of the wrong shape") {
  Linear<float> layer(LinearConfig{4, 6});
  Tensor<float> x({3, 4}), dy({3, 6}), dx({3, 4});
  CHECK_THROWS_WITH_AS(layer.backward(x, dy, dx), doctest::Contains("call allocate_gradients(model)"), ShapeError);
  allocate_gradients(layer);
  CHECK_THROWS_WITH_AS(layer.backward(x, Tensor<float>({3, 5}), dx), doctest::Contains("dy has shape [3, 5]; expected [3, 6]"), ShapeError);
  layer.narrow_weights(WeightType::bf16);
  CHECK_THROWS_WITH_AS(layer.backward(x, dy, dx), doctest::Contains("narrowed for inference"), ShapeError);
}
