// core/shape.hpp: the shape of a tensor (rank 0 to 4), written outermost dimension first as PyTorch
// does ("[B, T, D]"), and check_shape(), which turns a mismatch into a ShapeError naming both shapes:
//   "MultiHeadAttention.forward: query has shape [2, 7, 64]; expected [B, T, 512] (d_model)".
#pragma once

#include <Eigen/Core>

#include <array>
#include <initializer_list>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "eigenformer/core/error.hpp"

namespace eigenformer {

using Index = Eigen::Index;  // signed, as Eigen's: sizes never overflow an int

class Shape {
 public:
  static constexpr int max_rank = 4;

  Shape() = default;  // rank 0: a scalar, one element
  Shape(std::initializer_list<Index> dims) { assign(dims.begin(), dims.end()); }
  explicit Shape(const std::vector<Index>& dims) { assign(dims.begin(), dims.end()); }

  int rank() const { return rank_; }
  Index operator[](int i) const {
    EIGENFORMER_ASSERT(i >= 0 && i < rank_, "dimension index inside the rank");
    return dims_[static_cast<std::size_t>(i)];
  }
  Index back() const { return (*this)[rank_ - 1]; }
  const Index* begin() const { return dims_.data(); }
  const Index* end() const { return dims_.data() + rank_; }

  Index numel() const {
    Index n = 1;
    for (Index d : *this) n *= d;
    return n;
  }

  // The same shape with its last dimension replaced ([B, T, D] -> [B, T, n]).
  Shape with_back(Index n) const {
    EIGENFORMER_ASSERT(rank_ > 0, "with_back needs rank >= 1");
    Shape s = *this;
    s.dims_[static_cast<std::size_t>(rank_ - 1)] = n;
    return s;
  }

  // The same shape without its first dimension ([B, T, D] -> [T, D]).
  Shape drop_front() const {
    Shape s;
    for (int i = 1; i < rank_; ++i) s.dims_[static_cast<std::size_t>(i - 1)] = dims_[static_cast<std::size_t>(i)];
    s.rank_ = rank_ > 0 ? rank_ - 1 : 0;
    return s;
  }

  bool operator==(const Shape& o) const {
    if (rank_ != o.rank_) return false;
    for (int i = 0; i < rank_; ++i)
      if ((*this)[i] != o[i]) return false;
    return true;
  }
  bool operator!=(const Shape& o) const { return !(*this == o); }

  std::string str() const {
    std::string s = "[";
    for (int i = 0; i < rank_; ++i) {
      if (i) s += ", ";
      s += std::to_string(dims_[static_cast<std::size_t>(i)]);
    }
    return s + "]";
  }

 private:
  template <typename It>
  void assign(It first, It last) {
    const auto n = std::distance(first, last);
    if (n > max_rank)
      throw ShapeError("Shape: rank " + std::to_string(n) + " is not supported; expected at most " +
                       std::to_string(max_rank) + " dimensions");
    rank_ = static_cast<int>(n);
    Index total = 1;
    for (int i = 0; first != last; ++first, ++i) {
      const Index d = *first;
      if (d < 0) throw ShapeError("Shape: dimension " + std::to_string(i) + " is " + std::to_string(d) + "; expected >= 0");
      if (d > 0 && total > std::numeric_limits<Index>::max() / d)
        throw ShapeError("Shape: the element count overflows a 64-bit index");
      total *= d;
      dims_[static_cast<std::size_t>(i)] = d;
    }
  }

  std::array<Index, max_rank> dims_{};
  int rank_ = 0;
};

// The largest size a model's config may give any one dimension (a width, a vocabulary, a context, a layer count): 2^30,
// so that every product the blocks form (4 D, a [3D, D] weight) stays inside Index while the parameters are counted.
inline constexpr Index kMaxConfigSize = Index(1) << 30;

// RangeError "where: name is v; expected > 0" or "...; expected at most 1073741824" unless 0 < v <= kMaxConfigSize.
inline void check_config_size(const std::string& where, const char* name, Index v) {
  if (v <= 0) throw RangeError(where + ": " + name + " is " + std::to_string(v) + "; expected > 0");
  if (v > kMaxConfigSize)
    throw RangeError(where + ": " + name + " is " + std::to_string(v) + "; expected at most " + std::to_string(kMaxConfigSize));
}

// One expected dimension for check_shape: a number, or a letter meaning "any size" ("B", "T").
struct Dim {
  Dim(Index v) : value(v) {}                 // NOLINT: implicit on purpose, {B, "T", 512} reads well
  Dim(int v) : value(v) {}                   // NOLINT
  Dim(const char* n) : value(-1), name(n) {}  // NOLINT
  Index value;
  const char* name = nullptr;
};

namespace detail {
inline std::string expected_str(std::initializer_list<Dim> expected) {
  std::string s = "[";
  bool first = true;
  for (const Dim& d : expected) {
    if (!first) s += ", ";
    first = false;
    s += d.name ? std::string(d.name) : std::to_string(d.value);
  }
  return s + "]";
}
}  // namespace detail

// Throws ShapeError "where: what has shape [..]; expected [..] (note)" unless `actual` has exactly the
// expected rank and every numbered dimension matches. `note` names the number that was expected.
// `where` is a view so that checks on hot paths (decoding steps) build no string unless they fail.
inline void check_shape(std::string_view where, const char* what, const Shape& actual,
                        std::initializer_list<Dim> expected, const char* note = nullptr) {
  bool ok = actual.rank() == static_cast<int>(expected.size());
  int i = 0;
  for (const Dim& d : expected) {
    if (!ok) break;
    if (!d.name && actual[i] != d.value) ok = false;
    ++i;
  }
  if (ok) return;
  std::string msg = std::string(where) + ": " + what + " has shape " + actual.str() + "; expected " + detail::expected_str(expected);
  if (note) msg += std::string(" (") + note + ")";
  throw ShapeError(msg);
}
// The same against one exact shape (a gradient against its input's).
inline void check_shape(std::string_view where, const char* what, const Shape& actual, const Shape& expected, const char* note = nullptr) {
  if (actual == expected) return;
  std::string msg = std::string(where) + ": " + what + " has shape " + actual.str() + "; expected " + expected.str();
  if (note) msg += std::string(" (") + note + ")";
  throw ShapeError(msg);
}

}  // namespace eigenformer
