// io/checkpoint.hpp: what save_checkpoint writes under an adapter's name table (renamed, transposed where it says,
// F32, with config.json) load_checkpoint reads back; the size and budget checks come before the model is built.
#include "eigenformer/io/checkpoint.hpp"

#include <doctest/doctest.h>

#include <string>

#include "eigenformer/core/json.hpp"
#include "eigenformer/core/random.hpp"
#include "eigenformer/nn/linear.hpp"
#include "support/temp_file.hpp"

using namespace eigenformer;
using eigenformer::testing::TempDir;

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
