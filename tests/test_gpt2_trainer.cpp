// GPT-2 training against PyTorch (issue 16): three full training steps of a tiny GPT-2 (2 layers, 2 heads, width 16,
// 16 positions, vocabulary 50, lm_head tied to wte) from tests/fixtures/gpt2_train/, which
// tools/make_gpt2_train_fixture.py writes with PyTorch 1.13 in float64. Each step: zero_gradients, the training forward,
// mean cross-entropy over all B*T positions, backward, clip_gradient_norm (max_norm 1; only step 2's norm is above
// it), WarmupCosineSchedule's rate, AdamW (betas 0.9, 0.95, decay 0.1 on rank >= 2 only). Checked: each step's loss,
// gradient norm and rate, then every parameter after the last step, under its Hugging Face name and layout.
#include "eigenformer/models/gpt2.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <set>
#include <string>
#include <type_traits>
#include <vector>

#include "eigenformer/io/hf_gpt2.hpp"
#include "eigenformer/train/adamw.hpp"
#include "eigenformer/train/clip.hpp"
#include "eigenformer/train/cross_entropy.hpp"
#include "eigenformer/train/gradients.hpp"
#include "eigenformer/train/schedule.hpp"
#include "support/fixtures.hpp"

using namespace eigenformer;
using namespace eigenformer::testing;

namespace {

struct StepResult {
  double loss, grad_norm, lr;
};

// The fixture's steps on `model`, every setting read from the fixture's metadata.
template <typename Scalar>
std::vector<StepResult> run_fixture_steps(GPT2<Scalar>& model, const Fixture& ref) {
  WarmupCosineSchedule schedule;
  schedule.peak_lr = ref.meta_double("peak_lr");
  schedule.min_lr = ref.meta_double("min_lr");
  schedule.warmup_steps = ref.meta_int("warmup_steps");
  schedule.end_step = ref.meta_int("end_step");
  AdamWOptions options;
  options.beta1 = ref.meta_double("beta1");
  options.beta2 = ref.meta_double("beta2");
  options.eps = ref.meta_double("eps");
  options.weight_decay = ref.meta_double("weight_decay");  // options.decay empty: tensors of rank >= 2, as the fixture
  AdamW<Scalar> adamw(options);
  const double max_norm = ref.meta_double("max_norm");

  const Tensor<std::int64_t> ids = ref.input<std::int64_t>("ids");  // [steps, B, T + 1]
  const Index steps = ids.dim(0), B = ids.dim(1), T = ids.dim(2) - 1, V = model.config().vocab_size;
  allocate_gradients(model);
  std::vector<StepResult> results;
  for (Index s = 0; s < steps; ++s) {
    // inputs = ids[:, :-1], targets = ids[:, 1:]
    Tensor<std::int64_t> inputs({B, T}), targets({B * T});
    for (Index b = 0; b < B; ++b)
      for (Index t = 0; t < T; ++t) inputs.at(b, t) = ids.at(s, b, t), targets[b * T + t] = ids.at(s, b, t + 1);
    zero_gradients(model);
    GPT2Activations<Scalar> saved;
    const Tensor<Scalar> logits = model.forward(inputs, saved);
    const double loss = cross_entropy_forward<Scalar>(logits.matrix(B * T, V), targets, {});
    Tensor<Scalar> dlogits(logits.shape());
    cross_entropy_backward<Scalar>(logits.matrix(B * T, V), targets, nullptr, {}, Scalar(1), dlogits.matrix(B * T, V), Accumulate::no);
    model.backward(dlogits, saved);
    const double grad_norm = clip_gradient_norm(model, max_norm);
    const double lr = schedule.lr(s + 1);  // steps count from 1
    adamw.step(model, lr);
    results.push_back({loss, grad_norm, lr});
  }
  return results;
}

double relative_error(double actual, double expected) { return std::abs(actual - expected) / std::abs(expected); }

// Measured on this fixture (2-core x86-64, OpenMP): double, loss and norm 6e-16, rates equal, parameters 4.5e-14 (of
// their tensor's largest value); float, loss 5.3e-9, norm 5.6e-8, parameters 1.7e-5. Parameters are looser than the
// losses because AdamW's first steps divide each gradient by its own size (plus eps 1e-8): an element whose gradient
// is rounding noise - the key biases', zero in exact arithmetic - moves by up to lr times the noise over eps, so the
// noise of two different summation orders shows in the parameter (float: 4.7e-6 absolute in h.0's key bias).
struct Tolerances {
  double loss, grad_norm, lr, parameters;
};
template <typename Scalar>
Tolerances step_tolerances() {
  if (std::is_same_v<Scalar, double>) return {1e-12, 1e-12, 1e-14, 1e-11};
  return {1e-6, 1e-5, 1e-14, 1e-3};  // the rate is computed in double whatever Scalar is
}

}  // namespace

TEST_CASE_TEMPLATE("GPT2 training step: three steps (cross-entropy, backward, clipping, warmup + cosine rate, AdamW) give PyTorch's "
                   "losses, gradient norms, rates and final parameters",
                   Scalar, float, double) {
  const Tolerances tol = step_tolerances<Scalar>();
  const Fixture ref("gpt2_train/reference");  // tests/fixtures/gpt2_train/reference.safetensors
  GPT2<Scalar> model = load_gpt2<Scalar>(std::string(EIGENFORMER_FIXTURE_DIR) + "/gpt2_train");
  const std::vector<StepResult> got = run_fixture_steps(model, ref);

  const Tensor<double> loss = ref.output<double>("loss"), grad_norm = ref.output<double>("grad_norm"), lr = ref.output<double>("lr");
  REQUIRE(static_cast<Index>(got.size()) == loss.size());
  for (Index s = 0; s < loss.size(); ++s) {
    const StepResult& r = got[static_cast<std::size_t>(s)];
    CAPTURE(s + 1);
    CHECK(relative_error(r.loss, loss[s]) <= tol.loss);
    CHECK(relative_error(r.grad_norm, grad_norm[s]) <= tol.grad_norm);
    CHECK(relative_error(r.lr, lr[s]) <= tol.lr);
  }

  // Every parameter after the last step, against PyTorch's under the Hugging Face name (Conv1D weights [in, out]).
  std::set<std::string> expected_names, compared;
  for (const std::string& name : ref.file().names())
    if (name.rfind("after.", 0) == 0) expected_names.insert(name.substr(6));
  model.visit_parameters([&](const std::string& ours, Tensor<Scalar>& value) {
    const std::string hf = hf_gpt2_name(ours);
    INFO(ours << " (" << hf << ")");
    REQUIRE(expected_names.count(hf) == 1);
    compared.insert(hf);
    Eigen::MatrixXd expected = ref.file().get<double>("after." + hf).matrix();
    if (hf_gpt2_transposed(ours)) expected.transposeInPlace();
    REQUIRE(expected.rows() == value.matrix().rows());
    REQUIRE(expected.cols() == value.matrix().cols());
    const Eigen::MatrixXd actual = value.matrix().template cast<double>();
    const double error = (actual - expected).cwiseAbs().maxCoeff() / expected.cwiseAbs().maxCoeff();
    CHECK(error <= tol.parameters);
  });
  CHECK(compared == expected_names);
}
