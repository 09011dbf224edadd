// train/adamw.hpp: the AdamW optimiser (Loshchilov & Hutter 2019, "Decoupled Weight Decay Regularization"), exactly as
// torch.optim.AdamW in PyTorch 1.13 (its single-tensor path, _single_tensor_adamw in torch/optim/adamw.py). At step
// t = 1, 2, ..., for each parameter p with gradient g, in this order:
//   p = p * (1 - lr * wd)                   decoupled weight decay, only on the parameters the decay rule picks
//   m = beta1 * m + (1 - beta1) * g         first moment
//   v = beta2 * v + (1 - beta2) * g * g     second moment
//   step_size = lr / (1 - beta1^t)
//   denom = sqrt(v) / sqrt(1 - beta2^t) + eps
//   p = p + (-step_size) * m / denom
// Decayed by default: tensors of rank >= 2 (weight matrices and embedding tables), never biases or LayerNorm
// parameters, as nanoGPT's configure_optimizers and llm.c decide; AdamWOptions::decay replaces that rule with a
// predicate on (name, shape). In PyTorch this is two parameter groups, one with weight_decay 0.
// State: m and v for each parameter, kept by its name and sized to its shape at the first step (or by initialize);
// one step count t. visit_state(f) visits them as "m.<name>" and "v.<name>" so that a checkpoint can save them
// (train/train_checkpoint.hpp). A model whose parameter names or shapes differ from the state's is refused by name.
// The learning rate is an argument of each step: a schedule (train/schedule.hpp) supplies it.
// A step can also do, in the same pass, what a training loop does to the gradients around it (AdamWStepOptions):
// scale them first (clipping's coefficient, train/clip.hpp) and leave them zero for the next backward. The result is
// that of scale_gradients, step and zero_gradients one after the other, to the bit; the gradients are read once.
// Threads: each parameter is updated in chunks shared among num_threads() threads; every element's arithmetic is the
// same whatever the split, so the result does not depend on the thread count.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "eigenformer/core/error.hpp"
#include "eigenformer/core/shape.hpp"
#include "eigenformer/core/tensor.hpp"
#include "eigenformer/core/threading.hpp"
#include "eigenformer/core/visit.hpp"

namespace eigenformer {

struct AdamWOptions {
  double lr = 1e-3;             // the learning rate of step(model); step(model, lr) takes its own
  double beta1 = 0.9;           // torch's betas[0]; GPT-2-style training uses 0.9
  double beta2 = 0.999;         // torch's betas[1]; GPT-2-style training uses 0.95, the paper's Adam 0.98
  double eps = 1e-8;            // the paper's Adam: 1e-9
  double weight_decay = 0.01;   // torch's default; GPT-2-style training uses 0.1
  // Which parameters are decayed, by name and shape; empty: exactly those of rank >= 2.
  std::function<bool(const std::string& name, const Shape& shape)> decay;
};

// What AdamW::step does to the gradients besides reading them.
struct AdamWStepOptions {
  double grad_scale = 1;   // each gradient multiplied by static_cast<Scalar>(grad_scale) first, as scale_gradients
                           // does: clip_coefficient(total, max_norm), or 1/K after K accumulated micro-batches
  bool zero_grad = false;  // each gradient left zero once used, as zero_gradients (torch's optimizer.zero_grad())
};

template <typename Scalar>
class AdamW {
 public:
  // Throws RangeError for options torch.optim.AdamW refuses too: lr < 0, eps < 0, a beta outside [0, 1),
  // weight_decay < 0 (and anything not finite).
  explicit AdamW(const AdamWOptions& options = {}) : options_(options) {
    check_lr(options.lr, "AdamW: lr");
    check_range(options.beta1, 0.0, 1.0, "beta1");
    check_range(options.beta2, 0.0, 1.0, "beta2");
    if (!(std::isfinite(options.eps) && options.eps >= 0))
      throw RangeError("AdamW: eps is " + detail::number_text(options.eps) + "; expected a finite value >= 0");
    if (!(std::isfinite(options.weight_decay) && options.weight_decay >= 0))
      throw RangeError("AdamW: weight_decay is " + detail::number_text(options.weight_decay) + "; expected a finite value >= 0");
  }

  // One step over every parameter of `model` with the gradients beside them (core/visit.hpp), at learning rate lr.
  // Everything is checked before anything changes: each gradient allocated to its parameter's shape (ShapeError
  // naming it), the parameters the same names and shapes as the state (ShapeError listing every difference).
  // grad_scale must be finite (RangeError).
  template <typename Model>
  void step(Model& model, double lr, const AdamWStepOptions& step_options = {}) {
    check_lr(lr, "AdamW.step: lr");
    if (!std::isfinite(step_options.grad_scale))
      throw RangeError("AdamW.step: grad_scale is " + detail::number_text(step_options.grad_scale) + "; expected a finite value");
    initialize(model);
    model.visit_parameters([&](const std::string& name, Tensor<Scalar>& value, Tensor<Scalar>& grad) {
      if (grad.shape() != value.shape())
        throw ShapeError("AdamW.step: the gradient of " + quote(name) + " has shape " + grad.shape().str() + ", its parameter " +
                         value.shape().str() + "; call allocate_gradients(model) once before training");
    });

    const std::int64_t t = ++step_count_;
    const double bias_correction1 = 1 - std::pow(options_.beta1, static_cast<double>(t));
    const double bias_correction2 = 1 - std::pow(options_.beta2, static_cast<double>(t));
    // torch computes these in double and casts them to the tensor's type once per step.
    const Scalar decay_factor = static_cast<Scalar>(1 - lr * options_.weight_decay);
    const Scalar beta1 = static_cast<Scalar>(options_.beta1), one_minus_beta1 = static_cast<Scalar>(1 - options_.beta1);
    const Scalar beta2 = static_cast<Scalar>(options_.beta2), one_minus_beta2 = static_cast<Scalar>(1 - options_.beta2);
    const Scalar step_size = static_cast<Scalar>(lr / bias_correction1);
    const Scalar bias_correction2_sqrt = static_cast<Scalar>(std::sqrt(bias_correction2));
    const Scalar eps = static_cast<Scalar>(options_.eps);
    const Scalar grad_scale = static_cast<Scalar>(step_options.grad_scale);

    // Element-wise, so the parameter is cut into chunks shared among the threads (detail::parallel_chunks); each chunk
    // (64 KiB of each of p, g, m, v) takes the lines below as vectorised passes while it sits in the cache.
    using Array = Eigen::Array<Scalar, Eigen::Dynamic, 1>;
    model.visit_parameters([&](const std::string& name, Tensor<Scalar>& value, Tensor<Scalar>& grad) {
      Slot& slot = slots_[index_.at(name)];
      const bool decay = slot.decay;
      Scalar* const p_data = value.data();
      Scalar* const m_data = slot.m.data();
      Scalar* const v_data = slot.v.data();
      Scalar* const g_data = grad.data();
      detail::parallel_chunks(value.size(), kChunk, [&](Index begin, Index end) {
        Eigen::Map<Array> p(p_data + begin, end - begin), m(m_data + begin, end - begin), v(v_data + begin, end - begin);
        Eigen::Map<Array> g(g_data + begin, end - begin);
        if (step_options.grad_scale != 1) g *= grad_scale;
        if (decay) p *= decay_factor;
        m = m * beta1 + one_minus_beta1 * g;
        v = v * beta2 + one_minus_beta2 * g * g;
        p = p + (-step_size) * m / (v.sqrt() / bias_correction2_sqrt + eps);  // torch's addcdiv_: p + (value * m) / denom
        if (step_options.zero_grad) g.setZero();
      });
    });
  }
  template <typename Model>
  void step(Model& model) {
    step(model, options_.lr);
  }

  // Sizes m and v (zero) for every parameter of `model`, if there is no state yet; otherwise checks that the state
  // fits the model. step() calls it; a checkpoint loader calls it to have tensors to read the saved state into.
  // ShapeError when two parameters share a name or a tensor (a tied weight must be visited once).
  template <typename Model>
  void initialize(Model& model) {
    if (!slots_.empty()) {
      check_matches(model);
      return;
    }
    std::vector<Slot> slots;
    std::map<std::string, std::size_t> index;
    std::map<const Scalar*, std::string> seen;
    model.visit_parameters([&](const std::string& name, Tensor<Scalar>& value) {
      if (index.count(name)) throw ShapeError("AdamW: the model visits two parameters named " + quote(name) + "; each needs a name of its own");
      if (value.size() > 0) {
        const auto it = seen.find(value.data());
        if (it != seen.end())
          throw ShapeError("AdamW: parameters " + quote(it->second) + " and " + quote(name) +
                           " are the same tensor; a tied parameter must be visited once");
        seen.emplace(value.data(), name);
      }
      index.emplace(name, slots.size());
      const bool decay = options_.decay ? options_.decay(name, value.shape()) : value.rank() >= 2;
      slots.push_back(Slot{name, Tensor<Scalar>(value.shape(), Scalar(0)), Tensor<Scalar>(value.shape(), Scalar(0)), decay});
    });
    slots_ = std::move(slots);
    index_ = std::move(index);
  }

  // f(name, tensor) for each parameter's state, in the model's order: "m.<name>" then "v.<name>" (each the
  // parameter's shape). Empty before initialize or the first step.
  template <typename F>
  void visit_state(F&& f) {
    for (Slot& slot : slots_) {
      f("m." + slot.name, slot.m);
      f("v." + slot.name, slot.v);
    }
  }

  // The number of steps taken: t of the last step (the bias corrections use it).
  std::int64_t step_count() const { return step_count_; }
  // For a checkpoint loader, with the state it reads through visit_state. At most max_step_count (2^62): no run takes
  // that many steps, and the next step's ++t must not overflow.
  static constexpr std::int64_t max_step_count = std::int64_t(1) << 62;
  void set_step_count(std::int64_t t) {
    if (t < 0 || t > max_step_count)
      throw RangeError("AdamW.set_step_count: " + std::to_string(t) + " steps; expected a count from 0 to 2^62 (" + std::to_string(max_step_count) + ")");
    step_count_ = t;
  }

  // Whether the named parameter is decayed (known once initialize or the first step has seen the model).
  bool decays(const std::string& name) const {
    const auto it = index_.find(name);
    if (it == index_.end()) throw RangeError("AdamW.decays: no parameter named " + quote(name) + " in the optimizer's state");
    return slots_[it->second].decay;
  }

  const AdamWOptions& options() const { return options_; }

 private:
  struct Slot {
    std::string name;
    Tensor<Scalar> m, v;  // the parameter's shape
    bool decay;
  };

  static void check_lr(double lr, const std::string& what) {
    if (!(std::isfinite(lr) && lr >= 0)) throw RangeError(what + " is " + detail::number_text(lr) + "; expected a finite value >= 0");
  }
  static void check_range(double x, double lo, double hi, const char* what) {
    if (!(x >= lo && x < hi))
      throw RangeError(std::string("AdamW: ") + what + " is " + detail::number_text(x) + "; expected a value in [" + detail::number_text(lo) + ", " +
                       detail::number_text(hi) + ")");
  }

  // Every difference between the model's parameters and the state, in one ShapeError.
  template <typename Model>
  void check_matches(Model& model) const {
    std::vector<std::string> problems;
    std::set<std::string> visited;
    model.visit_parameters([&](const std::string& name, Tensor<Scalar>& value) {
      visited.insert(name);
      const auto it = index_.find(name);
      if (it == index_.end())
        problems.push_back("parameter " + quote(name) + " has no state");
      else if (slots_[it->second].m.shape() != value.shape())
        problems.push_back(quote(name) + " is " + value.shape().str() + ", its state " + slots_[it->second].m.shape().str());
    });
    for (const Slot& slot : slots_)
      if (!visited.count(slot.name)) problems.push_back("state for " + quote(slot.name) + ", which the model no longer has");
    if (problems.empty()) return;
    std::string msg = "AdamW: the model's parameters differ from the optimizer's state (made at its first step): ";
    for (std::size_t i = 0; i < problems.size() && i < 10; ++i) msg += (i ? "; " : "") + problems[i];
    if (problems.size() > 10) msg += "; and " + std::to_string(problems.size() - 10) + " more";
    throw ShapeError(msg);
  }

  static constexpr Index kChunk = Index(1) << 14;  // elements per piece of work in step()

  AdamWOptions options_;
  std::vector<Slot> slots_;                    // in the order the model visits its parameters
  std::map<std::string, std::size_t> index_;   // parameter name -> its slot
  std::int64_t step_count_ = 0;
};

}  // namespace eigenformer
