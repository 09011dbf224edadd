// nn/attention_options.hpp: what an attention block does when the caller asks nothing: no mask (every key allowed),
// no weights returned, the flash kernel (measured faster than the reference at every shape, docs/performance.md).
#include "eigenformer/nn/attention_options.hpp"

#include <doctest/doctest.h>

using namespace eigenformer;

TEST_CASE("AttentionOptions: by default no mask, no weights, and the flash kernel") {
  const AttentionOptions<float> o;
  CHECK(o.mask == nullptr);
  CHECK(o.weights == nullptr);
  CHECK(o.kernel == AttentionKernel::flash);
  Tensor<double> w;
  const Mask causal = Mask::causal(3, 3);
  const AttentionOptions<double> set{&causal, &w};  // set in order, as the examples do: {mask, weights}
  CHECK(set.mask == &causal);
  CHECK(set.weights == &w);
  CHECK(set.kernel == AttentionKernel::flash);
}
