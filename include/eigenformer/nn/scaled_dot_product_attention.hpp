// nn/scaled_dot_product_attention.hpp: Attention(Q, K, V) = softmax(Q K^T / sqrt(Dh) + M) V on tensors that are
// already split into heads (Vaswani et al. 3.2.1; PyTorch >= 2.0's F.scaled_dot_product_attention, but with our
// Mask, whose true always means "allowed").
// q: [B, H, T, Dh], k: [B, H, S, Dh], v: [B, H, S, Dv] -> [B, H, T, Dv]; weights, if asked for: [B, H, T, S].
// A query row whose every key is masked gets all-zero weights and a zero output (core/mask.hpp).
// AttentionOptions is shared by every attention block: a mask, where to put the attention weights, which kernel.
#pragma once

#include <cmath>
#include <string>

#include "eigenformer/core/error.hpp"
#include "eigenformer/core/mask.hpp"
#include "eigenformer/core/tensor.hpp"
#include "eigenformer/ops/attention.hpp"

namespace eigenformer {

template <typename Scalar>
struct AttentionOptions {
  const Mask* mask = nullptr;         // none: every key is allowed
  Tensor<Scalar>* weights = nullptr;  // when set, receives the attention weights [B, H, T, S]
  AttentionKernel kernel = AttentionKernel::automatic;  // reference or flash-style (ops/attention.hpp)
};

template <typename Scalar>
class ScaledDotProductAttention {
 public:
  ScaledDotProductAttention() = default;
  // scale multiplies the scores; 0 means the default 1/sqrt(Dh).
  explicit ScaledDotProductAttention(double scale) : scale_(scale) {}

  Tensor<Scalar> forward(TensorView<const Scalar> q, TensorView<const Scalar> k, TensorView<const Scalar> v,
                         const AttentionOptions<Scalar>& options = {}) const {
    const char* where = "ScaledDotProductAttention.forward";
    check_shape(where, "q", q.shape(), {"B", "H", "T", "Dh"});
    const Index B = q.dim(0), H = q.dim(1), T = q.dim(2), Dh = q.dim(3);
    check_shape(where, "k", k.shape(), {B, H, "S", Dh}, "B, H and Dh of q");
    const Index S = k.dim(2);
    check_shape(where, "v", v.shape(), {B, H, S, "Dv"}, "B, H and S of k");
    if (options.mask) options.mask->check(where, B, T, S);
    Tensor<Scalar> out(Shape{B, H, T, v.dim(3)});
    Scalar* weights = nullptr;
    if (options.weights) {
      options.weights->resize(Shape{B, H, T, S});
      weights = options.weights->data();
    }
    const Scalar scale = scale_ > 0 ? static_cast<Scalar>(scale_) : static_cast<Scalar>(1.0 / std::sqrt(static_cast<double>(Dh)));
    attention_forward<Scalar>(HeadsView<const Scalar>::head_major(q), HeadsView<const Scalar>::head_major(k),
                              HeadsView<const Scalar>::head_major(v), options.mask, scale, HeadsView<Scalar>::head_major(out), weights,
                              options.kernel);
    return out;
  }

  template <typename F>
  void visit_parameters(F&&) {}

 private:
  double scale_ = 0;
};

}  // namespace eigenformer
