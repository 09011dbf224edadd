// io/parameters.hpp: loading and saving a block's parameters by name through its visit_parameters().
// load_parameters checks every tensor first (missing, wrong shape, unexpected) and reports all problems
// in one FormatError, as CTranslate2's ModelSpec.validate does, then copies (converting the dtype):
//   "gpt2/model.safetensors: 3 problems loading GPT2: missing 'h.11.ln_2.weight'; unexpected 'lm_head.bias';
//    'wpe.weight' is [512, 768], expected [1024, 768]"   (one line; names as they are in the file)
// Traps: only file names under `prefix` can be unexpected; `ignore` sees the full file name; nothing is
// written into the block unless the whole check passes.
#pragma once

#include <functional>
#include <set>
#include <string>
#include <type_traits>
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

// Fills every parameter of `block` from `file`; throws one FormatError listing every problem first.
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

  block.visit_parameters([&](const std::string& name, auto& tensor) {
    const std::string in_file = detail::file_name_of(name, options);
    if (!(options.transposed && options.transposed(name))) {
      file.read_into(in_file, tensor.view());
      return;
    }
    auto stored = file.template get<typename std::remove_reference_t<decltype(tensor)>::value_type>(in_file);  // [in, out]
    tensor.matrix() = stored.matrix().transpose();
  });
}

// Adds every parameter of `block` to `writer` as prefix + name, in its own dtype.
template <typename Block>
void save_parameters(Block& block, SafeTensorsWriter& writer, const std::string& prefix = "") {
  block.visit_parameters([&](const std::string& name, auto& tensor) { writer.add(prefix + name, tensor); });
}

// The number of scalar parameters (elements), as sum(p.numel() for p in module.parameters()).
template <typename Block>
Index count_parameters(Block& block) {
  Index n = 0;
  block.visit_parameters([&](const std::string&, auto& tensor) { n += tensor.size(); });
  return n;
}

}  // namespace eigenformer
