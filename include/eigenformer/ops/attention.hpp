// ops/attention.hpp: the reference attention kernel, out = softmax(q k^T * scale + M) v, per batch item and head
// ("Attention Is All You Need", section 3.2.1; M is the mask's bias: 0 where allowed, -inf where not).
// q: [B, H, T, Dh], k: [B, H, S, Dh], v: [B, H, S, Dv] -> out: [B, H, T, Dv]; weights (optional): [B, H, T, S].
// HeadsView reads those shapes from either layout without copying: head-major [B, H, T, Dh] tensors, or the
// token-major [B, T, H*Dh] rows that the projections produce (a head is then a strided [T, Dh] block).
// A query row with no allowed key yields zero weights and a zero output (see core/mask.hpp).
// Three kernels:
//   attention_reference  materialises the [T, S] scores of a head, then softmax, then the weighted sum of values;
//                        parallel over batch x heads. The plainest statement of the formula.
//   attention_flash      blocked with an online softmax (Milakov & Gimelshein 2018; Dao et al. 2022, "FlashAttention"):
//                        a block of queries meets one block of keys at a time, a running maximum and sum rescale
//                        what was accumulated, so memory is O(block) per thread instead of O(T S); blocks a causal
//                        or padding mask hides entirely are skipped. Parallel over batch x heads x query blocks.
//   attention_decode     one new query per item over a KV cache (incremental decoding).
// attention_forward picks between the first two (AttentionKernel, flash by default); both give the same result up to
// rounding. nn/scaled_dot_product_attention.hpp is the block that calls them.
// Each of the first two has its backward below it: attention_reference_backward from the saved [B, H, T, S] weights,
// attention_flash_backward from the output and a log-sum-exp per query row ([B, H, T], an optional output of
// attention_flash), recomputing the probabilities a tile at a time (FlashAttention-2, Dao 2023). A query row with
// no allowed key gets zero gradients, as it got a zero output.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "eigenformer/core/accumulate.hpp"
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

// Which kernel attention_forward runs. flash is the default: bench_attention measured it faster than the reference
// kernel at every shape it runs (T from 64 to 2048, with and without masks).
enum class AttentionKernel { reference, flash };

inline const char* kernel_name(AttentionKernel kernel) {
  switch (kernel) {
    case AttentionKernel::reference: return "reference";
    case AttentionKernel::flash: return "flash";
  }
  return "?";
}

namespace detail {
template <typename Scalar>
void check_heads([[maybe_unused]] const HeadsView<const Scalar>& q, [[maybe_unused]] const HeadsView<const Scalar>& k,
                 [[maybe_unused]] const HeadsView<const Scalar>& v, [[maybe_unused]] const HeadsView<Scalar>& out) {
  EIGENFORMER_ASSERT(k.batch == q.batch && v.batch == q.batch && out.batch == q.batch, "same batch everywhere");
  EIGENFORMER_ASSERT(k.heads == q.heads && v.heads == q.heads && out.heads == q.heads, "same heads everywhere");
  EIGENFORMER_ASSERT(k.cols == q.cols && v.rows == k.rows && out.rows == q.rows && out.cols == v.cols, "matching head shapes");
}

template <typename A, typename B>
bool same_heads_shape(const HeadsView<A>& a, const HeadsView<B>& b) {
  return a.batch == b.batch && a.heads == b.heads && a.rows == b.rows && a.cols == b.cols;
}

// The backward kernels' views: q, k, v as the forward's; dout [B, H, T, Dv] as out; dq, dk, dv shaped as q, k, v.
template <typename Scalar>
void check_head_grads([[maybe_unused]] const HeadsView<const Scalar>& q, [[maybe_unused]] const HeadsView<const Scalar>& k,
                      [[maybe_unused]] const HeadsView<const Scalar>& v, [[maybe_unused]] const HeadsView<const Scalar>& dout,
                      [[maybe_unused]] const HeadsView<Scalar>& dq, [[maybe_unused]] const HeadsView<Scalar>& dk,
                      [[maybe_unused]] const HeadsView<Scalar>& dv) {
  EIGENFORMER_ASSERT(k.batch == q.batch && v.batch == q.batch && k.heads == q.heads && v.heads == q.heads, "same batch and heads everywhere");
  EIGENFORMER_ASSERT(k.cols == q.cols && v.rows == k.rows, "matching head shapes");
  EIGENFORMER_ASSERT(dout.batch == q.batch && dout.heads == q.heads && dout.rows == q.rows && dout.cols == v.cols, "dout shaped as out");
  EIGENFORMER_ASSERT(same_heads_shape(dq, q) && same_heads_shape(dk, k) && same_heads_shape(dv, v), "dq, dk, dv shaped as q, k, v");
}

inline Index thread_index() {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}
}  // namespace detail

template <typename Scalar>
void attention_reference(const HeadsView<const Scalar>& q, const HeadsView<const Scalar>& k, const HeadsView<const Scalar>& v,
                         const Mask* mask, Scalar scale, const HeadsView<Scalar>& out, Scalar* weights = nullptr) {
  const Index B = q.batch, H = q.heads, T = q.rows, S = k.rows;
  detail::check_heads(q, k, v, out);

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

// Forward was, per item and head: S = q k^T * scale + M [T, S];  P = softmax_rows(S) (the weights);  out = P v.
// With dout [T, Dv]:
//   dv = P^T dout                         [S, Dv]
//   dP = dout v^T                         [T, S]
//   dS = P * (dP - rowsum(dP * P))        softmax_rows_backward; 0 wherever P is 0 (masked keys, empty rows)
//   dq = dS k * scale                     [T, Dh]
//   dk = dS^T q * scale                   [S, Dh]
// The mask needs no second look: it is in P. weights: [B, H, T, S] as attention_reference (or attention_flash)
// returned them. dq, dk, dv accumulate unless `accumulate` says no; they must not overlap each other or the inputs.
// Parallel over batch x heads; one [T, S] scratch matrix per thread.
template <typename Scalar>
void attention_reference_backward(const HeadsView<const Scalar>& q, const HeadsView<const Scalar>& k, const HeadsView<const Scalar>& v,
                                  const Scalar* weights, Scalar scale, const HeadsView<const Scalar>& dout, const HeadsView<Scalar>& dq,
                                  const HeadsView<Scalar>& dk, const HeadsView<Scalar>& dv, Accumulate accumulate = Accumulate::yes) {
  const Index B = q.batch, H = q.heads, T = q.rows, S = k.rows;
  detail::check_head_grads(q, k, v, dout, dq, dk, dv);
  const Index jobs = B * H;
#pragma omp parallel if (jobs > 1 && T * S * q.cols > 4096) num_threads(num_threads())
  {
    RowMatrix<Scalar> ds(T, S);  // dP, then dS in place
#pragma omp for schedule(static)
    for (Index job = 0; job < jobs; ++job) {
      const Index b = job / H, h = job % H;
      const ConstMatrixMap<Scalar> p(weights + job * T * S, T, S);
      ds.noalias() = dout.head(b, h) * v.head(b, h).transpose();
      softmax_rows_backward<Scalar>(p, ConstMatrixMap<Scalar>(ds.data(), T, S), MatrixMap<Scalar>(ds.data(), T, S), Accumulate::no);
      ds *= scale;
      if (accumulate == Accumulate::yes) {
        dv.head(b, h).noalias() += p.transpose() * dout.head(b, h);
        dq.head(b, h).noalias() += ds * k.head(b, h);
        dk.head(b, h).noalias() += ds.transpose() * q.head(b, h);
      } else {
        dv.head(b, h).noalias() = p.transpose() * dout.head(b, h);
        dq.head(b, h).noalias() = ds * k.head(b, h);
        dk.head(b, h).noalias() = ds.transpose() * q.head(b, h);
      }
    }
  }
}

// Block sizes of attention_flash: a [queries, keys] tile of scores stays in the L2 cache with its operands. 64 x 256
// was the fastest of 32..128 x 64..256 for 12 heads of 64 at T = 256 and 1024, with and without a causal mask (by
// 5-10%; one thread).
struct FlashBlocks {
  Index queries = 64;
  Index keys = 256;
};

// lse, when not null, receives [B, H, T]: per query row, log sum_k exp(s_k) over its scaled, masked scores s (= m + log l
// at the end of the online softmax), -inf for a row with no allowed key. attention_flash_backward needs it.
template <typename Scalar>
void attention_flash(const HeadsView<const Scalar>& q, const HeadsView<const Scalar>& k, const HeadsView<const Scalar>& v,
                     const Mask* mask, Scalar scale, const HeadsView<Scalar>& out, Scalar* weights = nullptr, FlashBlocks blocks = {},
                     Scalar* lse = nullptr) {
  const Index B = q.batch, H = q.heads, T = q.rows, S = k.rows, Dv = v.cols;
  detail::check_heads(q, k, v, out);
  EIGENFORMER_ASSERT(blocks.queries > 0 && blocks.keys > 0, "positive block sizes");
  constexpr Scalar ninf = -std::numeric_limits<Scalar>::infinity();
  const bool has_mask = mask && !mask->empty();
  const Index bq = std::min(blocks.queries, std::max<Index>(T, 1)), bk = std::min(blocks.keys, std::max<Index>(S, 1));
  const Index query_blocks = (T + bq - 1) / bq, jobs = B * H * query_blocks;

#pragma omp parallel if (jobs > 1 && T * S * q.cols > 4096) num_threads(num_threads())
  {
    // Per thread: one tile of scores (then probabilities), its bias, the output rows being accumulated, and the
    // running maximum m, sum l and rescaling factor of each query row.
    RowMatrix<Scalar> tile(bq, bk), bias(bq, bk), acc(bq, Dv);
    Eigen::Matrix<Scalar, Eigen::Dynamic, 1> m(bq), l(bq), rescale(bq);
    // Under a causal mask the last query blocks cost the most; dynamic scheduling, largest first, keeps both
    // threads busy to the end.
#pragma omp for schedule(dynamic, 1)
    for (Index job = 0; job < jobs; ++job) {
      const Index head_job = job / query_blocks, b = head_job / H, h = head_job % H;
      const Index q0 = (query_blocks - 1 - job % query_blocks) * bq, n = std::min(bq, T - q0);
      const auto queries = q.head(b, h).middleRows(q0, n);
      const auto keys = k.head(b, h), values = v.head(b, h);
      const Mask::KeyRange range = has_mask ? mask->key_range(b, q0 + n, S) : Mask::KeyRange{0, S};
      m.head(n).setConstant(ninf);
      l.head(n).setZero();
      acc.topRows(n).setZero();
      for (Index k0 = range.begin; k0 < range.end; k0 += bk) {
        const Index kn = std::min(bk, range.end - k0);
        MatrixMap<Scalar> s(tile.data(), n, kn);
        s.noalias() = queries * keys.middleRows(k0, kn).transpose();
        s *= scale;
        const bool unmasked = !has_mask || mask->block_unmasked(b, q0, k0, k0 + kn);
        if (!unmasked) {
          MatrixMap<Scalar> block_bias(bias.data(), n, kn);
          mask->fill_bias_block<Scalar>(b, q0, k0, block_bias);
          s += block_bias;
        }
        for (Index r = 0; r < n; ++r) {
          auto row = s.row(r);
          const Scalar m_new = std::max(m[r], row.maxCoeff());
          if (m_new == ninf) {  // nothing allowed for this query so far
            row.setZero();
            rescale[r] = 1;
            continue;
          }
          row = (row.array() - m_new).exp();
          // Eigen's vectorised exp does not give exactly 0 for -inf (see ops/softmax.hpp): masked entries are
          // zeroed by hand after it, in blocks that have any. (A select() around the exp would not vectorise.)
          if (!unmasked) {
            const Scalar* masked = bias.data() + r * kn;
            for (Index c = 0; c < kn; ++c)
              if (masked[c] == ninf) row[c] = 0;
          }
          rescale[r] = std::exp(m[r] - m_new);  // 0 while m[r] is -inf
          l[r] = l[r] * rescale[r] + row.sum();
          m[r] = m_new;
        }
        acc.topRows(n).array().colwise() *= rescale.head(n).array();
        acc.topRows(n).noalias() += s * values.middleRows(k0, kn);
      }
      auto o = out.head(b, h).middleRows(q0, n);
      for (Index r = 0; r < n; ++r) {
        if (l[r] > 0)
          o.row(r) = acc.row(r) / l[r];
        else
          o.row(r).setZero();  // no allowed key
      }
      if (lse) {
        Scalar* row_lse = lse + head_job * T + q0;
        for (Index r = 0; r < n; ++r) {
          if (l[r] > 0)
            row_lse[r] = m[r] + std::log(l[r]);
          else
            row_lse[r] = ninf;
        }
      }
      if (!weights) continue;
      // Asked for the weights (which are [T, S] by definition): a second pass over the keys with the final
      // maximum and sum of each row, exp(s - m) / l.
      MatrixMap<Scalar> w(weights + (head_job * T + q0) * S, n, S);
      w.setZero();
      for (Index k0 = range.begin; k0 < range.end; k0 += bk) {
        const Index kn = std::min(bk, range.end - k0);
        auto s = w.middleCols(k0, kn);
        s.noalias() = queries * keys.middleRows(k0, kn).transpose();
        s *= scale;
        if (has_mask && !mask->block_unmasked(b, q0, k0, k0 + kn)) {
          MatrixMap<Scalar> block_bias(bias.data(), n, kn);
          mask->fill_bias_block<Scalar>(b, q0, k0, block_bias);
          s += block_bias;
        }
        for (Index r = 0; r < n; ++r) {
          auto row = s.row(r);
          if (l[r] > 0)
            row = (row.array() == ninf).select(Scalar(0), (row.array() - m[r]).exp() / l[r]);
          else
            row.setZero();
        }
      }
    }
  }
}

// Forward was, per item and head, out = P v with P = softmax_rows(q k^T * scale + M), computed a tile at a time.
// The backward recomputes each [queries, keys] tile of P from the forward's log-sum-exp instead of storing [T, S]:
//   P_ij = exp(s_ij - lse_i)                                 (0 where masked, and in a row whose lse is -inf)
//   dv_j += P_ij^T dout_i                                    [keys, Dv]
//   dP_ij = dout_i v_j^T                                     [queries, keys]
//   dS_ij = P_ij * (dP_ij - delta_i),  delta_i = rowsum(dout_i * out_i)
//   dq_i += dS_ij k_j * scale;  dk_j += dS_ij^T q_i * scale
// delta_i equals rowsum(dP * P) of attention_reference_backward, since out_i = P_i v: one number per row instead
// of a pass over all keys first. out: the forward's output; lse: [B, H, T] from attention_flash. Key blocks that
// the mask's causal or padding parts hide from a whole query block are skipped, as in the forward. dq, dk, dv
// accumulate unless `accumulate` says no; they must not overlap each other or the inputs. Parallel over
// batch x heads: each job owns its head's dq, dk and dv, so the thread count changes no bit. Per thread: three tiles,
// a [queries, Dh] accumulator of dq and the block's delta.
template <typename Scalar>
void attention_flash_backward(const HeadsView<const Scalar>& q, const HeadsView<const Scalar>& k, const HeadsView<const Scalar>& v,
                              const Mask* mask, Scalar scale, const HeadsView<const Scalar>& out, const Scalar* lse,
                              const HeadsView<const Scalar>& dout, const HeadsView<Scalar>& dq, const HeadsView<Scalar>& dk,
                              const HeadsView<Scalar>& dv, Accumulate accumulate = Accumulate::yes, FlashBlocks blocks = {}) {
  const Index B = q.batch, H = q.heads, T = q.rows, S = k.rows, Dh = q.cols;
  detail::check_head_grads(q, k, v, dout, dq, dk, dv);
  EIGENFORMER_ASSERT(detail::same_heads_shape(out, dout) && lse != nullptr, "out shaped as dout; the forward's log-sum-exp");
  EIGENFORMER_ASSERT(blocks.queries > 0 && blocks.keys > 0, "positive block sizes");
  constexpr Scalar ninf = -std::numeric_limits<Scalar>::infinity();
  const bool has_mask = mask && !mask->empty();
  const Index bq = std::min(blocks.queries, std::max<Index>(T, 1)), bk = std::min(blocks.keys, std::max<Index>(S, 1));
  const Index jobs = B * H;

#pragma omp parallel if (jobs > 1 && T * S * Dh > 4096) num_threads(num_threads())
  {
    RowMatrix<Scalar> p(bq, bk), bias(bq, bk), ds(bq, bk), dq_acc(bq, Dh);  // p: scores, then P; ds: dP, then dS
    Eigen::Matrix<Scalar, Eigen::Dynamic, 1> delta(bq);
#pragma omp for schedule(dynamic, 1)
    for (Index job = 0; job < jobs; ++job) {
      const Index b = job / H, h = job % H;
      const ConstStridedMatrixMap<Scalar> queries_all = q.head(b, h), keys = k.head(b, h), values = v.head(b, h);
      const ConstStridedMatrixMap<Scalar> d_out = dout.head(b, h), o = out.head(b, h);
      StridedMatrixMap<Scalar> d_queries = dq.head(b, h), d_keys = dk.head(b, h), d_values = dv.head(b, h);
      if (accumulate == Accumulate::no) {
        d_queries.setZero();
        d_keys.setZero();
        d_values.setZero();
      }
      const Scalar* row_lse_all = lse + job * T;
      for (Index q0 = 0; q0 < T; q0 += bq) {
        const Index n = std::min(bq, T - q0);
        const auto queries = queries_all.middleRows(q0, n);
        const auto d_out_block = d_out.middleRows(q0, n);
        const Scalar* row_lse = row_lse_all + q0;
        delta.head(n) = (d_out_block.array() * o.middleRows(q0, n).array()).rowwise().sum();
        dq_acc.topRows(n).setZero();
        const Mask::KeyRange range = has_mask ? mask->key_range(b, q0 + n, S) : Mask::KeyRange{0, S};
        for (Index k0 = range.begin; k0 < range.end; k0 += bk) {
          const Index kn = std::min(bk, range.end - k0);
          MatrixMap<Scalar> pt(p.data(), n, kn), dst(ds.data(), n, kn);
          pt.noalias() = queries * keys.middleRows(k0, kn).transpose();
          pt *= scale;
          const bool unmasked = !has_mask || mask->block_unmasked(b, q0, k0, k0 + kn);
          if (!unmasked) {
            MatrixMap<Scalar> block_bias(bias.data(), n, kn);
            mask->fill_bias_block<Scalar>(b, q0, k0, block_bias);
            pt += block_bias;
          }
          for (Index r = 0; r < n; ++r) {
            auto row = pt.row(r);
            if (row_lse[r] == ninf) {  // no allowed key: P is 0, and so are this row's gradients
              row.setZero();
              continue;
            }
            row = (row.array() - row_lse[r]).exp();
            // As in the forward: Eigen's vectorised exp of -inf is not exactly 0, so masked entries are zeroed by hand.
            if (!unmasked) {
              const Scalar* masked = bias.data() + r * kn;
              for (Index c = 0; c < kn; ++c)
                if (masked[c] == ninf) row[c] = 0;
            }
          }
          d_values.middleRows(k0, kn).noalias() += pt.transpose() * d_out_block;
          dst.noalias() = d_out_block * values.middleRows(k0, kn).transpose();
          dst.array() = pt.array() * (dst.array().colwise() - delta.head(n).array()) * scale;
          dq_acc.topRows(n).noalias() += dst * keys.middleRows(k0, kn);
          d_keys.middleRows(k0, kn).noalias() += dst.transpose() * queries;
        }
        d_queries.middleRows(q0, n) += dq_acc.topRows(n);
      }
    }
  }
}

// out = softmax(q k^T * scale + mask) v with the kernel asked for (see AttentionKernel); weights, when not null,
// receives the [B, H, T, S] attention weights.
template <typename Scalar>
void attention_forward(const HeadsView<const Scalar>& q, const HeadsView<const Scalar>& k, const HeadsView<const Scalar>& v,
                       const Mask* mask, Scalar scale, const HeadsView<Scalar>& out, Scalar* weights = nullptr,
                       AttentionKernel kernel = AttentionKernel::flash) {
  if (kernel == AttentionKernel::flash)
    attention_flash<Scalar>(q, k, v, mask, scale, out, weights);
  else
    attention_reference<Scalar>(q, k, v, mask, scale, out, weights);
}

// Decoding: one new query per batch item over keys held in a cache, with no mask object and no allocation.
// q: [B, H, 1, Dh] (a HeadsView with rows = 1); k, v: HeadsViews over the cache, rows = its capacity;
// item b attends to keys [key_begin[b], key_end[b]) (key_begin null: from 0): the cached positions, the memory's
// real length, or a left-padded prompt's real keys; that is how padding is applied here. out: [B, H, 1, Dv]. scratch: [threads, >= max key length], one row per
// OpenMP thread. A zero key length yields a zero output, as a fully masked row does in attention_forward.
// weights, when not null, receives the weights as [B, H, 1, weight_cols] (weight_cols >= every key_end[b]), zero
// outside [key_begin[b], key_end[b]): what an observer is shown (inspect/observer.hpp); decoding passes null.
template <typename Scalar>
void attention_decode(const HeadsView<const Scalar>& q, const HeadsView<const Scalar>& k, const HeadsView<const Scalar>& v,
                      const Index* key_begin, const Index* key_end, Scalar scale, const HeadsView<Scalar>& out,
                      TensorView<Scalar> scratch, Scalar* weights = nullptr, Index weight_cols = 0) {
  const Index B = q.batch, H = q.heads, jobs = B * H;
  EIGENFORMER_ASSERT(q.rows == 1 && out.rows == 1, "one query per item");
  EIGENFORMER_ASSERT(scratch.rank() == 2 && scratch.dim(0) >= num_threads(), "a scratch row per thread");
#pragma omp parallel for schedule(static) if (jobs > 1 && k.rows * q.cols > 4096) num_threads(num_threads())
  for (Index job = 0; job < jobs; ++job) {
    const Index b = job / H, h = job % H, first = key_begin ? key_begin[b] : 0, n = key_end[b] - first;
    const Index thread = detail::thread_index();
    Scalar* weight_row = weights ? weights + job * weight_cols : nullptr;
    if (weight_row) std::fill(weight_row, weight_row + weight_cols, Scalar(0));
    if (n <= 0) {
      out.head(b, h).setZero();
      continue;
    }
    Eigen::Map<RowMatrix<Scalar>> scores(scratch.data() + thread * scratch.dim(1), 1, n);
    scores.noalias() = q.head(b, h) * k.head(b, h).middleRows(first, n).transpose();
    scores *= scale;
    softmax_rows<Scalar>(MatrixMap<Scalar>(scores.data(), 1, n));
    out.head(b, h).noalias() = scores * v.head(b, h).middleRows(first, n);
    if (weight_row) std::copy(scores.data(), scores.data() + n, weight_row + first);
  }
}

}  // namespace eigenformer
