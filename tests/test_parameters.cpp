// tests/test_parameters.cpp: io/parameters.hpp, on a tiny fake block with "a.weight" [2, 3] and "b" [4].
#include "eigenformer/io/parameters.hpp"

#include <doctest/doctest.h>

#include "support/temp_file.hpp"

#include <cmath>
#include <cstring>
#include <limits>
#include <filesystem>
#include <string>

using namespace eigenformer;

namespace {

struct TinyBlock {
  Tensor<float> a_weight{Shape{2, 3}};
  Tensor<float> b{Shape{4}};
  template <typename F>
  void visit_parameters(F&& f) {
    f(std::string("a.weight"), a_weight);
    f(std::string("b"), b);
  }
};

// 13 parameters "p0" ... "p12", [1] each: enough problems to cut the list.
struct ManyBlock {
  std::vector<Tensor<double>> p = std::vector<Tensor<double>>(13, Tensor<double>(Shape{1}));
  template <typename F>
  void visit_parameters(F&& f) {
    for (std::size_t i = 0; i < p.size(); ++i) f("p" + std::to_string(i), p[i]);
  }
};

TinyBlock filled_block() {
  TinyBlock block;
  for (Index i = 0; i < 6; ++i) block.a_weight[i] = 0.1f * static_cast<float>(i) - 0.25f;
  for (Index i = 0; i < 4; ++i) block.b[i] = -static_cast<float>(i) / 3.0f;
  return block;
}

using TempPath = eigenformer::testing::TempFile;

template <typename Scalar>
bool same_bits(const Tensor<Scalar>& a, const Tensor<Scalar>& b) {
  return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), static_cast<std::size_t>(a.size()) * sizeof(Scalar)) == 0;
}

}  // namespace

TEST_CASE("save_parameters then load_parameters gives the same bits") {
  TinyBlock saved = filled_block();
  TempPath f;
  SafeTensorsWriter w;
  save_parameters(saved, w);
  w.write(f.path());

  SafeTensors file(f.path());
  CHECK(file.names() == std::vector<std::string>{"a.weight", "b"});
  TinyBlock loaded;
  load_parameters(loaded, file);
  CHECK(same_bits(loaded.a_weight, saved.a_weight));
  CHECK(same_bits(loaded.b, saved.b));
}

TEST_CASE("load_parameters: prefix and rename map our names to the file's") {
  const TinyBlock saved = filled_block();
  TempPath f;
  SafeTensorsWriter w;
  w.add("model.a_w", saved.a_weight);
  w.add("model.b", saved.b);
  w.add("other.x", Tensor<float>(Shape{1}));  // outside the prefix: never unexpected
  w.write(f.path());

  LoadOptions options;
  options.prefix = "model.";
  options.rename = [](const std::string& name) { return name == "a.weight" ? std::string("a_w") : name; };
  TinyBlock loaded;
  load_parameters(loaded, SafeTensors(f.path()), options);
  CHECK(same_bits(loaded.a_weight, saved.a_weight));
  CHECK(same_bits(loaded.b, saved.b));
}

TEST_CASE("save_parameters: a prefix goes in front of every name") {
  TinyBlock block;
  TempPath f;
  SafeTensorsWriter w;
  save_parameters(block, w, "encoder.");
  w.write(f.path());
  CHECK(SafeTensors(f.path()).names() == std::vector<std::string>{"encoder.a.weight", "encoder.b"});
}

TEST_CASE("load_parameters: converts the file's dtype") {
  const TinyBlock saved = filled_block();
  TempPath f;
  SafeTensorsWriter w;
  w.add("a.weight", saved.a_weight.cast<double>());
  w.add("b", saved.b, DType::BF16);
  w.write(f.path());
  TinyBlock loaded;
  load_parameters(loaded, SafeTensors(f.path()));
  CHECK(same_bits(loaded.a_weight, saved.a_weight));  // float -> double -> float is exact
  for (Index i = 0; i < 4; ++i) CHECK(loaded.b[i] == static_cast<float>(Eigen::bfloat16(saved.b[i])));
}

TEST_CASE("load_parameters: missing, unexpected and wrong-shape tensors in one message; nothing is loaded") {
  TempPath f;
  SafeTensorsWriter w;
  w.add("a.weight", Tensor<float>(Shape{3, 2}, 1.0f));
  w.add("d", Tensor<float>(Shape{1}));
  w.add("c", Tensor<float>(Shape{1}));
  w.write(f.path());
  SafeTensors file(f.path());
  LoadOptions options;
  options.what = "TinyBlock";
  TinyBlock block = filled_block();
  CHECK_THROWS_WITH_AS(load_parameters(block, file, options),
                       (f.path() + ": 4 problems loading TinyBlock: missing 'b'; unexpected 'c'; unexpected 'd'; 'a.weight' is [3, 2], "
                                   "expected [2, 3]")
                           .c_str(),
                       FormatError);
  CHECK(same_bits(block.a_weight, filled_block().a_weight));
}

TEST_CASE("load_parameters: one problem is singular; names in the message are the file's") {
  TempPath f;
  SafeTensorsWriter w;
  w.add("transformer.a.weight", Tensor<float>(Shape{2, 3}));
  w.write(f.path());
  LoadOptions options;
  options.prefix = "transformer.";
  TinyBlock block;
  CHECK_THROWS_WITH_AS(load_parameters(block, SafeTensors(f.path()), options),
                       (f.path() + ": 1 problem loading parameters: missing 'transformer.b'").c_str(), FormatError);
}

TEST_CASE("load_parameters: lists at most 10 problems, then 'and N more'") {
  TempPath f;
  SafeTensorsWriter w;
  w.add("unrelated", Tensor<float>(Shape{1}));
  w.write(f.path());
  LoadOptions options;
  options.what = "ManyBlock";
  options.ignore = [](const std::string& name) { return name == "unrelated"; };
  ManyBlock block;
  CHECK_THROWS_WITH_AS(load_parameters(block, SafeTensors(f.path()), options),
                       (f.path() + ": 13 problems loading ManyBlock: missing 'p0'; missing 'p1'; missing 'p2'; missing 'p3'; missing 'p4'; "
                                   "missing 'p5'; missing 'p6'; missing 'p7'; missing 'p8'; missing 'p9'; and 3 more")
                           .c_str(),
                       FormatError);
}

TEST_CASE("load_parameters: ignore accepts tensors that are not ours (it sees the full file name)") {
  TempPath f;
  SafeTensorsWriter w;
  TinyBlock saved = filled_block();
  save_parameters(saved, w, "transformer.");
  w.add("transformer.h.0.attn.bias", Tensor<float>(Shape{1, 1, 4, 4}));
  w.write(f.path());
  SafeTensors file(f.path());
  LoadOptions options;
  options.prefix = "transformer.";
  TinyBlock block;
  CHECK_THROWS_WITH_AS(load_parameters(block, file, options),
                       (f.path() + ": 1 problem loading parameters: unexpected 'transformer.h.0.attn.bias'").c_str(), FormatError);
  options.ignore = [](const std::string& name) { return name == "transformer.h.0.attn.bias"; };
  load_parameters(block, file, options);
  CHECK(same_bits(block.b, filled_block().b));
}

TEST_CASE("load_parameters: allow_unexpected tolerates extra tensors, never missing ones") {
  TempPath f;
  SafeTensorsWriter w;
  TinyBlock saved = filled_block();
  save_parameters(saved, w);
  w.add("lm_head.weight", Tensor<float>(Shape{2}));
  w.write(f.path());
  SafeTensors file(f.path());
  LoadOptions options;
  options.allow_unexpected = true;
  TinyBlock block;
  load_parameters(block, file, options);
  CHECK(same_bits(block.a_weight, filled_block().a_weight));
  options.prefix = "x.";
  CHECK_THROWS_WITH_AS(load_parameters(block, file, options),
                       (f.path() + ": 2 problems loading parameters: missing 'x.a.weight'; missing 'x.b'").c_str(), FormatError);
}

TEST_CASE("count_parameters adds up every element") {
  TinyBlock block;
  CHECK(count_parameters(block) == 2 * 3 + 4);
  ManyBlock many;
  CHECK(count_parameters(many) == 13);
}

TEST_CASE("load_parameters: a tensor name from the file is quoted escaped and cut (issue 13)") {
  TempPath f;
  SafeTensorsWriter w;
  w.add("a.weight", Tensor<float>(Shape{2, 3}));
  w.add("b", Tensor<float>(Shape{4}));
  w.add("\x1b]8;;http://x\x07" + std::string(200, 'z'), Tensor<float>(Shape{1}));
  w.write(f.path());
  TinyBlock block;
  LoadOptions options;
  options.what = "TinyBlock";
  CHECK_THROWS_WITH_AS(load_parameters(block, SafeTensors(f.path()), options),
                       (f.path() + ": 1 problem loading TinyBlock: unexpected '\\u001b]8;;http://x\\u0007" + std::string(15, 'z') + "..." +
                        std::string(38, 'z') + "'")
                           .c_str(),
                       FormatError);
}

TEST_CASE("load_parameters: a NaN or infinite value is refused with the tensor's name, read in place or transposed (issue 13)") {
  for (const bool transposed : {false, true}) {
    for (const float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
      CAPTURE(transposed);
      CAPTURE(bad);
      TinyBlock saved = filled_block();
      saved.a_weight[4] = bad;  // [2, 3] row 1, column 1: element 4; in the file's [3, 2] (transposed), element 3
      TempPath f;
      SafeTensorsWriter w;
      Tensor<float> stored = saved.a_weight;
      if (transposed) {
        stored = Tensor<float>(Shape{3, 2});
        stored.matrix() = saved.a_weight.matrix().transpose();
      }
      w.add("a.weight", stored);
      w.add("b", saved.b);
      w.write(f.path());
      LoadOptions options;
      if (transposed) options.transposed = [](const std::string& name) { return name == "a.weight"; };
      TinyBlock loaded;
      CHECK_THROWS_WITH_AS(load_parameters(loaded, SafeTensors(f.path()), options),
                           (f.path() + ": tensor 'a.weight' element " + (transposed ? "3" : "4") + " is " + (std::isnan(bad) ? "nan" : "inf") + "; expected a finite number").c_str(),
                           RangeError);
    }
  }
}
