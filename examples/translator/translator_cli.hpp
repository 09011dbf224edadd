// examples/translator/translator_cli.hpp: the translator program's command line. Its subcommands (translate, train,
// eval, make-corpus, resave) and options (CLI11), the checks made on them before anything is read, and the parsing of
// source ids and --memory-budget.
// translator.cpp and the fuzz target tests/fuzz/fuzz_translator_cli.cpp both use this header, so the fuzzer runs
// exactly the parser that the program runs. Nothing here loads a model; standard input is read by read_sources below,
// from a reader the caller opens.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <eigenformer/core/bounded_reader.hpp>
#include <eigenformer/core/error.hpp>
#include <eigenformer/core/shape.hpp>
#include <eigenformer/models/transformer.hpp>

#include "../cli_common.hpp"
#include "trainer.hpp"

namespace translator_cli {

using eigenformer::Index;

struct Arguments {
  std::string command;  // the subcommand given, set by check(): "translate", "train", "eval", "resave" or "make-corpus"
  std::string model, output, corpus;
  std::vector<std::string> src_ids;
  std::vector<std::string> sentences;  // translate's words: sentences to translate with the model's vocabularies
  Index beam = 1;                      // translate: 1 is greedy
  Index eval_beam = 4;                 // eval: the beam compared with greedy (check() moves it to beam)
  double length_penalty = 0.6;
  Index max_new_tokens = -1;
  int threads = 0;
  Index batch_size = 64;
  std::string memory_budget = "none";
  std::uint64_t memory_budget_bytes = 0;  // from memory_budget by check(); 0: no limit
  std::string explain, dump_activations;  // translate: --explain FILE.html, --dump-activations FILE.safetensors
  // make-corpus
  std::string seed_text = "0";  // --seed as typed; check() turns it into `seed`
  std::uint64_t seed = 0;
  std::size_t train_pairs = 30000, test_pairs = 1000;
  bool force = false;
  // train (its defaults are translator_train::Settings')
  translator_train::Settings train;
  translator_train::RunOptions run;
  std::string train_seed_text = "1";
};

// "5 9 23 7" -> BOS, the ids, EOS; `where` names the input in messages ("--src-ids 2", "line 3"). RangeError for a
// word that is not an id, an id outside the source vocabulary, or a source longer than max_len with BOS and EOS.
inline std::vector<std::int64_t> parse_ids(const std::string& text, const std::string& where, const eigenformer::TransformerConfig& config) {
  std::vector<std::int64_t> ids{config.bos_id};
  std::istringstream in(text);
  for (std::string word; in >> word;) ids.push_back(example_cli::parse_token_id(word, config.src_vocab_size, where, "source vocabulary"));
  ids.push_back(config.eos_id);
  if (static_cast<Index>(ids.size()) > config.max_len)
    throw eigenformer::RangeError(where + ": " + std::to_string(ids.size() - 2) + " tokens (" + std::to_string(ids.size()) +
                                  " with BOS and EOS) do not fit the model's max_len " + std::to_string(config.max_len));
  return ids;
}

// The caps on standard input, checked as it is read: all of it (64 MiB) and one line, one source (1 MiB). Every
// source is kept until the last is read, so the first bounds the memory they take (8 bytes an id, 2 bytes of text
// at least).
inline constexpr std::uint64_t max_stdin_bytes = std::uint64_t(64) << 20;
inline constexpr std::uint64_t max_stdin_line_bytes = std::uint64_t(1) << 20;

// One source per line of `in` (standard input, or a test's reader), each named "line N" in *names; parse_ids' errors,
// the caps above, and an IoError if a read fails: a failed read is never taken for the end of the sources.
inline std::vector<std::vector<std::int64_t>> read_sources(eigenformer::BoundedReader& in, const eigenformer::TransformerConfig& config,
                                                           std::vector<std::string>& names) {
  std::vector<std::vector<std::int64_t>> sources;
  for (std::string line; in.read_line(line, max_stdin_line_bytes);) {
    names.push_back("line " + std::to_string(in.lines()));
    sources.push_back(parse_ids(line, names.back(), config));
  }
  return sources;
}

// Standard input as read_sources reads it.
inline eigenformer::BoundedReader standard_input() {
  return eigenformer::BoundedReader::from_fd(0, "standard input", "standard input", max_stdin_bytes);
}

// Declares the subcommands and their options, bound to the fields of `a` (check() sets a.command to the one given).
inline void add_options(CLI::App& app, Arguments& a) {
  app.description("Train an encoder-decoder Transformer on a toy English -> Spanish corpus and translate with it, or run one saved in the "
                  "PyTorch translation tutorial's layout.");
  app.require_subcommand(1);
  CLI::App* tr = app.add_subcommand("translate",
                                    "translate sentences (a model that `train` wrote: words) or token ids (--src-ids, or a model without "
                                    "vocabularies); without either, one source per line of stdin");
  tr->add_option("--model", a.model, "directory with config.json and model.safetensors (and src_vocab.json, tgt_vocab.json for words)")->required();
  tr->add_option("sentences", a.sentences, "English sentences, e.g. \"the red cars are not fast\" (lowercased; a final . ! or ? is dropped)");
  tr->add_option("--src-ids", a.src_ids, "source token ids without BOS/EOS, e.g. \"5 9 23 7\" (repeatable)");
  tr->add_option("--beam", a.beam, "beam search with this many beams (1: greedy)")->capture_default_str()->check(CLI::Range(Index(1), Index(64)));
  tr->add_option("--length-penalty", a.length_penalty, "beam search's length penalty alpha, ((5 + length) / 6)^alpha (GNMT)")
      ->capture_default_str()
      ->check(example_cli::finite_number)->check(CLI::Range(0.0, 10.0));
  tr->add_option("--max-new-tokens", a.max_new_tokens,
                 "most target tokens per source (default: the tutorial's, source length with BOS and EOS + 4)")
      ->check(CLI::Range(Index(1), Index(1) << 40));
  tr->add_option("--threads", a.threads, "threads (default: all cores)")->check(CLI::Range(1, 1024));
  tr->add_option("--batch-size", a.batch_size, "sources decoded together")->capture_default_str()->check(CLI::Range(1, 100000));
  example_cli::add_memory_budget_option(*tr, a.memory_budget);
  tr->add_option("--explain", a.explain,
                 "also write a page (one HTML file) that shows the cross-attention between source and target words, per layer and "
                 "head and averaged, and each target word's probabilities (one sentence; docs/inspect.md)");
  tr->add_option("--dump-activations", a.dump_activations,
                 "also write every recorded tensor of the sentence's translation to this safetensors file (names: docs/inspect.md)");
  CLI::App* tn = app.add_subcommand("train", "train a model from scratch on CORPUS/train.tsv (make-corpus writes one) into OUTPUT");
  translator_train::Settings& t = a.train;
  tn->add_option("--corpus", a.corpus, "directory with train.tsv (and test.tsv, scored at the end)")->required();
  tn->add_option("--output", a.run.output, "directory for the model, its vocabularies, checkpoint.safetensors, train_log.tsv and loss.svg")->required();
  tn->add_option("--steps", t.steps, "optimiser steps")->capture_default_str()->check(CLI::Range(std::int64_t(1), std::int64_t(100000000)));
  tn->add_option("--batch-size", t.batch_size, "sentence pairs per step")->capture_default_str()->check(CLI::Range(Index(1), Index(100000)));
  tn->add_option("--lr", t.lr, "peak learning rate (AdamW)")->capture_default_str()->check(example_cli::finite_number)->check(CLI::Range(1e-7, 1.0));
  tn->add_option("--min-lr", t.min_lr, "learning rate at the last step (cosine decay from the peak)")->capture_default_str()->check(example_cli::finite_number)->check(CLI::Range(0.0, 1.0));
  tn->add_option("--warmup", t.warmup, "steps of linear warmup")->capture_default_str()->check(CLI::Range(std::int64_t(0), std::int64_t(100000000)));
  tn->add_option("--seed", a.train_seed_text, "seed of the weights and of the order of the pairs")->capture_default_str();
  tn->add_option("--d-model", t.d_model, "model width")->capture_default_str()->check(CLI::Range(Index(1), Index(8192)));
  tn->add_option("--heads", t.heads, "attention heads")->capture_default_str()->check(CLI::Range(Index(1), Index(256)));
  tn->add_option("--layers", t.encoder_layers, "encoder layers, and as many decoder layers")->capture_default_str()->check(CLI::Range(Index(1), Index(64)));
  tn->add_option("--d-ff", t.d_ff, "feed-forward width")->capture_default_str()->check(CLI::Range(Index(1), Index(65536)));
  tn->add_option("--label-smoothing", t.label_smoothing, "label smoothing of the cross-entropy")->capture_default_str()->check(example_cli::finite_number)->check(CLI::Range(0.0, 1.0));
  tn->add_option("--checkpoint-every", a.run.checkpoint_every, "steps between checkpoints (0: only at the end)")
      ->capture_default_str()
      ->check(CLI::Range(std::int64_t(0), std::int64_t(100000000)));
  tn->add_option("--log-every", a.run.log_every, "steps between progress lines when stderr is not a terminal (0: about 20 a run)")
      ->check(CLI::Range(std::int64_t(0), std::int64_t(100000000)));
  tn->add_option("--dropout", t.dropout, "dropout probability in training")->capture_default_str()->check(example_cli::finite_number)->check(CLI::Range(0.0, 0.95));
  tn->add_option("--stop-after", a.run.stop_after, "end this run after that step, with a checkpoint; --resume goes on")
      ->check(CLI::Range(std::int64_t(1), std::int64_t(100000000)));
  tn->add_flag("--resume", a.run.resume, "continue the run in OUTPUT from its checkpoint (same settings)");
  tn->add_flag("--force", a.run.force, "start over even if OUTPUT holds a run");
  tn->add_option("--threads", a.threads, "threads (default: all cores)")->check(CLI::Range(1, 1024));
  CLI::App* ev = app.add_subcommand("eval", "score a trained model on CORPUS/test.tsv: exact match and corpus BLEU, greedy and beam");
  ev->add_option("--model", a.model, "directory that `train` wrote")->required();
  ev->add_option("--corpus", a.corpus, "directory with test.tsv")->required();
  ev->add_option("--beam", a.eval_beam, "beams of the beam search compared with greedy")->capture_default_str()->check(CLI::Range(Index(1), Index(64)));
  ev->add_option("--length-penalty", a.length_penalty, "beam search's length penalty alpha")->capture_default_str()->check(example_cli::finite_number)->check(CLI::Range(0.0, 10.0));
  ev->add_option("--threads", a.threads, "threads (default: all cores)")->check(CLI::Range(1, 1024));
  CLI::App* rs = app.add_subcommand("resave", "load a model and write it again (config.json + model.safetensors, F32)");
  rs->add_option("--model", a.model, "directory with config.json and model.safetensors")->required();
  rs->add_option("--output", a.output, "directory to write (created if missing)")->required();
  CLI::App* mc = app.add_subcommand("make-corpus", "write a toy English -> Spanish corpus, DIR/train.tsv and DIR/test.tsv (docs/toy_corpus.md)");
  mc->add_option("--output", a.output, "directory to write (created if missing)")->required();
  mc->add_option("--seed", a.seed_text, "seed of the sentences drawn, 0 to 2^64 - 1: the same seed gives the same corpus")->capture_default_str();
  mc->add_option("--train", a.train_pairs, "training pairs")->capture_default_str()->check(CLI::Range(std::size_t(1), std::size_t(1000000)));
  mc->add_option("--test", a.test_pairs, "test pairs, each combining words in a way no training pair does")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t(1), std::size_t(100000)));
  mc->add_flag("--force", a.force, "overwrite DIR/train.tsv and DIR/test.tsv if they exist");
  // CLI11 quotes the arguments it refuses as they were typed: escaped and cut here (eigenformer::detail::escape_text).
  app.failure_message([](const CLI::App*, const CLI::Error& e) {
    return std::string("translator: ") + eigenformer::detail::printable(e.what(), 240) + " (see --help)\n";
  });
}

// The checks CLI11 cannot express. Throws CLI::ValidationError, which main() reports like CLI11's own errors.
inline void check(const CLI::App& app, Arguments& a) {
  for (const char* name : {"make-corpus", "resave", "train", "eval", "translate"})
    if (app.got_subcommand(name)) a.command = name;
  if (a.command == "train") {
    if (a.corpus.empty()) throw CLI::ValidationError("--corpus", "is empty; expected a directory");
    if (a.run.output.empty()) throw CLI::ValidationError("--output", "is empty; expected a directory");
    if (a.run.resume && a.run.force) throw CLI::ValidationError("--resume and --force", "contradict each other; give one");
    // What translator_train::train writes in OUTPUT, checked before the corpus is even read.
    example_cli::check_output_directory(a.run.output, "--output", {"checkpoint.safetensors", "train_log.tsv", "loss.svg", "src_vocab.json",
                                                                    "tgt_vocab.json", "config.json", "model.safetensors"});
    a.train.decoder_layers = a.train.encoder_layers;
    a.train.seed = example_cli::parse_u64(a.train_seed_text, "--seed");
    a.run.corpus = a.corpus;
    if (a.train.d_model % a.train.heads != 0)
      throw CLI::ValidationError("--d-model", std::to_string(a.train.d_model) + " is not a multiple of --heads " + std::to_string(a.train.heads));
    if (a.train.warmup >= a.train.steps)
      throw CLI::ValidationError("--warmup", std::to_string(a.train.warmup) + " is not below --steps " + std::to_string(a.train.steps));
    if (a.train.min_lr > a.train.lr)
      throw CLI::ValidationError("--min-lr", eigenformer::detail::number_text(a.train.min_lr) + " is above --lr " + eigenformer::detail::number_text(a.train.lr));
    return;
  }
  if (a.command == "eval") {
    if (a.corpus.empty()) throw CLI::ValidationError("--corpus", "is empty; expected a directory");
    a.beam = a.eval_beam;
  }
  if (a.command == "translate" && !a.sentences.empty() && !a.src_ids.empty())
    throw CLI::ValidationError("--src-ids", "and sentences given together; translate either words or ids");
  if (a.command == "translate") {
    const CLI::App& tr = *app.get_subcommand("translate");
    for (const auto& [option, file] : {std::pair{"--explain", &a.explain}, std::pair{"--dump-activations", &a.dump_activations}}) {
      if (tr.count(option) == 0) continue;
      example_cli::check_output_file(*file, option);
      if (a.sentences.size() + a.src_ids.size() != 1)
        throw CLI::ValidationError(option, "shows one sentence; give exactly one (as words or --src-ids), not " +
                                               std::to_string(a.sentences.size() + a.src_ids.size()));
    }
  }
  if (a.command == "make-corpus") {
    if (a.output.empty()) throw CLI::ValidationError("--output", "is empty; expected a directory");
    example_cli::check_output_directory(a.output, "--output", {"train.tsv", "test.tsv"});
    a.seed = example_cli::parse_u64(a.seed_text, "--seed");
    return;
  }
  // Given but empty (--model ""), a directory would become "/config.json": a file at the root, not the user's.
  if (a.model.empty()) throw CLI::ValidationError("--model", "is empty; expected a directory");
  if (a.command == "resave" && a.output.empty()) throw CLI::ValidationError("--output", "is empty; expected a directory");
  if (a.command == "resave") example_cli::check_output_directory(a.output, "--output", {"config.json", "model.safetensors"});
  a.memory_budget_bytes = example_cli::memory_budget_bytes(a.memory_budget);
}

// Parses the command line into `a` and checks it. Throws CLI::ParseError (--help included) for main() to report
// with app.exit(e).
inline void parse(CLI::App& app, Arguments& a, int argc, const char* const* argv) {
  app.parse(argc, argv);
  check(app, a);
}

}  // namespace translator_cli
