// train/train_checkpoint.hpp: everything a training run needs to continue, in one safetensors file (io/safetensors.hpp),
// so that a run stopped after step s and resumed from the file computes, bit for bit, what it would have computed
// without stopping. The file holds, all in the model's own dtype (F64 for double, F32 for float: nothing is rounded):
//   "<name>"                              each model parameter, under its own name (load_parameters reads the model
//                                         from the file, with LoadOptions::ignore for the names starting "adamw.")
//   "adamw.m.<name>", "adamw.v.<name>"    AdamW's moments (AdamW::visit_state)
// and in __metadata__ (strings):
//   "format" = "eigenformer.training_checkpoint", "format_version" = "1"
//   "step"                                the caller's step counter (TrainingProgress::step)
//   "adamw.step_count"                    AdamW's t (it differs from step when the caller skipped steps)
//   "rng.s0" .. "rng.s3", "rng.spare", "rng.has_spare"   the generator's state (core/random.hpp), the spare as the
//                                         16 hex digits of its bits
//   "checksum.<tensor>"                   each tensor's FNV-1a 64 (below), so that damaged data is found and named
//   "user.<key>"                          the caller's strings (TrainingProgress::info): data position, settings
// Gradients are not saved: a checkpoint is taken between steps, and every step starts by zeroing them.
// Saving refuses values that are not finite (a run that diverged must not replace a good checkpoint), writes
// PATH.tmp-<pid> in PATH's directory, flushes it to the disk and renames it over PATH (atomic on POSIX): a failed
// save or a crash leaves any PATH already there as it was. The writer holds a copy of every tensor until it writes.
// Loading checks the whole file before it changes anything (format, every metadata field, every tensor's presence,
// shape, dtype and checksum, no unexpected tensor; then that every value is finite, every second moment >= 0, and
// the step counts at most 2^62) and reports every problem in one FormatError naming the file.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "eigenformer/core/error.hpp"
#include "eigenformer/core/output_file.hpp"
#include "eigenformer/core/random.hpp"
#include "eigenformer/core/tensor.hpp"
#include "eigenformer/io/parameters.hpp"
#include "eigenformer/io/safetensors.hpp"
#include "eigenformer/train/adamw.hpp"

namespace eigenformer {

// What the training loop carries besides the model, the optimiser and the generator.
struct TrainingProgress {
  std::int64_t step = 0;                     // steps done: the run resumes at step + 1
  std::map<std::string, std::string> info;   // the caller's: the data loader's position, the run's settings
};

namespace detail {

inline const char* const training_checkpoint_format = "eigenformer.training_checkpoint";
inline const char* const training_checkpoint_version = "1";

// FNV-1a 64 (Fowler, Noll, Vo) over the bytes: h = 14695981039346656037; for each byte b: h = (h ^ b) * 1099511628211.
inline std::uint64_t fnv1a64(const void* data, std::size_t bytes) {
  const unsigned char* p = static_cast<const unsigned char*>(data);
  std::uint64_t h = 14695981039346656037ULL;
  for (std::size_t i = 0; i < bytes; ++i) h = (h ^ p[i]) * 1099511628211ULL;
  return h;
}

inline std::string hex64(std::uint64_t x) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(x));
  return buf;
}

// The whole of `text` as a number (decimal, or 16 hex digits with base 16); false for anything else.
template <typename Int>
bool parse_whole(const std::string& text, Int& out, int base = 10) {
  if (text.empty() || (base == 16 && text.size() != 16)) return false;
  const auto [end, err] = std::from_chars(text.data(), text.data() + text.size(), out, base);
  return err == std::errc() && end == text.data() + text.size();
}

template <typename Scalar>
std::uint64_t tensor_checksum(const Tensor<Scalar>& t) {
  return fnv1a64(t.data(), static_cast<std::size_t>(t.size()) * sizeof(Scalar));
}

// Every tensor the checkpoint of (model, optimizer) holds, by its name in the file, in visiting order.
template <typename Scalar, typename Model>
std::vector<std::pair<std::string, Tensor<Scalar>*>> checkpoint_tensors(Model& model, AdamW<Scalar>& optimizer) {
  std::vector<std::pair<std::string, Tensor<Scalar>*>> out;
  model.visit_parameters([&](const std::string& name, Tensor<Scalar>& value) { out.emplace_back(name, &value); });
  optimizer.visit_state([&](const std::string& name, Tensor<Scalar>& state) { out.emplace_back("adamw." + name, &state); });
  return out;
}

inline void sync_to_disk(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 || ::fsync(fd) != 0) {
    const int err = errno;
    if (fd >= 0) ::close(fd);
    throw IoError(printable(path) + ": cannot flush to disk: " + std::strerror(err));
  }
  ::close(fd);
}

}  // namespace detail

// Writes the checkpoint (see the top of this file). Throws RangeError naming a tensor that holds a NaN or inf, IoError
// when the file cannot be written (PATH unchanged either way, no temporary left behind).
template <typename Model, typename Scalar>
void save_training_checkpoint(const std::string& path, Model& model, AdamW<Scalar>& optimizer, const Random& rng,
                              const TrainingProgress& progress) {
  const std::string where = detail::printable(path) + ": training checkpoint not saved";
  check_output_path(path);  // a directory, FIFO or device there: refused by name before anything is copied
  if (progress.step < 0) throw RangeError(where + ": step is " + std::to_string(progress.step) + "; expected a count >= 0");
  optimizer.initialize(model);  // before the first step: zero moments, as the first step would make them
  SafeTensorsWriter writer;
  for (const auto& [name, tensor] : detail::checkpoint_tensors(model, optimizer)) {
    for (Index i = 0; i < tensor->size(); ++i)
      if (!std::isfinite(static_cast<double>((*tensor)[i])))
        throw RangeError(where + ": " + quote(name) + " holds " + detail::number_text(static_cast<double>((*tensor)[i])) + " at element " +
                         std::to_string(i) + "; values that are not finite are refused");
    writer.add(name, *tensor);
    writer.set_metadata("checksum." + name, detail::hex64(detail::tensor_checksum(*tensor)));
  }
  writer.set_metadata("format", detail::training_checkpoint_format);
  writer.set_metadata("format_version", detail::training_checkpoint_version);
  writer.set_metadata("step", std::to_string(progress.step));
  writer.set_metadata("adamw.step_count", std::to_string(optimizer.step_count()));
  const RandomState st = rng.state();
  for (int i = 0; i < 4; ++i) writer.set_metadata("rng.s" + std::to_string(i), std::to_string(st.words[i]));
  std::uint64_t spare_bits = 0;
  std::memcpy(&spare_bits, &st.spare, sizeof spare_bits);
  writer.set_metadata("rng.spare", detail::hex64(spare_bits));
  writer.set_metadata("rng.has_spare", st.has_spare ? "1" : "0");
  for (const auto& [key, value] : progress.info) writer.set_metadata("user." + key, value);

  const std::string target = output_target(path);  // a link's target, not the link
  const std::string temporary = target + ".tmp-" + std::to_string(::getpid());
  try {
    writer.write(temporary);
    detail::sync_to_disk(temporary);
    if (std::rename(temporary.c_str(), target.c_str()) != 0)
      throw IoError(detail::printable(temporary) + ": cannot rename it to " + detail::printable(path) + ": " + std::strerror(errno));
  } catch (const Error& e) {
    std::error_code ignored;
    std::filesystem::remove(temporary, ignored);
    throw IoError(where + " (a file already there is unchanged): " + e.what());
  }
  // The rename itself reaches the disk with the directory (best effort: the file is in place either way).
  std::string dir = std::filesystem::path(target).parent_path().string();
  if (dir.empty()) dir = ".";
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    (void)::fsync(fd);
    ::close(fd);
  }
}

// Reads a checkpoint into model, optimizer and rng, and returns the progress it recorded. The model must have the
// parameters of the saved one (same names, shapes and Scalar); the optimizer is sized from the model if it has no
// state yet. Throws IoError (cannot read) or FormatError (not a training checkpoint, damaged, or not this model's:
// every problem listed) with nothing changed.
template <typename Model, typename Scalar>
TrainingProgress load_training_checkpoint(const std::string& path, Model& model, AdamW<Scalar>& optimizer, Random& rng) {
  const SafeTensors file(path);
  const std::map<std::string, std::string>& meta = file.metadata();
  const auto format = meta.find("format");
  if (format == meta.end() || format->second != detail::training_checkpoint_format)
    throw detail::file_error<FormatError>(path, std::string("not a training checkpoint: its __metadata__ has no \"format\": \"") +
                                                    detail::training_checkpoint_format + "\" (a file of parameters alone loads with load_parameters)");

  std::vector<std::string> problems;
  auto field = [&](const std::string& key) -> const std::string* {
    const auto it = meta.find(key);
    if (it != meta.end()) return &it->second;
    problems.push_back("no metadata " + quote(key));
    return nullptr;
  };
  // A metadata number: true when present and well formed, else a problem is recorded. The signed ones are step
  // counts: from 0 to 2^62 (AdamW::max_step_count), since a count near 2^63 would overflow the next step's + 1.
  auto number = [&](const std::string& key, auto& out, const char* expected, int base = 10) {
    const std::string* text = field(key);
    if (!text) return false;
    bool ok = detail::parse_whole(*text, out, base);
    if constexpr (std::is_signed_v<std::decay_t<decltype(out)>>) ok = ok && out >= 0 && out <= AdamW<Scalar>::max_step_count;
    if (ok) return true;
    problems.push_back("metadata " + quote(key) + " is " + quote(*text) + ", expected " + expected);
    return false;
  };
  if (const std::string* version = field("format_version"); version && *version != detail::training_checkpoint_version)
    problems.push_back("format_version is " + quote(*version) + "; this Eigenformer reads version " + detail::training_checkpoint_version);
  TrainingProgress progress;
  std::int64_t step_count = 0;
  number("step", progress.step, "an integer from 0 to 2^62");
  number("adamw.step_count", step_count, "an integer from 0 to 2^62");
  RandomState rng_state;
  bool words_read = true;
  for (int i = 0; i < 4; ++i) words_read = number("rng.s" + std::to_string(i), rng_state.words[i], "an integer in [0, 2^64)") && words_read;
  if (words_read && (rng_state.words[0] | rng_state.words[1] | rng_state.words[2] | rng_state.words[3]) == 0)
    problems.push_back("the generator's state words 'rng.s0' .. 'rng.s3' are all zero");
  std::uint64_t spare_bits = 0;
  number("rng.spare", spare_bits, "16 hex digits", 16);
  std::memcpy(&rng_state.spare, &spare_bits, sizeof spare_bits);
  if (const std::string* has_spare = field("rng.has_spare")) {
    if (*has_spare != "0" && *has_spare != "1") problems.push_back("metadata 'rng.has_spare' is " + quote(*has_spare) + ", expected 0 or 1");
    rng_state.has_spare = *has_spare == "1";
  }
  if (rng_state.has_spare && !std::isfinite(rng_state.spare))  // the next normal draw would be it
    problems.push_back("metadata 'rng.spare' is " + detail::number_text(rng_state.spare) + "; expected a finite number");

  optimizer.initialize(model);
  const auto tensors = detail::checkpoint_tensors(model, optimizer);
  std::set<std::string> expected;
  const DType dtype = detail::DTypeOf<Scalar>::value;
  for (const auto& [name, tensor] : tensors) {
    expected.insert(name);
    if (!file.contains(name)) {
      problems.push_back("missing " + quote(name));
      continue;
    }
    const TensorInfo& info = file.info(name);
    if (info.dtype != dtype) {
      problems.push_back(quote(name) + " is " + dtype_name(info.dtype) + ", expected " + dtype_name(dtype));
      continue;
    }
    if (info.shape != tensor->shape()) {
      problems.push_back(quote(name) + " is " + info.shape.str() + ", expected " + tensor->shape().str());
      continue;
    }
    std::uint64_t sum = 0;
    if (!number("checksum." + name, sum, "16 hex digits", 16)) continue;
    const Tensor<Scalar> values = file.get<Scalar>(name);
    if (detail::tensor_checksum(values) != sum) {
      problems.push_back(quote(name) + " does not match its checksum: its data is damaged");
      continue;
    }
    // A checksum says the data is what was written, not that it makes sense: a file made or edited elsewhere may hold
    // NaN or inf, which the first step would spread to every weight, or a negative second moment, whose square root
    // is NaN. Saving refuses the first; AdamW never makes the second.
    const bool second_moment = name.compare(0, 8, "adamw.v.") == 0;
    for (Index i = 0; i < values.size(); ++i) {
      const double v = static_cast<double>(values[i]);
      if (!std::isfinite(v)) {
        problems.push_back(quote(name) + " element " + std::to_string(i) + " is " + detail::number_text(v) + "; expected a finite number");
        break;
      }
      if (second_moment && v < 0) {
        problems.push_back(quote(name) + " element " + std::to_string(i) + " is " + detail::number_text(v) +
                           "; a second moment (a mean of squared gradients) is never negative");
        break;
      }
    }
  }
  for (const auto& kv : file.tensors())
    if (!expected.count(kv.first)) problems.push_back("unexpected " + quote(kv.first));
  if (!problems.empty()) throw detail::file_error<FormatError>(path, detail::problems_message(problems, "a training checkpoint"));

  for (const auto& [name, tensor] : tensors) file.read_into(name, tensor->view());
  optimizer.set_step_count(step_count);
  rng.set_state(rng_state);
  for (const auto& [key, value] : meta)
    if (key.compare(0, 5, "user.") == 0) progress.info.emplace(key.substr(5), value);
  return progress;
}

}  // namespace eigenformer
