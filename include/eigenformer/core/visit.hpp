// core/visit.hpp: parameters are visited by name. Every block has
//   template <typename F> void visit_parameters(F&& f);   // calls f(const std::string& name, Tensor<Scalar>& t)
// with dotted member paths ("self_attn.in_proj.weight") and tensors already sized to their shapes. One
// mechanism serves loading, saving, counting, initialising and (later) optimisers. visit_child() forwards a
// member block's parameters under its member name.
#pragma once

#include <string>

namespace eigenformer {

template <typename Block, typename F>
void visit_child(Block& child, const std::string& prefix, F& f) {
  child.visit_parameters([&](const std::string& name, auto& tensor) { f(prefix + "." + name, tensor); });
}

}  // namespace eigenformer
