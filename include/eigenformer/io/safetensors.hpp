// io/safetensors.hpp: reading (memory-mapped) and writing safetensors files, the format of Hugging Face
// checkpoints (huggingface/safetensors): an 8-byte little-endian header length N, N bytes of JSON
// {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}}, then the data.
// The file may come from anywhere, so the constructor validates everything before anything is trusted, as
// the reference's Metadata::validate does: tensors must cover the data section exactly, with no overlap, no
// gap and no trailing bytes. Traps: data need not be aligned (we memcpy), F16/BF16 go through Eigen::half
// and Eigen::bfloat16 (double -> F16 rounds through float, as torch does), little-endian hosts only.
#pragma once

#include <Eigen/Core>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <sstream>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "eigenformer/core/bounded_reader.hpp"
#include "eigenformer/core/error.hpp"
#include "eigenformer/core/shape.hpp"
#include "eigenformer/core/tensor.hpp"
#include "eigenformer/core/json.hpp"
#include "eigenformer/core/output_file.hpp"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "eigenformer/io/safetensors.hpp reads and writes little-endian data in place: little-endian hosts only"
#endif

namespace eigenformer {

enum class DType { F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL };

// What a read checks of the values themselves: nothing beyond conversion (allow), or that every value is finite
// (refuse NaN and the infinities, as a model's weights must be; an F64 value too large for float counts as infinite).
enum class NonFinite { allow, refuse };

namespace detail {

// The one dtype table: safetensors name and bytes per element.
struct DTypeEntry {
  DType dtype;
  const char* name;
  std::size_t size;
};
inline constexpr std::array<DTypeEntry, 10> dtype_table{{
    {DType::F64, "F64", 8}, {DType::F32, "F32", 4}, {DType::F16, "F16", 2}, {DType::BF16, "BF16", 2},
    {DType::I64, "I64", 8}, {DType::I32, "I32", 4}, {DType::I16, "I16", 2}, {DType::I8, "I8", 1},
    {DType::U8, "U8", 1},   {DType::BOOL, "BOOL", 1},
}};

inline const DTypeEntry& dtype_entry(DType d) {
  for (const DTypeEntry& e : dtype_table)
    if (e.dtype == d) return e;
  throw InternalError("dtype_entry: a DType value outside the table");
}

// The C++ type each dtype holds (BOOL is one byte, 0 or 1, read as bool) and the dtype of each C++ type.
template <typename Scalar> struct DTypeOf;
template <> struct DTypeOf<double> { static constexpr DType value = DType::F64; };
template <> struct DTypeOf<float> { static constexpr DType value = DType::F32; };
template <> struct DTypeOf<Eigen::half> { static constexpr DType value = DType::F16; };
template <> struct DTypeOf<Eigen::bfloat16> { static constexpr DType value = DType::BF16; };
template <> struct DTypeOf<std::int64_t> { static constexpr DType value = DType::I64; };
template <> struct DTypeOf<std::int32_t> { static constexpr DType value = DType::I32; };
template <> struct DTypeOf<std::int16_t> { static constexpr DType value = DType::I16; };
template <> struct DTypeOf<std::int8_t> { static constexpr DType value = DType::I8; };
template <> struct DTypeOf<std::uint8_t> { static constexpr DType value = DType::U8; };
template <> struct DTypeOf<bool> { static constexpr DType value = DType::BOOL; };

template <typename T> struct TypeTag { using type = T; };

// Calls f(TypeTag<T>{}) with the C++ type of dtype d.
template <typename F>
decltype(auto) visit_dtype(DType d, F&& f) {
  switch (d) {
    case DType::F64: return f(TypeTag<double>{});
    case DType::F32: return f(TypeTag<float>{});
    case DType::F16: return f(TypeTag<Eigen::half>{});
    case DType::BF16: return f(TypeTag<Eigen::bfloat16>{});
    case DType::I64: return f(TypeTag<std::int64_t>{});
    case DType::I32: return f(TypeTag<std::int32_t>{});
    case DType::I16: return f(TypeTag<std::int16_t>{});
    case DType::I8: return f(TypeTag<std::int8_t>{});
    case DType::U8: return f(TypeTag<std::uint8_t>{});
    case DType::BOOL: return f(TypeTag<bool>{});
  }
  throw InternalError("visit_dtype: a DType value outside the table");
}

static_assert(std::is_trivially_copyable_v<Eigen::half> && sizeof(Eigen::half) == 2, "F16 is read with memcpy");
static_assert(std::is_trivially_copyable_v<Eigen::bfloat16> && sizeof(Eigen::bfloat16) == 2, "BF16 is read with memcpy");

// The one "file: message" form of every error about a file.
template <typename E>
E file_error(const std::string& path, const std::string& what) {
  return E(printable(path) + ": " + what);
}

template <typename T>
inline constexpr bool is_reduced_float_v = std::is_same_v<T, Eigen::half> || std::is_same_v<T, Eigen::bfloat16>;

// x converted to Dst; false when an integer Dst cannot hold x exactly (a fraction, NaN, out of range).
// Conversions to a floating type round to nearest (overflow gives inf), to bool mean "x != 0".
template <typename Dst, typename Src>
bool convert_value(Src x, Dst& out) {
  if constexpr (std::is_same_v<Src, Dst>) {
    out = x;
    return true;
  } else if constexpr (is_reduced_float_v<Src>) {
    return convert_value(static_cast<float>(x), out);
  } else if constexpr (std::is_same_v<Dst, bool>) {
    out = x != Src(0);
    return true;
  } else if constexpr (is_reduced_float_v<Dst>) {
    out = Dst(static_cast<float>(x));
    return true;
  } else if constexpr (std::is_floating_point_v<Dst>) {
    out = static_cast<Dst>(x);
    return true;
  } else if constexpr (std::is_floating_point_v<Src>) {
    const double v = static_cast<double>(x);
    const double lo = static_cast<double>(std::numeric_limits<Dst>::min());  // 0 or -2^k: exact
    const double hi = std::ldexp(1.0, std::numeric_limits<Dst>::digits);    // max + 1: exact
    if (!(v >= lo && v < hi) || v != std::trunc(v)) return false;
    out = static_cast<Dst>(v);
    return true;
  } else {  // integer (or bool) to integer
    if constexpr (std::is_signed_v<Src>) {
      if (x < 0) {
        if constexpr (std::is_signed_v<Dst>) {
          if (static_cast<std::intmax_t>(x) < static_cast<std::intmax_t>(std::numeric_limits<Dst>::min())) return false;
          out = static_cast<Dst>(x);
          return true;
        } else {
          return false;
        }
      }
    }
    if (static_cast<std::uintmax_t>(x) > static_cast<std::uintmax_t>(std::numeric_limits<Dst>::max())) return false;
    out = static_cast<Dst>(x);
    return true;
  }
}

template <typename T>
std::string value_str(T x) {
  std::ostringstream s;
  if constexpr (is_reduced_float_v<T>) s << static_cast<float>(x);
  else if constexpr (std::is_integral_v<T>) s << static_cast<std::intmax_t>(x);
  else s << x;
  return s.str();
}

// "<where>element 3 is 2.5, which I64 cannot hold exactly"
template <typename Src>
std::string conversion_message(const std::string& where, Index element, Src x, DType to) {
  return where + "element " + std::to_string(element) + " is " + value_str(x) + ", which " + dtype_entry(to).name +
         " cannot hold exactly";
}

// One element of type T from possibly unaligned little-endian bytes, and back.
template <typename T>
T load_element(const unsigned char* p) {
  if constexpr (std::is_same_v<T, bool>) {
    return *p != 0;
  } else {
    T x;
    std::memcpy(&x, p, sizeof(T));
    return x;
  }
}
template <typename T>
void store_element(T x, unsigned char* p) {
  if constexpr (std::is_same_v<T, bool>) *p = x ? 1 : 0;
  else std::memcpy(p, &x, sizeof(T));
}

// The unsigned integer as wide as a floating type, and the bits of its exponent: all ones for NaN and the infinities.
template <typename T> struct FloatBits;
template <> struct FloatBits<float> { using U = std::uint32_t; static constexpr U exponent = 0x7f800000u; };
template <> struct FloatBits<double> { using U = std::uint64_t; static constexpr U exponent = 0x7ff0000000000000ull; };
template <> struct FloatBits<Eigen::half> { using U = std::uint16_t; static constexpr U exponent = 0x7c00u; };
template <> struct FloatBits<Eigen::bfloat16> { using U = std::uint16_t; static constexpr U exponent = 0x7f80u; };

// The index of the first NaN or infinity among the n values of T at `from` (bytes, possibly unaligned), or -1 (always
// -1 for integer and bool types); with Copy, each value is also stored to `to` as it is read, so that a file's values
// are copied and checked in one pass. A value is not finite when its exponent bits are all ones: they are tested 64
// values at a time, a loop of fixed length that the compiler vectorises even at -O2, so that the check costs little
// beside the copy (measured: docs/reliability.md). The first loop stops at the block that holds a bad value; the
// second finds which value it was, copying the rest when there is none.
template <typename T, bool Copy>
Index scan_finite(const unsigned char* __restrict from, T* __restrict to, Index n) {  // __restrict: no runtime alias check
  if constexpr (std::is_integral_v<T>) {
    if constexpr (Copy) std::memcpy(to, from, static_cast<std::size_t>(n) * sizeof(T));
    return -1;
  } else {
    using U = typename FloatBits<T>::U;
    constexpr U exponent = FloatBits<T>::exponent;
    constexpr Index block = 64;
    const auto at = [&](Index i) {
      U u;
      std::memcpy(&u, from + static_cast<std::size_t>(i) * sizeof(U), sizeof(U));
      if constexpr (Copy) std::memcpy(static_cast<void*>(to + i), &u, sizeof(U));  // T is trivially copyable (asserted above)
      return u;
    };
    Index i = 0;
    for (; i + block <= n; i += block) {
      U bad = 0;  // nonzero once a value of the block has every exponent bit set
      for (Index k = 0; k < block; ++k) bad |= static_cast<U>((at(i + k) & exponent) == exponent);
      if (bad) break;
    }
    for (; i < n; ++i)
      if ((at(i) & exponent) == exponent) return i;
    return -1;
  }
}

// "<where>element 3 is nan; expected a finite number", or, for a finite value that Dst cannot hold (an F64 1e300 read
// as float), "<where>element 3 is 1e+300, which F32 cannot hold (it would be inf)".
template <typename Src>
std::string non_finite_message(const std::string& where, Index element, Src x, DType to) {
  const bool finite_in_file = std::isfinite(static_cast<double>(x));
  return where + "element " + std::to_string(element) + " is " + value_str(x) +
         (finite_in_file ? ", which " + std::string(dtype_entry(to).name) + " cannot hold (it would be inf)" : "; expected a finite number");
}

// n elements of dtype `Src` at `bytes` into `out`, converted; throws RangeError "<where>element i is ...". With
// NonFinite::refuse, each block of values is checked as soon as it is converted, while it is still in cache.
template <typename Src, typename Dst>
void convert_from_bytes(const unsigned char* bytes, Index n, Dst* out, const std::string& where, Index first = 0,
                        NonFinite non_finite = NonFinite::allow) {
  constexpr std::size_t size = std::is_same_v<Src, bool> ? 1 : sizeof(Src);
  const bool check = non_finite == NonFinite::refuse && !std::is_integral_v<Dst>;
  const auto refuse = [&](Index i) {  // value i of the file is not finite, or not as Dst
    throw RangeError(non_finite_message(where, first + i, load_element<Src>(bytes + static_cast<std::size_t>(i) * size), DTypeOf<Dst>::value));
  };
  if constexpr (std::is_same_v<Src, Dst> && !std::is_same_v<Dst, bool>) {
    if (!check) {
      if (n > 0) std::memcpy(out, bytes, static_cast<std::size_t>(n) * sizeof(Dst));
    } else if (const Index bad = scan_finite<Dst, /*Copy=*/true>(bytes, out, n); bad >= 0) {
      refuse(bad);
    }
  } else {
    // Converted 1024 values at a time, each block checked while it is still in the L1 cache.
    const Index block = check ? 1024 : std::max<Index>(n, 1);
    for (Index b = 0; b < n; b += block) {
      const Index m = std::min(block, n - b);
      for (Index i = b; i < b + m; ++i) {
        const Src x = load_element<Src>(bytes + static_cast<std::size_t>(i) * size);
        if (!convert_value(x, out[i])) throw RangeError(conversion_message(where, first + i, x, DTypeOf<Dst>::value));
      }
      if (check)
        if (const Index bad = scan_finite<Dst, /*Copy=*/false>(reinterpret_cast<const unsigned char*>(out + b), nullptr, m); bad >= 0) refuse(b + bad);
    }
  }
}

// A JSON integer from 0 to 2^64 - 1 (nlohmann keeps "-0" signed), for shapes and offsets. One beyond 2^64 - 1 is false,
// and the message quotes it as written (brief_json; parse_json keeps it so), never wrapped or rounded.
inline bool json_count(const nlohmann::json& j, std::uint64_t& out) {
  if (j.is_number_unsigned()) {
    out = j.get<std::uint64_t>();
    return true;
  }
  if (j.is_number_integer() && j.get<std::int64_t>() == 0) {
    out = 0;
    return true;
  }
  return false;
}

// Throws RangeError unless s can be written as JSON (valid UTF-8).
inline void check_utf8(const std::string& where, const std::string& s) {
  try {
    (void)nlohmann::json(s).dump();
  } catch (const nlohmann::json::exception&) {
    throw RangeError(where + " is not valid UTF-8");
  }
}

}  // namespace detail

inline std::string dtype_name(DType d) { return detail::dtype_entry(d).name; }
inline std::size_t dtype_size(DType d) { return detail::dtype_entry(d).size; }

// One tensor of a file. begin and end are byte offsets relative to the start of the data section.
struct TensorInfo {
  std::string name;
  DType dtype;
  Shape shape;
  std::uint64_t begin, end;
};

class SafeTensors {
 public:
  // The largest header the reference accepts (its MAX_HEADER_SIZE).
  static constexpr std::uint64_t max_header_bytes = 100000000;
  // The most tensors one file may list (2^18), checked while the header is parsed: far more than any checkpoint
  // we know of holds in one file (GPT-2 small: 148; a 70B-parameter Llama: 723 over all its shards), and it bounds
  // the memory of what is built from the header (about 1 KB a tensor) by 2^18 x 1 KB, where the header's 100 MB
  // alone would allow almost two million entries.
  static constexpr std::uint64_t max_tensors = std::uint64_t(1) << 18;

  // Maps the file and validates all of it; throws IoError (cannot open or map), OutOfMemoryError (no address space left
  // to map it) or FormatError (malformed).
  // release_after_read: drop each tensor's mapped pages as soon as it has been read (in 4 MiB steps), so that
  // loading a model never holds the file and the model in memory at once; reading a tensor again re-reads the file.
  explicit SafeTensors(const std::string& path, bool release_after_read = false) : path_(path), release_after_read_(release_after_read) {
    struct stat st {};
    const int fd = open_regular_file(path, "safetensors file", &st);  // a directory, FIFO or device: refused
    const std::uint64_t file_bytes = static_cast<std::uint64_t>(st.st_size);
    if (file_bytes < 8) {  // checked before mmap, which refuses an empty file
      ::close(fd);
      throw too_short(file_bytes);
    }
    void* map = ::mmap(nullptr, static_cast<std::size_t>(file_bytes), PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
      // ENOMEM: the address space (ulimit -v) has no room for the file; said as out of memory, with the size.
      const int err = errno;
      const IoError e = io_error("cannot map into memory");
      ::close(fd);
      if (err == ENOMEM)
        throw detail::file_error<OutOfMemoryError>(path_, "cannot map its " + std::to_string(file_bytes) + " bytes into memory: " + std::strerror(err));
      throw e;
    }
    ::close(fd);  // the mapping stays valid
    map_ = static_cast<const unsigned char*>(map);
    map_bytes_ = static_cast<std::size_t>(file_bytes);
    owns_map_ = true;
    try {
      parse();
    } catch (...) {
      unmap();
      throw;
    }
  }

  // A safetensors file already in memory: `bytes` is read in place, not copied, and must outlive the object.
  // `name` stands for the path in messages. Validated exactly as a file is (the fuzz target reads through this,
  // so that AddressSanitizer sees any read outside the caller's buffer).
  static SafeTensors from_bytes(const void* bytes, std::size_t size, const std::string& name = "<memory>") {
    return SafeTensors(static_cast<const unsigned char*>(bytes), size, name);
  }

  SafeTensors(const SafeTensors&) = delete;
  SafeTensors& operator=(const SafeTensors&) = delete;
  SafeTensors(SafeTensors&& o) noexcept { *this = std::move(o); }
  SafeTensors& operator=(SafeTensors&& o) noexcept {
    if (this != &o) {
      unmap();
      path_ = std::move(o.path_);
      map_ = std::exchange(o.map_, nullptr);
      map_bytes_ = std::exchange(o.map_bytes_, 0);
      owns_map_ = std::exchange(o.owns_map_, false);
      data_ = std::exchange(o.data_, nullptr);
      data_bytes_ = std::exchange(o.data_bytes_, 0);
      tensors_ = std::move(o.tensors_);
      metadata_ = std::move(o.metadata_);
      release_after_read_ = o.release_after_read_;
    }
    return *this;
  }
  ~SafeTensors() { unmap(); }

  const std::string& path() const { return path_; }
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    out.reserve(tensors_.size());
    for (const auto& kv : tensors_) out.push_back(kv.first);
    return out;
  }
  bool contains(const std::string& name) const { return tensors_.count(name) > 0; }
  // Every tensor by name (sorted).
  const std::map<std::string, TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo& info(const std::string& name) const {
    const auto it = tensors_.find(name);
    if (it == tensors_.end()) throw detail::file_error<RangeError>(path_, "no tensor named " + quote(name));
    return it->second;
  }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // The size of the data section in bytes (the file minus the header).
  std::uint64_t data_bytes() const { return data_bytes_; }

  // A tensor converted to Scalar (double, float, Eigen::half, Eigen::bfloat16, std::int64_t ... bool).
  // Integer targets must hold each value exactly, else RangeError. NonFinite::refuse: a NaN or infinite value (or one
  // that overflows Scalar) is a RangeError naming the tensor and the element, as loading a model's weights requires.
  template <typename Scalar>
  Tensor<Scalar> get(const std::string& name, NonFinite non_finite = NonFinite::allow) const {
    Tensor<Scalar> t(info(name).shape);
    read_into<Scalar>(name, t.view(), non_finite);
    return t;
  }
  // The same into caller-owned memory whose shape must equal the tensor's.
  template <typename Scalar>
  void read_into(const std::string& name, TensorView<Scalar> out, NonFinite non_finite = NonFinite::allow) const {
    static_assert(!std::is_const_v<Scalar>, "read_into writes: pass a TensorView<Scalar>, not TensorView<const Scalar>");
    (void)detail::DTypeOf<Scalar>::value;  // Scalar must be one of the types a dtype holds
    const TensorInfo& t = info(name);
    if (out.shape() != t.shape)
      throw detail::file_error<ShapeError>(path_, "tensor " + quote(name) + " has shape " + t.shape.str() + "; expected " +
                                                      out.shape().str());
    const unsigned char* bytes = data_ + t.begin;
    const std::size_t element = dtype_size(t.dtype);
    const Index step = release_after_read_ ? std::max<Index>(1, static_cast<Index>((std::size_t(4) << 20) / element)) : std::max<Index>(1, out.size());
    for (Index first = 0; first < out.size(); first += step) {
      const Index n = std::min(step, out.size() - first);
      const unsigned char* from = bytes + static_cast<std::size_t>(first) * element;
      detail::visit_dtype(t.dtype, [&](auto tag) {
        using Src = typename decltype(tag)::type;
        detail::convert_from_bytes<Src>(from, n, out.data() + first, detail::printable(path_) + ": tensor " + quote(name) + " ", first, non_finite);
      });
      if (release_after_read_) release(from, static_cast<std::size_t>(n) * element);
    }
  }

 private:
  SafeTensors(const unsigned char* bytes, std::size_t size, const std::string& name) : path_(name) {
    if (size < 8) throw too_short(size);
    map_ = bytes;
    map_bytes_ = size;
    parse();  // release_after_read_ stays false: madvise would zero the caller's memory, not re-read a file
  }

  FormatError too_short(std::uint64_t bytes) const {
    return format_error("the file is " + std::to_string(bytes) + " bytes, too short for the 8-byte header length of a safetensors file");
  }

  IoError io_error(const std::string& what) const {
    const int err = errno;
    return detail::file_error<IoError>(path_, what + ": " + std::strerror(err));
  }
  FormatError format_error(const std::string& what) const { return detail::file_error<FormatError>(path_, what); }

  // Drops the mapped pages that hold [from, from + bytes) (whole pages only: a page shared with data still to be read
  // stays). Safe whatever is dropped: the mapping is read-only, so a dropped page is read from the file again.
  void release(const unsigned char* from, std::size_t bytes) const {
    static const std::uintptr_t page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
    const std::uintptr_t begin = reinterpret_cast<std::uintptr_t>(from) / page * page;
    const std::uintptr_t end = (reinterpret_cast<std::uintptr_t>(from) + bytes) / page * page;
    if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
  }

  void unmap() {
    if (map_ && owns_map_) ::munmap(const_cast<unsigned char*>(map_), map_bytes_);
    map_ = nullptr;
    owns_map_ = false;
  }

  void parse() {
    std::uint64_t n = 0;
    std::memcpy(&n, map_, 8);
    const std::uint64_t rest = map_bytes_ - 8;
    if (n > rest)
      throw format_error("the header length is " + std::to_string(n) + " bytes, but only " + std::to_string(rest) +
                         " bytes follow it; the file is truncated or not a safetensors file");
    if (n > max_header_bytes)
      throw format_error("the header length is " + std::to_string(n) + " bytes, more than the " +
                         std::to_string(max_header_bytes) + " safetensors allows");
    data_ = map_ + 8 + n;
    data_bytes_ = rest - n;

    JsonTopLevel top;
    top.max_members = max_tensors + 1;  // and "__metadata__"
    const nlohmann::json header =
        parse_json(std::string_view(reinterpret_cast<const char*>(map_ + 8), n), detail::printable(path_) + ": the header is not valid JSON: ", top);
    const bool has_metadata = header.is_object() && header.contains("__metadata__");
    if (top.stopped() || top.members - (has_metadata ? 1 : 0) > max_tensors)
      throw format_error("the header lists more than " + std::to_string(max_tensors) + " tensors; Eigenformer reads at most " +
                         std::to_string(max_tensors) + " from one file (SafeTensors::max_tensors)");
    if (!header.is_object()) throw format_error("the header is " + detail::brief_json(header) + "; expected a JSON object");
    if (!top.duplicate_key.empty()) throw format_error("the header lists " + quote(top.duplicate_key) + " twice");

    for (const auto& item : header.items()) {
      if (item.key() == "__metadata__") read_metadata(item.value());
      else tensors_.emplace(item.key(), read_entry(item.key(), item.value()));
    }
    check_coverage();
  }

  void read_metadata(const nlohmann::json& m) {
    if (!m.is_object()) throw format_error("\"__metadata__\" is " + detail::brief_json(m) + "; expected an object of strings");
    for (const auto& kv : m.items()) {
      if (!kv.value().is_string())
        throw format_error("\"__metadata__\" value " + quote(kv.key()) + " is " + detail::brief_json(kv.value()) + "; expected a string");
      metadata_.emplace(kv.key(), kv.value().get<std::string>());
    }
  }

  TensorInfo read_entry(const std::string& name, const nlohmann::json& e) const {
    const std::string tensor = "tensor " + quote(name);
    if (!e.is_object())
      throw format_error(tensor + " is " + detail::brief_json(e) + "; expected an object with \"dtype\", \"shape\" and \"data_offsets\"");
    for (const char* key : {"dtype", "shape", "data_offsets"})
      if (!e.contains(key)) throw format_error(tensor + " has no \"" + key + "\"");

    TensorInfo info{name, DType::F32, Shape{}, 0, 0};
    const nlohmann::json& dtype = e["dtype"];
    if (!dtype.is_string()) throw format_error(tensor + ": \"dtype\" is " + detail::brief_json(dtype) + "; expected a string such as \"F32\"");
    const auto entry = std::find_if(detail::dtype_table.begin(), detail::dtype_table.end(),
                                    [&](const detail::DTypeEntry& d) { return dtype.get<std::string>() == d.name; });
    if (entry == detail::dtype_table.end()) {
      std::string known;
      for (const detail::DTypeEntry& d : detail::dtype_table) known += (known.empty() ? "" : ", ") + std::string(d.name);
      throw format_error(tensor + " has dtype " + detail::brief_json(dtype) + ", which Eigenformer cannot read; expected one of " + known);
    }
    info.dtype = entry->dtype;

    const nlohmann::json& shape = e["shape"];
    if (!shape.is_array()) throw format_error(tensor + ": \"shape\" is " + detail::brief_json(shape) + "; expected an array of non-negative integers");
    std::vector<std::uint64_t> dims;
    for (std::size_t i = 0; i < shape.size(); ++i) {
      std::uint64_t d = 0;
      if (!detail::json_count(shape[i], d))
        throw format_error(tensor + ": shape dimension " + std::to_string(i) + " is " + detail::brief_json(shape[i]) +
                           "; expected an integer from 0 to 18446744073709551615");
      dims.push_back(d);
    }
    std::string dims_str = "[";
    for (std::size_t i = 0; i < dims.size(); ++i) dims_str += (i ? ", " : "") + std::to_string(dims[i]);
    dims_str += "]";
    if (dims.size() > static_cast<std::size_t>(Shape::max_rank))
      throw format_error(tensor + " has shape " + dims_str + " with " + std::to_string(dims.size()) +
                         " dimensions; Eigenformer supports at most " + std::to_string(Shape::max_rank));
    // Elements and bytes must both fit an Index: checked before Shape multiplies anything.
    const std::uint64_t max_index = static_cast<std::uint64_t>(std::numeric_limits<Index>::max());
    std::uint64_t numel = 1;
    bool zero = false;
    for (std::uint64_t d : dims) zero = zero || d == 0;
    for (std::uint64_t d : dims) {
      if (zero) break;
      if (d > max_index / numel)
        throw format_error(tensor + " has shape " + dims_str + ", whose element count overflows a 64-bit index");
      numel *= d;
    }
    if (zero) numel = 0;
    if (numel > max_index / entry->size)
      throw format_error(tensor + " has shape " + dims_str + ", whose size in bytes (" + entry->name + ", " +
                         std::to_string(entry->size) + " each) overflows a 64-bit index");
    const std::uint64_t nbytes = numel * entry->size;
    info.shape = Shape(std::vector<Index>(dims.begin(), dims.end()));

    const nlohmann::json& offsets = e["data_offsets"];
    if (!offsets.is_array() || offsets.size() != 2 || !detail::json_count(offsets[0], info.begin) ||
        !detail::json_count(offsets[1], info.end))
      throw format_error(tensor + ": \"data_offsets\" is " + detail::brief_json(offsets) +
                         "; expected two integers [begin, end] from 0 to 18446744073709551615");
    const std::string range = "[" + std::to_string(info.begin) + ", " + std::to_string(info.end) + "]";
    if (info.begin > info.end) throw format_error(tensor + " has data_offsets " + range + ", which begin after they end");
    if (info.end - info.begin != nbytes)
      throw format_error(tensor + " has " + std::to_string(info.end - info.begin) + " bytes (data_offsets " + range + "), but " +
                         entry->name + " " + dims_str + " needs " + std::to_string(nbytes));
    if (info.end > data_bytes_)
      throw format_error(tensor + " ends at byte " + std::to_string(info.end) + " of the data, past its end (" +
                         std::to_string(data_bytes_) + " bytes)");
    return info;
  }

  // The tensors, in order of their offsets, must tile the data section: no overlap, no gap, nothing after.
  void check_coverage() const {
    std::vector<const TensorInfo*> order;
    for (const auto& kv : tensors_) order.push_back(&kv.second);
    std::sort(order.begin(), order.end(), [](const TensorInfo* a, const TensorInfo* b) {
      return std::tie(a->begin, a->end, a->name) < std::tie(b->begin, b->end, b->name);
    });
    auto bytes = [](const TensorInfo& t) { return "bytes [" + std::to_string(t.begin) + ", " + std::to_string(t.end) + ")"; };
    auto uncovered = [&](std::uint64_t from, std::uint64_t to, const std::string& where) {
      return format_error("bytes [" + std::to_string(from) + ", " + std::to_string(to) + ") of the data belong to no tensor (" +
                          where + "); safetensors requires the tensors to cover the data exactly");
    };
    std::uint64_t cursor = 0;
    const TensorInfo* prev = nullptr;
    for (const TensorInfo* t : order) {
      if (t->begin < cursor)
        throw format_error("tensors " + quote(prev->name) + " (" + bytes(*prev) + " of the data) and " + quote(t->name) + " (" + bytes(*t) +
                           ") overlap");
      if (t->begin > cursor)
        throw uncovered(cursor, t->begin, prev ? "between " + quote(prev->name) + " and " + quote(t->name) : "before " + quote(t->name));
      cursor = t->end;
      prev = t;
    }
    if (cursor != data_bytes_) throw uncovered(cursor, data_bytes_, prev ? "after " + quote(prev->name) : "the file has no tensors");
  }

  std::string path_;
  const unsigned char* map_ = nullptr;  // the whole file, read-only
  std::size_t map_bytes_ = 0;
  bool owns_map_ = false;  // true: map_ is our mmap of the file; false: the caller's bytes (from_bytes)
  const unsigned char* data_ = nullptr;  // the data section: map_ + 8 + header length; not aligned
  std::uint64_t data_bytes_ = 0;
  std::map<std::string, TensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
  bool release_after_read_ = false;
};

// Collects tensors (copied at add()) and metadata, then writes one file. Like the reference writer, it lays
// the data out by descending element size, then by name, and pads the header with spaces to a multiple
// of 8 bytes, so that every tensor is aligned to its element size. write() goes through write_file_atomically
// (core/output_file.hpp): a path that is a directory, a FIFO or a device is refused by name, and the file appears
// whole or not at all.
class SafeTensorsWriter {
 public:
  // Stored in the dtype of Scalar: double -> F64, float -> F32, Eigen::half -> F16, ..., bool -> BOOL.
  template <typename Scalar>
  void add(const std::string& name, TensorView<const Scalar> t) {
    add<Scalar>(name, t, detail::DTypeOf<Scalar>::value);
  }
  template <typename Scalar>
  void add(const std::string& name, TensorView<Scalar> t) {
    add<std::remove_const_t<Scalar>>(name, TensorView<const std::remove_const_t<Scalar>>(t));
  }
  template <typename Scalar>
  void add(const std::string& name, const Tensor<Scalar>& t) {
    add<Scalar>(name, t.view());
  }
  // Stored as `as`, converted element by element (float -> F16 or BF16 rounds to nearest even); a value
  // that an integer dtype cannot hold exactly throws RangeError.
  template <typename Scalar>
  void add(const std::string& name, TensorView<const Scalar> t, DType as) {
    (void)detail::DTypeOf<Scalar>::value;  // Scalar must be one of the types a dtype holds
    const std::string where = "SafeTensorsWriter.add: ";
    if (name == "__metadata__") throw RangeError(where + "the name '__metadata__' is reserved for the metadata");
    detail::check_utf8(where + "tensor name", name);
    if (entries_.count(name)) throw RangeError(where + "tensor " + quote(name) + " was already added");
    Entry e{as, t.shape(), std::vector<unsigned char>(static_cast<std::size_t>(t.size()) * dtype_size(as))};
    detail::visit_dtype(as, [&](auto tag) {
      using Dst = typename decltype(tag)::type;
      for (Index i = 0; i < t.size(); ++i) {
        Dst y;
        if (!detail::convert_value(t.data()[i], y))
          throw RangeError(detail::conversion_message(where + "tensor " + quote(name) + " ", i, t.data()[i], as));
        detail::store_element(y, e.bytes.data() + static_cast<std::size_t>(i) * dtype_size(as));
      }
    });
    entries_.emplace(name, std::move(e));
  }
  template <typename Scalar>
  void add(const std::string& name, const Tensor<Scalar>& t, DType as) {
    add<Scalar>(name, t.view(), as);
  }

  void set_metadata(const std::string& key, const std::string& value) {
    detail::check_utf8("SafeTensorsWriter.set_metadata: key " + quote(key), key);
    detail::check_utf8("SafeTensorsWriter.set_metadata: the value of " + quote(key), value);
    metadata_[key] = value;
  }

  void write(const std::string& path) const {
    std::vector<std::pair<const std::string*, const Entry*>> order;
    for (const auto& kv : entries_) order.emplace_back(&kv.first, &kv.second);
    std::stable_sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
      return dtype_size(a.second->dtype) > dtype_size(b.second->dtype);
    });
    nlohmann::json header = nlohmann::json::object();
    if (!metadata_.empty()) header["__metadata__"] = metadata_;
    std::uint64_t offset = 0;
    for (const auto& [name, e] : order) {
      std::vector<Index> dims(e->shape.begin(), e->shape.end());
      header[*name] = {{"dtype", dtype_name(e->dtype)}, {"shape", dims}, {"data_offsets", {offset, offset + e->bytes.size()}}};
      offset += e->bytes.size();
    }
    std::string text = header.dump();
    text.append((8 - text.size() % 8) % 8, ' ');
    const std::uint64_t n = text.size();

    write_file_atomically(path, [&](std::FILE* f) {
      bool ok = std::fwrite(&n, 8, 1, f) == 1 && std::fwrite(text.data(), 1, text.size(), f) == text.size();
      for (const auto& kv : order)
        ok = ok && (kv.second->bytes.empty() || std::fwrite(kv.second->bytes.data(), 1, kv.second->bytes.size(), f) == kv.second->bytes.size());
      return ok;
    });
  }

 private:
  struct Entry {
    DType dtype;
    Shape shape;
    std::vector<unsigned char> bytes;  // little-endian, as written
  };
  std::map<std::string, Entry> entries_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace eigenformer
