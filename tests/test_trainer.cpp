// examples/translator/trainer.hpp (translator train/eval): a run stopped and resumed equals the run straight through,
// byte for byte; what a run refuses (a run already there, a damaged checkpoint, other settings, a missing corpus),
// leaving the checkpoint as it was; the loss falls; evaluation scores a model on held-out pairs.
#include "translator/trainer.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "support/temp_file.hpp"

using namespace eigenformer;
using namespace eigenformer::testing;

namespace {
std::string bytes_of(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

translator_train::Settings tiny() {
  translator_train::Settings s;
  s.d_model = 16, s.heads = 2, s.encoder_layers = s.decoder_layers = 1, s.d_ff = 32;
  s.batch_size = 8, s.steps = 6, s.warmup = 2, s.lr = 3e-3, s.min_lr = 1e-4;
  return s;
}

std::string corpus(const TempDir& dir) {
  toy_corpus::Options o;
  o.seed = 3, o.train_pairs = 40, o.test_pairs = 10;
  toy_corpus::write_corpus(dir.path() + "/corpus", toy_corpus::make_corpus(o), false);
  return dir.path() + "/corpus";
}
}  // namespace

TEST_CASE("translator train: stopped at step 3 and resumed, a run ends byte for byte where the straight run ends (dropout on)") {
  TempDir dir;
  translator_train::RunOptions straight;
  straight.corpus = corpus(dir), straight.output = dir.path() + "/straight", straight.checkpoint_every = 0;
  translator_train::train(tiny(), straight);
  translator_train::RunOptions split = straight;
  split.output = dir.path() + "/split", split.stop_after = 3;
  translator_train::train(tiny(), split);
  CHECK_FALSE(std::filesystem::exists(split.output + "/model.safetensors"));
  split.stop_after = 0, split.resume = true;
  translator_train::train(tiny(), split);
  for (const char* name : {"/model.safetensors", "/config.json", "/checkpoint.safetensors", "/train_log.tsv", "/src_vocab.json", "/tgt_vocab.json"}) {
    CAPTURE(name);
    const std::string a = bytes_of(straight.output + name), b = bytes_of(split.output + name);
    CHECK(!a.empty());
    CHECK(a == b);
  }
  // Dropout drew masks: without it the same run ends elsewhere.
  translator_train::Settings no_dropout = tiny();
  no_dropout.dropout = 0;
  translator_train::RunOptions plain = straight;
  plain.output = dir.path() + "/plain";
  translator_train::train(no_dropout, plain);
  CHECK(bytes_of(plain.output + "/model.safetensors") != bytes_of(straight.output + "/model.safetensors"));
  const std::string svg = bytes_of(straight.output + "/loss.svg");
  CHECK(svg.rfind("<svg", 0) == 0);
  CHECK(svg.find("<polyline") != std::string::npos);
}

TEST_CASE("translator train: refusals name the file and leave the checkpoint as it was") {
  TempDir dir;
  translator_train::RunOptions run;
  run.corpus = corpus(dir), run.output = dir.path() + "/out", run.checkpoint_every = 0, run.stop_after = 2;
  translator_train::train(tiny(), run);
  const std::string checkpoint = run.output + "/checkpoint.safetensors", before = bytes_of(checkpoint);
  run.stop_after = 0;
  CHECK_THROWS_WITH_AS(translator_train::train(tiny(), run),
                       (checkpoint + ": a run is there already; give --resume to continue it or --force to start over").c_str(), IoError);
  run.resume = true;
  translator_train::Settings other = tiny();
  other.d_model = 32;
  CHECK_THROWS_WITH_AS(translator_train::train(other, run),
                       (checkpoint + ": the run was started with d_model 16, not 32; resume with the settings it started with").c_str(),
                       RangeError);
  // A damaged checkpoint: one byte flipped in its data. Refused, and left as it is.
  std::string damaged = before;
  damaged[damaged.size() - 5] ^= 0x55;
  {
    std::ofstream(checkpoint, std::ios::binary | std::ios::trunc) << damaged;
  }
  CHECK_THROWS_AS(translator_train::train(tiny(), run), FormatError);
  CHECK(bytes_of(checkpoint) == damaged);
  translator_train::RunOptions missing = run;
  missing.corpus = dir.path() + "/nowhere", missing.resume = false, missing.output = dir.path() + "/out2";
  CHECK_THROWS_AS(translator_train::train(tiny(), missing), IoError);
  CHECK_FALSE(std::filesystem::exists(missing.output + "/checkpoint.safetensors"));
}

TEST_CASE("translator train and evaluate: the loss falls, and the model is scored on held-out pairs") {
  TempDir dir;
  translator_train::RunOptions run;
  run.corpus = corpus(dir), run.output = dir.path() + "/out", run.checkpoint_every = 0;
  translator_train::Settings s = tiny();
  s.steps = 80, s.lr = 1e-2;
  translator_train::train(s, run);
  const std::vector<translator_train::LogRow> log = example_train::read_log(run.output + "/train_log.tsv", 80);
  double first = 0, last = 0;
  for (int i = 0; i < 5; ++i) first += log[size_t(i)].loss, last += log[size_t(75 + i)].loss;
  CHECK(last < 0.8 * first);
  const translator_train::TrainedModel m = translator_train::load_trained(run.output);
  const std::vector<toy_corpus::Pair> test = toy_corpus::read_pairs(run.corpus + "/test.tsv");
  const translator_train::Evaluation greedy = translator_train::evaluate(m, test, "test.tsv");
  CHECK(greedy.sentences == test.size());
  CHECK(greedy.bleu.bleu >= 0.0);
  CHECK(greedy.bleu.bleu <= 1.0);
  // An unknown word in the pairs is named with its line.
  std::vector<toy_corpus::Pair> bad = test;
  bad[1].first = "the purple flurb";
  CHECK_THROWS_WITH_AS(translator_train::evaluate(m, bad, "test.tsv"), doctest::Contains("test.tsv: line 2: English: "), RangeError);
  CHECK(translator_train::normalize_sentence("  The Red cars are NOT fast. ") == "the red cars are not fast");
}
