// train/gradients.hpp: the gradients that live beside every parameter (core/visit.hpp), made ready for training.
//   allocate_gradients(model)  sizes each gradient to its parameter's shape, zeroed (once, before the first step)
//   zero_gradients(model)      sets them to zero (before each step: every backward accumulates into them)
// Both reach every parameter through visit_parameters, under the parameter's name.
#pragma once

#include <string>

#include "eigenformer/core/error.hpp"
#include "eigenformer/core/tensor.hpp"
#include "eigenformer/core/visit.hpp"

namespace eigenformer {

template <typename Model>
void allocate_gradients(Model& model) {
  model.visit_parameters([](const std::string&, auto& value, auto& grad) {
    if (grad.shape() != value.shape()) grad = std::decay_t<decltype(value)>(value.shape());
    else grad.set_zero();
  });
}

// Throws ShapeError naming the first parameter whose gradient was never allocated.
template <typename Model>
void zero_gradients(Model& model) {
  model.visit_parameters([](const std::string& name, auto& value, auto& grad) {
    if (grad.shape() != value.shape())
      throw ShapeError("zero_gradients: the gradient of " + name + " has shape " + grad.shape().str() + ", its parameter " +
                       value.shape().str() + "; call allocate_gradients(model) once before training");
    grad.set_zero();
  });
}

}  // namespace eigenformer
