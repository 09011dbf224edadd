// inspect/recorder.hpp: an observer (inspect/observer.hpp) that keeps a copy of every tensor it is shown, by name,
// and writes them all to one safetensors file that any safetensors reader loads (numpy, PyTorch; names and shapes
// in docs/inspect.md):
//   Recorder<float> r({Probe::attention_weights, Probe::logits});
//   model.forward(ids, {}, &r);
//   r.at("h.0.attn.weights");   // [B, H, T, T]
//   r.save("activations.safetensors");
// A name recorded twice (a second forward) replaces the first; clear() starts over.
#pragma once

#include <initializer_list>
#include <map>
#include <string>
#include <vector>

#include "eigenformer/core/error.hpp"
#include "eigenformer/core/tensor.hpp"
#include "eigenformer/inspect/observer.hpp"
#include "eigenformer/io/safetensors.hpp"

namespace eigenformer {

template <typename Scalar>
class Recorder : public Observer<Scalar> {
 public:
  // Every kind of tensor.
  Recorder() : Recorder({Probe::attention_weights, Probe::attention_scores, Probe::qkv, Probe::residual, Probe::mlp, Probe::logits}) {}
  explicit Recorder(std::initializer_list<Probe> probes) : probes_(probes) {}

  bool wants(Probe probe) const override {
    for (Probe p : probes_)
      if (p == probe) return true;
    return false;
  }
  void record(const Site& site, Probe, TensorView<const Scalar> value) override {
    const std::string name = site.name();
    if (!tensors_.count(name)) order_.push_back(name);
    tensors_[name] = Tensor<Scalar>::copy_of(value);
  }

  bool contains(const std::string& name) const { return tensors_.count(name) != 0; }
  const Tensor<Scalar>& at(const std::string& name) const {
    const auto it = tensors_.find(name);
    if (it == tensors_.end())
      throw RangeError("Recorder.at: nothing was recorded as " + quote(name) + " (" + std::to_string(order_.size()) + " tensors recorded)");
    return it->second;
  }
  // The names in the order they were first recorded (the order of the forward pass).
  const std::vector<std::string>& names() const { return order_; }
  void clear() {
    tensors_.clear();
    order_.clear();
  }

  // All of them into one safetensors file, stored as `dtype` (F32 by default; F16 or BF16 halve the file), with
  // `metadata` (the prompt's tokens, say) in its header.
  void save(const std::string& path, DType dtype = DType::F32, const std::map<std::string, std::string>& metadata = {}) const {
    SafeTensorsWriter writer;
    for (const std::string& name : order_) writer.add<Scalar>(name, tensors_.at(name).view(), dtype);
    for (const auto& [key, value] : metadata) writer.set_metadata(key, value);
    writer.write(path);
  }

 private:
  std::vector<Probe> probes_;
  std::map<std::string, Tensor<Scalar>> tensors_;
  std::vector<std::string> order_;
};

}  // namespace eigenformer
