// tests/test_safetensors.cpp: io/safetensors.hpp. Round trips of every dtype, then one case per kind of
// malformed file, each built byte by byte here and checked on the full text of its message.
#include "eigenformer/io/safetensors.hpp"
#include "eigenformer/core/random.hpp"

#include <doctest/doctest.h>

#include "support/address_limit.hpp"
#include "support/temp_file.hpp"

#include <sys/stat.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>
#include <utility>
#include <vector>

using namespace eigenformer;

namespace {

using eigenformer::testing::TempFile;

std::string u64le(std::uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[static_cast<std::size_t>(i)] = static_cast<char>((n >> (8 * i)) & 0xff);
  return s;
}

// A file: the header length, the header text as given (no padding), then the data.
std::string file_bytes(const std::string& header, const std::string& data = "") { return u64le(header.size()) + header + data; }

// Opening these bytes must fail with FormatError "<path>: <message>".
void check_rejected(const std::string& bytes, const std::string& message) {
  TempFile f(bytes);
  CHECK_THROWS_WITH_AS(SafeTensors(f.path()), (f.path() + ": " + message).c_str(), FormatError);
}
// The same for a one-tensor header {"x": <entry>} followed by `data`.
void check_entry_rejected(const std::string& entry, const std::string& data, const std::string& message) {
  check_rejected(file_bytes("{\"x\":" + entry + "}", data), message);
}

// Six sample values of each type: extremes for integers, values that need rounding for floats.
template <typename Scalar>
Scalar sample_value(Index i) {
  if constexpr (std::is_same_v<Scalar, bool>) {
    return i % 3 == 0;
  } else if constexpr (std::is_integral_v<Scalar>) {
    const Scalar v[] = {0, 1, std::numeric_limits<Scalar>::min(), std::numeric_limits<Scalar>::max(), 42, 7};
    return v[i % 6];
  } else {
    const double v[] = {0.0, 1.0, -2.5, 0.1, 3.141592653589793, -1234.5678};
    return Scalar(v[i % 6]);
  }
}

template <typename Scalar>
Tensor<Scalar> sample_tensor(const Shape& shape) {
  Tensor<Scalar> t(shape);
  for (Index i = 0; i < t.size(); ++i) t[i] = sample_value<Scalar>(i);
  return t;
}

template <typename A, typename B>
bool same_bits(const Tensor<A>& a, const Tensor<B>& b) {
  static_assert(sizeof(A) == sizeof(B));
  return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), static_cast<std::size_t>(a.size()) * sizeof(A)) == 0;
}

}  // namespace

TEST_CASE("dtype_name and dtype_size follow the safetensors names") {
  CHECK(dtype_name(DType::F64) == "F64");
  CHECK(dtype_name(DType::BF16) == "BF16");
  CHECK(dtype_name(DType::BOOL) == "BOOL");
  CHECK(dtype_size(DType::F64) == 8);
  CHECK(dtype_size(DType::F16) == 2);
  CHECK(dtype_size(DType::I32) == 4);
  CHECK(dtype_size(DType::U8) == 1);
}

TEST_CASE_TEMPLATE("SafeTensors: every dtype round-trips bit for bit", Scalar, double, float, Eigen::half, Eigen::bfloat16,
                   std::int64_t, std::int32_t, std::int16_t, std::int8_t, std::uint8_t, bool) {
  const Tensor<Scalar> t = sample_tensor<Scalar>(Shape{2, 3});
  TempFile f;
  SafeTensorsWriter w;
  w.add("t", t);
  w.write(f.path());

  SafeTensors file(f.path());
  CHECK(file.info("t").dtype == detail::DTypeOf<Scalar>::value);
  CHECK(file.info("t").shape == Shape{2, 3});
  const Tensor<Scalar> back = file.get<Scalar>("t");
  REQUIRE(back.shape() == t.shape());
  for (Index i = 0; i < t.size(); ++i) {
    CAPTURE(i);
    if constexpr (std::is_same_v<Scalar, bool>) CHECK(back[i] == t[i]);
    else CHECK(std::memcmp(&back[i], &t[i], sizeof(Scalar)) == 0);
  }
}

TEST_CASE_TEMPLATE("SafeTensors: float written as F16 or BF16 reads back as Eigen rounds it", Reduced, Eigen::half, Eigen::bfloat16) {
  // 0.1 and 1/3 round in both formats; 65519 rounds to 65504 in F16; 1e-8 is below F16's smallest subnormal.
  const std::vector<float> values = {0.1f, 1.0f / 3.0f, 65519.0f, 1e-8f, -2.71828f, 1.00048828125f, 0.0f, -1e30f};
  Tensor<float> t(Shape{static_cast<Index>(values.size())});
  std::copy(values.begin(), values.end(), t.data());
  const DType as = detail::DTypeOf<Reduced>::value;
  TempFile f;
  SafeTensorsWriter w;
  w.add("t", t, as);
  w.write(f.path());

  SafeTensors file(f.path());
  CHECK(file.info("t").dtype == as);
  const Tensor<float> as_float = file.get<float>("t");
  const Tensor<double> as_double = file.get<double>("t");
  const Tensor<Reduced> raw = file.get<Reduced>("t");
  for (std::size_t i = 0; i < values.size(); ++i) {
    CAPTURE(values[i]);
    const Reduced expected(values[i]);  // Eigen's round to nearest even
    const Index k = static_cast<Index>(i);
    const float expected_float = static_cast<float>(expected);
    CHECK(std::memcmp(&raw[k], &expected, sizeof(Reduced)) == 0);
    CHECK(std::memcmp(&as_float[k], &expected_float, sizeof(float)) == 0);  // bits: also -0 and inf
    CHECK(as_double[k] == static_cast<double>(expected_float));
  }
  CHECK(as_float[0] != values[0]);  // rounding really happened
}

TEST_CASE("SafeTensors: integer and float dtypes convert on load") {
  Tensor<std::int64_t> ids(Shape{3});
  ids[0] = -5;
  ids[1] = 0;
  ids[2] = std::int64_t(1) << 40;
  Tensor<double> x(Shape{2});
  x[0] = 0.1;
  x[1] = -3.0;
  TempFile f;
  SafeTensorsWriter w;
  w.add("ids", ids);
  w.add("x", x);
  w.write(f.path());

  SafeTensors file(f.path());
  const Tensor<double> ids_d = file.get<double>("ids");
  CHECK(ids_d[0] == -5.0);
  CHECK(ids_d[2] == 1099511627776.0);
  const Tensor<float> x_f = file.get<float>("x");
  CHECK(x_f[0] == static_cast<float>(0.1));
  CHECK(x_f[1] == -3.0f);
  CHECK_THROWS_WITH_AS(file.get<std::int32_t>("ids"),
                       (f.path() + ": tensor 'ids' element 2 is 1099511627776, which I32 cannot hold exactly").c_str(), RangeError);
  CHECK_THROWS_WITH_AS(file.get<std::int64_t>("x"),
                       (f.path() + ": tensor 'x' element 0 is 0.1, which I64 cannot hold exactly").c_str(), RangeError);
  CHECK_THROWS_WITH_AS(file.get<std::uint8_t>("ids"),
                       (f.path() + ": tensor 'ids' element 0 is -5, which U8 cannot hold exactly").c_str(), RangeError);
}

TEST_CASE("SafeTensorsWriter: a value an integer dtype cannot hold is rejected at add()") {
  Tensor<float> t(Shape{2}, 2.5f);
  SafeTensorsWriter w;
  CHECK_THROWS_WITH_AS(w.add("t", t, DType::I32), "SafeTensorsWriter.add: tensor 't' element 0 is 2.5, which I32 cannot hold exactly",
                       RangeError);
}

TEST_CASE("SafeTensors: metadata round-trips") {
  TempFile f;
  SafeTensorsWriter w;
  w.set_metadata("format", "pt");
  w.set_metadata("note", "ünïcode, \"quotes\" and\nnewlines");
  w.add("t", Tensor<float>(Shape{1}, 1.0f));
  w.write(f.path());
  SafeTensors file(f.path());
  CHECK(file.metadata() == std::map<std::string, std::string>{{"format", "pt"}, {"note", "ünïcode, \"quotes\" and\nnewlines"}});
  CHECK(file.names() == std::vector<std::string>{"t"});
}

TEST_CASE("SafeTensors: zero-element tensors are valid, anywhere in the data") {
  TempFile f;
  SafeTensorsWriter w;
  w.add("empty", Tensor<float>(Shape{0, 3}));
  w.add("empty_i64", Tensor<std::int64_t>(Shape{0}));
  w.add("full", Tensor<float>(Shape{2}, 4.0f));
  w.write(f.path());
  SafeTensors file(f.path());
  CHECK(file.get<float>("empty").shape() == Shape{0, 3});
  CHECK(file.get<double>("empty_i64").shape() == Shape{0});
  CHECK(file.get<float>("full")[1] == 4.0f);
  // Hand-made: a zero-byte tensor at the very end of the data.
  check_rejected(file_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"z":{"dtype":"F32","shape":[0],"data_offsets":[8,8]}})",
                            std::string(4, '\0')),
                 "tensor 'z' ends at byte 8 of the data, past its end (4 bytes)");
  TempFile end(file_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"z":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}})",
                          std::string(4, '\0')));
  CHECK(SafeTensors(end.path()).get<float>("z").size() == 0);
}

TEST_CASE("SafeTensors: ranks 0 to 4") {
  const std::vector<Shape> shapes = {Shape{}, Shape{3}, Shape{2, 3}, Shape{2, 1, 3}, Shape{1, 2, 2, 3}};
  TempFile f;
  SafeTensorsWriter w;
  for (std::size_t r = 0; r < shapes.size(); ++r) w.add("rank" + std::to_string(r), sample_tensor<double>(shapes[r]));
  w.write(f.path());
  SafeTensors file(f.path());
  for (std::size_t r = 0; r < shapes.size(); ++r) {
    CAPTURE(r);
    const Tensor<double> t = file.get<double>("rank" + std::to_string(r));
    CHECK(t.rank() == static_cast<int>(r));
    CHECK(same_bits(t, sample_tensor<double>(shapes[r])));
  }
}

TEST_CASE("SafeTensors: names() is sorted; info() describes each tensor") {
  TempFile f;
  SafeTensorsWriter w;
  Tensor<float> b(Shape{1});
  w.add("b", b.view());  // a mutable view is accepted as well
  w.add("a.weight", Tensor<double>(Shape{2, 2}));
  w.add("C", Tensor<std::uint8_t>(Shape{3}));
  w.write(f.path());
  SafeTensors file(f.path());
  CHECK(file.path() == f.path());
  CHECK(file.names() == std::vector<std::string>{"C", "a.weight", "b"});
  CHECK(file.contains("b"));
  CHECK_FALSE(file.contains("a"));
  const TensorInfo& a = file.info("a.weight");
  CHECK(a.name == "a.weight");
  CHECK(a.dtype == DType::F64);
  CHECK(a.shape == Shape{2, 2});
  CHECK(a.end - a.begin == 32);
  CHECK_THROWS_WITH_AS(file.info("a"), (f.path() + ": no tensor named 'a'").c_str(), RangeError);
}

TEST_CASE("SafeTensorsWriter: header padded to 8 bytes, each tensor aligned to its element size") {
  TempFile f;
  SafeTensorsWriter w;
  w.add("a", Tensor<std::uint8_t>(Shape{3}));
  w.add("b", Tensor<Eigen::half>(Shape{1}));
  w.add("c", Tensor<double>(Shape{2}));
  w.add("d", Tensor<float>(Shape{1}));
  w.write(f.path());
  const std::string bytes = f.read();
  std::uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  CHECK((8 + n) % 8 == 0);
  SafeTensors file(f.path());
  for (const std::string& name : file.names()) {
    CAPTURE(name);
    CHECK(file.info(name).begin % dtype_size(file.info(name).dtype) == 0);
  }
  CHECK(file.info("c").begin == 0);  // largest elements first
  CHECK(file.data_bytes() == 16 + 4 + 2 + 3);
}

TEST_CASE("SafeTensors: reads data that is not aligned") {
  // An unpadded header of odd length puts the doubles at an odd address.
  const std::string header = R"({"x":{"dtype":"F64","shape":[2],"data_offsets":[0,16]}})";
  REQUIRE(header.size() % 8 != 0);
  const double v[2] = {0.1, -7.25};
  std::string data(16, '\0');
  std::memcpy(&data[0], v, 16);
  TempFile f(file_bytes(header, data));
  const Tensor<double> x = SafeTensors(f.path()).get<double>("x");
  CHECK(x[0] == 0.1);
  CHECK(x[1] == -7.25);
}

TEST_CASE("SafeTensors: read_into checks the shape") {
  TempFile f;
  SafeTensorsWriter w;
  w.add("w", Tensor<float>(Shape{2, 3}, 1.5f));
  w.write(f.path());
  SafeTensors file(f.path());
  Tensor<double> ok(Shape{2, 3});
  file.read_into("w", ok.view());
  CHECK(ok[5] == 1.5);
  Tensor<float> wrong(Shape{3, 2});
  CHECK_THROWS_WITH_AS(file.read_into("w", wrong.view()), (f.path() + ": tensor 'w' has shape [2, 3]; expected [3, 2]").c_str(),
                       ShapeError);
}

TEST_CASE("SafeTensors: moving keeps the mapping") {
  TempFile f;
  SafeTensorsWriter w;
  w.add("t", Tensor<float>(Shape{2}, 3.0f));
  w.write(f.path());
  SafeTensors a(f.path());
  SafeTensors b(std::move(a));
  CHECK(b.get<float>("t")[1] == 3.0f);
  SafeTensors c(f.path());
  c = std::move(b);
  CHECK(c.get<float>("t")[0] == 3.0f);
}

TEST_CASE("SafeTensorsWriter: rejects duplicate and reserved names, and unwritable paths") {
  SafeTensorsWriter w;
  w.add("t", Tensor<float>(Shape{1}));
  CHECK_THROWS_WITH_AS(w.add("t", Tensor<double>(Shape{1})), "SafeTensorsWriter.add: tensor 't' was already added", RangeError);
  CHECK_THROWS_WITH_AS(w.add("__metadata__", Tensor<float>(Shape{1})),
                       "SafeTensorsWriter.add: the name '__metadata__' is reserved for the metadata", RangeError);
  CHECK_THROWS_WITH_AS(w.add("bad\xff", Tensor<float>(Shape{1})), "SafeTensorsWriter.add: tensor name is not valid UTF-8", RangeError);
  const std::string path = (std::filesystem::temp_directory_path() / "eigenformer_no_such_dir" / "x.safetensors").string();
  CHECK_THROWS_WITH_AS(w.write(path), (path + ": cannot open for writing: No such file or directory").c_str(), IoError);
}

TEST_CASE("SafeTensorsWriter.write: a directory, FIFO or device at the path is refused by name, and left as it was (harden-c)") {
  SafeTensorsWriter w;
  w.add("t", Tensor<float>(Shape{2}, 1.0f));
  eigenformer::testing::TempDir dir;
  const std::string fifo = dir.path() + "/acts.safetensors";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);  // opened for writing, it would block until someone read it
  CHECK_THROWS_WITH_AS(w.write(fifo), (fifo + ": is a FIFO (named pipe), not a regular file; refusing to write over it").c_str(), IoError);
  struct stat st {};
  REQUIRE(::stat(fifo.c_str(), &st) == 0);
  CHECK(S_ISFIFO(st.st_mode));
  CHECK_THROWS_WITH_AS(w.write(dir.path()), (dir.path() + ": is a directory, not a regular file; refusing to write over it").c_str(), IoError);
  // A file there is replaced whole.
  const std::string path = dir.path() + "/ok.safetensors";
  eigenformer::testing::write_text_file(path, "old");
  w.write(path);
  CHECK(SafeTensors(path).get<float>("t")[1] == 1.0f);
}

// ---- Malformed files: one case per check, each message in full. ----

TEST_CASE("SafeTensors rejects: a missing file (IoError)") {
  const std::string path = (std::filesystem::temp_directory_path() / "eigenformer_no_such_file.safetensors").string();
  CHECK_THROWS_WITH_AS(SafeTensors{path}, (path + ": cannot open: No such file or directory").c_str(), IoError);
}

TEST_CASE("SafeTensors rejects: a directory (IoError)") {
  const std::string path = std::filesystem::temp_directory_path().string();
  CHECK_THROWS_WITH_AS(SafeTensors{path}, (path + ": is a directory, not a safetensors file").c_str(), IoError);
}

TEST_CASE("SafeTensors rejects: a file shorter than 8 bytes") {
  check_rejected("", "the file is 0 bytes, too short for the 8-byte header length of a safetensors file");
  check_rejected("{}", "the file is 2 bytes, too short for the 8-byte header length of a safetensors file");
}

TEST_CASE("SafeTensors rejects: a header length past the end of the file") {
  check_rejected(u64le(1000) + "{}", "the header length is 1000 bytes, but only 2 bytes follow it; the file is truncated or not a safetensors file");
  check_rejected(u64le(std::numeric_limits<std::uint64_t>::max()) + "{}",
                 "the header length is 18446744073709551615 bytes, but only 2 bytes follow it; the file is truncated or not a safetensors file");
}

TEST_CASE("SafeTensors rejects: a header longer than 100 MB") {
  TempFile f(u64le(100000001));
  std::filesystem::resize_file(f.path(), 8 + 100000001);  // sparse: costs no disk space
  CHECK_THROWS_WITH_AS(SafeTensors(f.path()),
                       (f.path() + ": the header length is 100000001 bytes, more than the 100000000 safetensors allows").c_str(),
                       FormatError);
}

TEST_CASE("SafeTensors rejects: a header that is not JSON") {
  check_rejected(file_bytes(R"({"a":)"),
                 "the header is not valid JSON: parse error at line 1, column 6: syntax error while parsing value - unexpected end of "
                 "input; expected '[', '{', or a literal");
  check_rejected(file_bytes("\x01\x02"),
                 "the header is not valid JSON: parse error at line 1, column 1: syntax error while parsing value - invalid literal; "
                 "last read: '<U+0001>'");
  // An unterminated string is quoted back by nlohmann: the message stays short.
  TempFile f(file_bytes("{\"" + std::string(10000, 'a')));
  try {
    SafeTensors file(f.path());
    FAIL("accepted a header that is not JSON");
  } catch (const FormatError& e) {
    CHECK(std::string(e.what()).size() < f.path().size() + 300);
  }
}

TEST_CASE("SafeTensors rejects: a header that is not an object") {
  check_rejected(file_bytes("[1,2]"), "the header is [1,2]; expected a JSON object");
}

TEST_CASE("SafeTensors rejects: a name listed twice") {
  check_rejected(file_bytes(R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
                            std::string(4, '\0')),
                 "the header lists 'x' twice");
}

TEST_CASE("SafeTensors rejects: an entry that is not an object") {
  check_entry_rejected("5", "", "tensor 'x' is 5; expected an object with \"dtype\", \"shape\" and \"data_offsets\"");
}

TEST_CASE("SafeTensors rejects: an entry without dtype, shape or data_offsets") {
  check_entry_rejected(R"({"shape":[1],"data_offsets":[0,4]})", "abcd", "tensor 'x' has no \"dtype\"");
  check_entry_rejected(R"({"dtype":"F32","data_offsets":[0,4]})", "abcd", "tensor 'x' has no \"shape\"");
  check_entry_rejected(R"({"dtype":"F32","shape":[1]})", "abcd", "tensor 'x' has no \"data_offsets\"");
}

TEST_CASE("SafeTensors rejects: a dtype that is not a string") {
  check_entry_rejected(R"({"dtype":32,"shape":[1],"data_offsets":[0,4]})", "abcd",
                       "tensor 'x': \"dtype\" is 32; expected a string such as \"F32\"");
}

TEST_CASE("SafeTensors rejects: an unknown dtype, named") {
  check_entry_rejected(R"({"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]})", "a",
                       "tensor 'x' has dtype \"F8_E4M3\", which Eigenformer cannot read; expected one of F64, F32, F16, BF16, I64, I32, "
                       "I16, I8, U8, BOOL");
}

TEST_CASE("SafeTensors rejects: a shape that is not an array") {
  check_entry_rejected(R"({"dtype":"F32","shape":4,"data_offsets":[0,4]})", "abcd",
                       "tensor 'x': \"shape\" is 4; expected an array of non-negative integers");
}

TEST_CASE("SafeTensors rejects: a negative dimension") {
  check_entry_rejected(R"({"dtype":"F32","shape":[2,-1],"data_offsets":[0,4]})", "abcd",
                       "tensor 'x': shape dimension 1 is -1; expected an integer from 0 to 18446744073709551615");
}

TEST_CASE("SafeTensors rejects: a dimension that is not an integer") {
  check_entry_rejected(R"({"dtype":"F32","shape":[2.5],"data_offsets":[0,4]})", "abcd",
                       "tensor 'x': shape dimension 0 is 2.5; expected an integer from 0 to 18446744073709551615");
  check_entry_rejected(R"({"dtype":"F32","shape":["2"],"data_offsets":[0,4]})", "abcd",
                       "tensor 'x': shape dimension 0 is \"2\"; expected an integer from 0 to 18446744073709551615");
}

TEST_CASE("SafeTensors rejects: more than 4 dimensions") {
  check_entry_rejected(R"({"dtype":"F32","shape":[1,1,1,1,1],"data_offsets":[0,4]})", "abcd",
                       "tensor 'x' has shape [1, 1, 1, 1, 1] with 5 dimensions; Eigenformer supports at most 4");
}

TEST_CASE("SafeTensors rejects: an element count that overflows") {
  check_entry_rejected(R"({"dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,0]})", "",
                       "tensor 'x' has shape [4294967296, 4294967296], whose element count overflows a 64-bit index");
  check_entry_rejected(R"({"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,0]})", "",
                       "tensor 'x' has shape [4611686018427387904], whose size in bytes (F64, 8 each) overflows a 64-bit index");
}

TEST_CASE("SafeTensors rejects: data_offsets that are not two non-negative integers") {
  check_entry_rejected(R"({"dtype":"F32","shape":[1],"data_offsets":[4]})", "abcd",
                       "tensor 'x': \"data_offsets\" is [4]; expected two integers [begin, end] from 0 to 18446744073709551615");
  check_entry_rejected(R"({"dtype":"F32","shape":[1],"data_offsets":[-4,0]})", "abcd",
                       "tensor 'x': \"data_offsets\" is [-4,0]; expected two integers [begin, end] from 0 to 18446744073709551615");
  check_entry_rejected(R"({"dtype":"F32","shape":[1],"data_offsets":{"begin":0}})", "abcd",
                       "tensor 'x': \"data_offsets\" is {\"begin\":0}; expected two integers [begin, end] from 0 to 18446744073709551615");
}

TEST_CASE("SafeTensors rejects: data_offsets that begin after they end") {
  check_entry_rejected(R"({"dtype":"F32","shape":[1],"data_offsets":[4,0]})", "abcd",
                       "tensor 'x' has data_offsets [4, 0], which begin after they end");
}

TEST_CASE("SafeTensors rejects: a byte count that does not match dtype and shape") {
  check_entry_rejected(R"({"dtype":"F32","shape":[2,2],"data_offsets":[0,12]})", std::string(12, '\0'),
                       "tensor 'x' has 12 bytes (data_offsets [0, 12]), but F32 [2, 2] needs 16");
}

TEST_CASE("SafeTensors rejects: a tensor past the end of the data (truncated file)") {
  check_entry_rejected(R"({"dtype":"F32","shape":[2,2],"data_offsets":[0,16]})", std::string(8, '\0'),
                       "tensor 'x' ends at byte 16 of the data, past its end (8 bytes)");
}

TEST_CASE("SafeTensors rejects: overlapping tensors, both named") {
  check_rejected(file_bytes(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})",
                            std::string(24, '\0')),
                 "tensors 'a' (bytes [0, 16) of the data) and 'b' (bytes [8, 24)) overlap");
}

TEST_CASE("SafeTensors rejects: data bytes that no tensor covers (as the reference does)") {
  check_rejected(file_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[16,24]}})",
                            std::string(24, '\0')),
                 "bytes [8, 16) of the data belong to no tensor (between 'a' and 'b'); safetensors requires the tensors to cover the "
                 "data exactly");
  check_rejected(file_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", std::string(12, '\0')),
                 "bytes [0, 4) of the data belong to no tensor (before 'a'); safetensors requires the tensors to cover the data exactly");
  check_rejected(file_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", std::string(12, '\0')),
                 "bytes [8, 12) of the data belong to no tensor (after 'a'); safetensors requires the tensors to cover the data exactly");
  check_rejected(file_bytes("{}", "abcd"),
                 "bytes [0, 4) of the data belong to no tensor (the file has no tensors); safetensors requires the tensors to cover the "
                 "data exactly");
}

TEST_CASE("SafeTensors rejects: __metadata__ that is not an object of strings") {
  check_rejected(file_bytes(R"({"__metadata__":["pt"]})"), "\"__metadata__\" is [\"pt\"]; expected an object of strings");
  check_rejected(file_bytes(R"({"__metadata__":{"format":"pt","epoch":3}})"),
                 "\"__metadata__\" value 'epoch' is 3; expected a string");
}

TEST_CASE("SafeTensors: a header with only metadata and no data is valid") {
  TempFile f(file_bytes(R"({"__metadata__":{"format":"pt"}}   )"));
  SafeTensors file(f.path());
  CHECK(file.names().empty());
  CHECK(file.metadata().at("format") == "pt");
}

TEST_CASE("SafeTensors: release_after_read gives the same values, also when a tensor is read again") {
  // Larger than the 4 MiB step, so that pages are dropped while converting.
  const Tensor<float> big = random_tensor<float>({3, 1 << 19}, 21);
  const Tensor<double> small = random_tensor<double>({7}, 22);
  TempFile f;
  SafeTensorsWriter w;
  w.add("big", big);
  w.add("small", small, DType::F16);
  w.write(f.path());
  const SafeTensors plain(f.path()), releasing(f.path(), /*release_after_read=*/true);
  for (int round = 0; round < 2; ++round) {
    CAPTURE(round);
    CHECK(releasing.get<float>("big").matrix() == plain.get<float>("big").matrix());
    CHECK(releasing.get<double>("small").matrix() == plain.get<double>("small").matrix());
  }
}

TEST_CASE("SafeTensors::from_bytes: a file in memory reads as the file does, and the memory stays the caller's") {
  SafeTensorsWriter w;
  w.add("a", sample_tensor<float>(Shape{2, 3}));
  w.add("b", sample_tensor<std::int64_t>(Shape{4}));
  w.set_metadata("format", "pt");
  TempFile f;
  w.write(f.path());
  const std::string bytes = f.read();
  {
    const SafeTensors file(f.path());
    SafeTensors mem = SafeTensors::from_bytes(bytes.data(), bytes.size(), "mem.safetensors");
    CHECK(mem.path() == "mem.safetensors");
    CHECK(mem.names() == file.names());
    CHECK(mem.metadata() == file.metadata());
    CHECK(same_bits(mem.get<float>("a"), file.get<float>("a")));
    CHECK(mem.get<std::int64_t>("b").matrix() == file.get<std::int64_t>("b").matrix());
    const SafeTensors moved = std::move(mem);
    CHECK(moved.get<float>("a")[1] == sample_value<float>(1));
  }
  CHECK(bytes == f.read());  // not unmapped, not released: the caller's buffer is untouched and still readable
  CHECK_THROWS_WITH_AS(SafeTensors::from_bytes(bytes.data(), 7, "mem"), "mem: the file is 7 bytes, too short for the 8-byte header length of a safetensors file",
                       FormatError);
  std::uint64_t header = 0;
  std::memcpy(&header, bytes.data(), 8);
  CHECK_THROWS_WITH_AS(SafeTensors::from_bytes(bytes.data(), 20),
                       ("<memory>: the header length is " + std::to_string(header) +
                        " bytes, but only 12 bytes follow it; the file is truncated or not a safetensors file").c_str(),
                       FormatError);
}

TEST_CASE("SafeTensors rejects: what fuzz_safetensors found (a number too large for a double; a deeply nested shape)") {
  // tests/fixtures/fuzz/safetensors_number_overflow.safetensors, as the fuzzer saved it: nlohmann's out_of_range
  // for "5e666666666" escaped the reader as a non-eigenformer exception.
  const std::string found = std::string(EIGENFORMER_FIXTURE_DIR) + "/fuzz/safetensors_number_overflow.safetensors";
  // The message names the number's field and its place in the header (issue 13 follow-up, harden-c).
  std::string bytes;
  {
    std::ifstream in(found, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  const std::size_t at = bytes.find("5e666666666");
  REQUIRE(at != std::string::npos);
  CHECK_THROWS_WITH_AS(SafeTensors{found},
                       (found + ": the header is not valid JSON: number overflow: 5e666666666 (at byte " + std::to_string(at - 8) +
                        "), beyond the range of a double (about 1.8e308)")
                           .c_str(),
                       FormatError);  // the header is that number: no field to name
  // In a tensor's entry, the field is named: its key, then data_offsets' index.
  const std::string header = R"({"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1e400]}})";
  std::string file(8, '\0');
  const std::uint64_t n = header.size();
  std::memcpy(&file[0], &n, 8);
  file += header + "x";
  CHECK_THROWS_WITH_AS(SafeTensors::from_bytes(file.data(), file.size()),
                       ("<memory>: the header is not valid JSON: number overflow: field 'w/data_offsets/1' is 1e400 (at byte " +
                        std::to_string(header.find("1e400")) + "), beyond the range of a double (about 1.8e308)")
                           .c_str(),
                       FormatError);
  // A shape nested a million levels deep: writing the message recursed once per level and overflowed the stack.
  const std::size_t depth = 1000000;
  check_entry_rejected(R"({"dtype":"U8","shape":[)" + std::string(depth, '[') + std::string(depth, ']') + R"(],"data_offsets":[0,1]})", "\x01",
                       "tensor 'x': shape dimension 0 is " + std::string(16, '[') + "[...]" + std::string(16, ']') + "; expected an integer from 0 to 18446744073709551615");
}

namespace {

// The header of `count` one-byte U8 tensors "t0", "t1", ... tiling `count` bytes of data, and `metadata` if given.
std::string many_tensors_file(std::size_t count, bool metadata = false) {
  std::string header = metadata ? R"({"__metadata__":{"format":"pt"})" : "{";
  for (std::size_t i = 0; i < count; ++i) {
    if (header.size() > 1) header += ',';
    header += "\"t" + std::to_string(i) + R"(":{"dtype":"U8","shape":[1],"data_offsets":[)" + std::to_string(i) + "," +
              std::to_string(i + 1) + "]}";
  }
  header += '}';
  return file_bytes(header, std::string(count, '\x07'));
}

}  // namespace

TEST_CASE("SafeTensors: a header of 100,000 tensors parses (the repeated-key check was quadratic in the member count)") {
  // parse_json found repeated keys with nlohmann's callback parser, which rescans the parent object after every
  // member that is an object: this header took minutes, one near max_header_bytes hours. Linear now (bench_json).
  const std::size_t count = 100000;
  const std::string bytes = many_tensors_file(count, /*metadata=*/true);
  const SafeTensors file = SafeTensors::from_bytes(bytes.data(), bytes.size(), "many.safetensors");
  CHECK(file.tensors().size() == count);
  CHECK(file.metadata().at("format") == "pt");
  CHECK(file.get<std::uint8_t>("t99999")[0] == 7);
  CHECK(file.info("t54321").begin == 54321);
}

TEST_CASE("SafeTensors rejects: more than max_tensors tensors, while parsing, metadata not counted") {
  const std::size_t max = static_cast<std::size_t>(SafeTensors::max_tensors);
  const std::string message = "more than " + std::to_string(max) + " tensors; Eigenformer reads at most " + std::to_string(max) +
                              " from one file (SafeTensors::max_tensors)";
  {  // max_tensors and the metadata: accepted
    const std::string bytes = many_tensors_file(max, /*metadata=*/true);
    CHECK(SafeTensors::from_bytes(bytes.data(), bytes.size(), "max.safetensors").tensors().size() == max);
  }
  for (bool metadata : {false, true}) {
    CAPTURE(metadata);
    const std::string bytes = many_tensors_file(max + 1, metadata);
    CHECK_THROWS_WITH_AS(SafeTensors::from_bytes(bytes.data(), bytes.size(), "many.safetensors"), ("many.safetensors: the header lists " + message).c_str(),
                         FormatError);
  }
}

TEST_CASE("SafeTensors: names and paths quoted in messages are escaped and cut (issue 13)") {
  // A tensor name from the header with a terminal escape sequence, and one of 1000 characters.
  check_rejected(file_bytes(R"({"\u001b[2Jx\u0000":5})"), "tensor '\\u001b[2Jx\\u0000' is 5; expected an object with \"dtype\", \"shape\" and \"data_offsets\"");
  const std::string name(1000, 'n');
  check_rejected(file_bytes("{\"" + name + "\":5}"),
                 "tensor '" + std::string(39, 'n') + "..." + std::string(38, 'n') + "' is 5; expected an object with \"dtype\", \"shape\" and \"data_offsets\"");
  check_rejected(file_bytes(R"({"\u009bk":1,"\u009bk":2})"), "the header lists '\\u009bk' twice");
  // A file name with control bytes, as a command line may give it.
  const std::string path = "/nonexistent/\x1b[31mred\n.safetensors";
  CHECK_THROWS_WITH_AS(SafeTensors{path}, "/nonexistent/\\u001b[31mred\\n.safetensors: cannot open: No such file or directory", IoError);
}

TEST_CASE("SafeTensors rejects: shapes and offsets beyond 64 bits, quoted as written, never wrapped or rounded (issue 13)") {
  // nlohmann made 2^64 and more a double: the message showed 1.8446744073709552e+19.
  check_entry_rejected(R"({"dtype":"F32","shape":[18446744073709551617],"data_offsets":[0,4]})", "abcd",
                       "tensor 'x': shape dimension 0 is 18446744073709551617; expected an integer from 0 to 18446744073709551615");
  check_entry_rejected(R"({"dtype":"F32","shape":[1,-9223372036854775809],"data_offsets":[0,4]})", "abcd",
                       "tensor 'x': shape dimension 1 is -9223372036854775809; expected an integer from 0 to 18446744073709551615");
  check_entry_rejected(R"({"dtype":"F32","shape":[1],"data_offsets":[0,18446744073709551616]})", "abcd",
                       "tensor 'x': \"data_offsets\" is [0,18446744073709551616]; expected two integers [begin, end] from 0 to 18446744073709551615");
  // 2^64 - 1 is a count as any other, taken whole.
  check_entry_rejected(R"({"dtype":"F32","shape":[1],"data_offsets":[0,18446744073709551615]})", "abcd",
                       "tensor 'x' has 18446744073709551615 bytes (data_offsets [0, 18446744073709551615]), but F32 [1] needs 4");
}

namespace {
// A one-tensor file "w" of n values, all 0.5 but `bad` at index `at`, stored as `dtype`.
template <typename Scalar>
std::string one_tensor_file(Index n, Index at, Scalar bad, DType dtype) {
  Tensor<Scalar> t(Shape{n});
  for (Index i = 0; i < n; ++i) t[i] = Scalar(0.5);
  t[at] = bad;
  SafeTensorsWriter w;
  w.add("w", t, dtype);
  TempFile f;
  w.write(f.path());
  return f.read();
}
}  // namespace

TEST_CASE("SafeTensors: NonFinite::refuse names the tensor and the first NaN or infinity, in every float dtype (issue 13)") {
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  const std::pair<double, std::string> values[] = {{nan, "nan"}, {inf, "inf"}, {-inf, "-inf"}};
  // Positions at the edges of the 64-value test blocks and the 1024-value copy blocks, and the last of 3000.
  const Index positions[] = {0, 63, 64, 1023, 1024, 1500, 2999};
  for (DType dtype : {DType::F32, DType::F16, DType::BF16, DType::F64}) {
    for (const auto& [value, text] : values) {
      for (Index at : positions) {
        CAPTURE(dtype_name(dtype));
        CAPTURE(text);
        CAPTURE(at);
        const std::string bytes = one_tensor_file<double>(3000, at, value, dtype);
        const SafeTensors file = SafeTensors::from_bytes(bytes.data(), bytes.size(), "m.safetensors");
        const std::string message = "m.safetensors: tensor 'w' element " + std::to_string(at) + " is " + text + "; expected a finite number";
        CHECK_THROWS_WITH_AS(file.get<float>("w", NonFinite::refuse), message.c_str(), RangeError);
        CHECK_THROWS_WITH_AS(file.get<double>("w", NonFinite::refuse), message.c_str(), RangeError);
        // Without the check the value is read as it is (an activation dump may hold -inf on purpose).
        const Tensor<float> read = file.get<float>("w");
        CHECK((std::isnan(value) ? std::isnan(read[at]) : read[at] == static_cast<float>(value)));
      }
    }
  }
  // Finite values pass, and integer dtypes have nothing to check.
  const std::string fine = one_tensor_file<double>(3000, 7, -2.0, DType::F32);
  const SafeTensors file = SafeTensors::from_bytes(fine.data(), fine.size(), "m.safetensors");
  CHECK(file.get<float>("w", NonFinite::refuse)[7] == -2.0f);
  const std::string ints = one_tensor_file<std::int64_t>(100, 7, std::numeric_limits<std::int64_t>::max(), DType::I64);
  const SafeTensors int_file = SafeTensors::from_bytes(ints.data(), ints.size(), "i.safetensors");
  CHECK(int_file.get<std::int64_t>("w", NonFinite::refuse)[7] == std::numeric_limits<std::int64_t>::max());
}

TEST_CASE("SafeTensors: NonFinite::refuse also refuses a finite F64 value that float cannot hold (issue 13)") {
  const std::string bytes = one_tensor_file<double>(100, 42, 1e300, DType::F64);
  const SafeTensors file = SafeTensors::from_bytes(bytes.data(), bytes.size(), "m.safetensors");
  CHECK_THROWS_WITH_AS(file.get<float>("w", NonFinite::refuse), "m.safetensors: tensor 'w' element 42 is 1e+300, which F32 cannot hold (it would be inf)",
                       RangeError);
  CHECK(file.get<double>("w", NonFinite::refuse)[42] == 1e300);  // as double it is finite
}

TEST_CASE("SafeTensors: NonFinite::refuse counts elements across release_after_read's 4 MiB steps (issue 13)") {
  const Index n = (Index(1) << 20) + 100, at = (Index(1) << 20) + 5;  // the second step of a file read as float
  TempFile f(one_tensor_file<float>(n, at, std::numeric_limits<float>::quiet_NaN(), DType::F32));
  const SafeTensors file(f.path(), /*release_after_read=*/true);
  Tensor<float> out(Shape{n});
  CHECK_THROWS_WITH_AS(file.read_into("w", out.view(), NonFinite::refuse),
                       (f.path() + ": tensor 'w' element " + std::to_string(at) + " is nan; expected a finite number").c_str(), RangeError);
}

#ifndef EIGENFORMER_TEST_UNDER_ASAN
TEST_CASE("SafeTensors: a file that the address space has no room to map is out of memory, with its size (issue 13)") {
  // Under ulimit -v, mmap fails with ENOMEM: an OutOfMemoryError naming the file and its size, not a plain IoError.
  // The file: one U8 tensor of 256 MiB, sparse (resize_file), mapped by a child limited to 64 MiB more than it uses.
  const std::uint64_t n = std::uint64_t(256) << 20;
  const std::string header = R"({"x":{"dtype":"U8","shape":[)" + std::to_string(n) + R"(],"data_offsets":[0,)" + std::to_string(n) + "]}}";
  TempFile f(file_bytes(header));
  std::filesystem::resize_file(f.path(), 8 + header.size() + n);
  const std::string result = eigenformer::testing::run_with_address_limit(std::size_t(64) << 20, [&] {
    try {
      return std::to_string(SafeTensors(f.path()).data_bytes());
    } catch (const OutOfMemoryError& e) {
      return std::string("OutOfMemoryError: ") + e.what();
    }
  });
  CHECK(result == "OutOfMemoryError: " + f.path() + ": cannot map its " + std::to_string(8 + header.size() + n) +
                      " bytes into memory: Cannot allocate memory");
  CHECK(SafeTensors(f.path()).data_bytes() == n);  // without the limit, it maps
}
#endif
