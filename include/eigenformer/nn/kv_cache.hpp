// nn/kv_cache.hpp: the state that incremental decoding keeps between steps, and the scratch each step works in, all
// sized once before the first step so that a step allocates nothing (a test counts allocations over 16 steps).
//   KVCache                 one attention block's keys and values of the positions seen so far      [B, P, D] each
//   DecoderLayerCache       a decoder layer's two caches: its self-attention's (grows a position per step) and
//                           its cross-attention's, the encoder output projected once per source
//   AttentionStepWorkspace  one attention block's step: the query, the heads' outputs, a row of scores per thread
//   LayerStepWorkspace      one layer's step (normed input, sub-layer outputs, the feed-forward's hidden layer),
//                           shared by every layer of a model
// Per-call state belongs to the caller, so one loaded model can serve several generations at once.
#pragma once

#include <vector>

#include "eigenformer/core/tensor.hpp"
#include "eigenformer/core/threading.hpp"

namespace eigenformer {

// Keys and values of the positions seen so far, for incremental decoding. Sized once by reserve(); the first
// `length` positions are filled.
template <typename Scalar>
struct KVCache {
  Tensor<Scalar> keys;    // [B, capacity, D]
  Tensor<Scalar> values;  // [B, capacity, D]
  Index length = 0;

  void reserve(Index batch, Index capacity, Index d_model) {
    keys.resize(Shape{batch, capacity, d_model});
    values.resize(Shape{batch, capacity, d_model});
    length = 0;
  }
  Index capacity() const { return keys.rank() == 3 ? keys.dim(1) : 0; }
};

// Scratch for one decoding step of one attention block, sized once by reserve() (for the thread count in force
// then: call set_num_threads() before reserving).
template <typename Scalar>
struct AttentionStepWorkspace {
  Tensor<Scalar> q;                // [B, 1, D]
  Tensor<Scalar> context;          // [B, 1, D], the heads concatenated
  Tensor<Scalar> scores;           // [threads, max keys]
  std::vector<Index> key_begin, key_end;  // [B]: the keys each item attends to

  void reserve(Index batch, Index d_model, Index max_keys) {
    q.resize(Shape{batch, 1, d_model});
    context.resize(Shape{batch, 1, d_model});
    scores.resize(Shape{num_threads(), max_keys});
    key_begin.assign(static_cast<std::size_t>(batch), 0);
    key_end.assign(static_cast<std::size_t>(batch), 0);
  }
};

// Scratch for one decoding step of a layer (GPT-2 block or decoder layer), shared by every layer of a model; sized
// once by reserve().
template <typename Scalar>
struct LayerStepWorkspace {
  AttentionStepWorkspace<Scalar> attention;
  Tensor<Scalar> normed, after_attention, after_cross;  // [B, 1, D] each
  Tensor<Scalar> hidden;                                // [B, 1, F]

  void reserve(Index batch, Index d_model, Index d_ff, Index max_keys) {
    attention.reserve(batch, d_model, max_keys);
    for (Tensor<Scalar>* t : {&normed, &after_attention, &after_cross}) t->resize(Shape{batch, 1, d_model});
    hidden.resize(Shape{batch, 1, d_ff});
  }
};

// One layer's state while decoding: the self-attention cache grows by a position per step; the memory cache holds
// the encoder output's keys and values, projected once.
template <typename Scalar>
struct DecoderLayerCache {
  KVCache<Scalar> self;    // [B, max target positions, D] each
  KVCache<Scalar> memory;  // [B, S, D] each
};

}  // namespace eigenformer
