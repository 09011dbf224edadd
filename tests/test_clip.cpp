// gradient_norm, clip_gradient_norm and scale_gradients (train/clip.hpp): against torch.nn.utils.clip_grad_norm_ on
// PyTorch 1.13's numbers (fixture by tools/make_adamw_fixtures.py), over every gradient of a real Transformer, with a
// NaN or inf gradient (left alone, returned), clip_coefficient (the factor AdamWStepOptions takes), and the refusals.
#include "eigenformer/train/clip.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <string>

#include "eigenformer/core/random.hpp"
#include "eigenformer/core/threading.hpp"
#include "eigenformer/io/parameters.hpp"
#include "eigenformer/io/safetensors.hpp"
#include "eigenformer/models/transformer.hpp"
#include "eigenformer/train/gradients.hpp"
#include "support/toy_model.hpp"

using namespace eigenformer;
using namespace eigenformer::testing;

namespace {
const std::string clip_fixture = std::string(EIGENFORMER_FIXTURE_DIR) + "/adamw_clip.safetensors";
}

TEST_CASE_TEMPLATE("clip_gradient_norm: the norm it returns and the gradients it leaves equal clip_grad_norm_'s, clipped or not", Scalar, double, float) {
  const SafeTensors fx(clip_fixture);
  const double max_norm = std::stod(fx.metadata().at("max_norm"));
  const Tensor<double> norms = fx.get<double>("output.norm");
  const double tol = std::is_same_v<Scalar, double> ? 1e-12 : 1e-6;
  for (int t = 1; t <= 3; ++t) {
    CAPTURE(t);
    ToyModel<Scalar> model;
    model.read(fx, "param.");
    model.read(fx, "grad." + std::to_string(t) + ".", /*grad=*/true);
    CHECK(std::abs(gradient_norm(model) - norms[t - 1]) <= tol * norms[t - 1]);
    const ToyModel<Scalar> before = model;
    const double norm = clip_gradient_norm(model, max_norm);
    CHECK(std::abs(norm - norms[t - 1]) <= tol * norms[t - 1]);
    model.visit_parameters([&](const std::string& name, Tensor<Scalar>&, Tensor<Scalar>& grad) {
      CAPTURE(name);
      check_relative(grad, fx.get<double>("output." + std::to_string(t) + ".clipped." + name), tol);
    });
    if (norms[t - 1] <= max_norm) {  // not clipped: the very same values, not a multiplication by 1
      CHECK(model.weight_grad.vector() == before.weight_grad.vector());
      CHECK(model.embedding_grad.vector() == before.embedding_grad.vector());
    } else {
      CHECK(gradient_norm(model) <= max_norm);
    }
  }
}

TEST_CASE("gradient_norm: covers every gradient of a Transformer, once") {
  TransformerConfig c;
  c.d_model = 8, c.num_heads = 2, c.num_encoder_layers = 1, c.num_decoder_layers = 2, c.d_ff = 16;
  c.src_vocab_size = 11, c.tgt_vocab_size = 13, c.max_len = 20, c.tie_target_embedding = true;
  Transformer<double> model(c);
  allocate_gradients(model);
  model.visit_parameters([](const std::string&, Tensor<double>&, Tensor<double>& grad) { grad.fill(2.0); });
  const double n = static_cast<double>(count_parameters(model));
  CHECK(gradient_norm(model) == doctest::Approx(2.0 * std::sqrt(n)).epsilon(1e-14));
  // Clipping to half that norm halves every gradient (up to the 1e-6 torch adds to the norm).
  clip_gradient_norm(model, std::sqrt(n));
  model.visit_parameters([](const std::string& name, Tensor<double>&, Tensor<double>& grad) {
    CAPTURE(name);
    CHECK(grad.vector().isConstant(1.0, 1e-6));
  });
}

TEST_CASE("clip_gradient_norm: a NaN or inf gradient gives a norm that is not finite, returned with the gradients untouched") {
  for (double bad : {NAN, INFINITY}) {
    CAPTURE(bad);
    ToyModel<double> model;
    allocate_gradients(model);
    model.bias_grad.fill(0.5);
    model.embedding_grad[7] = bad;
    const ToyModel<double> before = model;
    const double norm = clip_gradient_norm(model, 1.0);
    CHECK_FALSE(std::isfinite(norm));
    CHECK(model.bias_grad.vector() == before.bias_grad.vector());
    CHECK((std::isnan(bad) ? std::isnan(model.embedding_grad[7]) : model.embedding_grad[7] == bad));
  }
}

TEST_CASE("scale_gradients: accumulation over micro-batches; the gradient of the mean is the mean of the gradients") {
  // Two micro-batches' gradients added as two backwards would add them, then scaled by 1/2.
  const Tensor<double> first = random_tensor<double>({3, 4}, 1), second = random_tensor<double>({3, 4}, 2);
  ToyModel<double> model;
  allocate_gradients(model);
  model.weight_grad.vector() += first.vector();
  model.weight_grad.vector() += second.vector();
  scale_gradients(model, 0.5);
  for (Index i = 0; i < 12; ++i) CHECK(model.weight_grad[i] == (first[i] + second[i]) * 0.5);
  CHECK(model.bias_grad.vector().isZero(0));
}

TEST_CASE("clip.hpp: an unallocated gradient, a max_norm <= 0 and a factor that is not finite are refused by name") {
  ToyModel<float> model;
  CHECK_THROWS_WITH_AS(gradient_norm(model),
                       "gradient_norm: the gradient of 'linear.weight' has shape [0], its parameter [3, 4]; call allocate_gradients(model) once before "
                       "training",
                       ShapeError);
  CHECK_THROWS_WITH_AS(scale_gradients(model, 0.5), doctest::Contains("scale_gradients: the gradient of 'linear.weight'"), ShapeError);
  allocate_gradients(model);
  CHECK_THROWS_WITH_AS(clip_gradient_norm(model, 0.0), "clip_gradient_norm: max_norm is 0; expected a finite value > 0", RangeError);
  CHECK_THROWS_WITH_AS(clip_gradient_norm(model, NAN), "clip_gradient_norm: max_norm is nan; expected a finite value > 0", RangeError);
  CHECK_THROWS_WITH_AS(scale_gradients(model, -INFINITY), "scale_gradients: factor is -inf; expected a finite value", RangeError);
}

namespace {
struct LongGradientModel {  // one gradient of many chunks (not a whole number of them)
  Tensor<float> weight{Shape{1001, 301}}, weight_grad;
  template <typename F>
  void visit_parameters(F&& f) {
    visit_parameter(f, "weight", weight, weight_grad);
  }
};
}  // namespace

TEST_CASE("gradient_norm and scale_gradients: a gradient split among the threads gives the same norm and the same scaled values on 1 and 2 threads") {
  const int before = num_threads();
  double norms[2];
  Tensor<float> scaled[2];
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    LongGradientModel model;
    model.weight_grad = random_tensor<float>(model.weight.shape(), 3);
    norms[threads - 1] = gradient_norm(model);
    scale_gradients(model, 0.25);
    scaled[threads - 1] = model.weight_grad;
  }
  set_num_threads(before);
  CHECK(norms[0] == norms[1]);
  CHECK(scaled[0].vector() == scaled[1].vector());
  const Tensor<float> g = random_tensor<float>({1001, 301}, 3);
  double sum = 0;
  for (Index i = 0; i < g.size(); ++i) sum += double(g[i]) * g[i];
  CHECK(norms[0] == doctest::Approx(std::sqrt(sum)).epsilon(1e-13));
  for (Index i = 0; i < g.size(); ++i)
    if (scaled[0][i] != g[i] * 0.25f) FAIL_CHECK("element " << i << " is " << scaled[0][i] << ", expected " << g[i] * 0.25f);
}

TEST_CASE("clip_coefficient: the factor clip_gradient_norm scales by; 1 when the norm is within max_norm or not finite") {
  for (const double max_norm : {0.5, 1e6}) {
    CAPTURE(max_norm);
    LongGradientModel clipped, kept;
    clipped.weight_grad = random_tensor<float>(clipped.weight.shape(), 4);
    kept.weight_grad = clipped.weight_grad;
    const double total = clip_gradient_norm(clipped, max_norm);
    const double coef = clip_coefficient(total, max_norm);
    CHECK(coef == (max_norm / (total + 1e-6) < 1 ? max_norm / (total + 1e-6) : 1.0));
    if (coef != 1) scale_gradients(kept, coef);
    CHECK(kept.weight_grad.vector() == clipped.weight_grad.vector());
  }
  CHECK(clip_coefficient(NAN, 1.0) == 1.0);
  CHECK(clip_coefficient(INFINITY, 1.0) == 1.0);
  CHECK_THROWS_WITH_AS(clip_coefficient(1.0, -1.0), "clip_coefficient: max_norm is -1; expected a finite value > 0", RangeError);
}

TEST_CASE("gradient_norm: every length's tail (not a multiple of the 8 partial sums) is counted once") {
  for (Index n = 0; n <= 20; ++n) {
    CAPTURE(n);
    LongGradientModel model;
    model.weight = Tensor<float>(Shape{n}), model.weight_grad = Tensor<float>(Shape{n});
    double sum = 0;
    for (Index i = 0; i < n; ++i) model.weight_grad[i] = static_cast<float>(i + 1), sum += double(i + 1) * double(i + 1);
    CHECK(gradient_norm(model) == std::sqrt(sum));  // integers: every partial sum is exact
  }
}
