// save_training_checkpoint / load_training_checkpoint (train/train_checkpoint.hpp): a run resumed from a checkpoint
// is bit-identical to the run that never stopped (parameters, AdamW's state, the generator's next draws); a real
// Transformer round-trips; a truncated, damaged or mismatched file is refused naming the file and what is wrong,
// with nothing changed; a failed save leaves the checkpoint already there as it was.
#include "eigenformer/train/train_checkpoint.hpp"

#include <doctest/doctest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "eigenformer/core/random.hpp"
#include "eigenformer/io/parameters.hpp"
#include "eigenformer/io/safetensors.hpp"
#include "eigenformer/models/transformer.hpp"
#include "eigenformer/train/adamw.hpp"
#include "eigenformer/train/clip.hpp"
#include "eigenformer/train/gradients.hpp"
#include "eigenformer/train/schedule.hpp"
#include "support/temp_file.hpp"
#include "support/toy_model.hpp"

using namespace eigenformer;
using namespace eigenformer::testing;

namespace {

AdamWOptions run_options() {
  AdamWOptions o;
  o.beta1 = 0.9, o.beta2 = 0.95, o.weight_decay = 0.1;
  return o;
}
const WarmupCosineSchedule schedule{0.05, 0.005, 3, 10};  // peak, floor, warmup steps, end step

// One training run of the toy model: loss = 0.5 * sum (p - 0.3)^2 over every parameter element, whose gradient
// p - 0.3 gets Gaussian noise drawn from the run's generator (39 elements: an odd count of normals a step, so a
// checkpoint may fall with Box-Muller's spare pending).
struct Run {
  ToyModel<double> model;
  AdamW<double> adamw{run_options()};
  Random rng;
  Run(std::uint64_t init_seed, std::uint64_t rng_seed) : rng(rng_seed) {
    Random init(init_seed);
    model.visit_parameters([&](const std::string&, Tensor<double>& p) { fill_normal(p.view(), init); });
    allocate_gradients(model);
  }
  void train(std::int64_t from_step, std::int64_t to_step) {
    for (std::int64_t step = from_step + 1; step <= to_step; ++step) {
      zero_gradients(model);
      model.visit_parameters([&](const std::string&, Tensor<double>& p, Tensor<double>& g) {
        for (Index i = 0; i < p.size(); ++i) g[i] += (p[i] - 0.3) + 0.5 * rng.normal();
      });
      clip_gradient_norm(model, 1.0);
      adamw.step(model, schedule.lr(step));
    }
  }
};

bool same_bits(const Tensor<double>& a, const Tensor<double>& b) {
  return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), static_cast<std::size_t>(a.size()) * sizeof(double)) == 0;
}

std::vector<Tensor<double>> parameters_of(ToyModel<double>& m) {
  std::vector<Tensor<double>> out;
  m.visit_parameters([&](const std::string&, Tensor<double>& p) { out.push_back(p); });
  return out;
}

// Every tensor and metadata entry of a checkpoint, to be edited and written again (as a damaged file would be).
struct Contents {
  std::map<std::string, Tensor<double>> tensors;
  std::map<std::string, std::string> metadata;
  explicit Contents(const std::string& path) {
    const SafeTensors file(path);
    for (const std::string& name : file.names()) tensors.emplace(name, file.get<double>(name));
    metadata = file.metadata();
  }
  void write(const std::string& path) const {
    SafeTensorsWriter w;
    for (const auto& [name, t] : tensors) w.add(name, t);
    for (const auto& [k, v] : metadata) w.set_metadata(k, v);
    w.write(path);
  }
};

}  // namespace

TEST_CASE("training checkpoint: N steps straight equal N/2 steps, save, load into fresh objects, N/2 more, bit for bit") {
  const std::int64_t N = 10;
  Run straight(1, 2);
  straight.train(0, N);
  Run untrained(1, 2);
  CHECK_FALSE(same_bits(parameters_of(straight.model)[0], parameters_of(untrained.model)[0]));  // it did train

  for (std::int64_t split : {std::int64_t(0), std::int64_t(3), N / 2}) {
    CAPTURE(split);
    TempDir dir;
    const std::string path = dir.path() + "/run.safetensors";
    {
      Run first(1, 2);
      first.train(0, split);
      TrainingProgress progress;
      progress.step = split;
      progress.info = {{"data.position", std::to_string(split * 16)}, {"settings", "{\"lr\": 0.05}"}};
      save_training_checkpoint(path, first.model, first.adamw, first.rng, progress);
    }
    Run resumed(99, 777);  // other weights, another seed: all that matches must come from the file
    const TrainingProgress progress = load_training_checkpoint(path, resumed.model, resumed.adamw, resumed.rng);
    CHECK(progress.step == split);
    CHECK(progress.info == std::map<std::string, std::string>{{"data.position", std::to_string(split * 16)}, {"settings", "{\"lr\": 0.05}"}});
    CHECK(resumed.adamw.step_count() == split);
    resumed.train(progress.step, N);

    const std::vector<Tensor<double>> a = parameters_of(straight.model), b = parameters_of(resumed.model);
    for (std::size_t i = 0; i < a.size(); ++i) CHECK(same_bits(a[i], b[i]));
    std::vector<Tensor<double>> state_a, state_b;
    straight.adamw.visit_state([&](const std::string&, Tensor<double>& t) { state_a.push_back(t); });
    resumed.adamw.visit_state([&](const std::string&, Tensor<double>& t) { state_b.push_back(t); });
    REQUIRE(state_a.size() == 8);
    REQUIRE(state_b.size() == 8);
    for (std::size_t i = 0; i < state_a.size(); ++i) CHECK(same_bits(state_a[i], state_b[i]));
    CHECK(resumed.adamw.step_count() == straight.adamw.step_count());
    Random next_a = straight.rng, next_b = resumed.rng;
    for (int i = 0; i < 5; ++i) {
      CHECK(next_a.normal() == next_b.normal());
      CHECK(next_a.next() == next_b.next());
    }
  }
}

TEST_CASE("training checkpoint: the parameters are under their own names, so load_parameters reads a model from it") {
  TempDir dir;
  const std::string path = dir.path() + "/run.safetensors";
  Run run(1, 2);
  run.train(0, 2);
  save_training_checkpoint(path, run.model, run.adamw, run.rng, TrainingProgress{2, {}});
  ToyModel<double> model;
  LoadOptions names;
  names.ignore = [](const std::string& name) { return name.compare(0, 6, "adamw.") == 0; };
  load_parameters(model, SafeTensors(path), names);
  CHECK(same_bits(model.weight, run.model.weight));
  CHECK(same_bits(model.embedding, run.model.embedding));
}

TEST_CASE("training checkpoint: a Transformer's parameters and AdamW state round-trip exactly") {
  TransformerConfig c;
  c.d_model = 8, c.num_heads = 2, c.num_encoder_layers = 1, c.num_decoder_layers = 1, c.d_ff = 16;
  c.src_vocab_size = 11, c.tgt_vocab_size = 13, c.max_len = 20;
  Transformer<double> model(c);
  Random init(5);
  model.visit_parameters([&](const std::string&, Tensor<double>& p) { fill_normal(p.view(), init, 0.0, 0.1); });
  allocate_gradients(model);
  model.visit_parameters([&](const std::string&, Tensor<double>&, Tensor<double>& g) { fill_normal(g.view(), init); });
  AdamW<double> adamw;
  adamw.step(model, 1e-3);
  TempDir dir;
  const std::string path = dir.path() + "/transformer.safetensors";
  Random rng(8);
  save_training_checkpoint(path, model, adamw, rng, TrainingProgress{1, {}});

  Transformer<double> fresh(c);
  AdamW<double> fresh_adamw;
  Random fresh_rng(9);
  load_training_checkpoint(path, fresh, fresh_adamw, fresh_rng);
  std::vector<Tensor<double>> a, b;
  model.visit_parameters([&](const std::string&, Tensor<double>& p) { a.push_back(p); });
  fresh.visit_parameters([&](const std::string&, Tensor<double>& p) { b.push_back(p); });
  adamw.visit_state([&](const std::string&, Tensor<double>& t) { a.push_back(t); });
  fresh_adamw.visit_state([&](const std::string&, Tensor<double>& t) { b.push_back(t); });
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) CHECK(same_bits(a[i], b[i]));
  CHECK(fresh_adamw.step_count() == 1);
  CHECK(fresh_rng.next() == rng.next());
}

namespace {
// The toy model with linear.weight [3, 5]: another model's checkpoint.
struct WideToy {
  ToyModel<double> toy;
  WideToy() { toy.weight = Tensor<double>(Shape{3, 5}); }
  template <typename F>
  void visit_parameters(F&& f) {
    toy.visit_parameters(f);
  }
};
}  // namespace

TEST_CASE("training checkpoint: a truncated, damaged or mismatched file is refused naming the file and every problem; nothing changes") {
  TempDir dir;
  const std::string good = dir.path() + "/good.safetensors", bad = dir.path() + "/bad.safetensors";
  {
    Run run(1, 2);
    run.train(0, 3);
    save_training_checkpoint(good, run.model, run.adamw, run.rng, TrainingProgress{3, {{"data.position", "48"}}});
  }
  Run target(11, 12);
  const std::vector<Tensor<double>> before = parameters_of(target.model);
  const std::string bytes = read_text_file(good);
  const std::string p = detail::printable(bad);

  SUBCASE("truncated in the data: a tensor that runs past the end is named") {
    std::ofstream(bad, std::ios::binary) << bytes.substr(0, bytes.size() - 100);
    std::string message;
    try {
      load_training_checkpoint(bad, target.model, target.adamw, target.rng);
    } catch (const FormatError& e) {
      message = e.what();
    }
    CHECK(message.find(p + ": tensor '") == 0);
    CHECK(message.find("' ends at byte ") != std::string::npos);
    CHECK(message.find("past its end") != std::string::npos);
  }
  SUBCASE("truncated in the header") {
    std::ofstream(bad, std::ios::binary) << bytes.substr(0, 40);
    CHECK_THROWS_WITH_AS(load_training_checkpoint(bad, target.model, target.adamw, target.rng),
                         doctest::Contains((p + ": the header length is").c_str()), FormatError);
  }
  SUBCASE("one byte of a tensor's data changed: its checksum names it") {
    const SafeTensors file(good);
    std::uint64_t header = 0;
    std::memcpy(&header, bytes.data(), 8);
    std::string damaged = bytes;
    damaged[8 + header + file.info("linear.weight").begin + 5] ^= 0x10;
    std::ofstream(bad, std::ios::binary) << damaged;
    CHECK_THROWS_WITH_AS(load_training_checkpoint(bad, target.model, target.adamw, target.rng),
                         (p + ": 1 problem loading a training checkpoint: 'linear.weight' does not match its checksum: its data is damaged").c_str(),
                         FormatError);
  }
  SUBCASE("a missing tensor and an unexpected one") {
    Contents c(good);
    c.tensors.erase("adamw.v.norm.weight");
    c.tensors.emplace("lm_head.weight", Tensor<double>(Shape{2, 2}, 0.0));
    c.write(bad);
    CHECK_THROWS_WITH_AS(load_training_checkpoint(bad, target.model, target.adamw, target.rng),
                         (p + ": 2 problems loading a training checkpoint: missing 'adamw.v.norm.weight'; unexpected 'lm_head.weight'").c_str(),
                         FormatError);
  }
  SUBCASE("metadata fields missing or malformed") {
    Contents c(good);
    c.metadata.erase("step");
    c.metadata["rng.s2"] = "12x";
    c.metadata["rng.has_spare"] = "yes";
    c.write(bad);
    CHECK_THROWS_WITH_AS(load_training_checkpoint(bad, target.model, target.adamw, target.rng),
                         (p + ": 3 problems loading a training checkpoint: no metadata 'step'; metadata 'rng.s2' is '12x', expected an integer in "
                              "[0, 2^64); metadata 'rng.has_spare' is 'yes', expected 0 or 1")
                             .c_str(),
                         FormatError);
  }
  SUBCASE("a file of another version, or not a training checkpoint at all") {
    Contents c(good);
    c.metadata["format_version"] = "2";
    c.write(bad);
    CHECK_THROWS_WITH_AS(load_training_checkpoint(bad, target.model, target.adamw, target.rng),
                         (p + ": 1 problem loading a training checkpoint: format_version is '2'; this Eigenformer reads version 1").c_str(), FormatError);
    SafeTensorsWriter w;
    save_parameters(target.model, w);
    w.write(bad);
    CHECK_THROWS_WITH_AS(load_training_checkpoint(bad, target.model, target.adamw, target.rng),
                         (p + ": not a training checkpoint: its __metadata__ has no \"format\": \"eigenformer.training_checkpoint\" (a file of "
                              "parameters alone loads with load_parameters)")
                             .c_str(),
                         FormatError);
  }
  SUBCASE("another model's checkpoint: every wrong shape, in the parameters and in AdamW's state") {
    std::filesystem::copy_file(good, bad);
    WideToy wide;
    AdamW<double> adamw;
    Random rng(1);
    CHECK_THROWS_WITH_AS(load_training_checkpoint(bad, wide, adamw, rng),
                         (p + ": 3 problems loading a training checkpoint: 'linear.weight' is [3, 4], expected [3, 5]; 'adamw.m.linear.weight' is "
                              "[3, 4], expected [3, 5]; 'adamw.v.linear.weight' is [3, 4], expected [3, 5]")
                             .c_str(),
                         FormatError);
  }
  SUBCASE("a float run's checkpoint loaded into a double model: every dtype named") {
    ToyModel<float> model;
    AdamW<float> adamw;
    Random rng(1);
    save_training_checkpoint(bad, model, adamw, rng, TrainingProgress{});
    CHECK_THROWS_WITH_AS(load_training_checkpoint(bad, target.model, target.adamw, target.rng),
                         (p + ": 12 problems loading a training checkpoint: 'linear.weight' is F32, expected F64; 'linear.bias' is F32, expected F64; "
                              "'norm.weight' is F32, expected F64; 'embedding.weight' is F32, expected F64; 'adamw.m.linear.weight' is F32, "
                              "expected F64; 'adamw.v.linear.weight' is F32, expected F64; 'adamw.m.linear.bias' is F32, expected F64; "
                              "'adamw.v.linear.bias' is F32, expected F64; 'adamw.m.norm.weight' is F32, expected F64; 'adamw.v.norm.weight' is "
                              "F32, expected F64; and 2 more")
                             .c_str(),
                         FormatError);
  }
  const std::vector<Tensor<double>> after = parameters_of(target.model);
  for (std::size_t i = 0; i < before.size(); ++i) CHECK(same_bits(before[i], after[i]));
  CHECK(target.adamw.step_count() == 0);
  Random untouched(12);
  CHECK(target.rng.next() == untouched.next());
}

TEST_CASE("training checkpoint: NaN or inf in any tensor, a negative second moment, an absurd step count are refused by name (harden-c)") {
  // A checksum only says that the data is what was written; a file made or edited elsewhere, with its checksums
  // made to match, loaded such values and the next step spread them to every weight.
  TempDir dir;
  const std::string good = dir.path() + "/good.safetensors", bad = dir.path() + "/bad.safetensors";
  {
    Run run(1, 2);
    run.train(0, 3);
    save_training_checkpoint(good, run.model, run.adamw, run.rng, TrainingProgress{3, {}});
  }
  Run target(11, 12);
  const std::vector<Tensor<double>> before = parameters_of(target.model);
  const std::string p = detail::printable(bad);
  const std::string one = p + ": 1 problem loading a training checkpoint: ";
  const auto error = [&](const Contents& c) {
    c.write(bad);
    try {
      load_training_checkpoint(bad, target.model, target.adamw, target.rng);
    } catch (const FormatError& e) {
      return std::string(e.what());
    }
    return std::string("no FormatError");
  };
  // One value set in a tensor, its checksum made to match.
  const auto with_value = [&](const std::string& name, Index i, double value) {
    Contents c(good);
    c.tensors.at(name)[i] = value;
    c.metadata["checksum." + name] = detail::hex64(detail::tensor_checksum(c.tensors.at(name)));
    return c;
  };
  const std::vector<std::string> names = SafeTensors(good).names();
  REQUIRE(names.size() == 12);  // 4 parameters, their m and v
  for (const std::string& name : names) {
    CAPTURE(name);
    const Index last = SafeTensors(good).info(name).shape.numel() - 1;
    for (double value : {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity()})
      CHECK(error(with_value(name, last, value)) ==
            one + quote(name) + " element " + std::to_string(last) + " is " + detail::number_text(value) + "; expected a finite number");
    if (name.rfind("adamw.v.", 0) == 0)
      CHECK(error(with_value(name, 0, -0.5)) ==
            one + quote(name) + " element 0 is " + detail::number_text(-0.5) + "; a second moment (a mean of squared gradients) is never negative");
    else {  // a weight or a first moment may be negative (loaded into another run: target must stay untouched)
      with_value(name, 0, -0.5).write(bad);
      Run other(5, 6);
      CHECK_NOTHROW(load_training_checkpoint(bad, other.model, other.adamw, other.rng));
    }
  }
  // Step counts past 2^62: the run's next step + 1 (and AdamW's ++t) would overflow near 2^63.
  const std::string past = std::to_string((std::int64_t(1) << 62) + 1);
  for (const char* key : {"step", "adamw.step_count"}) {
    for (const std::string& value : {past, std::string("9223372036854775807")}) {
      CAPTURE(value);
      Contents c(good);
      c.metadata[key] = value;
      CHECK(error(c) == one + "metadata " + quote(key) + " is " + quote(value) + ", expected an integer from 0 to 2^62");
    }
  }
  {  // a pending normal draw that is not a number
    Contents c(good);
    c.metadata["rng.has_spare"] = "1";
    c.metadata["rng.spare"] = "7ff8000000000000";  // the bits of a quiet NaN
    CHECK(error(c) == one + "metadata 'rng.spare' is nan; expected a finite number");
  }
  {  // every problem in one message
    Contents c = with_value("linear.weight", 1, std::numeric_limits<double>::quiet_NaN());
    c.tensors.at("adamw.v.norm.weight")[0] = -1;
    c.metadata["checksum.adamw.v.norm.weight"] = detail::hex64(detail::tensor_checksum(c.tensors.at("adamw.v.norm.weight")));
    c.metadata["step"] = past;
    const std::string message = error(c);
    CHECK(message.rfind(p + ": 3 problems loading a training checkpoint: ", 0) == 0);
    CHECK(message.find("'linear.weight' element 1 is nan") != std::string::npos);
    CHECK(message.find("'adamw.v.norm.weight' element 0 is -1") != std::string::npos);
    CHECK(message.find("metadata 'step' is '" + past + "'") != std::string::npos);
  }
  const std::vector<Tensor<double>> after = parameters_of(target.model);
  for (std::size_t i = 0; i < before.size(); ++i) CHECK(same_bits(before[i], after[i]));
  CHECK(target.adamw.step_count() == 0);
  {  // 2^62 itself is a count: loaded
    Contents c(good);
    c.metadata["step"] = c.metadata["adamw.step_count"] = std::to_string(std::int64_t(1) << 62);
    c.write(bad);
    CHECK(load_training_checkpoint(bad, target.model, target.adamw, target.rng).step == std::int64_t(1) << 62);
    CHECK(target.adamw.step_count() == std::int64_t(1) << 62);
  }
  CHECK_THROWS_AS(target.adamw.set_step_count((std::int64_t(1) << 62) + 1), RangeError);
}

TEST_CASE("training checkpoint: a failed save leaves the checkpoint already there as it was, and no temporary file") {
  TempDir dir;
  const std::string path = dir.path() + "/run.safetensors";
  Run run(1, 2);
  run.train(0, 2);
  save_training_checkpoint(path, run.model, run.adamw, run.rng, TrainingProgress{2, {}});
  const std::string saved = read_text_file(path);
  run.train(2, 3);  // the next save would hold other values

  SUBCASE("a parameter that is not finite is refused by name") {
    run.model.norm_weight[2] = NAN;
    CHECK_THROWS_WITH_AS(save_training_checkpoint(path, run.model, run.adamw, run.rng, TrainingProgress{3, {}}),
                         (detail::printable(path) + ": training checkpoint not saved: 'norm.weight' holds nan at element 2; values that are not "
                                                    "finite are refused")
                             .c_str(),
                         RangeError);
  }
  SUBCASE("the write fails part way (the file size limit set to half the checkpoint's size)") {
    std::string message;
    {  // the write then fails with EFBIG
      FileSizeLimit limit(saved.size() / 2);
      REQUIRE(limit.ok());
      try {
        save_training_checkpoint(path, run.model, run.adamw, run.rng, TrainingProgress{3, {}});
      } catch (const IoError& e) {
        message = e.what();
      }
    }
    CHECK(message.find(detail::printable(path) + ": training checkpoint not saved (a file already there is unchanged): ") == 0);
    CHECK(message.find("File too large") != std::string::npos);
  }
  SUBCASE("the directory is read-only") {
    ::chmod(dir.path().c_str(), 0555);
    if (::access(dir.path().c_str(), W_OK) == 0) {
      MESSAGE("skipped: this user writes into read-only directories (root)");
    } else {
      CHECK_THROWS_WITH_AS(save_training_checkpoint(path, run.model, run.adamw, run.rng, TrainingProgress{3, {}}),
                           doctest::Contains("training checkpoint not saved (a file already there is unchanged)"), IoError);
    }
    ::chmod(dir.path().c_str(), 0755);
  }
  CHECK(read_text_file(path) == saved);
  CHECK(files_in(dir.path()) == std::vector<std::string>{"run.safetensors"});
}

TEST_CASE("training checkpoint: a directory or FIFO where the checkpoint goes is refused by name before anything is copied (harden-c)") {
  TempDir dir;
  Run run(1, 2);
  run.train(0, 1);
  const std::string fifo = dir.path() + "/fifo.safetensors";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);  // renamed over, the FIFO would vanish; written, it would block
  CHECK_THROWS_WITH_AS(save_training_checkpoint(fifo, run.model, run.adamw, run.rng, TrainingProgress{1, {}}),
                       (fifo + ": is a FIFO (named pipe), not a regular file; refusing to write over it").c_str(), IoError);
  std::filesystem::create_directory(dir.path() + "/sub");
  CHECK_THROWS_WITH_AS(save_training_checkpoint(dir.path() + "/sub", run.model, run.adamw, run.rng, TrainingProgress{1, {}}),
                       (dir.path() + "/sub: is a directory, not a regular file; refusing to write over it").c_str(), IoError);
  CHECK(files_in(dir.path()) == std::vector<std::string>{"fifo.safetensors", "sub"});
}
