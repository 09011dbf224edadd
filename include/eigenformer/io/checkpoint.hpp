// io/checkpoint.hpp: the one load/save routine behind every checkpoint adapter (io/hf_gpt2.hpp for Hugging Face
// GPT-2, io/pytorch_transformer.hpp for PyTorch's translation tutorial). A checkpoint is a directory holding
// config.json and model.safetensors; an adapter supplies only what is its own: reading its config, its name table
// (LoadOptions: prefix, rename, transposed, ignore) and any tensor beyond the parameters.
// Loading checks, before the model is allocated, that the file could hold the values the config describes
// (FormatError) and that weights plus KV cache fit the caller's memory budget (RangeError); then every missing,
// unexpected and wrong-shape tensor is reported in one FormatError naming the file (io/parameters.hpp), and the first
// NaN or infinite value in a RangeError naming its tensor. If the model still cannot be allocated, OutOfMemoryError
// says what it needs.
// Saving writes every parameter under its file name, transposed where the table says, in F32, then config.json.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <type_traits>

#include "eigenformer/core/error.hpp"
#include "eigenformer/core/output_file.hpp"
#include "eigenformer/core/tensor.hpp"
#include "eigenformer/io/memory_budget.hpp"
#include "eigenformer/io/parameters.hpp"
#include "eigenformer/io/safetensors.hpp"

namespace eigenformer {

// What an adapter tells load_checkpoint about the model a config describes.
struct CheckpointModel {
  std::uint64_t values = 0;  // parameters and fixed tables of the built model
  std::string sizes;         // the config's sizes in words, for the message when the file cannot hold them
  MemoryEstimate memory;     // weights and KV cache, for the budget
  std::string name;          // "GPT-2 as float", for the budget's message
};

// DIR/model.safetensors, opened so that each tensor's pages are released once read: peak memory is the model, not
// model + file.
inline SafeTensors open_checkpoint(const std::string& dir) { return SafeTensors(dir + "/model.safetensors", /*release_after_read=*/true); }

// Builds Model(config) from `file` (see the top of this file). config_path names the config in messages.
template <typename Model, typename Config>
Model load_checkpoint(const std::string& dir, const std::string& config_path, const Config& config, const SafeTensors& file,
                      const CheckpointModel& model_info, const LoadOptions& names, const ModelLoadOptions& load) {
  detail::check_file_can_hold(file, model_info.values, config_path, model_info.sizes);
  check_memory_budget(model_info.memory, load, dir, model_info.name);
  // A model that passed both checks may still not fit the memory the system gives: say how much it needs.
  return with_memory_estimate(model_info.memory, dir, "loading " + model_info.name, [&] {
    Model model(config);
    load_parameters(model, file, names);
    return model;
  });
}

// Writes DIR/model.safetensors, then DIR/config.json: every parameter as names.rename gives it (transposed where
// names.transposed says), in F32, and whatever `extra` adds. DIR must exist. Both paths are checked first (a
// directory, FIFO or device there is refused by name before anything is written), each file is written to a
// temporary and renamed (core/output_file.hpp), and config.json comes last: a new directory whose saving failed
// half-way holds no config.json, so it is never taken for a model, and no file is ever half written.
template <typename Model>
void save_checkpoint(Model& model, const std::string& dir, const nlohmann::json& config, const LoadOptions& names,
                     const std::function<void(SafeTensorsWriter&)>& extra = {}, DType dtype = DType::F32) {
  const std::string config_path = dir + "/config.json", weights_path = dir + "/model.safetensors";
  check_output_path(weights_path);
  check_output_path(config_path);
  SafeTensorsWriter writer;
  model.visit_parameters([&](const std::string& name, auto& t) {
    const std::string in_file = detail::file_name_of(name, names);
    if (!(names.transposed && names.transposed(name))) {
      writer.add(in_file, t, dtype);
      return;
    }
    std::remove_reference_t<decltype(t)> stored(Shape{t.dim(1), t.dim(0)});  // stored [in, out]
    stored.matrix() = t.matrix().transpose();
    writer.add(in_file, stored, dtype);
  });
  if (extra) extra(writer);
  writer.write(weights_path);
  write_file_atomically(config_path, config.dump(2) + "\n");
}

}  // namespace eigenformer
