// tests/support/fixtures.hpp: reading the reference fixtures that tools/make_fixtures.py writes with PyTorch 1.13.
// A fixture is tests/fixtures/<case>.safetensors holding "param.<torch state_dict name>", "input.<name>" and
// "output.<name>" tensors (all F64 or I64) and the case's config in __metadata__. Masks arrive in our convention:
// metadata "mask" lists the parts ("causal+padding"), "causal_offset" the offset, input.lengths / input.allowed /
// input.additive the data. check_close compares with the tolerances: double 1e-10 absolute, float 1e-5
// relative (|a - e| <= 1e-5 * max(1, |e|)), and reports the worst element.
#pragma once

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "eigenformer/core/mask.hpp"
#include "eigenformer/core/tensor.hpp"
#include "eigenformer/io/parameters.hpp"
#include "eigenformer/io/pytorch_transformer.hpp"
#include "eigenformer/io/safetensors.hpp"

namespace eigenformer::testing {

inline std::string fixture_path(const std::string& name) { return std::string(EIGENFORMER_FIXTURE_DIR) + "/" + name + ".safetensors"; }

class Fixture {
 public:
  explicit Fixture(const std::string& name) : name_(name), file_(fixture_path(name)) {}

  template <typename Scalar>
  Tensor<Scalar> input(const std::string& n) const { return file_.get<Scalar>("input." + n); }
  template <typename Scalar>
  Tensor<Scalar> output(const std::string& n) const { return file_.get<Scalar>("output." + n); }
  bool has_input(const std::string& n) const { return file_.contains("input." + n); }

  std::string meta(const std::string& key) const {
    auto it = file_.metadata().find(key);
    REQUIRE_MESSAGE(it != file_.metadata().end(), name_ << ": no metadata '" << key << "'");
    return it->second;
  }
  bool has_meta(const std::string& key) const { return file_.metadata().count(key) > 0; }
  Index meta_int(const std::string& key) const { return std::stoll(meta(key)); }
  double meta_double(const std::string& key) const { return std::stod(meta(key)); }
  bool meta_bool(const std::string& key) const { return meta(key) == "true"; }

  std::vector<Index> lengths(const std::string& n) const {
    Tensor<std::int64_t> t = input<std::int64_t>(n);
    return std::vector<Index>(t.data(), t.data() + t.size());
  }

  // The self-attention mask the case describes, for attention over `queries` x `keys`; `lengths` names the
  // key-padding input. ("memory_padding" belongs to cross-attention: see memory_mask.)
  Mask mask(Index queries, Index keys, const std::string& lengths_name = "lengths") const {
    Mask m;
    const std::string parts = has_meta("mask") ? meta("mask") : "none";
    std::stringstream ss(parts);
    for (std::string part; std::getline(ss, part, '+');) {
      if (part == "none" || part == "memory_padding") continue;
      if (part == "causal") m &= Mask::causal(queries, keys, meta_int("causal_offset"));
      else if (part == "padding") m &= Mask::key_padding(lengths(lengths_name), keys);
      else if (part == "allowed") m &= Mask::allowed(input<std::int64_t>("allowed").template cast<bool>());
      else if (part == "additive") m &= Mask::additive(input<double>("additive"));
      else FAIL(name_ << ": unknown mask part '" << part << "'");
    }
    return m;
  }

  // The cross-attention mask: the memory's key padding from input.memory_lengths, if the case has one.
  Mask memory_mask(Index memory_length) const {
    const std::string parts = "+" + meta("mask") + "+";
    if (parts.find("+memory_padding+") == std::string::npos) return Mask();
    return Mask::key_padding(lengths("memory_lengths"), memory_length);
  }

  // Loads every "param.*" tensor into the block, our names mapped to PyTorch's; a missing, extra or
  // wrong-shaped tensor fails the load (and so the test).
  template <typename Block>
  void load(Block& block, const std::string& torch_prefix = "") const {
    LoadOptions options;
    options.prefix = "param." + torch_prefix;
    options.rename = pytorch_layer_name;
    options.what = name_;
    load_parameters(block, file_, options);
  }

  const SafeTensors& file() const { return file_; }

 private:
  std::string name_;
  SafeTensors file_;
};

// The tolerances: double 1e-10 absolute; float 1e-5 relative to max(1, |expected|).
template <typename Scalar>
double tolerance() {
  return std::is_same_v<Scalar, double> ? 1e-10 : 1e-5;
}

// Whole models (many layers deep): double 1e-9 absolute, float 1e-4 relative.
template <typename Scalar>
double model_tolerance() {
  return std::is_same_v<Scalar, double> ? 1e-9 : 1e-4;
}

template <typename A, typename E>
void check_close(TensorView<const A> actual, TensorView<const E> expected, double tol = tolerance<A>()) {
  REQUIRE_MESSAGE(actual.shape() == expected.shape(), "shape " << actual.shape().str() << " vs expected " << expected.shape().str());
  double worst = 0.0;
  Index worst_at = -1;
  for (Index i = 0; i < actual.size(); ++i) {
    const double a = static_cast<double>(actual[i]), e = static_cast<double>(expected[i]);
    const double err = std::is_same_v<A, double> ? std::abs(a - e) : std::abs(a - e) / std::max(1.0, std::abs(e));
    if (!(err <= worst)) {  // also catches NaN
      worst = std::isnan(err) ? INFINITY : err;
      worst_at = i;
    }
  }
  INFO("worst element " << worst_at << " of shape " << actual.shape().str() << ": error " << worst << " (tolerance " << tol << ")");
  CHECK(worst <= tol);
}
template <typename A, typename E>
void check_close(const Tensor<A>& actual, const Tensor<E>& expected, double tol = tolerance<A>()) {
  check_close<A, E>(actual.view(), expected.view(), tol);
}

}  // namespace eigenformer::testing
