// Narrow weights (nn/layer_weight.hpp): bfloat16 rounding and int8 quantisation error within their bounds, products with
// narrow weights equal to products with the same weights widened, for the streaming and the GEMM path, Accumulate::yes
// adds onto y what the plain call writes, and the layers refuse what no longer makes sense once narrowed. Accuracy of a whole GPT-2 is in test_gpt2.cpp.
#include "eigenformer/nn/layer_weight.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <type_traits>

#include "eigenformer/core/random.hpp"
#include "eigenformer/core/threading.hpp"
#include "eigenformer/nn/embedding.hpp"
#include "eigenformer/nn/linear.hpp"
#include "support/accumulate.hpp"

using namespace eigenformer;

TEST_CASE("bfloat16: round to nearest even, exact values kept, NaN and infinities kept, relative error <= 2^-8") {
  for (float exact : {0.0f, -0.0f, 1.0f, -2.5f, 0.15625f, 65536.0f, std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity()})
    CHECK(bf16_to_float(float_to_bf16(exact)) == exact);
  CHECK(std::isnan(bf16_to_float(float_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
  // 1 + 2^-8 lies halfway between 1 and 1 + 2^-7: ties go to the even mantissa (1); 1 + 3 * 2^-8 goes up to 1 + 2^-6.
  CHECK(bf16_to_float(float_to_bf16(1.0f + 0x1.0p-8f)) == 1.0f);
  CHECK(bf16_to_float(float_to_bf16(1.0f + 3 * 0x1.0p-8f)) == 1.0f + 0x1.0p-6f);
  CHECK(bf16_to_float(float_to_bf16(1.0f + 0x1.8p-8f)) == 1.0f + 0x1.0p-7f);  // above halfway: up
  Random rng(1);
  for (int i = 0; i < 10000; ++i) {
    const float f = static_cast<float>(rng.normal() * std::exp(rng.uniform(-20, 20)));
    CHECK(std::abs(bf16_to_float(float_to_bf16(f)) - f) <= std::abs(f) * 0x1.0p-8f);
  }
}

TEST_CASE_TEMPLATE("NarrowMatrix: int8 rows keep their largest magnitude and err by at most half a step", Scalar, float, double) {
  Tensor<Scalar> w = random_tensor<Scalar>({5, 33}, 2);
  w.matrix().row(3).setZero();  // an all-zero row
  const NarrowMatrix<Scalar> q(std::as_const(w).matrix(), WeightType::int8);
  CHECK(q.bytes() == 5 * 33 + 5 * sizeof(Scalar));
  RowMatrix<Scalar> widened(5, 33);
  q.widen_rows(0, 5, widened);
  for (Index r = 0; r < 5; ++r) {
    const Scalar largest = w.matrix().row(r).cwiseAbs().maxCoeff(), step = largest / 127;
    CHECK(widened.row(r).cwiseAbs().maxCoeff() == doctest::Approx(static_cast<double>(largest)).epsilon(1e-6));
    CHECK((widened.row(r) - w.matrix().row(r)).cwiseAbs().maxCoeff() <= step / 2 * Scalar(1.0001));
  }
  CHECK(widened.row(3).isZero(0));
  Tensor<Scalar> bad({1, 2});
  bad[1] = std::numeric_limits<Scalar>::infinity();
  CHECK_THROWS_WITH_AS(NarrowMatrix<Scalar>(std::as_const(bad).matrix(), WeightType::int8),
                       "NarrowMatrix: row 0 holds a value that is not finite; int8 cannot represent it", RangeError);
}

TEST_CASE_TEMPLATE("linear_forward with narrow weights equals the product with the same weights widened", Scalar, float, double) {
  // K = 1100 crosses the opt-in bf16 dot-product kernel's blocks of 512 columns (ops/linear.hpp).
  for (const Index K : {Index(45), Index(1100)}) {
    const Index rows = 70, row0 = 9, n_out = 53;  // a block of rows, as one part of a fused projection
    const Tensor<Scalar> w = random_tensor<Scalar>({rows, K}, 3), bias = random_tensor<Scalar>({n_out}, 4);
    for (WeightType type : {WeightType::bf16, WeightType::int8}) {
      const NarrowMatrix<Scalar> narrow(w.matrix(), type);
      RowMatrix<Scalar> widened(rows, K);
      narrow.widen_rows(0, rows, widened);
      for (Index M : {1, 3, 8, 16, 17, 300}) {  // the streaming kernel up to 16 rows, Eigen's GEMM beyond
        CAPTURE(weight_type_name(type));
        CAPTURE(M);
        CAPTURE(K);
        const Tensor<Scalar> x = random_tensor<Scalar>({M, K}, 5 + M);
        Tensor<Scalar> y({M, n_out}), expected({M, n_out});
        linear_forward<Scalar>(x.matrix(), narrow, row0, n_out, bias.data(), y.matrix());
        linear_forward<Scalar>(x.matrix(), widened.middleRows(row0, n_out), bias.data(), expected.matrix());
        // Rounding scales with sum |x| |w|.
        const double magnitude = static_cast<double>((x.matrix().cwiseAbs() * widened.middleRows(row0, n_out).cwiseAbs().transpose()).maxCoeff());
        const double relative = std::is_same_v<Scalar, double> ? 1e-14 : 1e-6;
        const double tolerance = relative * magnitude;
        CHECK((y.matrix() - expected.matrix()).cwiseAbs().maxCoeff() <= tolerance);
        // The streaming kernel's threads split the output features: the same bits on 1 and 2. Many rows go to a GEMM
        // (Eigen's, or OpenBLAS's with EIGENFORMER_USE_BLAS) whose blocks over K depend on the thread count: close.
        const int before = num_threads();
        set_num_threads(1);
        Tensor<Scalar> one({M, n_out});
        linear_forward<Scalar>(x.matrix(), narrow, row0, n_out, bias.data(), one.matrix());
        set_num_threads(before);
        if (M <= kStreamRows)
          CHECK(one.matrix() == y.matrix());
        else
          CHECK((one.matrix() - y.matrix()).cwiseAbs().maxCoeff() <= tolerance);
      }
    }
  }
}

TEST_CASE_TEMPLATE("linear_forward with narrow weights: Accumulate::yes adds x W^T + b onto y", Scalar, float, double) {
  const Index K = 45, rows = 70, row0 = 9, n_out = 53;
  const Tensor<Scalar> w = random_tensor<Scalar>({rows, K}, 21), bias = random_tensor<Scalar>({n_out}, 22);
  for (WeightType type : {WeightType::bf16, WeightType::int8}) {
    const NarrowMatrix<Scalar> narrow(w.matrix(), type);
    for (Index M : {1, 2, 3, 4, 5, 16, 17, 300}) {  // the streaming kernel up to 16 rows, widened blocks and Eigen's GEMM beyond
      CAPTURE(weight_type_name(type));
      CAPTURE(M);
      const Tensor<Scalar> x = random_tensor<Scalar>({M, K}, 23 + M), residual = random_tensor<Scalar>({M, n_out}, 24 + M);
      for (const Scalar* b : {bias.data(), static_cast<const Scalar*>(nullptr)}) {
        CAPTURE(b != nullptr);
        Tensor<Scalar> plain({M, n_out}), y = residual;
        linear_forward<Scalar>(x.matrix(), narrow, row0, n_out, b, plain.matrix());
        linear_forward<Scalar>(x.matrix(), narrow, row0, n_out, b, y.matrix(), Accumulate::yes);
        testing::check_accumulated(y.matrix(), residual.matrix(), plain.matrix());
      }
    }
  }
}

TEST_CASE_TEMPLATE("Linear: forward_accumulate with narrowed weights adds forward's result onto y", Scalar, float, double) {
  for (WeightType type : {WeightType::bf16, WeightType::int8}) {
    Linear<Scalar> linear(LinearConfig{40, 24});
    Random rng(25);
    linear.visit_parameters([&](const std::string&, Tensor<Scalar>& t) { fill_normal(t.view(), rng); });
    linear.narrow_weights(type);
    for (Index T : {1, 2, 3, 4, 5, 16, 17, 40}) {
      CAPTURE(weight_type_name(type));
      CAPTURE(T);
      const Tensor<Scalar> x = random_tensor<Scalar>({1, T, 40}, 26 + T), residual = random_tensor<Scalar>({1, T, 24}, 27 + T);
      Tensor<Scalar> y = residual;
      linear.forward_accumulate(x, y);
      testing::check_accumulated(y.matrix(), residual.matrix(), linear.forward(x).matrix());
    }
  }
}

TEST_CASE("Linear and Embedding: narrowed once, for inference; loading, saving or narrowing again is refused") {
  Linear<float> linear(LinearConfig{6, 4});
  Random rng(6);
  linear.visit_parameters([&](const std::string&, Tensor<float>& t) { fill_normal(t.view(), rng); });
  const Tensor<float> x = random_tensor<float>({2, 6}, 7);
  const Tensor<float> full = linear.forward(x);
  linear.narrow_weights(WeightType::bf16);
  CHECK(linear.weight_type() == WeightType::bf16);
  CHECK(linear.weight().size() == 0);  // the full-width copy is gone
  CHECK((linear.forward(x).matrix() - full.matrix()).cwiseAbs().maxCoeff() < 0.05);
  CHECK_THROWS_WITH_AS(linear.narrow_weights(WeightType::int8), "Linear.narrow_weights: the weights are already bf16", RangeError);
  CHECK_THROWS_WITH_AS(linear.visit_parameters([](const std::string&, Tensor<float>&) {}),
                       "Linear.visit_parameters: the weights were narrowed to bf16 for inference; they can no longer be loaded, saved or visited",
                       RangeError);

  Embedding<float> embedding(EmbeddingConfig{10, 4});
  embedding.visit_parameters([&](const std::string&, Tensor<float>& t) { fill_normal(t.view(), rng); });
  const Tensor<float> table = embedding.weight();
  embedding.narrow_weights(WeightType::int8);
  Tensor<std::int64_t> ids(Shape{3});
  ids[0] = 7;
  ids[2] = 7;
  const Tensor<float> rows = embedding.forward(ids);
  for (Index i = 0; i < 3; ++i)
    CHECK((rows.matrix().row(i) - table.matrix().row(ids[i])).cwiseAbs().maxCoeff() <= table.matrix().row(ids[i]).cwiseAbs().maxCoeff() / 254 * 1.0001f);
  CHECK_THROWS_WITH_AS(parse_weight_type("fp8"), "weight type 'fp8' is not one of f32, bf16, int8", RangeError);
  CHECK(parse_weight_type("bf16") == WeightType::bf16);
}
