// io/checkpoint.hpp: what save_checkpoint writes under an adapter's name table (renamed, transposed where it says,
// F32, with config.json) load_checkpoint reads back; the size and budget checks come before the model is built.
#include "eigenformer/io/checkpoint.hpp"

#include <doctest/doctest.h>

#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "eigenformer/core/json.hpp"
#include "eigenformer/core/random.hpp"
#include "eigenformer/nn/linear.hpp"
#include "support/address_limit.hpp"
#include "support/temp_file.hpp"

using namespace eigenformer;
using eigenformer::testing::TempDir;
using eigenformer::testing::FileSizeLimit;
using eigenformer::testing::files_in;

namespace {
LoadOptions proj_names() {
  LoadOptions names;
  names.rename = [](const std::string& ours) { return "proj." + ours; };
  names.transposed = [](const std::string& ours) { return ours == "weight"; };  // stored [in, out], as a Conv1D
  names.what = "Proj";
  return names;
}
}  // namespace

TEST_CASE("save_checkpoint then load_checkpoint: the file names and layouts of the table, the same values back") {
  Linear<float> saved(LinearConfig{3, 2});  // weight [2, 3], bias [2]
  saved.weight() = random_tensor<float>({2, 3}, /*seed=*/1);
  saved.bias() = random_tensor<float>({2}, /*seed=*/2);
  TempDir dir;
  save_checkpoint(saved, dir.path(), nlohmann::json{{"in_features", 3}, {"out_features", 2}}, proj_names());

  CHECK(read_json_file(dir.path() + "/config.json") == nlohmann::json{{"in_features", 3}, {"out_features", 2}});
  const SafeTensors file = open_checkpoint(dir.path());
  CHECK(file.info("proj.weight").shape == Shape{3, 2});
  CHECK(file.info("proj.bias").shape == Shape{2});

  CheckpointModel info;
  info.values = 8;
  info.sizes = "in_features 3 and out_features 2";
  info.name = "Proj as float";
  const Linear<float> loaded =
      load_checkpoint<Linear<float>>(dir.path(), dir.path() + "/config.json", LinearConfig{3, 2}, file, info, proj_names(), ModelLoadOptions{});
  CHECK(loaded.weight().matrix() == saved.weight().matrix());
  CHECK(loaded.bias().matrix() == saved.bias().matrix());

  // A config describing more values than the file holds, or a model over the budget: refused before building.
  CheckpointModel huge = info;
  huge.values = 1000000;
  CHECK_THROWS_AS(load_checkpoint<Linear<float>>(dir.path(), dir.path() + "/config.json", LinearConfig{3, 2}, file, huge, proj_names(), {}),
                  FormatError);
  CheckpointModel heavy = info;
  heavy.memory.weight_bytes = 1 << 20;
  ModelLoadOptions budget;
  budget.memory_budget = 1024;
  CHECK_THROWS_AS(load_checkpoint<Linear<float>>(dir.path(), dir.path() + "/config.json", LinearConfig{3, 2}, file, heavy, proj_names(), budget),
                  RangeError);
}

TEST_CASE("save_checkpoint: a directory, FIFO or device where a file goes is refused first; config.json comes last (harden-c)") {
  Linear<float> saved(LinearConfig{3, 2});
  saved.weight() = random_tensor<float>({2, 3}, /*seed=*/1);
  const nlohmann::json config{{"in_features", 3}, {"out_features", 2}};
  for (const char* taken : {"config.json", "model.safetensors"}) {
    CAPTURE(taken);
    TempDir dir;
    const std::string path = dir.path() + "/" + taken;
    REQUIRE(::mkfifo(path.c_str(), 0600) == 0);  // written to, it would block; renamed over, it would vanish
    CHECK_THROWS_WITH_AS(save_checkpoint(saved, dir.path(), config, proj_names()),
                         (path + ": is a FIFO (named pipe), not a regular file; refusing to write over it").c_str(), IoError);
    CHECK(files_in(dir.path()) == std::vector<std::string>{taken});  // nothing written beside it
    std::filesystem::remove(path);
    std::filesystem::create_directory(path);
    CHECK_THROWS_WITH_AS(save_checkpoint(saved, dir.path(), config, proj_names()),
                         (path + ": is a directory, not a regular file; refusing to write over it").c_str(), IoError);
    CHECK(files_in(dir.path()) == std::vector<std::string>{taken});
  }
  // The weights fail half-way (the file size limit below their size): no config.json, so the directory is never
  // taken for a model, and no temporary is left.
  TempDir dir;
  std::string message;
  {  // the write then fails with EFBIG
    FileSizeLimit limit(64);
    REQUIRE(limit.ok());
    try {
      save_checkpoint(saved, dir.path(), config, proj_names());
    } catch (const IoError& e) {
      message = e.what();
    }
  }
  CHECK(message == dir.path() + "/model.safetensors: cannot write: " + std::strerror(EFBIG));
  CHECK(files_in(dir.path()).empty());
  // Saved whole, both files are there and nothing else.
  save_checkpoint(saved, dir.path(), config, proj_names());
  CHECK(files_in(dir.path()) == std::vector<std::string>{"config.json", "model.safetensors"});
}

#ifndef EIGENFORMER_TEST_UNDER_ASAN  // AddressSanitizer reserves terabytes of address space and aborts on a failed allocation
TEST_CASE("load_checkpoint: a model that passes every check but cannot be allocated says what it needs (issue 13)") {
  // A Linear of 16384 x 16384 needs 1 GiB as float. Its file holds U8 values (one byte each, so the file can hold
  // them): 256 MiB, made sparse by resize_file, nothing written. A child process limits its address space to what it
  // maps already (the file too) plus 256 MiB, and loads: the weight's allocation fails, as it would on a machine
  // without the memory. It was a bare std::bad_alloc.
  const Index n = 16384;
  const std::uint64_t values = static_cast<std::uint64_t>(n * n + n);
  TempDir dir;
  const std::string path = dir.path() + "/model.safetensors";
  const nlohmann::json header = {{"proj.weight", {{"dtype", "U8"}, {"shape", {n, n}}, {"data_offsets", {0, n * n}}}},
                                 {"proj.bias", {{"dtype", "U8"}, {"shape", {n}}, {"data_offsets", {n * n, n * n + n}}}}};
  const std::string text = header.dump();
  std::string head(8, '\0');
  for (int i = 0; i < 8; ++i) head[static_cast<std::size_t>(i)] = static_cast<char>((text.size() >> (8 * i)) & 0xff);
  eigenformer::testing::write_text_file(path, head + text);
  std::filesystem::resize_file(path, 8 + text.size() + values);
  const SafeTensors file = open_checkpoint(dir.path());
  CheckpointModel info;
  info.values = values;
  info.sizes = "in_features 16384 and out_features 16384";
  info.name = "Proj as float";
  info.memory.weight_bytes = values * sizeof(float);
  info.memory.batch = info.memory.context = 1;

  const std::string result = eigenformer::testing::run_with_address_limit(std::size_t(256) << 20, [&] {
    try {
      load_checkpoint<Linear<float>>(dir.path(), dir.path() + "/config.json", LinearConfig{n, n}, file, info, proj_names(), ModelLoadOptions{});
      return std::string("loaded");
    } catch (const OutOfMemoryError& e) {
      return std::string("OutOfMemoryError: ") + e.what();
    }
  });
  CHECK(result == "OutOfMemoryError: " + dir.path() + ": out of memory loading Proj as float, which needs 1.0 GiB (" + std::to_string(values * 4) + " bytes): 1.0 GiB (" +
                      std::to_string(values * 4) + " bytes) of weights and 0 bytes of KV cache (batch 1 x 1 positions)");
}
#endif
