// train/schedule.hpp: learning rates by step, steps counted from 1 (the first optimiser step is step 1).
// TransformerSchedule, the paper's (Vaswani et al. 2017, 5.3), with the Annotated Transformer's factor:
//   lr(step) = factor * (d_model^-0.5 * min(step^-0.5, step * warmup^-1.5))
//   linear growth for `warmup` steps, to its peak factor * (d_model * warmup)^-0.5 at step = warmup, then as step^-0.5.
//   The paper: d_model 512, warmup 4000, factor 1, with Adam betas (0.9, 0.98) and eps 1e-9.
// WarmupCosineSchedule, nanoGPT's get_lr (train.py) evaluated at it = step:
//   step < warmup:             lr = peak_lr * step / warmup                    (linear, peak_lr at step = warmup)
//   warmup <= step <= end:     r = (step - warmup) / (end - warmup); lr = min_lr + 0.5 (1 + cos(pi r)) (peak_lr - min_lr)
//   step > end:                lr = min_lr
//   (nanoGPT counts iterations from 0, so its first step has lr 0; counting from 1 gives every step a rate.)
// Each is computed exactly as the reference's Python does (same operations, same order); tests/test_schedule.cpp
// compares with their values. A setting or a step outside its range is a RangeError naming it.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

#include "eigenformer/core/error.hpp"

namespace eigenformer {

namespace detail {
inline void check_schedule_step(const char* where, std::int64_t step) {
  if (step < 1) throw RangeError(std::string(where) + ": step " + std::to_string(step) + "; steps are counted from 1");
}
}  // namespace detail

struct TransformerSchedule {
  std::int64_t d_model = 512;
  std::int64_t warmup_steps = 4000;
  double factor = 1.0;  // the Annotated Transformer's; the paper's is 1

  double lr(std::int64_t step) const {
    if (d_model < 1) throw RangeError("TransformerSchedule: d_model is " + std::to_string(d_model) + "; expected >= 1");
    if (warmup_steps < 1) throw RangeError("TransformerSchedule: warmup_steps is " + std::to_string(warmup_steps) + "; expected >= 1");
    if (!(std::isfinite(factor) && factor > 0))
      throw RangeError("TransformerSchedule: factor is " + detail::number_text(factor) + "; expected a finite value > 0");
    detail::check_schedule_step("TransformerSchedule.lr", step);
    const double s = static_cast<double>(step);
    return factor * (std::pow(static_cast<double>(d_model), -0.5) *
                     std::min(std::pow(s, -0.5), s * std::pow(static_cast<double>(warmup_steps), -1.5)));
  }
};

struct WarmupCosineSchedule {
  double peak_lr = 6e-4;            // nanoGPT: learning_rate
  double min_lr = 6e-5;             // the floor, often peak_lr / 10
  std::int64_t warmup_steps = 2000; // 0: start at peak_lr
  std::int64_t end_step = 600000;   // where the cosine reaches min_lr (nanoGPT: lr_decay_iters); > warmup_steps

  double lr(std::int64_t step) const {
    if (!(std::isfinite(peak_lr) && peak_lr >= 0))
      throw RangeError("WarmupCosineSchedule: peak_lr is " + detail::number_text(peak_lr) + "; expected a finite value >= 0");
    if (!(std::isfinite(min_lr) && min_lr >= 0 && min_lr <= peak_lr))
      throw RangeError("WarmupCosineSchedule: min_lr is " + detail::number_text(min_lr) + "; expected a value in [0, peak_lr " +
                       detail::number_text(peak_lr) + "]");
    if (warmup_steps < 0) throw RangeError("WarmupCosineSchedule: warmup_steps is " + std::to_string(warmup_steps) + "; expected >= 0");
    if (end_step <= warmup_steps)
      throw RangeError("WarmupCosineSchedule: end_step is " + std::to_string(end_step) + "; expected more than warmup_steps " +
                       std::to_string(warmup_steps));
    detail::check_schedule_step("WarmupCosineSchedule.lr", step);
    if (step < warmup_steps) return peak_lr * static_cast<double>(step) / static_cast<double>(warmup_steps);
    if (step > end_step) return min_lr;
    const double pi = 3.141592653589793;  // Python's math.pi
    const double decay_ratio = static_cast<double>(step - warmup_steps) / static_cast<double>(end_step - warmup_steps);
    const double coeff = 0.5 * (1.0 + std::cos(pi * decay_ratio));
    return min_lr + coeff * (peak_lr - min_lr);
  }
};

}  // namespace eigenformer
