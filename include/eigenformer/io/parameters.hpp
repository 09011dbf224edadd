// io/parameters.hpp: loading and saving a block's parameters by name through its visit_parameters().
// load_parameters checks every tensor first (missing, wrong shape, unexpected) and reports all problems
// in one FormatError, as CTranslate2's ModelSpec.validate does, then copies (converting the dtype):
//   "gpt2/model.safetensors: 3 problems loading GPT2: missing 'h.11.ln_2.weight'; unexpected 'lm_head.bias';
//    'wpe.weight' is [512, 768], expected [1024, 768]"   (one line; names as they are in the file)
// Then each value is checked to be finite as it is copied: a NaN or an infinity is a RangeError naming the tensor and
// the element. Traps: only file names under `prefix` can be unexpected; `ignore` sees the full file name; nothing is
// written into the block unless the whole check passes (a non-finite value stops the copy half-way).
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <initializer_list>
#include <set>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "eigenformer/core/error.hpp"
#include "eigenformer/core/tensor.hpp"
#include "eigenformer/io/safetensors.hpp"

namespace eigenformer {

struct LoadOptions {
  std::string prefix;                                      // file name = prefix + rename(our name)
  std::function<std::string(const std::string&)> rename;   // our name -> file name (identity when empty)
  std::function<bool(const std::string&)> ignore;          // file tensors that may be present and are not ours
  bool allow_unexpected = false;                           // tolerate file tensors under `prefix` that no parameter claimed
  std::function<bool(const std::string&)> transposed;      // our 2-D parameters stored transposed in the file (HF Conv1D [in, out])
  std::string what = "parameters";                         // what is being loaded, for the message ("GPT2")
};

namespace detail {

inline std::string file_name_of(const std::string& name, const LoadOptions& options) {
  return options.prefix + (options.rename ? options.rename(name) : name);
}

// The shape a parameter has in the file: its own, or reversed when stored transposed.
inline Shape file_shape(const std::string& name, const Shape& ours, const LoadOptions& options) {
  if (!(options.transposed && options.transposed(name)) || ours.rank() != 2) return ours;
  return Shape{ours[1], ours[0]};
}

// "3 problems loading GPT2: a; b; c", at most `shown` listed, then "; and N more".
inline std::string problems_message(const std::vector<std::string>& problems, const std::string& what, std::size_t shown = 10) {
  std::string msg = std::to_string(problems.size()) + (problems.size() == 1 ? " problem" : " problems") + " loading " + what + ": ";
  for (std::size_t i = 0; i < problems.size() && i < shown; ++i) msg += (i ? "; " : "") + problems[i];
  if (problems.size() > shown) msg += "; and " + std::to_string(problems.size() - shown) + " more";
  return msg;
}

}  // namespace detail

// Fills every parameter of `block` from `file`; throws one FormatError listing every problem first, and RangeError
// for the first value that is not finite.
template <typename Block>
void load_parameters(Block& block, const SafeTensors& file, const LoadOptions& options = {}) {
  std::vector<std::string> missing, wrong_shape, unexpected;
  std::set<std::string> claimed;
  block.visit_parameters([&](const std::string& name, auto& tensor) {
    const std::string in_file = detail::file_name_of(name, options);
    claimed.insert(in_file);
    if (!file.contains(in_file)) {
      missing.push_back("missing " + quote(in_file));
    } else if (file.info(in_file).shape != detail::file_shape(name, tensor.shape(), options)) {
      wrong_shape.push_back(quote(in_file) + " is " + file.info(in_file).shape.str() + ", expected " +
                            detail::file_shape(name, tensor.shape(), options).str());
    }
  });
  if (!options.allow_unexpected) {
    for (const auto& kv : file.tensors()) {  // sorted by name
      const std::string& name = kv.first;
      if (name.compare(0, options.prefix.size(), options.prefix) != 0 || claimed.count(name)) continue;
      if (options.ignore && options.ignore(name)) continue;
      unexpected.push_back("unexpected " + quote(name));
    }
  }
  std::vector<std::string> problems = missing;
  problems.insert(problems.end(), unexpected.begin(), unexpected.end());
  problems.insert(problems.end(), wrong_shape.begin(), wrong_shape.end());
  if (!problems.empty()) throw detail::file_error<FormatError>(file.path(), detail::problems_message(problems, options.what));

  // A NaN or infinite weight is refused by name as it is read (NonFinite::refuse): a model would run with it and emit
  // garbage (greedy decoding picks token 0 forever).
  block.visit_parameters([&](const std::string& name, auto& tensor) {
    const std::string in_file = detail::file_name_of(name, options);
    if (!(options.transposed && options.transposed(name))) {
      file.read_into(in_file, tensor.view(), NonFinite::refuse);
      return;
    }
    auto stored = file.template get<typename std::remove_reference_t<decltype(tensor)>::value_type>(in_file, NonFinite::refuse);  // [in, out]
    tensor.matrix() = stored.matrix().transpose();
  });
}

// Adds every parameter of `block` to `writer` as prefix + name, in its own dtype.
template <typename Block>
void save_parameters(Block& block, SafeTensorsWriter& writer, const std::string& prefix = "") {
  block.visit_parameters([&](const std::string& name, auto& tensor) { writer.add(prefix + name, tensor); });
}

namespace detail {
// The element counts of Model(config)'s parameters and of extra(model)'s tables, built as a map of shapes (ShapeOnly):
// in double (which cannot wrap) and exactly (valid only while the double stays below 2^63).
struct ValueCount {
  double approx = 0;
  std::uint64_t exact = 0;
};
template <typename Model, typename Config, typename Extra>
ValueCount count_values(const Config& config, Extra& extra) {
  const ShapeOnly shapes_only;
  Model model(config);
  ValueCount n;
  const auto add = [&](const Shape& s) {
    double a = 1;
    std::uint64_t e = 1;
    for (Index d : s) {
      a *= static_cast<double>(d);
      e *= static_cast<std::uint64_t>(d);
    }
    n.approx += a;
    n.exact += e;
  };
  model.visit_parameters([&](const std::string&, auto& tensor) { add(tensor.shape()); });
  for (const Shape& s : extra(model)) add(s);
  return n;
}
}  // namespace detail

// The number of values Model(config) holds: its parameters, as count_parameters gives once it is built, plus the
// shapes extra(model) returns (fixed tables). Counted by visit_parameters over models built as maps of shapes
// (core/tensor.hpp, ShapeOnly), so nothing is allocated and a config can be sized before it is trusted. A count is
// linear in each layer count (the `layers` fields of Config), so the model is built with one and with two layers of
// each stack, whatever the config asks: count = count(1) + (L - 1) (count(2) - count(1)). The config must have been
// validated (its sizes bounded: models/*.hpp). RangeError "<what> is about 5.7e+21, more than 2^62" past 2^62.
template <typename Model, typename Config, typename Extra>
std::uint64_t parameter_count(const Config& config, std::initializer_list<Index Config::*> layers, const std::string& what, Extra&& extra) {
  Config one = config;
  for (Index Config::*field : layers) one.*field = 1;
  const detail::ValueCount base = detail::count_values<Model>(one, extra);
  double approx = base.approx;
  std::uint64_t exact = base.exact;
  std::vector<std::pair<Index, detail::ValueCount>> per_layer;  // (layers asked for, values one more layer adds)
  for (Index Config::*field : layers) {
    Config two = one;
    two.*field = 2;
    const detail::ValueCount more = detail::count_values<Model>(two, extra);
    approx += static_cast<double>(config.*field - 1) * (more.approx - base.approx);
    per_layer.push_back({config.*field, detail::ValueCount{0, more.exact - base.exact}});
  }
  if (approx > static_cast<double>(std::uint64_t(1) << 62)) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3g", approx);
    throw RangeError(what + " is about " + buf + ", more than 2^62");
  }
  for (const auto& [count, added] : per_layer) exact += static_cast<std::uint64_t>(count - 1) * added.exact;
  return exact;
}

// The number of scalar parameters (elements), as sum(p.numel() for p in module.parameters()).
template <typename Block>
Index count_parameters(Block& block) {
  Index n = 0;
  block.visit_parameters([&](const std::string&, auto& tensor) { n += tensor.size(); });
  return n;
}

}  // namespace eigenformer
