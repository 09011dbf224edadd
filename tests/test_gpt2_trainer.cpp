// examples/gpt2/gpt2_trainer.hpp, the `gpt2 train` subcommand (issue 16).
//
// First, against PyTorch: three full training steps of a tiny GPT-2 (2 layers, 2 heads, width 16,
// 16 positions, vocabulary 50, lm_head tied to wte) from tests/fixtures/gpt2_train/, which
// tools/make_gpt2_train_fixture.py writes with PyTorch 1.13 in float64. Each step: zero_gradients, the training forward,
// mean cross-entropy over all B*T positions, backward, clip_gradient_norm (max_norm 1; only step 2's norm is above
// it), WarmupCosineSchedule's rate, AdamW (betas 0.9, 0.95, decay 0.1 on rank >= 2 only). Checked: each step's loss,
// gradient norm and rate, then every parameter after the last step, under its Hugging Face name and layout. The step
// is gpt2_train::train_step, the one `gpt2 train` runs.
//
// Then the run itself on a few KB of generated text: the split, the baselines, the batches, a run that learns and
// saves a directory gpt2 loads, resume, refusals, and --init.
#include "gpt2/gpt2_trainer.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <type_traits>
#include <vector>

#include "eigenformer/io/hf_gpt2.hpp"
#include "eigenformer/train/adamw.hpp"
#include "eigenformer/train/clip.hpp"
#include "eigenformer/train/cross_entropy.hpp"
#include "eigenformer/train/gradients.hpp"
#include "eigenformer/train/schedule.hpp"
#include "support/fixtures.hpp"
#include "support/gpt2_tokenizer.hpp"
#include "support/temp_file.hpp"
#include "train_files.hpp"

using namespace eigenformer;
using namespace eigenformer::testing;

namespace {

struct StepResult {
  double loss, grad_norm, lr;
};

// The fixture's steps on `model`, every setting read from the fixture's metadata.
template <typename Scalar>
std::vector<StepResult> run_fixture_steps(GPT2<Scalar>& model, const Fixture& ref) {
  WarmupCosineSchedule schedule;
  schedule.peak_lr = ref.meta_double("peak_lr");
  schedule.min_lr = ref.meta_double("min_lr");
  schedule.warmup_steps = ref.meta_int("warmup_steps");
  schedule.end_step = ref.meta_int("end_step");
  AdamWOptions options;
  options.beta1 = ref.meta_double("beta1");
  options.beta2 = ref.meta_double("beta2");
  options.eps = ref.meta_double("eps");
  options.weight_decay = ref.meta_double("weight_decay");  // options.decay empty: tensors of rank >= 2, as the fixture
  AdamW<Scalar> adamw(options);
  const double max_norm = ref.meta_double("max_norm");

  const Tensor<std::int64_t> ids = ref.input<std::int64_t>("ids");  // [steps, B, T + 1]
  const Index steps = ids.dim(0), B = ids.dim(1), T = ids.dim(2) - 1;
  allocate_gradients(model);
  std::vector<StepResult> results;
  GPT2Activations<Scalar> saved;
  Tensor<Scalar> dlogits;
  for (Index s = 0; s < steps; ++s) {
    // inputs = ids[:, :-1], targets = ids[:, 1:]
    Tensor<std::int64_t> inputs({B, T}), targets({B, T});
    for (Index b = 0; b < B; ++b)
      for (Index t = 0; t < T; ++t) inputs.at(b, t) = ids.at(s, b, t), targets.at(b, t) = ids.at(s, b, t + 1);
    const double lr = schedule.lr(s + 1);  // steps count from 1
    const gpt2_train::StepResult r = gpt2_train::train_step(model, adamw, inputs, targets, lr, max_norm, saved, dlogits);
    results.push_back({r.loss, r.grad_norm, lr});
  }
  return results;
}

double relative_error(double actual, double expected) { return std::abs(actual - expected) / std::abs(expected); }

// Measured on this fixture (2-core x86-64, OpenMP): double, loss and norm 6e-16, rates equal, parameters 4.5e-14 (of
// their tensor's largest value); float, loss 5.3e-9, norm 5.6e-8, parameters 1.7e-5. Parameters are looser than the
// losses because AdamW's first steps divide each gradient by its own size (plus eps 1e-8): an element whose gradient
// is rounding noise - the key biases', zero in exact arithmetic - moves by up to lr times the noise over eps, so the
// noise of two different summation orders shows in the parameter (float: 4.7e-6 absolute in h.0's key bias).
struct Tolerances {
  double loss, grad_norm, lr, parameters;
};
template <typename Scalar>
Tolerances step_tolerances() {
  if (std::is_same_v<Scalar, double>) return {1e-12, 1e-12, 1e-14, 1e-11};
  return {1e-6, 1e-5, 1e-14, 1e-3};  // the rate is computed in double whatever Scalar is
}

}  // namespace

TEST_CASE_TEMPLATE("GPT2 training step: three steps (cross-entropy, backward, clipping, warmup + cosine rate, AdamW) give PyTorch's "
                   "losses, gradient norms, rates and final parameters",
                   Scalar, float, double) {
  const Tolerances tol = step_tolerances<Scalar>();
  const Fixture ref("gpt2_train/reference");  // tests/fixtures/gpt2_train/reference.safetensors
  GPT2<Scalar> model = load_gpt2<Scalar>(std::string(EIGENFORMER_FIXTURE_DIR) + "/gpt2_train");
  const std::vector<StepResult> got = run_fixture_steps(model, ref);

  const Tensor<double> loss = ref.output<double>("loss"), grad_norm = ref.output<double>("grad_norm"), lr = ref.output<double>("lr");
  REQUIRE(static_cast<Index>(got.size()) == loss.size());
  for (Index s = 0; s < loss.size(); ++s) {
    const StepResult& r = got[static_cast<std::size_t>(s)];
    CAPTURE(s + 1);
    CHECK(relative_error(r.loss, loss[s]) <= tol.loss);
    CHECK(relative_error(r.grad_norm, grad_norm[s]) <= tol.grad_norm);
    CHECK(relative_error(r.lr, lr[s]) <= tol.lr);
  }

  // Every parameter after the last step, against PyTorch's under the Hugging Face name (Conv1D weights [in, out]).
  std::set<std::string> expected_names, compared;
  for (const std::string& name : ref.file().names())
    if (name.rfind("after.", 0) == 0) expected_names.insert(name.substr(6));
  model.visit_parameters([&](const std::string& ours, Tensor<Scalar>& value) {
    const std::string hf = hf_gpt2_name(ours);
    INFO(ours << " (" << hf << ")");
    REQUIRE(expected_names.count(hf) == 1);
    compared.insert(hf);
    Eigen::MatrixXd expected = ref.file().get<double>("after." + hf).matrix();
    if (hf_gpt2_transposed(ours)) expected.transposeInPlace();
    REQUIRE(expected.rows() == value.matrix().rows());
    REQUIRE(expected.cols() == value.matrix().cols());
    const Eigen::MatrixXd actual = value.matrix().template cast<double>();
    const double error = (actual - expected).cwiseAbs().maxCoeff() / expected.cwiseAbs().maxCoeff();
    CHECK(error <= tol.parameters);
  });
  CHECK(compared == expected_names);
}

namespace {
// A few KB of English-like text with a repeating structure a tiny model learns fast.
std::string small_text() {
  const char* subjects[] = {"the whale", "the captain", "a sailor", "the ship", "the mate"};
  const char* verbs[] = {"sees", "follows", "leaves", "finds", "hears"};
  const char* objects[] = {"the sea.", "the boat.", "a storm.", "the harbour.", "the crew."};
  std::string text;
  for (int i = 0; i < 400; ++i) {
    text += std::string(subjects[i % 5]) + " " + verbs[(i / 5) % 5] + " " + objects[(i / 25) % 5];
    text += (i % 7 == 6) ? "\n" : " ";
  }
  return text;
}

gpt2_train::Settings tiny_settings() {
  gpt2_train::Settings s;
  s.n_layer = 1, s.n_head = 2, s.n_embd = 16, s.context = 16, s.vocab_size = 300;
  s.batch_size = 4, s.steps = 8, s.warmup = 2, s.lr = 1e-2, s.min_lr = 1e-3;
  s.max_val_tokens = 64;
  return s;
}

gpt2_train::RunOptions tiny_run(const TempDir& dir, const std::string& out) {
  gpt2_train::RunOptions run;
  run.text = dir.path() + "/text.txt";
  if (!std::filesystem::exists(run.text)) write_text_file(run.text, small_text());
  run.output = dir.path() + "/" + out;
  run.checkpoint_every = 0, run.eval_every = 4;
  return run;
}
}  // namespace

TEST_CASE("gpt2 train: the text splits after a line break at 1 - val_fraction, never inside a character; the parts make the text") {
  const std::string text = "one two\nthree four\nfive six\nseven\n";
  const gpt2_train::TextSplit a = gpt2_train::split_text(text, 0.5);
  CHECK(std::string(a.train) + std::string(a.validation) == text);
  CHECK(a.train.size() >= text.size() / 2);
  CHECK(a.train.back() == '\n');
  CHECK(a.train.substr(0, a.train.size() - 1).find('\n', text.size() / 2) == std::string_view::npos);
  // No line break after the cut: the cut moves back to the start of a character ("é" is two bytes).
  const std::string accents = "\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9";
  for (double f : {0.1, 0.3, 0.5, 0.7}) {
    const gpt2_train::TextSplit b = gpt2_train::split_text(accents, f);
    CHECK(b.train.size() % 2 == 0);
    CHECK(std::string(b.train) + std::string(b.validation) == accents);
  }
}

TEST_CASE("gpt2 train: --text must be a non-empty UTF-8 text without NUL bytes; each refusal names the file") {
  TempDir dir;
  const std::string empty = dir.path() + "/empty.txt", binary = dir.path() + "/binary.bin", nul = dir.path() + "/nul.txt";
  write_text_file(empty, "");
  write_text_file(binary, std::string("\x7F" "ELF\x02\x01\x01\xFF\xFE", 9));
  write_text_file(nul, std::string("text\0more", 9));
  CHECK_THROWS_WITH_AS(gpt2_train::read_text(empty), doctest::Contains("empty.txt: the file is empty"), FormatError);
  CHECK_THROWS_WITH_AS(gpt2_train::read_text(binary), doctest::Contains("binary.bin: not UTF-8 text"), FormatError);
  CHECK_THROWS_WITH_AS(gpt2_train::read_text(nul), doctest::Contains("nul.txt: byte 4 is NUL"), FormatError);
  CHECK_THROWS_AS(gpt2_train::read_text(dir.path()), IoError);
  const std::string good = dir.path() + "/good.txt";
  write_text_file(good, "Call me Ishmael.\n\xC3\xA9t\xC3\xA9\n");
  CHECK(gpt2_train::read_text(good) == "Call me Ishmael.\n\xC3\xA9t\xC3\xA9\n");
}

TEST_CASE("gpt2 train: the unigram and bigram baselines are the formulas of the header, recomputed here by brute force") {
  const std::vector<std::int64_t> train = {0, 1, 2, 0, 1, 0, 2, 2, 1};
  const std::vector<std::pair<std::int64_t, std::int64_t>> pairs = {{0, 1}, {1, 2}, {2, 3}, {3, 0}, {0, 0}};
  const Index V = 4;
  double uni = 0, bi = 0;
  for (const auto& [u, w] : pairs) {
    double cw = 0, cu = 0, cuw = 0;
    std::set<std::int64_t> after;
    for (std::size_t i = 0; i < train.size(); ++i) {
      cw += train[i] == w;
      if (i + 1 < train.size() && train[i] == u) cu += 1, cuw += train[i + 1] == w, after.insert(train[i + 1]);
    }
    const double p = (cw + 1) / (double(train.size()) + double(V));
    uni -= std::log(p);
    bi -= std::log(cu > 0 ? std::max(cuw - 0.75, 0.0) / cu + 0.75 * double(after.size()) / cu * p : p);
  }
  const gpt2_train::Baselines b = gpt2_train::ngram_baselines(train, pairs, V);
  CHECK(b.unigram == doctest::Approx(uni / double(pairs.size())).epsilon(1e-12));
  CHECK(b.bigram == doctest::Approx(bi / double(pairs.size())).epsilon(1e-12));
}

TEST_CASE("gpt2 train: a step's windows depend on (seed, step) alone; targets are the inputs moved one token on") {
  std::vector<std::int64_t> tokens(500);
  for (std::size_t i = 0; i < tokens.size(); ++i) tokens[i] = std::int64_t(i);
  Tensor<std::int64_t> in1, tg1, in2, tg2, in3, tg3;
  gpt2_train::make_batch(tokens, 3, 8, 7, 5, in1, tg1);
  gpt2_train::make_batch(tokens, 3, 8, 7, 5, in2, tg2);
  gpt2_train::make_batch(tokens, 3, 8, 7, 6, in3, tg3);
  CHECK(in1.shape() == Shape{3, 8});
  bool differs = false;
  for (Index i = 0; i < in1.size(); ++i) {
    CHECK(in1.data()[i] == in2.data()[i]);
    CHECK(tg1.data()[i] == in1.data()[i] + 1);  // tokens[i] = i: the next token is one more
    differs = differs || in1.data()[i] != in3.data()[i];
  }
  CHECK(differs);
  for (Index b = 0; b < 3; ++b)
    for (Index t = 1; t < 8; ++t) CHECK(in1.data()[b * 8 + t] == in1.data()[b * 8 + t - 1] + 1);  // contiguous windows
  // Validation windows: consecutive, at most max_tokens targets, always one.
  CHECK(gpt2_train::validation_windows(100, 8, 1000) == std::vector<std::size_t>{0, 8, 16, 24, 32, 40, 48, 56, 64, 72, 80, 88});
  CHECK(gpt2_train::validation_windows(100, 8, 20) == std::vector<std::size_t>{0, 8});
  CHECK(gpt2_train::validation_windows(100, 8, 3) == std::vector<std::size_t>{0});
}

TEST_CASE("gpt2 train: the loss falls, validation beats the unigram, and the output is a GPT-2 directory gpt2 loads, in F32 or BF16") {
  TempDir dir;
  gpt2_train::Settings s = tiny_settings();
  s.steps = 60;
  gpt2_train::RunOptions run = tiny_run(dir, "out");
  run.save_dtype = "bf16";
  const gpt2_train::Report report = gpt2_train::train(s, run);
  const std::vector<example_train::LogRow> log = example_train::read_log(run.output + "/train_log.tsv", 60, true);
  CHECK(log.back().loss < 0.6 * log.front().loss);
  CHECK(std::isfinite(log[3].val_loss));
  CHECK(std::isnan(log[4].val_loss));
  CHECK(report.val_loss == doctest::Approx(log.back().val_loss).epsilon(1e-5));  // the log is rounded
  CHECK(report.val_loss < report.baselines.unigram);
  const GPT2<float> model = load_gpt2<float>(run.output);
  const GPT2Tokenizer tokenizer = GPT2Tokenizer::from_directory(run.output);
  CHECK(model.config().vocab_size == tokenizer.vocab_size());
  CHECK(tokenizer.vocab_size() == 300);
  CHECK(model.config().n_positions == 16);
  CHECK(SafeTensors(run.output + "/model.safetensors").info("wte.weight").dtype == DType::BF16);
  CHECK(tokenizer.decode(tokenizer.encode(small_text())) == small_text());
  CHECK(read_text_file(run.output + "/loss.svg").find("validation") != std::string::npos);
}

TEST_CASE("gpt2 train: stopped at step 3 and resumed, a run ends byte for byte where the straight run ends (dropout on)") {
  TempDir dir;
  gpt2_train::Settings s = tiny_settings();
  s.dropout = 0.1;
  const gpt2_train::RunOptions straight = tiny_run(dir, "straight");
  gpt2_train::train(s, straight);
  gpt2_train::RunOptions split = tiny_run(dir, "split");
  split.stop_after = 3;
  gpt2_train::train(s, split);
  CHECK_FALSE(std::filesystem::exists(split.output + "/model.safetensors"));
  split.stop_after = 0, split.resume = true;
  gpt2_train::train(s, split);
  for (const char* name : {"/model.safetensors", "/config.json", "/checkpoint.safetensors", "/train_log.tsv", "/vocab.json", "/merges.txt"}) {
    CAPTURE(name);
    const std::string a = read_text_file(straight.output + name), b = read_text_file(split.output + name);
    CHECK(!a.empty());
    CHECK(a == b);
  }
  // Dropout drew masks: without it the same run ends elsewhere.
  gpt2_train::Settings plain = s;
  plain.dropout = 0;
  gpt2_train::train(plain, tiny_run(dir, "plain"));
  CHECK(read_text_file(dir.path() + "/plain/model.safetensors") != read_text_file(straight.output + "/model.safetensors"));
}

TEST_CASE("gpt2 train: what a run refuses, leaving its checkpoint as it was") {
  TempDir dir;
  gpt2_train::Settings s = tiny_settings();
  gpt2_train::RunOptions run = tiny_run(dir, "run");
  run.stop_after = 2;
  gpt2_train::train(s, run);
  const std::string checkpoint = read_text_file(run.output + "/checkpoint.safetensors");
  // A run is there already.
  CHECK_THROWS_WITH_AS(gpt2_train::train(s, run), doctest::Contains("a run is there already"), IoError);
  // Other settings.
  run.resume = true;
  gpt2_train::Settings other = s;
  other.n_embd = 32;
  CHECK_THROWS_WITH_AS(gpt2_train::train(other, run), doctest::Contains("the run was started with n_embd 16, not 32"), RangeError);
  // Another text.
  gpt2_train::RunOptions other_text = run;
  other_text.text = dir.path() + "/other.txt";
  write_text_file(other_text.text, small_text() + "more words at the end.\n");
  CHECK_THROWS_WITH_AS(gpt2_train::train(s, other_text), doctest::Contains("the run was started with text"), RangeError);
  CHECK(read_text_file(run.output + "/checkpoint.safetensors") == checkpoint);
  // A damaged checkpoint.
  write_text_file(run.output + "/checkpoint.safetensors", checkpoint.substr(0, checkpoint.size() / 2));
  CHECK_THROWS(gpt2_train::train(s, run));
  // A text too short for the context.
  gpt2_train::RunOptions short_text = tiny_run(dir, "short");
  short_text.text = dir.path() + "/short.txt";
  write_text_file(short_text.text, "a few words\nand a few more\n");
  CHECK_THROWS_WITH_AS(gpt2_train::train(s, short_text), doctest::Contains("each part needs at least --context + 1 = 17"), RangeError);
  CHECK_FALSE(std::filesystem::exists(short_text.output + "/checkpoint.safetensors"));
}

TEST_CASE("gpt2 train --init: continues from a GPT-2 directory on another text; one of another shape is refused by name") {
  TempDir dir;
  gpt2_train::Settings s = tiny_settings();
  gpt2_train::RunOptions first = tiny_run(dir, "first");
  gpt2_train::train(s, first);
  // Fine-tuning: the model's shape and tokenizer, new text, the loss starts where the first run ended, not from scratch.
  gpt2_train::RunOptions tune = tiny_run(dir, "tuned");
  tune.init = first.output;
  gpt2_train::Settings t = s;
  t.n_embd = 999;  // ignored: the shape comes from --init
  const gpt2_train::Report tuned = gpt2_train::train(t, tune);
  const std::vector<example_train::LogRow> scratch = example_train::read_log(first.output + "/train_log.tsv", 8, true);
  const std::vector<example_train::LogRow> continued = example_train::read_log(tune.output + "/train_log.tsv", 8, true);
  CHECK(continued.front().loss < scratch.front().loss);
  CHECK(read_text_file(tune.output + "/vocab.json") == read_text_file(first.output + "/vocab.json"));
  CHECK(load_gpt2<float>(tune.output).config().n_embd == 16);
  CHECK(tuned.parameters > 0);
  // A directory whose vocab.json does not match its config.
  std::filesystem::copy_file(first.output + "/vocab.json", dir.path() + "/vocab_backup.json");
  std::filesystem::copy_file(first.output + "/merges.txt", dir.path() + "/merges_backup.txt");
  const GPT2Tokenizer& real = real_gpt2_tokenizer();
  std::filesystem::copy_file(gpt2_tokenizer_dir + "/vocab.json", first.output + "/vocab.json",
                             std::filesystem::copy_options::overwrite_existing);
  std::filesystem::copy_file(gpt2_tokenizer_dir + "/merges.txt", first.output + "/merges.txt",
                             std::filesystem::copy_options::overwrite_existing);
  gpt2_train::RunOptions bad = tiny_run(dir, "bad");
  bad.init = first.output;
  CHECK_THROWS_WITH_AS(gpt2_train::train(s, bad), doctest::Contains("vocab.json has 50257 tokens but config.json says vocab_size 300"), FormatError);
  CHECK(real.vocab_size() == 50257);
  // A context longer than the model's.
  std::filesystem::copy_file(dir.path() + "/vocab_backup.json", first.output + "/vocab.json", std::filesystem::copy_options::overwrite_existing);
  std::filesystem::copy_file(dir.path() + "/merges_backup.txt", first.output + "/merges.txt", std::filesystem::copy_options::overwrite_existing);
  gpt2_train::Settings longer = s;
  longer.context = 32;
  CHECK_THROWS_WITH_AS(gpt2_train::train(longer, bad), doctest::Contains("--context 32 is longer than"), RangeError);
}
