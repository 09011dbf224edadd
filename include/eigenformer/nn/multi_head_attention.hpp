// nn/multi_head_attention.hpp: MultiHead(Q, K, V) = Concat(head_1..head_H) W_O^T + b_O, head_i = Attention(Q W_Qi^T,
// K W_Ki^T, V W_Vi^T) (Vaswani et al. 3.2.2), as torch.nn.MultiheadAttention(d_model, num_heads, batch_first=True).
// query: [B, T, D], key and value: [B, S, D] -> [B, T, D]; weights, if asked for: [B, H, T, S] (PyTorch's
// average_attn_weights=False). Self-attention is forward(x). Heads are read in place from the [B, T, D] projections
// (HeadsView), never transposed. A query row with no allowed key outputs out_proj.bias (zero attention output).
// Parameters, fused (default, PyTorch's layout): "in_proj.weight" [3D, D] (rows q, then k, then v), "in_proj.bias" [3D];
// separate: "q_proj.weight", "k_proj.weight", "v_proj.weight" [D, D] and their biases; both: "out_proj.weight" [D, D],
// "out_proj.bias" [D].
#pragma once

#include <cmath>
#include <string>

#include "eigenformer/core/error.hpp"
#include "eigenformer/core/mask.hpp"
#include "eigenformer/core/tensor.hpp"
#include "eigenformer/core/visit.hpp"
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

  // Self-attention: query = key = value = x [B, T, D].
  Tensor<Scalar> forward(TensorView<const Scalar> x, const AttentionOptions<Scalar>& options = {}) const {
    return forward(x, x, x, options);
  }

  // `where` names the calling block in error messages.
  Tensor<Scalar> forward(TensorView<const Scalar> query, TensorView<const Scalar> key, TensorView<const Scalar> value,
                         const AttentionOptions<Scalar>& options = {}, const std::string& where = "MultiHeadAttention.forward") const {
    const Index D = config_.d_model, H = config_.num_heads, Dh = D / H;
    check_shape(where, "query", query.shape(), {"B", "T", D}, "d_model");
    const Index B = query.dim(0), T = query.dim(1);
    check_shape(where, "key", key.shape(), {B, "S", D}, "batch of query, d_model");
    const Index S = key.dim(1);
    check_shape(where, "value", value.shape(), {B, S, D}, "batch and length of key, d_model");
    if (options.mask) options.mask->check(where, B, T, S);

    Tensor<Scalar> q = project(query, 0), k = project(key, 1), v = project(value, 2);  // [B, T|S, D] = [B, T|S, H*Dh]
    Tensor<Scalar> context(Shape{B, T, D});                                             // heads concatenated
    Scalar* weights = nullptr;
    if (options.weights) {
      options.weights->resize(Shape{B, H, T, S});
      weights = options.weights->data();
    }
    const Scalar scale = static_cast<Scalar>(1.0 / std::sqrt(static_cast<double>(Dh)));
    attention_forward<Scalar>(HeadsView<const Scalar>::token_major(q, H, Dh), HeadsView<const Scalar>::token_major(k, H, Dh),
                              HeadsView<const Scalar>::token_major(v, H, Dh), options.mask, scale,
                              HeadsView<Scalar>::token_major(context, H, Dh), weights);
    return out_proj_.forward(context);
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

  const MultiHeadAttentionConfig& config() const { return config_; }

 private:
  // part 0, 1, 2 = the q, k or v projection of x: [B, L, D] -> [B, L, D].
  Tensor<Scalar> project(const TensorView<const Scalar>& x, int part) const {
    if (!config_.fused_qkv) return qkv_proj_[part].forward(x);
    const Index D = config_.d_model;
    Tensor<Scalar> y(x.shape());
    const Scalar* bias = config_.bias ? in_proj_.bias().data() + part * D : nullptr;
    linear_forward<Scalar>(x.matrix(), in_proj_.weight().matrix().middleRows(part * D, D), bias, y.matrix());
    return y;
  }

  MultiHeadAttentionConfig config_;
  Linear<Scalar> in_proj_;      // fused: [3D, D]
  Linear<Scalar> qkv_proj_[3];  // separate: q, k, v, each [D, D]
  Linear<Scalar> out_proj_;     // [D, D]
};

}  // namespace eigenformer
