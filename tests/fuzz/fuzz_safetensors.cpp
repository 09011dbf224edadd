// fuzz_safetensors: the safetensors reader on arbitrary bytes, read in place (SafeTensors::from_bytes), so that
// AddressSanitizer sees any read outside the input. A file that passes validation is read whole: every tensor
// checked against the data, the first 256 converted to float, to int64 (which must refuse fractions with a
// RangeError) and to bool, and loaded by name into
// a tiny block through load_parameters (the "every problem in one message" listing).
#include <cstdint>
#include <string>

#include "eigenformer/io/parameters.hpp"
#include "eigenformer/io/safetensors.hpp"
#include "fuzz_support.hpp"

using namespace eigenformer;

namespace {

// Two parameters, "a.weight" [2, 3] and "b" [4], as in tests/test_parameters.cpp.
struct TinyBlock {
  Tensor<float> a{Shape{2, 3}}, b{Shape{4}};
  template <typename F>
  void visit_parameters(F&& f) {
    f("a.weight", a);
    f("b", b);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::allow_library_errors([&] {
    const SafeTensors file = SafeTensors::from_bytes(data, size, "fuzz.safetensors");
    std::size_t read = 0;
    for (const auto& kv : file.tensors()) {
      const TensorInfo& t = kv.second;
      fuzz::require(t.end - t.begin == static_cast<std::uint64_t>(t.shape.numel()) * dtype_size(t.dtype), "tensor bytes match its shape");
      fuzz::require(t.end <= file.data_bytes(), "tensor inside the data");
      if (++read > 256) continue;  // a header of many thousand tensors: the time goes to parsing it, as in a real load
      fuzz::allow_library_errors([&] { fuzz::require(file.get<float>(kv.first).shape() == t.shape, "float shape"); });
      fuzz::allow_library_errors([&] { (void)file.get<std::int64_t>(kv.first); });
      fuzz::allow_library_errors([&] { (void)file.get<bool>(kv.first); });
    }
    TinyBlock block;
    LoadOptions options;
    options.allow_unexpected = !file.contains("b");
    load_parameters(block, file, options);
  });
  return 0;
}
