// train/clip.hpp: all of a model's gradients seen as one vector: its norm, clipping it, scaling it.
//   gradient_norm(model)              total = sqrt(sum of g^2 over every element of every gradient), summed in double
//   clip_gradient_norm(model, c)      as torch.nn.utils.clip_grad_norm_(model.parameters(), c) in PyTorch 1.13
//                                     (torch/nn/utils/clip_grad.py): coef = c / (total + 1e-6); when coef < 1 every
//                                     gradient is multiplied by coef. Returns total, the norm before clipping.
//   scale_gradients(model, s)         every gradient multiplied by s
//   clip_coefficient(total, c)        the factor clip_gradient_norm multiplies by (1 when it leaves them as they are)
//
// In a training step the optimiser can apply that factor itself, in the pass that reads the gradients anyway, and leave
// them zero for the next step (AdamWStepOptions, train/adamw.hpp): one pass over them instead of three.
//   const double total = gradient_norm(model);
//   adamw.step(model, lr, {clip_coefficient(total, max_norm), /*zero_grad=*/true});
// gives the parameters clip_gradient_norm, adamw.step and zero_gradients give, to the bit.
// Deviation: a total that is not finite (a NaN or inf in some gradient) leaves the gradients as they are and is
// returned for the caller to report and skip the step; torch multiplies them by NaN (or by 0 for inf) unless told to
// raise (error_if_nonfinite).
//
// Gradient accumulation, one optimiser step over K micro-batches too large to run together:
//   zero_gradients(model);                     once per step (train/gradients.hpp)
//   for each micro-batch k = 1..K:             forward, then backward of its mean loss; every backward adds (+=)
//                                              into the gradients, so after K of them they hold the sum of K means
//   scale_gradients(model, 1.0 / K);           the mean of the K means, as nanoGPT's loss / gradient_accumulation_steps
//   clip_gradient_norm(model, max_norm);       clipping sees the whole step's gradient, never a micro-batch's
//   optimizer.step(model, lr);
// When the micro-batches hold different numbers of tokens, the mean over all N tokens needs each backward's dloss to
// be n_k / N (its share of the tokens) instead, and no scaling afterwards.
#pragma once

#include <cmath>
#include <string>
#include <type_traits>
#include <vector>

#include "eigenformer/core/error.hpp"
#include "eigenformer/core/tensor.hpp"
#include "eigenformer/core/threading.hpp"
#include "eigenformer/core/visit.hpp"

namespace eigenformer {

namespace detail {

inline constexpr Index kGradientChunk = Index(1) << 16;  // elements per piece of work of gradient_norm and scale_gradients

// x[0]^2 + ... + x[n-1]^2 in double, as eight interleaved partial sums (element i goes to sum i % 8) added at the end:
// independent sums the compiler turns into vector instructions as they stand, without reordering any of them.
template <typename Scalar>
double sum_of_squares(const Scalar* x, Index n) {
  constexpr Index kSums = 8;
  double sums[kSums] = {};
  Index i = 0;
  for (; i + kSums <= n; i += kSums)
    for (Index j = 0; j < kSums; ++j) sums[j] += static_cast<double>(x[i + j]) * static_cast<double>(x[i + j]);
  for (Index j = 0; i < n; ++i, ++j) sums[j] += static_cast<double>(x[i]) * static_cast<double>(x[i]);
  double total = 0;
  for (double s : sums) total += s;
  return total;
}

// Throws ShapeError naming the parameter whose gradient was never allocated.
template <typename Value, typename Grad>
void check_gradient_allocated(const char* where, const std::string& name, const Value& value, const Grad& grad) {
  if (grad.shape() != value.shape())
    throw ShapeError(std::string(where) + ": the gradient of " + quote(name) + " has shape " + grad.shape().str() + ", its parameter " +
                     value.shape().str() + "; call allocate_gradients(model) once before training");
}

inline void check_max_norm(const char* where, double max_norm) {
  if (!(std::isfinite(max_norm) && max_norm > 0))
    throw RangeError(std::string(where) + ": max_norm is " + detail::number_text(max_norm) + "; expected a finite value > 0");
}
}  // namespace detail

// The L2 norm of every gradient together, as if they were concatenated into one vector (squares summed in double).
// Each gradient is summed in chunks shared among the threads, and the chunks' sums are added in order, so the result
// does not depend on the thread count.
template <typename Model>
double gradient_norm(Model& model) {
  double sum_of_squares = 0;
  std::vector<double> partial;
  model.visit_parameters([&](const std::string& name, auto& value, auto& grad) {
    detail::check_gradient_allocated("gradient_norm", name, value, grad);
    const auto* const data = grad.data();
    partial.assign(static_cast<std::size_t>((grad.size() + detail::kGradientChunk - 1) / detail::kGradientChunk), 0.0);
    detail::parallel_chunks(grad.size(), detail::kGradientChunk, [&](Index begin, Index end) {
      partial[static_cast<std::size_t>(begin / detail::kGradientChunk)] = detail::sum_of_squares(data + begin, end - begin);
    });
    for (double s : partial) sum_of_squares += s;
  });
  return std::sqrt(sum_of_squares);
}

// Multiplies every gradient by `factor` (finite, else RangeError).
template <typename Model>
void scale_gradients(Model& model, double factor) {
  if (!std::isfinite(factor)) throw RangeError("scale_gradients: factor is " + detail::number_text(factor) + "; expected a finite value");
  model.visit_parameters([&](const std::string& name, auto& value, auto& grad) {
    detail::check_gradient_allocated("scale_gradients", name, value, grad);
    using Scalar = typename std::decay_t<decltype(grad)>::value_type;
    auto all = grad.vector();  // a Map of the gradient's storage
    detail::parallel_chunks(all.size(), detail::kGradientChunk,
                            [&](Index begin, Index end) { all.segment(begin, end - begin) *= static_cast<Scalar>(factor); });
  });
}

// The factor that brings gradients of norm `total` to a norm of at most about max_norm (finite and > 0, else
// RangeError): max_norm / (total + 1e-6) when that is below 1, else 1; also 1 when total is not finite (see the top).
inline double clip_coefficient(double total, double max_norm) {
  detail::check_max_norm("clip_coefficient", max_norm);
  if (!std::isfinite(total)) return 1;
  const double coef = max_norm / (total + 1e-6);
  return coef < 1 ? coef : 1;
}

// Scales the gradients so that their norm is at most about max_norm (finite and > 0, else RangeError) and returns
// their norm before clipping (see the top of this file; not finite: nothing is changed).
template <typename Model>
double clip_gradient_norm(Model& model, double max_norm) {
  detail::check_max_norm("clip_gradient_norm", max_norm);  // before the pass over the gradients
  const double total = gradient_norm(model);
  const double coef = clip_coefficient(total, max_norm);
  if (coef != 1) scale_gradients(model, coef);
  return total;
}

}  // namespace eigenformer
