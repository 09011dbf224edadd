// core/visit.hpp: parameters are visited by name. Every block has
//   template <typename F> void visit_parameters(F&& f);
// which calls, for each parameter, with dotted member paths ("self_attn.in_proj.weight") and tensors already sized:
//   f(const std::string& name, Tensor<Scalar>& value)                       when f takes two arguments, or
//   f(const std::string& name, Tensor<Scalar>& value, Tensor<Scalar>& grad) when f takes three.
// The gradient lives beside its parameter in the block. It is empty (no memory) until training starts
// (train/gradients.hpp sizes it to the value's shape), so a model loaded for inference costs nothing extra.
// One mechanism serves loading, saving, counting, initialising, zeroing gradients and the optimisers.
// Leaves call visit_parameter(); composites forward a member block's parameters under its member name with visit_child().
#pragma once

#include <string>
#include <type_traits>
#include <utility>

#include "eigenformer/core/error.hpp"
#include "eigenformer/core/tensor.hpp"

namespace eigenformer {

// A leaf's parameter: f(name, value, grad) if f takes the gradient too, else f(name, value).
template <typename F, typename Scalar>
void visit_parameter(F& f, const std::string& name, Tensor<Scalar>& value, Tensor<Scalar>& grad) {
  if constexpr (std::is_invocable_v<F&, const std::string&, Tensor<Scalar>&, Tensor<Scalar>&>)
    f(name, value, grad);
  else
    f(name, value);
}

// A backward adds into its block's gradients: they must have been sized (allocate_gradients in train/gradients.hpp).
template <typename Scalar>
void require_gradient(const Tensor<Scalar>& grad, const Tensor<Scalar>& value, const char* where) {
  if (grad.shape() != value.shape())
    throw ShapeError(std::string(where) + ": the parameter's gradient has shape " + grad.shape().str() + ", the parameter " + value.shape().str() +
                     "; call allocate_gradients(model) before the first backward");
}

namespace detail {
// f seen through a member's name: "prefix." + name. Its call operator exists exactly for the argument lists f takes
// (the trailing return type), so visit_parameter's test of what f takes looks through any depth of nesting.
template <typename F>
struct Prefixed {
  F& f;
  const std::string& prefix;
  template <typename... Tensors>
  auto operator()(const std::string& name, Tensors&... tensors) -> decltype(f(name, tensors...)) {
    return f(prefix + "." + name, tensors...);
  }
};
}  // namespace detail

template <typename Block, typename F>
void visit_child(Block& child, const std::string& prefix, F& f) {
  child.visit_parameters(detail::Prefixed<F>{f, prefix});
}

}  // namespace eigenformer
