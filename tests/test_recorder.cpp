// inspect/recorder.hpp: the Recorder keeps what it is shown under the site's name, in forward order, and saves it to
// a safetensors file whose tensors a reader gets back unchanged (F32), or rounded as F16; metadata goes into the header.
// The dumped logits are the model's logits.
#include "eigenformer/inspect/recorder.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "eigenformer/io/hf_gpt2.hpp"
#include "eigenformer/io/safetensors.hpp"
#include "eigenformer/models/gpt2.hpp"
#include "support/gpt2_fixture.hpp"
#include "support/temp_file.hpp"

using namespace eigenformer;
using namespace eigenformer::testing;

TEST_CASE("Recorder: a GPT-2 forward saved and read back: every tensor, the logits equal to the model's, and the metadata") {
  const GPT2<float> model = load_gpt2<float>(gpt2_fixture_dir("odd_shape"));
  const GPT2Reference ref("odd_shape");
  const Tensor<std::int64_t> ids = ref.file.get<std::int64_t>("input.prompt_ids");
  Recorder<float> recorder;
  const Tensor<float> logits = model.forward(ids, ref.left_pads(), &recorder);

  TempDir dir;
  const std::string path = dir.path() + "/activations.safetensors";
  recorder.save(path, DType::F32, {{"tokens", "a b c"}});
  const SafeTensors file(path);
  CHECK(file.metadata().at("tokens") == "a b c");
  CHECK(file.names().size() == recorder.names().size());
  for (const std::string& name : recorder.names()) {
    CAPTURE(name);
    const Tensor<float> back = file.get<float>(name);
    CHECK(back.shape() == recorder.at(name).shape());
    CHECK(back.vector() == recorder.at(name).vector());
  }
  const Tensor<float> dumped = file.get<float>("logits");
  CHECK(dumped.shape() == logits.shape());
  CHECK(dumped.vector() == logits.vector());

  recorder.save(path, DType::F16);
  const SafeTensors half(path);
  CHECK(half.info("logits").dtype == DType::F16);
  const Tensor<float> rounded = half.get<float>("logits");
  for (Index i = 0; i < logits.size(); ++i) CHECK(rounded.data()[i] == static_cast<float>(Eigen::half(logits.data()[i])));
}

TEST_CASE("Recorder: only the probes asked for; a second forward replaces the first; unknown names are named") {
  const GPT2<float> model = load_gpt2<float>(gpt2_fixture_dir("one_layer_one_head"));
  Tensor<std::int64_t> ids(Shape{1, 3});
  ids.data()[0] = 1, ids.data()[1] = 2, ids.data()[2] = 3;
  Recorder<float> recorder({Probe::logits, Probe::mlp});
  model.forward(ids, {}, &recorder);
  CHECK(recorder.names() == std::vector<std::string>{"h.0.mlp.hidden", "logits"});
  Tensor<std::int64_t> longer(Shape{1, 4});
  model.forward(longer, {}, &recorder);
  CHECK(recorder.names().size() == 2);
  CHECK(recorder.at("logits").dim(1) == 4);
  CHECK_THROWS_WITH_AS(recorder.at("h.0.attn.weights"), "Recorder.at: nothing was recorded as 'h.0.attn.weights' (2 tensors recorded)",
                       RangeError);
  recorder.clear();
  CHECK(recorder.names().empty());
}
