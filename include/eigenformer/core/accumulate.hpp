// core/accumulate.hpp: whether a kernel writes its result into a caller's buffer or adds it onto what the buffer holds.
// Forward kernels add to fuse a residual connection (ops/linear.hpp); backward kernels add by default because a
// tensor used in several places (a residual stream, a tied weight) receives the sum of their gradients.
#pragma once

namespace eigenformer {

// no: out = result; yes: out += result.
enum class Accumulate { no, yes };

}  // namespace eigenformer
