// nn/kv_cache.hpp: the decoding state and scratch are sized by reserve() from the numbers given, and a cache starts
// empty each time it is reserved.
#include "eigenformer/nn/kv_cache.hpp"

#include <doctest/doctest.h>

using namespace eigenformer;

TEST_CASE("KVCache and the step workspaces: reserve() gives the documented shapes; a cache starts empty") {
  KVCache<float> cache;
  CHECK(cache.capacity() == 0);
  cache.reserve(/*batch=*/2, /*capacity=*/5, /*d_model=*/8);
  CHECK(cache.keys.shape() == Shape{2, 5, 8});
  CHECK(cache.values.shape() == Shape{2, 5, 8});
  CHECK(cache.capacity() == 5);
  cache.length = 3;
  cache.reserve(2, 5, 8);
  CHECK(cache.length == 0);

  LayerStepWorkspace<double> ws;
  ws.reserve(/*batch=*/3, /*d_model=*/8, /*d_ff=*/32, /*max_keys=*/11);
  CHECK(ws.normed.shape() == Shape{3, 1, 8});
  CHECK(ws.after_attention.shape() == Shape{3, 1, 8});
  CHECK(ws.after_cross.shape() == Shape{3, 1, 8});
  CHECK(ws.hidden.shape() == Shape{3, 1, 32});
  CHECK(ws.attention.q.shape() == Shape{3, 1, 8});
  CHECK(ws.attention.context.shape() == Shape{3, 1, 8});
  CHECK(ws.attention.scores.shape() == Shape{num_threads(), 11});  // a row of scores per thread
  CHECK(ws.attention.key_begin.size() == 3);
  CHECK(ws.attention.key_end.size() == 3);
}
