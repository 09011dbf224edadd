// nn/multi_head_attention.hpp: MultiHead(Q, K, V) = Concat(head_1..head_H) W_O^T + b_O, head_i = Attention(Q W_Qi^T,
// K W_Ki^T, V W_Vi^T) (Vaswani et al. 3.2.2), as torch.nn.MultiheadAttention(d_model, num_heads, batch_first=True).
// query: [B, T, D], key and value: [B, S, D] -> [B, T, D]; weights, if asked for: [B, H, T, S] (PyTorch's
// average_attn_weights=False). Self-attention is forward(x). Heads are read in place from the [B, T, D] projections
// (HeadsView), never transposed, and handed to a ScaledDotProductAttention. A query row with no allowed key outputs
// out_proj.bias (zero attention output).
// Parameters, fused (default, PyTorch's layout): "in_proj.weight" [3D, D] (rows q, then k, then v), "in_proj.bias" [3D];
// separate: "q_proj.weight", "k_proj.weight", "v_proj.weight" [D, D] and their biases; both: "out_proj.weight" [D, D],
// "out_proj.bias" [D].
// Decoding one position at a time uses a KVCache: step() appends the new position's key and value and attends over
// every cached one; cache_memory() + attend() serve cross-attention over a memory projected once. Neither allocates.
// forward_accumulate(), and step() or attend() with Accumulate::yes, add the result onto a caller's y (y += MultiHead)
// rather than overwrite it: out_proj accumulates into y, so a residual connection that put x in y first needs no
// separate add.
// Not done: dropout on the attention weights in training (nn.MultiheadAttention's dropout, HF GPT-2's attn_pdrop). The
// flash kernel never stores the weights, so it would need a mask it can redraw tile by tile; the layers around this
// block drop its output instead (residual dropout, nn/dropout.hpp), as PyTorch and HF also do.
#pragma once

#include <cmath>
#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include "eigenformer/core/error.hpp"
#include "eigenformer/core/mask.hpp"
#include "eigenformer/core/tensor.hpp"
#include "eigenformer/core/threading.hpp"
#include "eigenformer/core/visit.hpp"
#include "eigenformer/nn/attention_options.hpp"
#include "eigenformer/nn/kv_cache.hpp"
#include "eigenformer/nn/linear.hpp"
#include "eigenformer/nn/scaled_dot_product_attention.hpp"
#include "eigenformer/ops/attention.hpp"
#include "eigenformer/ops/linear.hpp"

namespace eigenformer {

struct MultiHeadAttentionConfig {
  Index d_model = 512;   // D; HF GPT-2: n_embd
  Index num_heads = 8;   // H; HF GPT-2: n_head. D must be a multiple of H; Dh = D / H
  bool bias = true;      // biases on the q, k, v and output projections
  bool fused_qkv = true; // one [3D, D] in_proj (PyTorch, HF GPT-2) or three [D, D] projections
};

template <typename Scalar>
class MultiHeadAttention {
 public:
  MultiHeadAttention() = default;
  explicit MultiHeadAttention(const MultiHeadAttentionConfig& config) : config_(config) {
    if (config.d_model <= 0 || config.num_heads <= 0 || config.d_model % config.num_heads != 0)
      throw RangeError("MultiHeadAttention: d_model " + std::to_string(config.d_model) + " with " + std::to_string(config.num_heads) +
                       " heads; expected d_model > 0 and a multiple of num_heads > 0");
    const Index D = config.d_model;
    if (config.fused_qkv) {
      in_proj_ = Linear<Scalar>(LinearConfig{D, 3 * D, config.bias});
    } else {
      for (Linear<Scalar>& p : qkv_proj_) p = Linear<Scalar>(LinearConfig{D, D, config.bias});
    }
    out_proj_ = Linear<Scalar>(LinearConfig{D, D, config.bias});
  }

  // What backward needs of a forward (training): the projections and the heads' output.
  struct Activations {
    Tensor<Scalar> q, k, v;   // [B, T, D], [B, S, D], [B, S, D]: the projected query, key and value (heads side by side)
    Tensor<Scalar> context;   // [B, T, D]: the heads' attention outputs concatenated, out_proj's input
    typename ScaledDotProductAttention<Scalar>::Activations attention;
  };

  // Self-attention: query = key = value = x [B, T, D].
  Tensor<Scalar> forward(TensorView<const Scalar> x, const AttentionOptions<Scalar>& options = {}, Activations* saved = nullptr) const {
    return forward(x, x, x, options, "MultiHeadAttention.forward", nullptr, saved);
  }

  // `where` names the calling block in error messages. fill_cache, if given, receives the keys and values of all
  // S positions (a prompt processed at once before decoding continues with step()). saved: see Activations.
  Tensor<Scalar> forward(TensorView<const Scalar> query, TensorView<const Scalar> key, TensorView<const Scalar> value,
                         const AttentionOptions<Scalar>& options = {}, std::string_view where = "MultiHeadAttention.forward",
                         KVCache<Scalar>* fill_cache = nullptr, Activations* saved = nullptr) const {
    Tensor<Scalar> heads;
    Tensor<Scalar>& c = saved ? saved->context : heads;
    context(query, key, value, options, where, fill_cache, c, saved);
    return out_proj_.forward(c);
  }
  // The same added onto y [B, T, D], which holds (say) the residual: y += MultiHead(query, key, value). y may be
  // query itself: every projection of the inputs is made before out_proj writes y.
  void forward_accumulate(TensorView<const Scalar> query, TensorView<const Scalar> key, TensorView<const Scalar> value, TensorView<Scalar> y,
                          const AttentionOptions<Scalar>& options = {}, std::string_view where = "MultiHeadAttention.forward_accumulate",
                          KVCache<Scalar>* fill_cache = nullptr, Activations* saved = nullptr) const {
    check_shape(where, "query", query.shape(), {"B", "T", config_.d_model}, "d_model");
    check_shape(where, "y", y.shape(), {query.dim(0), query.dim(1), config_.d_model}, "query's shape");
    Tensor<Scalar> heads;
    Tensor<Scalar>& c = saved ? saved->context : heads;
    context(query, key, value, options, where, fill_cache, c, saved);
    out_proj_.forward_accumulate(c, y);
  }

  // Backward of a forward that saved its activations, for dy = dL/dy [B, T, D]: dquery, dkey and dvalue += their
  // gradients (they may be one buffer, as in self-attention, where query = key = value); every projection's
  // gradients accumulate. query, key, value: the forward's inputs; options: the same mask and kernel.
  //   dcontext = dy W_O;  dq, dk, dv = Attention's backward (per head);  dquery = dq W_Q, dkey = dk W_K, dvalue = dv W_V
  void backward(TensorView<const Scalar> query, TensorView<const Scalar> key, TensorView<const Scalar> value, TensorView<const Scalar> dy,
                TensorView<Scalar> dquery, TensorView<Scalar> dkey, TensorView<Scalar> dvalue, const Activations& saved,
                const AttentionOptions<Scalar>& options = {}) {
    const char* where = "MultiHeadAttention.backward";
    const Index D = config_.d_model, H = config_.num_heads, Dh = D / H;
    if (saved.q.shape() != query.shape() || saved.k.shape() != key.shape() || dy.shape() != query.shape() || dquery.shape() != query.shape() ||
        dkey.shape() != key.shape() || dvalue.shape() != value.shape())
      throw ShapeError(std::string(where) + ": query " + query.shape().str() + ", key " + key.shape().str() + ", dy " + dy.shape().str() +
                       " and saved q " + saved.q.shape().str() + ", k " + saved.k.shape().str() + "; expected the forward's shapes, and gradients shaped as their inputs");
    Tensor<Scalar> dcontext(query.shape());
    out_proj_.backward(saved.context, dy, dcontext, Accumulate::no);
    Tensor<Scalar> dq(saved.q.shape()), dk(saved.k.shape()), dv(saved.v.shape());
    const auto heads = [&](const Tensor<Scalar>& t) { return HeadsView<const Scalar>::token_major(t, H, Dh); };
    attention_.backward(heads(saved.q), heads(saved.k), heads(saved.v), heads(saved.context), heads(dcontext), HeadsView<Scalar>::token_major(dq, H, Dh),
                        HeadsView<Scalar>::token_major(dk, H, Dh), HeadsView<Scalar>::token_major(dv, H, Dh), saved.attention, options);
    project_backward(query, 0, dq, dquery);
    project_backward(key, 1, dk, dkey);
    project_backward(value, 2, dv, dvalue);
  }

  // Self-attention for one new position per item, x: [B, 1, D] -> y: [B, 1, D]. Appends the position's key and
  // value to `cache` (whose length grows by one), then attends over every cached position, the new one included:
  // the causal mask of incremental decoding. left_pads[b] (optional): item b's first keys are padding. Accumulate::yes:
  // y += the result. No allocation, unless watch holds an observer (see observe_step).
  void step(TensorView<const Scalar> x, KVCache<Scalar>& cache, AttentionStepWorkspace<Scalar>& ws, TensorView<Scalar> y,
            const std::vector<Index>* left_pads = nullptr, Accumulate accumulate = Accumulate::no, const Watch<Scalar>& watch = {}) const {
    const char* where = "MultiHeadAttention.step";
    check_step(where, x, y, cache, ws);
    if (left_pads && static_cast<Index>(left_pads->size()) != x.dim(0))
      throw ShapeError(std::string(where) + ": " + std::to_string(left_pads->size()) + " left paddings for a batch of " + std::to_string(x.dim(0)));
    if (cache.length >= cache.capacity())
      throw RangeError(std::string(where) + ": the cache is full (" + std::to_string(cache.capacity()) + " positions)");
    project_into(x, 1, cache_rows(cache.keys, cache.length));
    project_into(x, 2, cache_rows(cache.values, cache.length));
    ++cache.length;
    std::fill(ws.key_end.begin(), ws.key_end.end(), cache.length);
    if (left_pads) std::copy(left_pads->begin(), left_pads->end(), ws.key_begin.begin());
    else std::fill(ws.key_begin.begin(), ws.key_begin.end(), 0);
    attend_cached(x, cache, ws.key_begin.data(), ws.key_end.data(), ws, y, accumulate, watch);
  }

  // Cross-attention, part 1: the keys and values of memory [B, S, D], projected once per source into `cache`.
  void cache_memory(TensorView<const Scalar> memory, KVCache<Scalar>& cache) const {
    check_shape("MultiHeadAttention.cache_memory", "memory", memory.shape(), {"B", "S", config_.d_model}, "d_model");
    cache.reserve(memory.dim(0), memory.dim(1), config_.d_model);
    project_into(memory, 1, cache.keys.matrix());
    project_into(memory, 2, cache.values.matrix());
    cache.length = memory.dim(1);
  }
  // Cross-attention, part 2: x [B, 1, D] attends to the first memory_lengths[b] positions of the cached memory
  // (the rest is padding). Accumulate::yes: y += the result. No allocation, unless watch holds an observer.
  void attend(TensorView<const Scalar> x, const KVCache<Scalar>& cache, const std::vector<Index>& memory_lengths,
              AttentionStepWorkspace<Scalar>& ws, TensorView<Scalar> y, Accumulate accumulate = Accumulate::no,
              const Watch<Scalar>& watch = {}) const {
    const char* where = "MultiHeadAttention.attend";
    check_step(where, x, y, cache, ws);
    if (static_cast<Index>(memory_lengths.size()) != x.dim(0))
      throw ShapeError(std::string(where) + ": " + std::to_string(memory_lengths.size()) + " memory lengths for a batch of " + std::to_string(x.dim(0)));
    for (std::size_t b = 0; b < memory_lengths.size(); ++b)
      if (memory_lengths[b] < 0 || memory_lengths[b] > cache.length)
        throw RangeError(std::string(where) + ": memory length " + std::to_string(memory_lengths[b]) + " of batch item " + std::to_string(b) +
                         " is outside [0, " + std::to_string(cache.length) + "]");
    attend_cached(x, cache, nullptr, memory_lengths.data(), ws, y, accumulate, watch);
  }

  template <typename F>
  void visit_parameters(F&& f) {
    if (config_.fused_qkv) {
      visit_child(in_proj_, "in_proj", f);
    } else {
      visit_child(qkv_proj_[0], "q_proj", f);
      visit_child(qkv_proj_[1], "k_proj", f);
      visit_child(qkv_proj_[2], "v_proj", f);
    }
    visit_child(out_proj_, "out_proj", f);
  }

  // Inference only: keep every projection's weight in bf16 or int8 (nn/layer_weight.hpp).
  void narrow_weights(WeightType type) {
    for (Linear<Scalar>* p : {&in_proj_, &qkv_proj_[0], &qkv_proj_[1], &qkv_proj_[2], &out_proj_})
      if (p->weight().size() > 0 || p->weight_type() != WeightType::full) p->narrow_weights(type);
  }

  const MultiHeadAttentionConfig& config() const { return config_; }

 private:
  // out = the heads' attention outputs concatenated, [B, T, D]: everything of forward() but out_proj. In training,
  // saved keeps the projections and the kernel's statistics (and out is saved->context).
  void context(const TensorView<const Scalar>& query, const TensorView<const Scalar>& key, const TensorView<const Scalar>& value,
               const AttentionOptions<Scalar>& options, std::string_view where, KVCache<Scalar>* fill_cache, Tensor<Scalar>& out,
               Activations* saved = nullptr) const {
    const Index D = config_.d_model, H = config_.num_heads, Dh = D / H;
    check_shape(where, "query", query.shape(), {"B", "T", D}, "d_model");
    const Index B = query.dim(0), T = query.dim(1);
    check_shape(where, "key", key.shape(), {B, "S", D}, "batch of query, d_model");
    const Index S = key.dim(1);
    check_shape(where, "value", value.shape(), {B, S, D}, "batch and length of key, d_model");
    if (options.mask) options.mask->check(where, B, T, S);

    Tensor<Scalar> projections[3];  // q, k, v when nothing is saved
    Tensor<Scalar>& q = saved ? saved->q : projections[0];
    Tensor<Scalar>& k = saved ? saved->k : projections[1];
    Tensor<Scalar>& v = saved ? saved->v : projections[2];
    q = project(query, 0), k = project(key, 1), v = project(value, 2);  // [B, T|S, D] = [B, T|S, H*Dh]
    if (fill_cache) {
      if (fill_cache->capacity() < S || fill_cache->keys.dim(0) != B || fill_cache->keys.dim(2) != D)
        throw ShapeError(std::string(where) + ": the cache holds " + fill_cache->keys.shape().str() + "; " + std::to_string(B) + " items of " +
                         std::to_string(S) + " positions do not fit");
      for (Index b = 0; b < B; ++b) {
        fill_cache->keys.slice(b).matrix().topRows(S) = k.slice(b).matrix();
        fill_cache->values.slice(b).matrix().topRows(S) = v.slice(b).matrix();
      }
      fill_cache->length = S;
    }
    out = Tensor<Scalar>(Shape{B, T, D});  // heads concatenated
    const auto heads = [&](const Tensor<Scalar>& t) { return HeadsView<const Scalar>::token_major(t, H, Dh); };
    if (!options.watch.observer) {
      attention_.forward(heads(q), heads(k), heads(v), HeadsView<Scalar>::token_major(out, H, Dh), options, saved ? &saved->attention : nullptr);
      return;
    }
    observe(heads(q), heads(k), q, k, v, options, out, saved);
  }
  // The same with an observer (inspect/observer.hpp): reports q, k, v, the scores and the weights it asks for. The
  // weights come from the kernel itself, written where options.weights points or into a buffer of our own.
  void observe(const HeadsView<const Scalar>& qh, const HeadsView<const Scalar>& kh, const Tensor<Scalar>& q, const Tensor<Scalar>& k,
               const Tensor<Scalar>& v, const AttentionOptions<Scalar>& options, Tensor<Scalar>& out, Activations* saved) const {
    const Index H = config_.num_heads, Dh = config_.d_model / H;
    const Watch<Scalar>& watch = options.watch;
    record_projections(watch, q, k, v);
    Tensor<Scalar> weights;
    AttentionOptions<Scalar> with_weights = options;
    if (!with_weights.weights && watch.wants(Probe::attention_weights)) with_weights.weights = &weights;
    attention_.forward(qh, kh, HeadsView<const Scalar>::token_major(v, H, Dh), HeadsView<Scalar>::token_major(out, H, Dh), with_weights,
                       saved ? &saved->attention : nullptr);
    if (with_weights.weights) watch.record("weights", Probe::attention_weights, *with_weights.weights);
  }
  // What observe() and observe_step() show before the weights: q [B, T, D], k and v [B, S, D] and, if asked for, the
  // scores q k^T * scale [B, H, T, S].
  void record_projections(const Watch<Scalar>& watch, const Tensor<Scalar>& q, const Tensor<Scalar>& k, const Tensor<Scalar>& v) const {
    watch.record("q", Probe::qkv, q);
    watch.record("k", Probe::qkv, k);
    watch.record("v", Probe::qkv, v);
    if (!watch.wants(Probe::attention_scores)) return;
    const Index H = config_.num_heads, Dh = config_.d_model / H;
    Tensor<Scalar> scores;
    attention_.scores(HeadsView<const Scalar>::token_major(q, H, Dh), HeadsView<const Scalar>::token_major(k, H, Dh), scores);
    watch.record("scores", Probe::attention_scores, scores);
  }
  // part 0, 1, 2 = the q, k or v projection of x: [B, L, D] -> [B, L, D].
  Tensor<Scalar> project(const TensorView<const Scalar>& x, int part) const {
    Tensor<Scalar> y(x.shape());
    project_into(x, part, y.matrix());
    return y;
  }
  // The same into any writable [B*L, D] Eigen map (a workspace, or strided rows of a KVCache).
  template <typename Output>
  void project_into(const TensorView<const Scalar>& x, int part, Output&& y) const {
    const Index D = config_.d_model;
    if (config_.fused_qkv)
      in_proj_.forward_rows(x.matrix(), part * D, D, y);
    else
      qkv_proj_[part].forward_rows(x.matrix(), 0, D, y);
  }
  // dx += the input gradient of projection `part` (0, 1, 2 = q, k, v) for dpart [B, L, D]; its weight's gradients
  // accumulate.
  void project_backward(const TensorView<const Scalar>& x, int part, const Tensor<Scalar>& dpart, TensorView<Scalar> dx) {
    const Index D = config_.d_model;
    if (config_.fused_qkv)
      in_proj_.backward_rows(x.matrix(), part * D, D, dpart.matrix(), dx.matrix());
    else
      qkv_proj_[part].backward_rows(x.matrix(), 0, D, dpart.matrix(), dx.matrix());
  }
  // Rows [position, position + 1) of every batch item of a [B, capacity, D] cache tensor, as a [B, D] map.
  static StridedMatrixMap<Scalar> cache_rows(Tensor<Scalar>& t, Index position) {
    return StridedMatrixMap<Scalar>(t.data() + position * t.dim(2), t.dim(0), t.dim(2), Eigen::OuterStride<>(t.dim(1) * t.dim(2)));
  }
  void check_step(const char* where, const TensorView<const Scalar>& x, const TensorView<Scalar>& y, const KVCache<Scalar>& cache,
                  const AttentionStepWorkspace<Scalar>& ws) const {
    check_shape(where, "x", x.shape(), {"B", 1, config_.d_model}, "one position, d_model");
    const Index B = x.dim(0);
    check_shape(where, "y", y.shape(), {B, 1, config_.d_model}, "x's shape");
    check_shape(where, "cache keys", cache.keys.shape(), {B, "P", config_.d_model}, "reserve the cache for this batch");
    if (ws.q.shape() != x.shape() || static_cast<Index>(ws.key_end.size()) != B || ws.scores.dim(1) < cache.capacity() ||
        ws.scores.dim(0) < num_threads())
      throw ShapeError(std::string(where) + ": the workspace was reserved for " + ws.q.shape().str() + " and " + std::to_string(ws.scores.dim(1)) +
                       " keys on " + std::to_string(ws.scores.dim(0)) + " threads; this step needs " + x.shape().str() + ", " +
                       std::to_string(cache.capacity()) + " keys, " + std::to_string(num_threads()) + " threads");
  }
  // Queries of x attend over cached positions [key_begin[b], key_end[b]); y = out_proj(context), or y += it.
  void attend_cached(const TensorView<const Scalar>& x, const KVCache<Scalar>& cache, const Index* key_begin, const Index* key_end,
                     AttentionStepWorkspace<Scalar>& ws, TensorView<Scalar> y, Accumulate accumulate, const Watch<Scalar>& watch) const {
    const Index D = config_.d_model, H = config_.num_heads, Dh = D / H;
    project_into(x, 0, ws.q.matrix());
    if (!watch.observer)
      attention_.decode(HeadsView<const Scalar>::token_major(ws.q, H, Dh), HeadsView<const Scalar>::token_major(cache.keys, H, Dh),
                        HeadsView<const Scalar>::token_major(cache.values, H, Dh), key_begin, key_end,
                        HeadsView<Scalar>::token_major(ws.context, H, Dh), ws.scores);
    else
      observe_step(cache, key_begin, key_end, ws, watch);
    if (accumulate == Accumulate::yes)
      out_proj_.forward_accumulate(ws.context, y);
    else
      out_proj_.forward(ws.context, y);
  }
  // The decoding step with an observer: as forward's observe(), for the one new query of each item. L = cache.length,
  // the positions held (a self-attention cache includes the new one): q [B, 1, D]; k, v [B, L, D], the cached keys
  // and values it attends over; scores [B, H, 1, L], before the padding is applied; weights [B, H, 1, L], zero on
  // padding. Each equals row t of what forward() records over the whole prefix. The output is computed as without an
  // observer; the copies allocate, which is why observing is not on the decoding path.
  void observe_step(const KVCache<Scalar>& cache, const Index* key_begin, const Index* key_end, AttentionStepWorkspace<Scalar>& ws,
                    const Watch<Scalar>& watch) const {
    const Index B = ws.q.dim(0), L = cache.length, D = config_.d_model, H = config_.num_heads, Dh = D / H;
    const auto held = [&](const Tensor<Scalar>& t) {  // rows [0, L) of each item of a [B, capacity, D] cache tensor
      Tensor<Scalar> out(Shape{B, L, D});
      for (Index b = 0; b < B; ++b) out.slice(b).matrix() = t.slice(b).matrix().topRows(L);
      return out;
    };
    if (watch.wants(Probe::qkv) || watch.wants(Probe::attention_scores)) record_projections(watch, ws.q, held(cache.keys), held(cache.values));
    Tensor<Scalar> weights(Shape{B, H, 1, L});
    const auto heads = [&](const Tensor<Scalar>& t) { return HeadsView<const Scalar>::token_major(t, H, Dh); };
    attention_.decode(heads(ws.q), heads(cache.keys), heads(cache.values), key_begin, key_end, HeadsView<Scalar>::token_major(ws.context, H, Dh),
                      ws.scores, &weights);
    watch.record("weights", Probe::attention_weights, weights);
  }

  MultiHeadAttentionConfig config_;
  ScaledDotProductAttention<Scalar> attention_;  // softmax(q k^T / sqrt(Dh) + M) v on each head, read in place
  Linear<Scalar> in_proj_;      // fused: [3D, D]
  Linear<Scalar> qkv_proj_[3];  // separate: q, k, v, each [D, D]
  Linear<Scalar> out_proj_;     // [D, D]
};

}  // namespace eigenformer
