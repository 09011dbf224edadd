// core/tensor.hpp: Tensor<Scalar>, an owning, contiguous, row-major, 64-byte aligned array of rank 0 to 4,
// and TensorView<Scalar>, a non-owning view of the same layout (TensorView<const Scalar> is read-only).
// Kernels never index tensors by hand: .matrix() gives an Eigen::Map of a row-major [rows, last-dim]
// matrix, so every kernel is plain Eigen. Activations are [B, T, D]; .matrix() flattens them to [B*T, D]
// so that one GEMM serves the whole batch. A Tensor is zero-filled when made and deep-copied when copied. Its storage
// comes from core/memory.hpp (from 2 MiB on: 2 MiB aligned, in transparent huge pages where Linux gives them).
#pragma once

#include <Eigen/Core>

#include <algorithm>
#include <cstddef>
#include <limits>
#include <new>
#include <type_traits>
#include <utility>

#include "eigenformer/core/error.hpp"
#include "eigenformer/core/memory.hpp"
#include "eigenformer/core/shape.hpp"

namespace eigenformer {

// Row-major Eigen types. Nobody spells out a storage order elsewhere: use these aliases.
template <typename Scalar>
using RowMatrix = Eigen::Matrix<std::remove_const_t<Scalar>, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <typename Scalar>
using ColVector = Eigen::Matrix<std::remove_const_t<Scalar>, Eigen::Dynamic, 1>;

// MatrixMap<float> writes, MatrixMap<const float> (= ConstMatrixMap<float>) only reads.
template <typename Scalar>
using MatrixMap = Eigen::Map<std::conditional_t<std::is_const_v<Scalar>, const RowMatrix<Scalar>, RowMatrix<Scalar>>>;
template <typename Scalar>
using ConstMatrixMap = MatrixMap<const Scalar>;
template <typename Scalar>
using VectorMap = Eigen::Map<std::conditional_t<std::is_const_v<Scalar>, const ColVector<Scalar>, ColVector<Scalar>>>;
template <typename Scalar>
using ConstVectorMap = VectorMap<const Scalar>;
// A row-major matrix whose rows are `stride` elements apart: one head's [T, Dh] slice of a [T, H*Dh] matrix.
template <typename Scalar>
using StridedMatrixMap = Eigen::Map<std::conditional_t<std::is_const_v<Scalar>, const RowMatrix<Scalar>, RowMatrix<Scalar>>,
                                    Eigen::Unaligned, Eigen::OuterStride<>>;
template <typename Scalar>
using ConstStridedMatrixMap = StridedMatrixMap<const Scalar>;

template <typename Scalar>
class TensorView {
 public:
  using value_type = std::remove_const_t<Scalar>;

  TensorView() = default;
  TensorView(Scalar* data, const Shape& shape) : data_(data), shape_(shape) {}
  // A view of mutable data converts to a read-only view.
  template <typename Other, typename = std::enable_if_t<std::is_same_v<const Other, Scalar> && !std::is_same_v<Other, Scalar>>>
  TensorView(const TensorView<Other>& o) : data_(o.data()), shape_(o.shape()) {}  // NOLINT

  Scalar* data() const { return data_; }
  const Shape& shape() const { return shape_; }
  int rank() const { return shape_.rank(); }
  Index dim(int i) const { return shape_[i]; }
  Index size() const { return shape_.numel(); }

  // Element access with every index checked (throws RangeError); for tests and cold paths.
  template <typename... Ix>
  Scalar& at(Ix... ix) const {
    const Index idx[] = {static_cast<Index>(ix)...};
    constexpr int n = sizeof...(Ix);
    if (n != rank())
      throw RangeError("Tensor.at: " + std::to_string(n) + " indices for a tensor of shape " + shape_.str());
    Index flat = 0;
    for (int i = 0; i < n; ++i) {
      if (idx[i] < 0 || idx[i] >= shape_[i])
        throw RangeError("Tensor.at: index " + std::to_string(idx[i]) + " in dimension " + std::to_string(i) +
                         " is outside a tensor of shape " + shape_.str());
      flat = flat * shape_[i] + idx[i];
    }
    return data_[flat];
  }
  Scalar& operator[](Index flat) const {
    EIGENFORMER_ASSERT(flat >= 0 && flat < size(), "flat index inside the tensor");
    return data_[flat];
  }

  // [d0, ..., dn-1] as a row-major [d0*...*dn-2, dn-1] matrix (a rank-0 or rank-1 tensor is one row).
  MatrixMap<Scalar> matrix() const {
    const Index cols = rank() == 0 ? 1 : shape_.back();
    return MatrixMap<Scalar>(data_, cols == 0 ? 0 : size() / cols, cols);
  }
  // Any [rows, cols] reading of the same elements; rows * cols must equal size().
  MatrixMap<Scalar> matrix(Index rows, Index cols) const {
    if (rows < 0 || cols < 0 || rows * cols != size())
      throw ShapeError("Tensor.matrix: cannot read a tensor of shape " + shape_.str() + " as a [" +
                       std::to_string(rows) + ", " + std::to_string(cols) + "] matrix");
    return MatrixMap<Scalar>(data_, rows, cols);
  }
  VectorMap<Scalar> vector() const { return VectorMap<Scalar>(data_, size()); }

  // The i-th entry along the first dimension: [B, T, D].slice(b) is [T, D].
  TensorView slice(Index i) const {
    if (rank() == 0 || i < 0 || i >= shape_[0])
      throw RangeError("Tensor.slice: index " + std::to_string(i) + " is outside the first dimension of shape " + shape_.str());
    const Shape inner = shape_.drop_front();
    return TensorView(data_ + i * inner.numel(), inner);
  }
  // The same elements under another shape with the same number of elements.
  TensorView reshaped(const Shape& s) const {
    if (s.numel() != size())
      throw ShapeError("Tensor.reshaped: cannot view shape " + shape_.str() + " as " + s.str() + " (element counts differ)");
    return TensorView(data_, s);
  }

 private:
  Scalar* data_ = nullptr;
  Shape shape_{0};
};

namespace detail {
// How many ShapeOnly scopes are open on this thread.
inline int& shape_only_scopes() {
  thread_local int open = 0;
  return open;
}
}  // namespace detail

// While a ShapeOnly lives, the tensors this thread builds record their shape and allocate nothing (data() is null). A
// model built inside one is only a map of its parameters' shapes: that is how a config's parameters are counted
// through visit_parameters before any memory is committed (io/parameters.hpp, parameter_count). Nothing may read or
// write the elements of such a tensor.
class ShapeOnly {
 public:
  ShapeOnly() { ++detail::shape_only_scopes(); }
  ~ShapeOnly() { --detail::shape_only_scopes(); }
  ShapeOnly(const ShapeOnly&) = delete;
  ShapeOnly& operator=(const ShapeOnly&) = delete;
};

template <typename Scalar>
class Tensor {
  static_assert(!std::is_const_v<Scalar>, "Tensor owns its data: use TensorView<const Scalar> for read-only views");

 public:
  using value_type = Scalar;
  static constexpr std::size_t alignment = 64;

  Tensor() : Tensor(Shape{0}) {}
  explicit Tensor(const Shape& shape) : Tensor(shape, Scalar(0)) {}
  Tensor(const Shape& shape, Scalar fill) {
    allocate(shape);
    if (data_) std::fill(data_, data_ + size(), fill);
  }
  Tensor(const Tensor& o) {
    allocate(o.shape_);
    if (data_ && o.data_) std::copy(o.data_, o.data_ + o.size(), data_);
  }
  Tensor(Tensor&& o) noexcept : data_(std::exchange(o.data_, nullptr)), capacity_(std::exchange(o.capacity_, 0)), shape_(o.shape_) {
    o.shape_ = Shape{0};
  }
  Tensor& operator=(const Tensor& o) {
    if (this != &o) {
      resize(o.shape_);
      if (data_ && o.data_) std::copy(o.data_, o.data_ + o.size(), data_);
    }
    return *this;
  }
  Tensor& operator=(Tensor&& o) noexcept {
    if (this != &o) {
      release();
      data_ = std::exchange(o.data_, nullptr);
      capacity_ = std::exchange(o.capacity_, 0);
      shape_ = o.shape_;
      o.shape_ = Shape{0};
    }
    return *this;
  }
  ~Tensor() { release(); }

  // A tensor whose elements the caller writes, every one, before any is read: the output of a product that
  // overwrites it (logits of 50257 columns: zero-filling them took 1.5% of a 512-token GPT-2 prompt). Builds with
  // checks (EIGENFORMER_ENABLE_ASSERTS, or no NDEBUG) fill it with NaN, so that an element left unwritten shows.
  static Tensor uninitialized(const Shape& shape) {
    Tensor t;
    t.resize(shape);
#if defined(EIGENFORMER_ENABLE_ASSERTS) || !defined(NDEBUG)
    if constexpr (std::numeric_limits<Scalar>::has_quiet_NaN) t.fill(std::numeric_limits<Scalar>::quiet_NaN());
#endif
    return t;
  }

  // A copy of any view's elements.
  template <typename S>
  static Tensor copy_of(const TensorView<S>& v) {
    Tensor t = uninitialized(v.shape());  // every element is written just below
    std::copy(v.data(), v.data() + v.size(), t.data_);
    return t;
  }

  Scalar* data() { return data_; }
  const Scalar* data() const { return data_; }
  const Shape& shape() const { return shape_; }
  int rank() const { return shape_.rank(); }
  Index dim(int i) const { return shape_[i]; }
  Index size() const { return shape_.numel(); }

  TensorView<Scalar> view() { return TensorView<Scalar>(data_, shape_); }
  TensorView<const Scalar> view() const { return TensorView<const Scalar>(data_, shape_); }
  operator TensorView<Scalar>() { return view(); }                    // NOLINT: a tensor is usable as a view
  operator TensorView<const Scalar>() const { return view(); }        // NOLINT

  template <typename... Ix> Scalar& at(Ix... ix) { return view().at(ix...); }
  template <typename... Ix> const Scalar& at(Ix... ix) const { return view().at(ix...); }
  Scalar& operator[](Index i) { return view()[i]; }
  const Scalar& operator[](Index i) const { return view()[i]; }
  MatrixMap<Scalar> matrix() { return view().matrix(); }
  ConstMatrixMap<Scalar> matrix() const { return view().matrix(); }
  MatrixMap<Scalar> matrix(Index r, Index c) { return view().matrix(r, c); }
  ConstMatrixMap<Scalar> matrix(Index r, Index c) const { return view().matrix(r, c); }
  VectorMap<Scalar> vector() { return view().vector(); }
  ConstVectorMap<Scalar> vector() const { return view().vector(); }
  TensorView<Scalar> slice(Index i) { return view().slice(i); }
  TensorView<const Scalar> slice(Index i) const { return view().slice(i); }

  // Give the tensor a new shape. Memory is reused when it is large enough, so a workspace resized to
  // the same or a smaller shape never allocates. Contents are unspecified afterwards.
  void resize(const Shape& s) {
    const Index n = s.numel();
    if (n > capacity_) { release(); allocate(s); return; }
    shape_ = s;
  }
  // Same elements, new shape with the same element count.
  void reshape(const Shape& s) { shape_ = view().reshaped(s).shape(); }
  void fill(Scalar v) {
    if (data_) std::fill(data_, data_ + size(), v);
  }
  void set_zero() { fill(Scalar(0)); }

  template <typename Other>
  Tensor<Other> cast() const {
    Tensor<Other> t(shape_);
    std::transform(data_, data_ + size(), t.data(), [](const Scalar& x) { return static_cast<Other>(x); });
    return t;
  }

 private:
  void allocate(const Shape& s) {
    shape_ = s;
    if (detail::shape_only_scopes() > 0) return;  // a shape and no storage (ShapeOnly)
    capacity_ = s.numel();
    data_ = static_cast<Scalar*>(detail::allocate_storage(storage_bytes()));
  }
  void release() {
    detail::free_storage(data_, storage_bytes());
    data_ = nullptr;
    capacity_ = 0;
  }
  // Round up to whole cache lines; a size-0 tensor still holds one line so data() is never null.
  std::size_t storage_bytes() const {
    return std::max<std::size_t>(alignment, (static_cast<std::size_t>(capacity_) * sizeof(Scalar) + alignment - 1) / alignment * alignment);
  }

  Scalar* data_ = nullptr;
  Index capacity_ = 0;  // elements allocated (>= size())
  Shape shape_{0};
};

}  // namespace eigenformer
