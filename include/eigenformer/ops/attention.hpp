// ops/attention.hpp: the reference attention kernel, out = softmax(q k^T * scale + M) v, per batch item and head
// ("Attention Is All You Need", section 3.2.1; M is the mask's bias: 0 where allowed, -inf where not).
// q: [B, H, T, Dh], k: [B, H, S, Dh], v: [B, H, S, Dv] -> out: [B, H, T, Dv]; weights (optional): [B, H, T, S].
// HeadsView reads those shapes from either layout without copying: head-major [B, H, T, Dh] tensors, or the
// token-major [B, T, H*Dh] rows that the projections produce (a head is then a strided [T, Dh] block).
// A query row with no allowed key yields zero weights and a zero output (see core/mask.hpp).
// Parallel over batch x heads with OpenMP; the score matrix is materialised, [T, S] per head.
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "eigenformer/core/mask.hpp"
#include "eigenformer/core/tensor.hpp"
#include "eigenformer/core/threading.hpp"
#include "eigenformer/ops/softmax.hpp"

namespace eigenformer {

// Where head h of batch item b lives: a [rows, cols] row-major block starting at
// data + b * batch_stride + h * head_stride, with rows row_stride elements apart.
template <typename Scalar>
struct HeadsView {
  Scalar* data = nullptr;
  Index batch = 0, heads = 0, rows = 0, cols = 0;
  Index batch_stride = 0, head_stride = 0, row_stride = 0;

  StridedMatrixMap<Scalar> head(Index b, Index h) const {
    return StridedMatrixMap<Scalar>(data + b * batch_stride + h * head_stride, rows, cols, Eigen::OuterStride<>(row_stride));
  }

  // t: [B, H, T, Dh].
  static HeadsView head_major(TensorView<Scalar> t) {
    EIGENFORMER_ASSERT(t.rank() == 4, "head_major needs [B, H, T, Dh]");
    const Index B = t.dim(0), H = t.dim(1), T = t.dim(2), Dh = t.dim(3);
    return HeadsView{t.data(), B, H, T, Dh, H * T * Dh, T * Dh, Dh};
  }
  // Columns [offset, offset + heads*Dh) of each row of a [B, T, width] tensor, split into `heads` heads:
  // = x[..., offset:offset+H*Dh].view(B, T, H, Dh).transpose(1, 2) without the copy.
  static HeadsView token_major(TensorView<Scalar> t, Index heads, Index head_dim, Index offset = 0) {
    EIGENFORMER_ASSERT(t.rank() == 3 && offset + heads * head_dim <= t.dim(2), "token_major needs [B, T, >= offset + H*Dh]");
    const Index B = t.dim(0), T = t.dim(1), W = t.dim(2);
    return HeadsView{t.data() + offset, B, heads, T, head_dim, T * W, head_dim, W};
  }
};

template <typename Scalar>
void attention_forward(const HeadsView<const Scalar>& q, const HeadsView<const Scalar>& k, const HeadsView<const Scalar>& v,
                       const Mask* mask, Scalar scale, const HeadsView<Scalar>& out, Scalar* weights = nullptr) {
  const Index B = q.batch, H = q.heads, T = q.rows, S = k.rows;
  EIGENFORMER_ASSERT(k.batch == B && v.batch == B && out.batch == B, "same batch everywhere");
  EIGENFORMER_ASSERT(k.heads == H && v.heads == H && out.heads == H, "same heads everywhere");
  EIGENFORMER_ASSERT(k.cols == q.cols && v.rows == S && out.rows == T && out.cols == v.cols, "matching head shapes");

  // The mask's bias is built once per batch item (once in all if it does not depend on the item) and
  // shared by every head. Callers have already run mask->check().
  const bool has_mask = mask && !mask->empty();
  const Index bias_items = has_mask ? (mask->depends_on_batch() ? B : 1) : 0;
  Tensor<Scalar> bias(Shape{bias_items, T, S});
  for (Index b = 0; b < bias_items; ++b) mask->fill_bias<Scalar>(b, bias.slice(b).matrix());

  const Index jobs = B * H;
#pragma omp parallel if (jobs > 1 && T * S * q.cols > 4096) num_threads(num_threads())
  {
    // [T, S], one per thread. Scores are always formed here, aligned, and copied out when the caller wants the
    // weights: computing them in place in the caller's buffer would change Eigen's vectorisation, and so the
    // last bits of the output, depending on whether weights were requested.
    RowMatrix<Scalar> scores(T, S);
#pragma omp for schedule(static)
    for (Index job = 0; job < jobs; ++job) {
      const Index b = job / H, h = job % H;
      scores.noalias() = q.head(b, h) * k.head(b, h).transpose();
      scores *= scale;
      if (has_mask) scores += bias.slice(bias_items > 1 ? b : 0).matrix();
      softmax_rows<Scalar>(MatrixMap<Scalar>(scores.data(), T, S));
      if (weights) MatrixMap<Scalar>(weights + job * T * S, T, S) = scores;
      out.head(b, h).noalias() = scores * v.head(b, h);
    }
  }
}

// Decoding: one new query per batch item over keys held in a cache, with no mask object and no allocation.
// q: [B, H, 1, Dh] (a HeadsView with rows = 1); k, v: HeadsViews over the cache, rows = its capacity;
// item b attends to keys [key_begin[b], key_end[b]) (key_begin null: from 0): the cached positions, the memory's
// real length, or a left-padded prompt's real keys; that is how padding is applied here. out: [B, H, 1, Dv]. scratch: [threads, >= max key length], one row per
// OpenMP thread. A zero key length yields a zero output, as a fully masked row does in attention_forward.
template <typename Scalar>
void attention_decode(const HeadsView<const Scalar>& q, const HeadsView<const Scalar>& k, const HeadsView<const Scalar>& v,
                      const Index* key_begin, const Index* key_end, Scalar scale, const HeadsView<Scalar>& out,
                      TensorView<Scalar> scratch) {
  const Index B = q.batch, H = q.heads, jobs = B * H;
  EIGENFORMER_ASSERT(q.rows == 1 && out.rows == 1, "one query per item");
  EIGENFORMER_ASSERT(scratch.rank() == 2 && scratch.dim(0) >= num_threads(), "a scratch row per thread");
#pragma omp parallel for schedule(static) if (jobs > 1 && k.rows * q.cols > 4096) num_threads(num_threads())
  for (Index job = 0; job < jobs; ++job) {
    const Index b = job / H, h = job % H, first = key_begin ? key_begin[b] : 0, n = key_end[b] - first;
#ifdef _OPENMP
    const Index thread = omp_get_thread_num();
#else
    const Index thread = 0;
#endif
    if (n <= 0) {
      out.head(b, h).setZero();
      continue;
    }
    Eigen::Map<RowMatrix<Scalar>> scores(scratch.data() + thread * scratch.dim(1), 1, n);
    scores.noalias() = q.head(b, h) * k.head(b, h).middleRows(first, n).transpose();
    scores *= scale;
    softmax_rows<Scalar>(MatrixMap<Scalar>(scores.data(), 1, n));
    out.head(b, h).noalias() = scores * v.head(b, h).middleRows(first, n);
  }
}

}  // namespace eigenformer
