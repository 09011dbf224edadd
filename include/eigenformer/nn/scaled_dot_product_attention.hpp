// nn/scaled_dot_product_attention.hpp: Attention(Q, K, V) = softmax(Q K^T / sqrt(Dh) + M) V on tensors that are
// already split into heads (Vaswani et al. 3.2.1; PyTorch >= 2.0's F.scaled_dot_product_attention, but with our
// Mask, whose true always means "allowed").
// q: [B, H, T, Dh], k: [B, H, S, Dh], v: [B, H, S, Dv] -> [B, H, T, Dv]; weights, if asked for: [B, H, T, S].
// A query row whose every key is masked gets all-zero weights and a zero output (core/mask.hpp).
// MultiHeadAttention holds one and calls it on heads read in place from its projections (HeadsView): forward() for a
// whole sequence (the kernel AttentionOptions names), decode() for one new query over a KV cache.
#pragma once

#include <algorithm>
#include <cmath>
#include <string>

#include "eigenformer/core/error.hpp"
#include "eigenformer/core/mask.hpp"
#include "eigenformer/core/tensor.hpp"
#include "eigenformer/nn/attention_options.hpp"
#include "eigenformer/ops/attention.hpp"

namespace eigenformer {

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
    forward(HeadsView<const Scalar>::head_major(q), HeadsView<const Scalar>::head_major(k), HeadsView<const Scalar>::head_major(v),
            HeadsView<Scalar>::head_major(out), options);
    return out;
  }

  // What backward needs of a forward besides its inputs and output (training). The flash kernel keeps one number per
  // query row and recomputes the probabilities tile by tile; the reference kernel keeps them all.
  struct Activations {
    Tensor<Scalar> lse;      // flash: [B, H, T], log sum exp of each row's scaled, masked scores
    Tensor<Scalar> weights;  // reference: [B, H, T, S], the probabilities
  };

  // The same on heads wherever they live (HeadsView: head-major tensors, or the [B, T, H*Dh] rows of a projection),
  // into out; shapes as above, already checked by the caller, as is options.mask. saved: see Activations.
  void forward(const HeadsView<const Scalar>& q, const HeadsView<const Scalar>& k, const HeadsView<const Scalar>& v,
               const HeadsView<Scalar>& out, const AttentionOptions<Scalar>& options, Activations* saved = nullptr) const {
    Scalar* weights = nullptr;
    if (options.weights) {
      options.weights->resize(Shape{q.batch, q.heads, q.rows, k.rows});
      weights = options.weights->data();
    }
    if (!saved) {
      attention_forward<Scalar>(q, k, v, options.mask, scale(q.cols), out, weights, options.kernel);
    } else if (options.kernel == AttentionKernel::flash) {
      saved->lse.resize(Shape{q.batch, q.heads, q.rows});
      attention_flash<Scalar>(q, k, v, options.mask, scale(q.cols), out, weights, FlashBlocks{}, saved->lse.data());
    } else {
      saved->weights.resize(Shape{q.batch, q.heads, q.rows, k.rows});
      attention_reference<Scalar>(q, k, v, options.mask, scale(q.cols), out, saved->weights.data());
      if (weights) std::copy(saved->weights.data(), saved->weights.data() + saved->weights.size(), weights);
    }
  }

  // Backward of that forward for dout = dL/dout: dq, dk, dv += their gradients (each must be its own buffer). q, k, v
  // and out: the forward's inputs and output; options: the same mask and kernel.
  void backward(const HeadsView<const Scalar>& q, const HeadsView<const Scalar>& k, const HeadsView<const Scalar>& v,
                const HeadsView<const Scalar>& out, const HeadsView<const Scalar>& dout, const HeadsView<Scalar>& dq,
                const HeadsView<Scalar>& dk, const HeadsView<Scalar>& dv, const Activations& saved,
                const AttentionOptions<Scalar>& options) const {
    if (options.kernel == AttentionKernel::flash) {
      if (saved.lse.size() != q.batch * q.heads * q.rows)
        throw ShapeError("ScaledDotProductAttention.backward: " + std::to_string(saved.lse.size()) + " saved rows; expected a flash forward of " +
                         std::to_string(q.batch * q.heads * q.rows) + " query rows");
      attention_flash_backward<Scalar>(q, k, v, options.mask, scale(q.cols), out, saved.lse.data(), dout, dq, dk, dv);
    } else {
      if (saved.weights.size() != q.batch * q.heads * q.rows * k.rows)
        throw ShapeError("ScaledDotProductAttention.backward: " + saved.weights.shape().str() + " saved weights; expected a reference forward of " +
                         std::to_string(q.rows) + " queries and " + std::to_string(k.rows) + " keys");
      attention_reference_backward<Scalar>(q, k, v, saved.weights.data(), scale(q.cols), dout, dq, dk, dv);
    }
  }

  // Decoding: one query per item (q.rows = 1) over cached keys and values; item b attends to keys
  // [key_begin[b], key_end[b]) (key_begin null: from 0). scratch: [threads, >= max keys]. No allocation. weights, if
  // given: [B, H, 1, S] with S >= every key_end[b], receives the attention weights (zero outside each item's keys).
  void decode(const HeadsView<const Scalar>& q, const HeadsView<const Scalar>& k, const HeadsView<const Scalar>& v,
              const Index* key_begin, const Index* key_end, const HeadsView<Scalar>& out, TensorView<Scalar> scratch,
              Tensor<Scalar>* weights = nullptr) const {
    attention_decode<Scalar>(q, k, v, key_begin, key_end, scale(q.cols), out, scratch, weights ? weights->data() : nullptr,
                             weights ? weights->dim(3) : 0);
  }

  // The scaled scores before the mask and the softmax, out [B, H, T, S] = q k^T * scale on each head: what an observer
  // asks for (inspect/observer.hpp). Not on any fast path: the kernels above never store them.
  void scores(const HeadsView<const Scalar>& q, const HeadsView<const Scalar>& k, Tensor<Scalar>& out) const {
    out.resize(Shape{q.batch, q.heads, q.rows, k.rows});
    const HeadsView<Scalar> s = HeadsView<Scalar>::head_major(out);
    for (Index b = 0; b < q.batch; ++b)
      for (Index h = 0; h < q.heads; ++h) s.head(b, h).noalias() = scale(q.cols) * (q.head(b, h) * k.head(b, h).transpose());
  }

  template <typename F>
  void visit_parameters(F&&) {}

 private:
  Scalar scale(Index head_dim) const {
    return scale_ > 0 ? static_cast<Scalar>(scale_) : static_cast<Scalar>(1.0 / std::sqrt(static_cast<double>(head_dim)));
  }
  double scale_ = 0;
};

}  // namespace eigenformer
