// io/memory_budget.hpp: what loading a model will take in memory, known from its config and its checkpoint's header
// alone, before anything is allocated. These checks use it:
//   - a config must not describe more values than its checkpoint could hold (at least one byte each), so that a few
//     bytes of JSON never make us allocate terabytes before the file is even compared with the model;
//   - a model whose weights plus KV cache exceed a caller's budget is refused up front, naming both figures, rather
//     than killed by the system mid-generation;
//   - a model that passes both but still cannot be allocated (std::bad_alloc) is reported with the same figures
//     (OutOfMemoryError), not as a bare "std::bad_alloc";
//   - a model made from sizes alone (a random one, or one to train) that needs more than the process could ever be
//     given (memory_ceiling: memory and swap, a cgroup's limit, ulimit -v) is refused before it is allocated, since
//     Linux would hand out the memory and kill the process when it is written, not throw std::bad_alloc.
// The figures, for a model loaded into Scalar (an F16 file loaded into float takes 4 bytes a value):
//   weights  = every parameter and fixed table x sizeof(Scalar)
//   KV cache = 2 (keys, values) x layers x batch x context x d_model x sizeof(Scalar), per attention that caches
// Workspaces (one position's activations) and the logits [batch, V] are small beside these and not counted.
#pragma once

#include <sys/resource.h>
#include <sys/sysinfo.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <initializer_list>
#include <new>
#include <string>
#include <system_error>
#include <type_traits>

#include "eigenformer/core/error.hpp"
#include "eigenformer/core/shape.hpp"
#include "eigenformer/io/safetensors.hpp"

namespace eigenformer {

// Memory a model needs once loaded and generating, in bytes.
struct MemoryEstimate {
  std::uint64_t weight_bytes = 0;  // parameters and fixed tables, as the Scalar loaded into
  std::uint64_t cache_bytes = 0;   // keys and values of every caching attention, for `batch` x `context` positions
  Index batch = 0, context = 0;    // what cache_bytes was computed for
  std::uint64_t total_bytes() const { return weight_bytes + cache_bytes; }
};

// How a model is loaded: the memory it may take, and the generation its KV cache is sized for.
struct ModelLoadOptions {
  std::uint64_t memory_budget = 0;  // bytes that weights + KV cache may take; 0: no limit
  Index batch = 1;                  // sequences generated at once
  Index context = 0;                // positions per sequence (prompt and new tokens); 0: the model's whole context
};

// "1.5 GiB (1610612736 bytes)": binary units, one decimal, and the exact count.
inline std::string format_bytes(std::uint64_t bytes) {
  const char* units[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024.0 && u < 6) {
    v /= 1024.0;
    ++u;
  }
  if (u == 0) return std::to_string(bytes) + (bytes == 1 ? " byte" : " bytes");
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
  return std::string(buf) + " (" + std::to_string(bytes) + " bytes)";
}

// A memory budget as people write it: "512M", "2G", "1.5GiB", "1000000" -> bytes; "none" and "0" give 0 (no limit).
// K, M, G and T are powers of 1024 (in either case), optionally followed by "B" or "iB"; a bare number is bytes.
// RangeError naming `where` for anything else, or for more than 2^62 bytes.
inline std::uint64_t parse_byte_size(const std::string& text, const std::string& where) {
  if (text == "none") return 0;
  const auto bad = [&](const std::string& why) {
    return RangeError(where + ": " + quote(text) + " " + why + "; expected bytes such as 512M or 2G, or none");
  };
  std::size_t i = 0;
  std::uint64_t whole = 0;  // the digits before the point, exactly
  std::size_t digits = 0;
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i, ++digits) {
    if (whole > (std::uint64_t(1) << 62) / 10) throw bad("is too large");
    whole = whole * 10 + static_cast<std::uint64_t>(text[i] - '0');
  }
  std::string fraction;  // the digits after it
  if (i < text.size() && text[i] == '.') {
    for (++i; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i, ++digits) fraction += text[i];
  }
  if (digits == 0) throw bad("is not a size");
  std::uint64_t unit = 1;
  if (i < text.size()) {
    const char u = static_cast<char>(text[i] | 0x20);  // lower case for letters
    const char* const units = "kmgt";
    for (int k = 0; k < 4; ++k)
      if (u == units[k]) unit = std::uint64_t(1) << (10 * (k + 1));
    if (unit > 1) ++i;
  }
  const std::string rest = text.substr(i);
  if (!(rest.empty() || rest == "B" || rest == "b" || (unit > 1 && (rest == "iB" || rest == "ib")))) throw bad("has an unknown unit");
  if (whole > (std::uint64_t(1) << 62) / unit) throw bad("is too large");
  // floor(0.d1d2...dk x unit), exactly (no double rounding "0.99999999999999999999K" up to a whole KiB): the decimal
  // fraction times unit by long multiplication from its last digit; what carries past the point is the whole part.
  std::uint64_t carry = 0;  // below unit <= 2^40, so 9 x unit + carry fits
  for (auto d = fraction.rbegin(); d != fraction.rend(); ++d) carry = (static_cast<std::uint64_t>(*d - '0') * unit + carry) / 10;
  return whole * unit + carry;
}

namespace detail {

template <typename Scalar>
const char* scalar_name() {
  if constexpr (std::is_same_v<Scalar, float>) return "float";
  else if constexpr (std::is_same_v<Scalar, double>) return "double";
  else return "the requested type";
}

// The largest size we compute: 2^62, with room below 2^64 for the sums of the callers.
inline constexpr std::uint64_t max_size_count = std::uint64_t(1) << 62;

// The sum of products of non-negative numbers from a config, e.g. {{V, D}, {4, L, D, D}}: exact, or RangeError
// "<what> is about 1.2e+25; more than 2^62" when it would pass 2^62. The same sum is done in double first: its
// relative error (under 1e-15) is far below that margin, so the exact unsigned sum that follows cannot wrap.
inline std::uint64_t sum_of_products(std::initializer_list<std::initializer_list<Index>> terms, const std::string& what) {
  double approx = 0;
  for (const auto& term : terms) {
    double p = 1;
    for (Index f : term) {
      if (f < 0) throw RangeError(what + ": a factor is " + std::to_string(f) + "; expected >= 0");
      p *= static_cast<double>(f);
    }
    approx += p;
  }
  if (approx > static_cast<double>(max_size_count)) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3g", approx);
    throw RangeError(what + " is about " + buf + ", more than 2^62");
  }
  std::uint64_t sum = 0;
  for (const auto& term : terms) {
    std::uint64_t p = 1;
    for (Index f : term) p *= static_cast<std::uint64_t>(f);
    sum += p;
  }
  return sum;
}

// The estimate for a model of `values` weights of `scalar_size` bytes each, whose KV cache holds the product of
// `cache_per_position` values per batch item and position (2 x layers x width for GPT-2), for `batch` items of
// `context` positions (0: max_context, the config field `max_name`). RangeError naming `where` for a batch or context
// out of range, or sizes past 2^62.
inline MemoryEstimate estimate_memory(std::uint64_t values, Index scalar_size, std::initializer_list<Index> cache_per_position, Index batch,
                                      Index context, Index max_context, const char* max_name, const std::string& where) {
  if (context == 0) context = max_context;
  if (batch < 1) throw RangeError(where + ": batch is " + std::to_string(batch) + "; expected >= 1");
  if (context < 1 || context > max_context)
    throw RangeError(where + ": context is " + std::to_string(context) + " positions; expected 1 to " + max_name + " " + std::to_string(max_context));
  MemoryEstimate m;
  m.batch = batch;
  m.context = context;
  m.weight_bytes = sum_of_products({{static_cast<Index>(values), scalar_size}}, where + ": the weights' size in bytes");
  const std::string cache_what = where + ": the KV cache's size in bytes";
  const auto per_position = static_cast<Index>(sum_of_products({cache_per_position}, cache_what));  // at most 2^62
  m.cache_bytes = sum_of_products({{per_position, batch, context, scalar_size}}, cache_what);
  sum_of_products({{static_cast<Index>(m.weight_bytes)}, {static_cast<Index>(m.cache_bytes)}}, where + ": the memory needed");
  return m;
}

// Refuses, before the model is allocated, a config that needs more values than `file` could hold: each value takes
// at least one byte of its data section. A near miss (a missing layer) passes here, so that load_parameters can list
// each missing or wrong tensor by name; a config describing a model far larger than its file does not.
inline void check_file_can_hold(const SafeTensors& file, std::uint64_t values, const std::string& config_path, const std::string& sizes) {
  if (values <= file.data_bytes()) return;
  throw FormatError(detail::printable(config_path) + ": " + sizes + " make " + std::to_string(values) + " values, more than the " +
                    std::to_string(file.data_bytes()) + " bytes of data in " + detail::printable(file.path()) + " could hold; the config does not describe this checkpoint");
}

}  // namespace detail

namespace detail {
// "<total>: <weights> of weights and <cache> of KV cache (batch B x C positions)"; "<total>" alone for an estimate
// without a KV cache (batch 0: a model made and saved, or trained, whose caller says what the bytes are).
inline std::string estimate_text(const MemoryEstimate& need) {
  if (need.batch == 0 && need.cache_bytes == 0) return format_bytes(need.weight_bytes);
  return format_bytes(need.total_bytes()) + ": " + format_bytes(need.weight_bytes) + " of weights and " + format_bytes(need.cache_bytes) +
         " of KV cache (batch " + std::to_string(need.batch) + " x " + std::to_string(need.context) + " positions)";
}
}  // namespace detail

// Throws RangeError "<where>: loading <what> needs <total>: <weights> of weights and <cache> of KV cache (batch B x
// C positions); more than the memory budget of <budget>" when options.memory_budget is set and exceeded. `doing`
// replaces "loading" for a model that is made, not read ("creating").
inline void check_memory_budget(const MemoryEstimate& need, const ModelLoadOptions& options, const std::string& where, const std::string& what,
                                const std::string& doing = "loading") {
  if (options.memory_budget == 0 || need.total_bytes() <= options.memory_budget) return;
  throw RangeError(where + ": " + doing + " " + what + " needs " + detail::estimate_text(need) + "; more than the memory budget of " +
                   format_bytes(options.memory_budget));
}

namespace detail {
// The limit in a cgroup memory file, in bytes: 0 when there is no such file, it says "max", or it holds a number past
// 2^62 (cgroup v1 writes "unlimited" as 9223372036854771712).
inline std::uint64_t cgroup_limit(const char* path) {
  std::ifstream in(path);
  std::string text;
  if (!(in >> text)) return 0;
  std::uint64_t bytes = 0;
  const auto [end, err] = std::from_chars(text.data(), text.data() + text.size(), bytes);
  if (err != std::errc() || end != text.data() + text.size() || bytes >= max_size_count) return 0;
  return bytes;
}
}  // namespace detail

// The most memory this process could ever be given, and what sets it.
struct MemoryCeiling {
  std::uint64_t bytes = 0;  // 0: unknown
  std::string limit;        // "": the machine's memory and swap; else the limit below them, "the address-space limit (ulimit -v)"
};

// The machine's memory plus swap (sysinfo), or less: the memory limit of the process's control group (cgroup v2
// memory.max plus memory.swap.max, v1 memory.memsw.limit_in_bytes or memory.limit_in_bytes; read where a container
// sees its own at /sys/fs/cgroup), or the address-space limit (RLIMIT_AS, `ulimit -v`), whichever is lowest.
inline MemoryCeiling memory_ceiling() {
  MemoryCeiling ceiling;
  std::uint64_t swap = 0;
  struct sysinfo info {};
  if (::sysinfo(&info) == 0) {
    const auto unit = static_cast<std::uint64_t>(info.mem_unit);
    swap = static_cast<std::uint64_t>(info.totalswap) * unit;
    ceiling.bytes = static_cast<std::uint64_t>(info.totalram) * unit + swap;
  }
  const auto lower = [&](std::uint64_t bytes, const char* limit) {
    if (bytes > 0 && (ceiling.bytes == 0 || bytes < ceiling.bytes)) ceiling = MemoryCeiling{bytes, limit};
  };
  const char* const cgroup = "the memory limit of its control group (cgroup)";
  if (const std::uint64_t memory = detail::cgroup_limit("/sys/fs/cgroup/memory.max")) {
    // Its swap: memory.swap.max if that is a number ("0" included), else ("max", or no such file) the machine's.
    std::string swap_text;
    std::ifstream("/sys/fs/cgroup/memory.swap.max") >> swap_text;
    std::uint64_t cgroup_swap = swap;
    const auto [end, err] = std::from_chars(swap_text.data(), swap_text.data() + swap_text.size(), cgroup_swap);
    if (swap_text.empty() || err != std::errc() || end != swap_text.data() + swap_text.size()) cgroup_swap = swap;
    lower(memory + std::min(cgroup_swap, swap), cgroup);
  } else if (const std::uint64_t with_swap = detail::cgroup_limit("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes")) {
    lower(with_swap, cgroup);
  } else if (const std::uint64_t v1 = detail::cgroup_limit("/sys/fs/cgroup/memory/memory.limit_in_bytes")) {
    lower(v1 + swap, cgroup);
  }
  struct rlimit limit {};
  if (::getrlimit(RLIMIT_AS, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) lower(static_cast<std::uint64_t>(limit.rlim_cur), "the address-space limit (ulimit -v)");
  return ceiling;
}
inline std::uint64_t memory_ceiling_bytes() { return memory_ceiling().bytes; }

// What to throw when a model that passed every check still cannot be allocated (std::bad_alloc while `doing` it,
// "loading GPT-2 as float"): OutOfMemoryError "<where>: out of memory loading GPT-2 as float, which needs <total>:
// <weights> of weights and <cache> of KV cache (batch B x C positions)", the figures a memory budget is compared with.
inline OutOfMemoryError out_of_memory_error(const MemoryEstimate& need, const std::string& where, const std::string& doing) {
  return OutOfMemoryError(detail::printable(where) + ": out of memory " + doing + ", which needs " + detail::estimate_text(need));
}

// Before a model is made from sizes alone (gpt2 --init-random, training from scratch): OutOfMemoryError when it needs
// more than the ceiling (memory_ceiling()), "<where>: out of memory creating a random GPT-2 as float (its weights),
// which needs <bytes>; this machine has <ceiling> of memory and swap" (or "; the address-space limit (ulimit -v) is
// <ceiling>"). Linux hands out memory it does not have and finds out when the pages are first written: such a model
// would not throw std::bad_alloc but have the process killed (the kernel's OOM killer) during its initialisation.
inline void check_memory_ceiling(const MemoryEstimate& need, const std::string& where, const std::string& doing,
                                 const MemoryCeiling& ceiling = memory_ceiling()) {
  if (ceiling.bytes == 0 || need.total_bytes() <= ceiling.bytes) return;
  const std::string has = ceiling.limit.empty() ? "; this machine has " + format_bytes(ceiling.bytes) + " of memory and swap"
                                                : "; " + ceiling.limit + " is " + format_bytes(ceiling.bytes);
  throw OutOfMemoryError(out_of_memory_error(need, where, doing).what() + has);
}

// What training a model takes, from its estimate for inference (estimate_gpt2_memory, estimate_transformer_memory):
// its weights, their gradients and AdamW's two moments, four times the weights' bytes, and no KV cache. A step's
// activations come on top. RangeError naming `where` past 2^62 bytes.
inline MemoryEstimate training_state_memory(MemoryEstimate model, const std::string& where) {
  MemoryEstimate need;
  need.weight_bytes =
      detail::sum_of_products({{4, static_cast<Index>(model.weight_bytes)}}, detail::printable(where) + ": the training state's size in bytes");
  return need;
}

// Runs f() and returns what it returns; a std::bad_alloc inside becomes out_of_memory_error(need, where, doing).
template <typename F>
decltype(auto) with_memory_estimate(const MemoryEstimate& need, const std::string& where, const std::string& doing, F&& f) {
  try {
    return f();
  } catch (const std::bad_alloc&) {
    throw out_of_memory_error(need, where, doing);
  }
}

}  // namespace eigenformer
