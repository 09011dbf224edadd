// core/mask.hpp: which keys each query may attend to, as one value type with named constructors.
// The one meaning in the API: allowed(b, q, k) == true means query q of batch item b may attend to key k.
// Masks combine with '&' (a key is allowed only if every part allows it; additive parts add up).
//   Mask::causal(T, S, P)        query i sees keys 0..P+i (P = positions already in a KV cache)
//   Mask::key_padding(len, S)    item b sees keys 0..len[b]-1 (the rest is padding)
//   Mask::left_padding(pad, S)   item b sees keys pad[b]..S-1 (prompts padded on the left, as for generation)
//   Mask::allowed(m)             an explicit [T, S] or [B, T, S] matrix, true = allowed
//   Mask::additive(m)            a [T, S] or [B, T, S] float matrix added to the scores; -inf = not allowed
// A query row with no allowed key attends to nothing: its attention weights are all zero and its
// attention output is the zero vector. (PyTorch returns NaN for such a row; we return a finite result.)
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "eigenformer/core/error.hpp"
#include "eigenformer/core/tensor.hpp"

namespace eigenformer {

class Mask {
 public:
  // The empty mask allows every key.
  Mask() = default;

  static Mask causal(Index queries, Index keys, Index offset = 0) {
    if (queries < 0 || keys < 0 || offset < 0)
      throw RangeError("Mask::causal: queries " + std::to_string(queries) + ", keys " + std::to_string(keys) + ", offset " +
                       std::to_string(offset) + "; expected all >= 0");
    Term t;
    t.kind = Kind::causal;
    t.queries = queries;
    t.keys = keys;
    t.offset = offset;
    return Mask(std::move(t));
  }

  static Mask key_padding(const std::vector<Index>& lengths, Index keys) {
    if (lengths.empty()) throw RangeError("Mask::key_padding: no lengths given; expected one per batch item");
    for (std::size_t b = 0; b < lengths.size(); ++b)
      if (lengths[b] < 0 || lengths[b] > keys)
        throw RangeError("Mask::key_padding: length " + std::to_string(lengths[b]) + " of batch item " + std::to_string(b) +
                         " is outside [0, " + std::to_string(keys) + "] (keys)");
    Term t;
    t.kind = Kind::key_padding;
    t.batch = static_cast<Index>(lengths.size());
    t.keys = keys;
    t.lengths = lengths;
    return Mask(std::move(t));
  }

  // Prompts padded on the left: the first pads[b] keys of item b are padding.
  static Mask left_padding(const std::vector<Index>& pads, Index keys) {
    Mask m = key_padding(pads, keys);  // same checks: 0 <= pads[b] <= keys
    m.terms_[0].kind = Kind::left_padding;
    return m;
  }

  // m: [T, S] (the same for every batch item) or [B, T, S]; true = allowed.
  static Mask allowed(const Tensor<bool>& m) {
    Term t = matrix_term(Kind::allowed, m.shape(), "Mask::allowed");
    t.allowed_matrix = std::make_shared<const Tensor<bool>>(m);
    return Mask(std::move(t));
  }

  // m: [T, S] or [B, T, S], added to the scaled scores; -inf forbids a key, +inf and NaN are rejected.
  template <typename Scalar>
  static Mask additive(const Tensor<Scalar>& m) {
    Term t = matrix_term(Kind::additive, m.shape(), "Mask::additive");
    for (Index i = 0; i < m.size(); ++i)
      if (std::isnan(static_cast<double>(m[i])) || static_cast<double>(m[i]) == std::numeric_limits<double>::infinity())
        throw RangeError("Mask::additive: element " + std::to_string(i) + " is " + std::to_string(static_cast<double>(m[i])) +
                         "; expected a finite value or -inf");
    t.additive_matrix = std::make_shared<const Tensor<double>>(m.template cast<double>());
    return Mask(std::move(t));
  }

  friend Mask operator&(Mask a, const Mask& b) {
    a &= b;
    return a;
  }
  Mask& operator&=(const Mask& o) {
    terms_.insert(terms_.end(), o.terms_.begin(), o.terms_.end());
    return *this;
  }

  bool empty() const { return terms_.empty(); }
  // True when some part differs between batch items (so the bias must be built per item).
  bool depends_on_batch() const {
    for (const Term& t : terms_)
      if (t.batch > 0) return true;
    return false;
  }

  // Throws ShapeError unless every part fits attention over `batch` items, `queries` rows and `keys` columns.
  void check(std::string_view where, Index batch, Index queries, Index keys) const {
    for (const Term& t : terms_) {
      const bool ok = (t.batch == 0 || t.batch == batch) && (t.queries < 0 || t.queries == queries) && t.keys == keys;
      if (ok) continue;
      std::string made = "made for ";
      if (t.batch > 0) made += std::to_string(t.batch) + " batch items, ";
      if (t.queries >= 0) made += std::to_string(t.queries) + " queries, ";
      made += std::to_string(t.keys) + " keys";
      throw ShapeError(std::string(where) + ": " + kind_name(t.kind) + " mask " + made + "; the attention has " + std::to_string(batch) +
                       " batch items, " + std::to_string(queries) + " queries and " + std::to_string(keys) + " keys");
    }
  }

  // The scores' bias for batch item b: 0 where allowed, -inf where not, plus any additive part. bias: [T, S].
  // Call check() first.
  template <typename Scalar>
  void fill_bias(Index b, MatrixMap<Scalar> bias) const {
    fill_bias_block<Scalar>(b, 0, 0, bias);
  }

  // The same for a block of it: bias(r, c) is the bias of query q0 + r and key k0 + c. The flash-style kernel
  // builds one block at a time, so that the [T, S] matrix never exists.
  template <typename Scalar>
  void fill_bias_block(Index b, Index q0, Index k0, MatrixMap<Scalar> bias) const {
    const Scalar ninf = -std::numeric_limits<Scalar>::infinity();
    const Index rows = bias.rows(), cols = bias.cols();
    bias.setZero();
    for (const Term& t : terms_) {
      switch (t.kind) {
        case Kind::causal:
          for (Index r = 0; r < rows; ++r) {
            const Index first = std::max<Index>(0, t.offset + q0 + r + 1 - k0);  // first masked column of row r
            if (first < cols) bias.row(r).tail(cols - first).setConstant(ninf);
          }
          break;
        case Kind::key_padding: {
          const Index first = std::clamp<Index>(t.lengths[static_cast<std::size_t>(b)] - k0, 0, cols);
          bias.rightCols(cols - first).setConstant(ninf);
          break;
        }
        case Kind::left_padding: {
          const Index end = std::clamp<Index>(t.lengths[static_cast<std::size_t>(b)] - k0, 0, cols);
          bias.leftCols(end).setConstant(ninf);
          break;
        }
        case Kind::allowed: {
          const bool* m = t.allowed_matrix->data() + (t.batch > 0 ? b * t.queries * t.keys : 0);
          for (Index r = 0; r < rows; ++r)
            for (Index c = 0; c < cols; ++c)
              if (!m[(q0 + r) * t.keys + k0 + c]) bias(r, c) = ninf;
          break;
        }
        case Kind::additive: {
          const double* m = t.additive_matrix->data() + (t.batch > 0 ? b * t.queries * t.keys : 0);
          for (Index r = 0; r < rows; ++r)
            for (Index c = 0; c < cols; ++c) bias(r, c) += static_cast<Scalar>(m[(q0 + r) * t.keys + k0 + c]);
          break;
        }
      }
    }
  }

  // Keys [begin, end) outside of which every query below q_end of item b is masked by a causal or padding part:
  // blocks of keys outside it need not be computed at all. (Matrix parts are not inspected.)
  struct KeyRange {
    Index begin = 0, end = 0;
  };
  KeyRange key_range(Index b, Index q_end, Index keys) const {
    KeyRange range{0, keys};
    for (const Term& t : terms_) {
      if (t.kind == Kind::causal) range.end = std::min(range.end, t.offset + q_end);  // the last query's last key + 1
      if (t.kind == Kind::key_padding) range.end = std::min(range.end, t.lengths[static_cast<std::size_t>(b)]);
      if (t.kind == Kind::left_padding) range.begin = std::max(range.begin, t.lengths[static_cast<std::size_t>(b)]);
    }
    range.end = std::max(range.begin, range.end);
    return range;
  }

  // True when every query from q0 on of item b may attend to every key in [k0, k1) with a zero bias: such a block
  // needs no bias at all.
  bool block_unmasked(Index b, Index q0, Index k0, Index k1) const {
    for (const Term& t : terms_) {
      switch (t.kind) {
        case Kind::causal:
          if (k1 - 1 > t.offset + q0) return false;  // the first query's last allowed key is offset + q0
          break;
        case Kind::key_padding:
          if (k1 > t.lengths[static_cast<std::size_t>(b)]) return false;
          break;
        case Kind::left_padding:
          if (k0 < t.lengths[static_cast<std::size_t>(b)]) return false;
          break;
        case Kind::allowed:
        case Kind::additive:
          return false;
      }
    }
    return true;
  }

 private:
  enum class Kind { causal, key_padding, left_padding, allowed, additive };
  struct Term {
    Kind kind = Kind::causal;
    Index batch = 0;     // 0: the same for every batch item
    Index queries = -1;  // -1: any number of queries
    Index keys = 0;
    Index offset = 0;
    std::vector<Index> lengths;  // key_padding: real keys per item; left_padding: padding keys per item
    std::shared_ptr<const Tensor<bool>> allowed_matrix;    // shared: combining masks never copies matrices
    std::shared_ptr<const Tensor<double>> additive_matrix;
  };

  explicit Mask(Term t) { terms_.push_back(std::move(t)); }

  static Term matrix_term(Kind kind, const Shape& s, const char* where) {
    if (s.rank() != 2 && s.rank() != 3)
      throw ShapeError(std::string(where) + ": matrix has shape " + s.str() + "; expected [T, S] or [B, T, S]");
    Term t;
    t.kind = kind;
    t.batch = s.rank() == 3 ? s[0] : 0;
    t.queries = s[s.rank() - 2];
    t.keys = s[s.rank() - 1];
    return t;
  }
  static const char* kind_name(Kind k) {
    switch (k) {
      case Kind::causal: return "causal";
      case Kind::key_padding: return "key padding";
      case Kind::left_padding: return "left padding";
      case Kind::allowed: return "allowed-matrix";
      case Kind::additive: return "additive";
    }
    return "?";
  }

  std::vector<Term> terms_;
};

}  // namespace eigenformer
