// nn/layer_weight.hpp: how a layer stores its weight matrix. LayerWeight holds the full-width Tensor that loaders fill,
// savers read and training updates; for inference it may instead keep the matrix in fewer bytes than Scalar
// (NarrowMatrix), because decoding is bound by the rate at which the weights stream from memory: half the bytes is
// nearly twice the tokens per second.
//   WeightType::bf16   bfloat16: the top 16 bits of an IEEE float (8 exponent bits, 7 mantissa bits), rounded to
//                      nearest even; relative error <= 2^-8 per weight.
//   WeightType::int8   a signed byte per weight and one Scalar scale per row (the row's largest magnitude / 127),
//                      w = q * scale, rounded to nearest; absolute error <= scale / 2 per weight.
// Products accumulate in Scalar (float or double) and x is never rounded: a narrow weight is widened where it is used.
// Few rows of x (decoding) go through the streaming kernel of ops/linear_stream.hpp, which widens weights in SIMD registers
// (AVX-512 or AVX2 instructions for float, chosen at run time in a portable x86-64 build; a portable loop elsewhere),
// so memory traffic is the narrow bytes alone.
// Many rows (a prompt) widen blocks of weight rows into a buffer and hand each to ops/linear.hpp's linear_forward (the
// GEMM of ops/gemm.hpp for float): one widening per weight per call against T multiply-adds. (A kernel on
// AVX512_BF16's dot-product instruction, which needs x rounded to bfloat16 too, measured slower than widening on Zen 4,
// and was removed: decoding is bound by memory, not arithmetic.)
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "eigenformer/core/error.hpp"
#include "eigenformer/core/memory.hpp"
#include "eigenformer/core/tensor.hpp"
#include "eigenformer/core/threading.hpp"
#include "eigenformer/ops/linear.hpp"

namespace eigenformer {

enum class WeightType { full, bf16, int8 };  // full: Scalar itself (float or double)

inline const char* weight_type_name(WeightType t) {
  switch (t) {
    case WeightType::full: return "f32";
    case WeightType::bf16: return "bf16";
    case WeightType::int8: return "int8";
  }
  return "?";
}

// "f32" (or "full"), "bf16", "int8"; anything else is an error naming the accepted values.
inline WeightType parse_weight_type(std::string_view name) {
  if (name == "f32" || name == "full") return WeightType::full;
  if (name == "bf16") return WeightType::bf16;
  if (name == "int8") return WeightType::int8;
  throw RangeError("weight type '" + std::string(name) + "' is not one of f32, bf16, int8");
}

// float_to_bf16 and bf16_to_float are in ops/linear_stream.hpp, whose kernel reads bfloat16 weights.

// A [rows, cols] row-major weight matrix in bf16 or int8.
template <typename Scalar>
class NarrowMatrix {
 public:
  NarrowMatrix() = default;
  NarrowMatrix(ConstMatrixMap<Scalar> w, WeightType type) : type_(type), rows_(w.rows()), cols_(w.cols()) {
    if (type == WeightType::full) throw RangeError("NarrowMatrix: asked for full-width weights; keep the Tensor instead");
    const Index n = rows_ * cols_;
    if (type == WeightType::bf16) {
      bf16_.resize(static_cast<std::size_t>(n));
      for (Index r = 0; r < rows_; ++r)
        for (Index c = 0; c < cols_; ++c) bf16_[static_cast<std::size_t>(r * cols_ + c)] = float_to_bf16(static_cast<float>(w(r, c)));
      return;
    }
    int8_.resize(static_cast<std::size_t>(n));
    scales_.resize(static_cast<std::size_t>(rows_));
    for (Index r = 0; r < rows_; ++r) {
      const Scalar largest = cols_ > 0 ? w.row(r).cwiseAbs().maxCoeff() : Scalar(0);
      if (!std::isfinite(static_cast<double>(largest)))
        throw RangeError("NarrowMatrix: row " + std::to_string(r) + " holds a value that is not finite; int8 cannot represent it");
      const Scalar scale = largest > 0 ? largest / Scalar(127) : Scalar(1);
      scales_[static_cast<std::size_t>(r)] = scale;
      for (Index c = 0; c < cols_; ++c)
        int8_[static_cast<std::size_t>(r * cols_ + c)] = static_cast<std::int8_t>(std::lround(static_cast<double>(w(r, c) / scale)));
    }
  }

  WeightType type() const { return type_; }
  Index rows() const { return rows_; }
  Index cols() const { return cols_; }
  std::size_t bytes() const { return bf16_.size() * 2 + int8_.size() + scales_.size() * sizeof(Scalar); }
  const std::uint16_t* bf16_data() const { return bf16_.data(); }  // bf16: [rows, cols]
  const std::int8_t* int8_data() const { return int8_.data(); }    // int8: [rows, cols]
  const Scalar* scales() const { return scales_.data(); }          // int8: [rows]

  // out[i, :] = row r0 + i, widened to Scalar.
  template <typename Out>
  void widen_rows(Index r0, Index n, Out&& out) const {
    for (Index i = 0; i < n; ++i) widen_row(r0 + i, &out.coeffRef(i, 0));
  }
  void widen_row(Index r, Scalar* out) const {
    const std::size_t base = static_cast<std::size_t>(r * cols_);
    if (type_ == WeightType::bf16) {
      const std::uint16_t* src = bf16_.data() + base;
      for (Index c = 0; c < cols_; ++c) out[c] = static_cast<Scalar>(bf16_to_float(src[c]));
    } else {
      const std::int8_t* src = int8_.data() + base;
      const Scalar scale = scales_[static_cast<std::size_t>(r)];
      for (Index c = 0; c < cols_; ++c) out[c] = static_cast<Scalar>(src[c]) * scale;
    }
  }

 private:
  WeightType type_ = WeightType::bf16;
  Index rows_ = 0, cols_ = 0;
  std::vector<std::uint16_t, detail::StorageAllocator<std::uint16_t>> bf16_;  // core/memory.hpp: huge pages when large
  std::vector<std::int8_t, detail::StorageAllocator<std::int8_t>> int8_;
  std::vector<Scalar> scales_;
};

namespace detail {
struct WidenedRows;  // the thread_buffer (core/threading.hpp) of widened weight rows
}  // namespace detail

// y = x W^T + b with W = rows [row0, row0 + n_out) of a narrow matrix (a block of a fused weight); Accumulate::yes:
// y += x W^T + b.
template <typename Scalar, typename Output>
void linear_forward(ConstMatrixMap<Scalar> x, const NarrowMatrix<Scalar>& w, Index row0, Index n_out, const Scalar* bias, Output&& y,
                    Accumulate accumulate = Accumulate::no) {
  const Index M = x.rows(), K = x.cols();
  EIGENFORMER_ASSERT(K == w.cols() && row0 >= 0 && row0 + n_out <= w.rows(), "weight rows in range, matching widths");
  // Few rows: the streaming kernel reads the narrow weights and widens them in registers.
  if (M <= kStreamRows) {
    if (w.type() == WeightType::bf16)
      linear_stream<Scalar>(x, w.bf16_data() + row0 * K, K, n_out, bias, y, nullptr, accumulate);
    else
      linear_stream<Scalar>(x, w.int8_data() + row0 * K, K, n_out, bias, y, w.scales() + row0, accumulate);
    return;
  }
  // Many rows: blocks of weight rows (about 4 MiB of floats, at least 256 rows) are widened into a buffer and
  // multiplied by linear_forward's GEMM (one widening per weight against M multiply-adds; each block re-reads x).
  const Index block = std::max<Index>(256, (Index(1) << 20) / std::max<Index>(K, 1));
  Scalar* buffer = detail::thread_buffer<detail::WidenedRows, Scalar>(static_cast<std::size_t>(std::min(block, n_out) * K));
  for (Index n0 = 0; n0 < n_out; n0 += block) {
    const Index n = std::min(block, n_out - n0);
    MatrixMap<Scalar> widened(buffer, n, K);
    w.widen_rows(row0 + n0, n, widened);
    linear_forward<Scalar>(x, std::as_const(widened), bias ? bias + n0 : nullptr, y.middleCols(n0, n), accumulate);
  }
}

// A layer's [rows, cols] weight: the full-width Tensor that loaders fill and savers read, or, once narrow() has been
// called (inference only), a NarrowMatrix in its place. Linear and Embedding hold one.
template <typename Scalar>
class LayerWeight {
 public:
  LayerWeight() = default;
  explicit LayerWeight(Shape shape) : full_(std::move(shape)) {}

  Tensor<Scalar>& tensor() { return full_; }
  const Tensor<Scalar>& tensor() const { return full_; }
  WeightType type() const { return narrow_ ? narrow_->type() : WeightType::full; }

  // From now on keep the weight as `type`; the full-width tensor is freed. Narrowing twice is refused (the first
  // rounding is not undone); WeightType::full does nothing.
  void narrow(WeightType type, std::string_view where) {
    if (type == WeightType::full) return;
    if (narrow_) throw RangeError(std::string(where) + ": the weights are already " + weight_type_name(narrow_->type()));
    narrow_ = std::make_shared<const NarrowMatrix<Scalar>>(std::as_const(full_).matrix(), type);
    full_ = Tensor<Scalar>();
  }
  // Visiting parameters hands out the full-width tensor for loading or saving; after narrow() there is none.
  Tensor<Scalar>& visit(std::string_view where) {
    if (narrow_)
      throw RangeError(std::string(where) + ": the weights were narrowed to " + weight_type_name(narrow_->type()) +
                       " for inference; they can no longer be loaded, saved or visited");
    return full_;
  }

  // y = x W[row0 : row0 + n]^T + bias, or y += the same with Accumulate::yes.
  template <typename Output>
  void linear(ConstMatrixMap<Scalar> x, Index row0, Index n, const Scalar* bias, Output&& y, Accumulate accumulate = Accumulate::no) const {
    if (narrow_)
      linear_forward<Scalar>(x, *narrow_, row0, n, bias, y, accumulate);
    else
      linear_forward<Scalar>(x, full_.matrix().middleRows(row0, n), bias, y, accumulate);
  }
  // out = row r, widened to Scalar.
  template <typename Out>
  void row(Index r, Out&& out) const {
    if (narrow_)
      narrow_->widen_row(r, out.data());
    else
      out = full_.matrix().row(r);
  }

 private:
  Tensor<Scalar> full_;
  std::shared_ptr<const NarrowMatrix<Scalar>> narrow_;  // shared: copies of a layer share the narrowed weights
};

}  // namespace eigenformer
