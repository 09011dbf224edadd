// TransformerSchedule and WarmupCosineSchedule (train/schedule.hpp) against the rates of the Annotated Transformer's
// rate() and nanoGPT's get_lr() (fixture by tools/make_adamw_fixtures.py), their shapes (peak at the end of warmup,
// floor after the end), and the refusals.
#include "eigenformer/train/schedule.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <string>

#include "eigenformer/io/safetensors.hpp"

using namespace eigenformer;

namespace {
const std::string schedules_fixture = std::string(EIGENFORMER_FIXTURE_DIR) + "/lr_schedules.safetensors";

template <typename Schedule>
void check_case(const SafeTensors& fx, const std::string& name, const Schedule& schedule) {
  CAPTURE(name);
  const Tensor<std::int64_t> steps = fx.get<std::int64_t>(name + ".steps");
  const Tensor<double> expected = fx.get<double>(name + ".lr");
  for (Index i = 0; i < steps.size(); ++i) {
    CAPTURE(steps[i]);
    CHECK(std::abs(schedule.lr(steps[i]) - expected[i]) <= 1e-15 * std::abs(expected[i]));
  }
}

double meta(const SafeTensors& fx, const std::string& key) { return std::stod(fx.metadata().at(key)); }
std::int64_t meta_int(const SafeTensors& fx, const std::string& key) { return std::stoll(fx.metadata().at(key)); }
}  // namespace

TEST_CASE("TransformerSchedule: the rates of the Annotated Transformer's rate(), the paper's settings and a small model") {
  const SafeTensors fx(schedules_fixture);
  for (const char* name : {"transformer_paper", "transformer_small"}) {
    TransformerSchedule s;
    s.d_model = meta_int(fx, std::string(name) + ".d_model");
    s.warmup_steps = meta_int(fx, std::string(name) + ".warmup_steps");
    s.factor = meta(fx, std::string(name) + ".factor");
    check_case(fx, name, s);
  }
  // The defaults are the paper's: the first case's settings.
  const TransformerSchedule paper;
  check_case(fx, "transformer_paper", paper);
  CHECK(paper.lr(4000) > paper.lr(3999));
  CHECK(paper.lr(4000) > paper.lr(4001));
}

TEST_CASE("WarmupCosineSchedule: the rates of nanoGPT's get_lr at it = step, with and without warmup") {
  const SafeTensors fx(schedules_fixture);
  for (const char* name : {"cosine_nanogpt", "cosine_no_warmup"}) {
    WarmupCosineSchedule s;
    s.peak_lr = meta(fx, std::string(name) + ".peak_lr");
    s.min_lr = meta(fx, std::string(name) + ".min_lr");
    s.warmup_steps = meta_int(fx, std::string(name) + ".warmup_steps");
    s.end_step = meta_int(fx, std::string(name) + ".end_step");
    check_case(fx, name, s);
    CAPTURE(name);
    CHECK(s.lr(s.end_step + 1) == s.min_lr);
    CHECK(s.lr(s.end_step * 10) == s.min_lr);
    if (s.warmup_steps > 0) CHECK(s.lr(s.warmup_steps) == doctest::Approx(s.peak_lr).epsilon(1e-15));
  }
}

TEST_CASE("schedules: a step below 1 and settings out of range are refused by name") {
  TransformerSchedule t;
  CHECK_THROWS_WITH_AS(t.lr(0), "TransformerSchedule.lr: step 0; steps are counted from 1", RangeError);
  t.warmup_steps = 0;
  CHECK_THROWS_WITH_AS(t.lr(1), "TransformerSchedule: warmup_steps is 0; expected >= 1", RangeError);
  t = TransformerSchedule{};
  t.d_model = -4;
  CHECK_THROWS_WITH_AS(t.lr(1), "TransformerSchedule: d_model is -4; expected >= 1", RangeError);
  t = TransformerSchedule{};
  t.factor = 0;
  CHECK_THROWS_WITH_AS(t.lr(1), "TransformerSchedule: factor is 0; expected a finite value > 0", RangeError);

  WarmupCosineSchedule c;
  CHECK_THROWS_WITH_AS(c.lr(-3), "WarmupCosineSchedule.lr: step -3; steps are counted from 1", RangeError);
  c.min_lr = 1e-3;
  CHECK_THROWS_WITH_AS(c.lr(1), "WarmupCosineSchedule: min_lr is 0.001; expected a value in [0, peak_lr 0.0006]", RangeError);
  c = WarmupCosineSchedule{};
  c.peak_lr = NAN;
  CHECK_THROWS_WITH_AS(c.lr(1), "WarmupCosineSchedule: peak_lr is nan; expected a finite value >= 0", RangeError);
  c = WarmupCosineSchedule{};
  c.end_step = c.warmup_steps;
  CHECK_THROWS_WITH_AS(c.lr(1), "WarmupCosineSchedule: end_step is 2000; expected more than warmup_steps 2000", RangeError);
  c = WarmupCosineSchedule{};
  c.warmup_steps = -1;
  CHECK_THROWS_WITH_AS(c.lr(1), "WarmupCosineSchedule: warmup_steps is -1; expected >= 0", RangeError);
}
