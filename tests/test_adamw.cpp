// AdamW (train/adamw.hpp) against torch.optim.AdamW in PyTorch 1.13: three steps on a toy model with two parameter
// groups (fixture by tools/make_adamw_fixtures.py), alone and after clip_grad_norm_, the latter also as one pass
// (AdamWStepOptions: scaling and zeroing the gradients inside the step); which parameters a real
// Transformer decays; the decay predicate; and the refusals (unallocated gradients, a model that changed, options).
#include "eigenformer/train/adamw.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <set>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "eigenformer/core/random.hpp"
#include "eigenformer/core/threading.hpp"
#include "eigenformer/io/safetensors.hpp"
#include "eigenformer/models/transformer.hpp"
#include "eigenformer/train/clip.hpp"
#include "eigenformer/train/gradients.hpp"
#include "support/toy_model.hpp"

using namespace eigenformer;
using namespace eigenformer::testing;

namespace {
const std::string fixture = std::string(EIGENFORMER_FIXTURE_DIR) + "/adamw_clip.safetensors";

AdamWOptions options_of(const SafeTensors& fx) {
  AdamWOptions o;
  o.beta1 = std::stod(fx.metadata().at("beta1"));
  o.beta2 = std::stod(fx.metadata().at("beta2"));
  o.eps = std::stod(fx.metadata().at("eps"));
  o.weight_decay = std::stod(fx.metadata().at("weight_decay"));
  return o;
}

std::set<std::string> split(const std::string& list) {
  std::set<std::string> out;
  std::stringstream ss(list);
  for (std::string item; std::getline(ss, item, ',');) out.insert(item);
  return out;
}

// Parameters, m and v after step t against PyTorch's.
template <typename Scalar>
void check_step(ToyModel<Scalar>& model, AdamW<Scalar>& adamw, const SafeTensors& fx, int t, double tol) {
  CAPTURE(t);
  model.visit_parameters([&](const std::string& name, Tensor<Scalar>& value) {
    CAPTURE(name);
    check_relative(value, fx.get<double>("output." + std::to_string(t) + ".param." + name), tol);
  });
  int visited = 0;
  adamw.visit_state([&](const std::string& name, Tensor<Scalar>& state) {  // "m.<name>", "v.<name>"
    CAPTURE(name);
    check_relative(state, fx.get<double>("output." + std::to_string(t) + "." + name), tol);
    ++visited;
  });
  CHECK(visited == 8);
}

template <typename Scalar>
double tolerance_of() {
  return std::is_same_v<Scalar, double> ? 1e-12 : 1e-5;
}
}  // namespace

TEST_CASE_TEMPLATE("AdamW: three steps equal torch.optim.AdamW's parameters, exp_avg and exp_avg_sq (decay on rank >= 2)", Scalar, double, float) {
  const SafeTensors fx(fixture);
  const int steps = std::stoi(fx.metadata().at("steps"));
  const Tensor<double> lr = fx.get<double>("lr");
  ToyModel<Scalar> model;
  model.read(fx, "param.");
  AdamW<Scalar> adamw(options_of(fx));
  for (int t = 1; t <= steps; ++t) {
    model.read(fx, "output." + std::to_string(t) + ".clipped.", /*grad=*/true);  // the gradients torch's AdamW saw
    adamw.step(model, lr[t - 1]);
    CHECK(adamw.step_count() == t);
    check_step(model, adamw, fx, t, tolerance_of<Scalar>());
  }
  // The default rule picked the parameters PyTorch's decayed group held.
  const std::set<std::string> decayed = split(fx.metadata().at("decayed"));
  for (const std::string& name : split(fx.metadata().at("names"))) {
    CAPTURE(name);
    CHECK(adamw.decays(name) == (decayed.count(name) == 1));
  }
}

TEST_CASE("AdamW: clipping then a step, from the raw gradients, equals PyTorch's clip_grad_norm_ then AdamW.step") {
  // Separately (clip_gradient_norm, step), or in one pass (gradient_norm, then step with the clipping coefficient and
  // zero_grad: the gradients are left zero, as zero_grad() leaves them).
  for (const bool one_pass : {false, true}) {
    CAPTURE(one_pass);
    const SafeTensors fx(fixture);
    const double max_norm = std::stod(fx.metadata().at("max_norm"));
    const Tensor<double> lr = fx.get<double>("lr"), norms = fx.get<double>("output.norm");
    ToyModel<double> model;
    model.read(fx, "param.");
    AdamW<double> adamw(options_of(fx));
    for (int t = 1; t <= 3; ++t) {
      model.read(fx, "grad." + std::to_string(t) + ".", /*grad=*/true);
      const double norm = one_pass ? gradient_norm(model) : clip_gradient_norm(model, max_norm);
      CHECK(std::abs(norm - norms[t - 1]) <= 1e-12 * norms[t - 1]);
      if (one_pass)
        adamw.step(model, lr[t - 1], AdamWStepOptions{clip_coefficient(norm, max_norm), /*zero_grad=*/true});
      else
        adamw.step(model, lr[t - 1]);
      check_step(model, adamw, fx, t, 1e-12);
      if (one_pass)
        model.visit_parameters([&](const std::string& name, Tensor<double>&, Tensor<double>& grad) {
          CAPTURE(name);
          CHECK(grad.vector().isZero(0));
        });
    }
  }
}

TEST_CASE("AdamW: on a Transformer, the weights and embeddings are decayed and no bias or LayerNorm parameter is; state is m.<name> and v.<name>") {
  TransformerConfig c;
  c.d_model = 8, c.num_heads = 2, c.num_encoder_layers = 1, c.num_decoder_layers = 1, c.d_ff = 16;
  c.src_vocab_size = 11, c.tgt_vocab_size = 13, c.max_len = 20;
  Transformer<double> model(c);
  AdamW<double> adamw;
  adamw.initialize(model);
  std::vector<std::string> expected_state;
  int decayed = 0, kept = 0;
  model.visit_parameters([&](const std::string& name, Tensor<double>& value) {
    CAPTURE(name);
    const bool is_bias = name.size() >= 5 && name.compare(name.size() - 5, 5, ".bias") == 0;
    const bool is_norm = name.find("norm") != std::string::npos;
    CHECK(adamw.decays(name) == (value.rank() >= 2));
    if (is_bias || is_norm) CHECK_FALSE(adamw.decays(name));
    (adamw.decays(name) ? decayed : kept) += 1;
    expected_state.push_back("m." + name);
    expected_state.push_back("v." + name);
  });
  CHECK(decayed > 0);
  CHECK(kept > 0);
  CHECK(adamw.decays("src_embedding.weight"));
  std::vector<std::string> state;
  adamw.visit_state([&](const std::string& name, Tensor<double>& t) {
    state.push_back(name);
    CHECK(t.vector().isZero(0));
  });
  CHECK(state == expected_state);

  // A step moves every parameter: with allocated gradients all ones, each changes.
  allocate_gradients(model);
  model.visit_parameters([](const std::string&, Tensor<double>&, Tensor<double>& grad) { grad.fill(1.0); });
  Transformer<double> before = model;
  adamw.step(model, 1e-2);
  std::vector<Tensor<double>> old_values;
  before.visit_parameters([&](const std::string&, Tensor<double>& value) { old_values.push_back(value); });
  std::size_t i = 0;
  model.visit_parameters([&](const std::string& name, Tensor<double>& value) {
    CAPTURE(name);
    CHECK((value.vector() - old_values[i++].vector()).cwiseAbs().minCoeff() > 0);
  });
}

TEST_CASE("AdamW: a decay predicate on (name, shape) replaces the rank rule; with zero gradients only the decayed move") {
  ToyModel<double> model;
  model.weight.fill(1.0), model.bias.fill(1.0), model.norm_weight.fill(1.0), model.embedding.fill(1.0);
  allocate_gradients(model);  // zero gradients: m and v stay zero, so the Adam update is 0 / (0 + eps) = 0
  AdamWOptions o;
  o.weight_decay = 0.5;
  o.decay = [](const std::string& name, const Shape& shape) { return name == "norm.weight" && shape == Shape{4}; };
  AdamW<double> adamw(o);
  adamw.step(model, 0.1);
  CHECK(adamw.decays("norm.weight"));
  CHECK_FALSE(adamw.decays("linear.weight"));
  CHECK(model.norm_weight.vector().isConstant(1.0 - 0.1 * 0.5, 0));
  CHECK(model.weight.vector().isConstant(1.0, 0));
  CHECK(model.embedding.vector().isConstant(1.0, 0));
  CHECK(model.bias.vector().isConstant(1.0, 0));
}

namespace {
// A model whose second parameter can change shape or name between steps.
struct ChangingModel {
  Tensor<double> a{Shape{2, 2}}, b{Shape{3}}, a_grad{Shape{2, 2}}, b_grad{Shape{3}};
  std::string b_name = "b";
  template <typename F>
  void visit_parameters(F&& f) {
    visit_parameter(f, "a", a, a_grad);
    visit_parameter(f, b_name, b, b_grad);
  }
};
// Two names for one tensor, as a tied weight visited twice would be.
struct TiedTwice {
  Tensor<double> w{Shape{2, 2}}, w_grad{Shape{2, 2}};
  template <typename F>
  void visit_parameters(F&& f) {
    visit_parameter(f, "embedding.weight", w, w_grad);
    visit_parameter(f, "generator.weight", w, w_grad);
  }
};
}  // namespace

TEST_CASE("AdamW: refuses an unallocated gradient, a model whose parameters changed, a tied tensor visited twice; nothing changes") {
  SUBCASE("an unallocated gradient is named") {
    ToyModel<double> model;
    AdamW<double> adamw;
    CHECK_THROWS_WITH_AS(adamw.step(model, 1e-3),
                         "AdamW.step: the gradient of 'linear.weight' has shape [0], its parameter [3, 4]; call allocate_gradients(model) once "
                         "before training",
                         ShapeError);
    CHECK(adamw.step_count() == 0);
  }
  SUBCASE("a shape or a name that changed after the first step is named, every one") {
    ChangingModel model;
    model.a.fill(1.0), model.a_grad.fill(1.0), model.b_grad.fill(1.0);
    AdamW<double> adamw;
    adamw.step(model, 1e-3);
    const Tensor<double> a_after_one = model.a;
    model.b = Tensor<double>(Shape{4}), model.b_grad = Tensor<double>(Shape{4});
    CHECK_THROWS_WITH_AS(adamw.step(model, 1e-3),
                         "AdamW: the model's parameters differ from the optimizer's state (made at its first step): 'b' is [4], its state [3]",
                         ShapeError);
    model.b_name = "c";
    CHECK_THROWS_WITH_AS(adamw.step(model, 1e-3),
                         "AdamW: the model's parameters differ from the optimizer's state (made at its first step): parameter 'c' has no state; "
                         "state for 'b', which the model no longer has",
                         ShapeError);
    CHECK(adamw.step_count() == 1);
    CHECK(model.a.vector() == a_after_one.vector());
  }
  SUBCASE("one tensor under two names") {
    TiedTwice model;
    AdamW<double> adamw;
    CHECK_THROWS_WITH_AS(adamw.step(model, 1e-3),
                         "AdamW: parameters 'embedding.weight' and 'generator.weight' are the same tensor; a tied parameter must be visited once",
                         ShapeError);
  }
}

TEST_CASE("AdamW: options and learning rates torch.optim.AdamW refuses are refused by name") {
  const auto with = [](auto set) {
    AdamWOptions o;
    set(o);
    return o;
  };
  CHECK_THROWS_WITH_AS(AdamW<double>(with([](AdamWOptions& o) { o.lr = -1; })), "AdamW: lr is -1; expected a finite value >= 0", RangeError);
  CHECK_THROWS_WITH_AS(AdamW<double>(with([](AdamWOptions& o) { o.beta1 = 1.0; })), "AdamW: beta1 is 1; expected a value in [0, 1)", RangeError);
  CHECK_THROWS_WITH_AS(AdamW<double>(with([](AdamWOptions& o) { o.beta2 = -0.1; })), "AdamW: beta2 is -0.1; expected a value in [0, 1)", RangeError);
  CHECK_THROWS_WITH_AS(AdamW<double>(with([](AdamWOptions& o) { o.eps = -1e-8; })), "AdamW: eps is -1e-08; expected a finite value >= 0", RangeError);
  CHECK_THROWS_WITH_AS(AdamW<double>(with([](AdamWOptions& o) { o.weight_decay = NAN; })), "AdamW: weight_decay is nan; expected a finite value >= 0",
                       RangeError);
  ToyModel<double> model;
  allocate_gradients(model);
  AdamW<double> adamw;
  CHECK_THROWS_WITH_AS(adamw.step(model, INFINITY), "AdamW.step: lr is inf; expected a finite value >= 0", RangeError);
  CHECK_THROWS_WITH_AS(adamw.step(model, 1e-3, AdamWStepOptions{NAN, true}), "AdamW.step: grad_scale is nan; expected a finite value", RangeError);
  CHECK(adamw.step_count() == 0);
  const std::string range = "expected a count from 0 to 2^62 (" + std::to_string(std::int64_t(1) << 62) + ")";
  CHECK_THROWS_WITH_AS(adamw.set_step_count(-1), ("AdamW.set_step_count: -1 steps; " + range).c_str(), RangeError);
  // Past 2^62: the next step's ++t would come near overflowing (harden-c).
  const std::int64_t past = (std::int64_t(1) << 62) + 1;
  CHECK_THROWS_WITH_AS(adamw.set_step_count(past), ("AdamW.set_step_count: " + std::to_string(past) + " steps; " + range).c_str(), RangeError);
  adamw.set_step_count(std::int64_t(1) << 62);
  CHECK(adamw.step_count() == std::int64_t(1) << 62);
  CHECK_THROWS_WITH_AS(adamw.decays("linear.weight"), "AdamW.decays: no parameter named 'linear.weight' in the optimizer's state", RangeError);
}

namespace {
// One parameter long enough to be cut into many chunks (not a whole number of them), and a vector that is not decayed.
struct LongModel {
  Tensor<float> weight{Shape{301, 1003}}, bias{Shape{1003}};
  Tensor<float> weight_grad, bias_grad;
  template <typename F>
  void visit_parameters(F&& f) {
    visit_parameter(f, "weight", weight, weight_grad);
    visit_parameter(f, "bias", bias, bias_grad);
  }
};

LongModel long_model_after_steps(int threads) {
  set_num_threads(threads);
  LongModel model;
  model.weight = random_tensor<float>(model.weight.shape(), 1, 0.02);
  model.bias = random_tensor<float>(model.bias.shape(), 2, 0.02);
  allocate_gradients(model);
  AdamW<float> adamw(AdamWOptions{3e-4, 0.9, 0.95, 1e-8, 0.1, {}});
  for (std::uint64_t t = 1; t <= 3; ++t) {
    model.weight_grad = random_tensor<float>(model.weight.shape(), 10 + t);
    model.bias_grad = random_tensor<float>(model.bias.shape(), 20 + t);
    adamw.step(model);
  }
  return model;
}
}  // namespace

TEST_CASE("AdamW: a parameter split among the threads gets the same update on 1 and 2 threads, equal to the formula element by element") {
  const int before = num_threads();
  const LongModel one = long_model_after_steps(1), two = long_model_after_steps(2);
  set_num_threads(before);
  CHECK(one.weight.vector() == two.weight.vector());
  CHECK(one.bias.vector() == two.bias.vector());
  // The same three steps written out in double, one element at a time (torch's order of operations).
  LongModel start;
  start.weight = random_tensor<float>(start.weight.shape(), 1, 0.02);
  start.bias = random_tensor<float>(start.bias.shape(), 2, 0.02);
  for (const bool is_weight : {true, false}) {
    CAPTURE(is_weight);
    const Tensor<float>& p0 = is_weight ? start.weight : start.bias;
    const Tensor<float>& p1 = is_weight ? one.weight : one.bias;
    std::vector<double> p(p0.data(), p0.data() + p0.size()), m(p.size(), 0.0), v(p.size(), 0.0);
    for (int t = 1; t <= 3; ++t) {
      const Tensor<float> g = random_tensor<float>(p0.shape(), static_cast<std::uint64_t>((is_weight ? 10 : 20) + t));
      for (std::size_t i = 0; i < p.size(); ++i) {
        if (is_weight) p[i] *= 1 - 3e-4 * 0.1;
        m[i] = 0.9 * m[i] + 0.1 * g[static_cast<Index>(i)];
        v[i] = 0.95 * v[i] + 0.05 * double(g[static_cast<Index>(i)]) * g[static_cast<Index>(i)];
        p[i] -= 3e-4 / (1 - std::pow(0.9, t)) * m[i] / (std::sqrt(v[i]) / std::sqrt(1 - std::pow(0.95, t)) + 1e-8);
      }
    }
    double worst = 0;
    for (std::size_t i = 0; i < p.size(); ++i) worst = std::max(worst, std::abs(p1[static_cast<Index>(i)] - p[i]));
    CHECK(worst < 1e-6);
  }
}

TEST_CASE("AdamW: the one-pass step gives clip_gradient_norm, step and zero_gradients' parameters, state and gradients to the bit") {
  // Three steps each way in float, on a parameter cut into many chunks; clipping active (max_norm 1: the random
  // gradients' norm is in the hundreds) or not (max_norm 1e9), then gradient accumulation's 1/K without zeroing.
  const auto gradients = [](auto& model, std::uint64_t t) {
    model.weight_grad = random_tensor<float>(model.weight.shape(), 10 + t);
    model.bias_grad = random_tensor<float>(model.bias.shape(), 20 + t);
  };
  for (const double max_norm : {1.0, 1e9}) {
    CAPTURE(max_norm);
    LongModel separate, fused;
    for (LongModel* model : {&separate, &fused}) {
      model->weight = random_tensor<float>(model->weight.shape(), 1, 0.02);
      model->bias = random_tensor<float>(model->bias.shape(), 2, 0.02);
      allocate_gradients(*model);
    }
    const AdamWOptions options{3e-4, 0.9, 0.95, 1e-8, 0.1, {}};
    AdamW<float> a(options), b(options);
    for (std::uint64_t t = 1; t <= 3; ++t) {
      gradients(separate, t);
      const double norm_separate = clip_gradient_norm(separate, max_norm);
      a.step(separate, 1e-3);
      zero_gradients(separate);
      gradients(fused, t);
      const double norm_fused = gradient_norm(fused);
      CHECK(norm_fused == norm_separate);
      b.step(fused, 1e-3, AdamWStepOptions{clip_coefficient(norm_fused, max_norm), /*zero_grad=*/true});
      CHECK(fused.weight.vector() == separate.weight.vector());
      CHECK(fused.bias.vector() == separate.bias.vector());
      CHECK(fused.weight_grad.vector() == separate.weight_grad.vector());  // zero, both
      CHECK(fused.bias_grad.vector().isZero(0));
    }
    std::vector<Tensor<float>> state_a, state_b;
    a.visit_state([&](const std::string&, Tensor<float>& x) { state_a.push_back(x); });
    b.visit_state([&](const std::string&, Tensor<float>& x) { state_b.push_back(x); });
    REQUIRE(state_a.size() == state_b.size());
    for (std::size_t i = 0; i < state_a.size(); ++i) CHECK(state_a[i].vector() == state_b[i].vector());
  }
  SUBCASE("grad_scale without zero_grad leaves the gradients scaled, as scale_gradients") {
    LongModel separate, fused;
    for (LongModel* model : {&separate, &fused}) {
      model->weight = random_tensor<float>(model->weight.shape(), 1, 0.02);
      model->bias = random_tensor<float>(model->bias.shape(), 2, 0.02);
      gradients(*model, 1);
    }
    AdamW<float> a, b;
    scale_gradients(separate, 1.0 / 3);
    a.step(separate, 1e-3);
    b.step(fused, 1e-3, AdamWStepOptions{1.0 / 3, /*zero_grad=*/false});
    CHECK(fused.weight.vector() == separate.weight.vector());
    CHECK(fused.weight_grad.vector() == separate.weight_grad.vector());
    CHECK(fused.bias_grad.vector() == separate.bias_grad.vector());
    CHECK_FALSE(fused.weight_grad.vector().isZero(0));
  }
}
