// examples/gpt2/gpt2_cli.hpp: the gpt2 program's command line. Its options (CLI11), the checks made on them before
// anything is read, and the parsing of --prompt-ids. gpt2.cpp and the fuzz target
// tests/fuzz/fuzz_gpt2_cli.cpp both use this header, so the fuzzer runs exactly the parser that the program runs.
// Nothing here loads a model; the one file read is --tokenize-file's, by read_tokenize_file below.
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

#include "../cli_common.hpp"
#include "gpt2_trainer.hpp"

namespace gpt2_cli {

using eigenformer::Index;

struct Arguments {
  std::string command;  // "train" when that subcommand is given (check() sets it), else empty: generate
  std::string model, prompt, prompt_ids, tokenize_file, init_random, tokenizer_dir;
  bool output_ids = false;
  Index max_new_tokens = 50;
  double temperature = 1.0, top_p = 1.0, repetition_penalty = 1.0;
  Index top_k = 0;
  std::string seed_text = "0";  // --seed as typed; check() turns it into `seed`
  std::uint64_t seed = 0;
  int threads = 0;
  std::string memory_budget = "none";
  std::string explain, dump_activations;  // --explain FILE.html, --dump-activations FILE.safetensors
  Index explain_top_k = 10;
  std::string dtype = "f32";  // weights kept for inference: f32, bf16 or int8 (eigenformer/nn/layer_weight.hpp)
  std::uint64_t memory_budget_bytes = 0;  // from memory_budget by check(); 0: no limit
  Index n_layer = 2, n_head = 4, n_embd = 64, n_positions = 256;
  // train (its defaults are gpt2_train::Settings')
  gpt2_train::Settings train;
  gpt2_train::RunOptions run;
  std::string train_seed_text = "1";
};

// "15496 995" -> ids, each in [0, vocab_size). RangeError "--prompt-ids: ..." otherwise, or if there are none.
inline std::vector<std::int64_t> parse_ids(const std::string& text, Index vocab_size) {
  std::vector<std::int64_t> ids;
  std::istringstream in(text);
  for (std::string word; in >> word;) ids.push_back(example_cli::parse_token_id(word, vocab_size, "--prompt-ids"));
  if (ids.empty()) throw eigenformer::RangeError("--prompt-ids: no token ids given");
  return ids;
}

// The largest file --tokenize-file reads (64 MiB), checked as it is read: encoding one long word takes 21 to 26 bytes
// of memory per byte, ids included (1.4 GB for 64 MiB; docs/reliability.md), what 16 MiB took before (issue 13).
inline constexpr std::uint64_t max_tokenize_file_bytes = std::uint64_t(64) << 20;

// --tokenize-file's bytes: a regular file of at most max_tokenize_file_bytes (IoError or FormatError naming it).
inline std::string read_tokenize_file(const std::string& path) {
  return eigenformer::read_file_bounded(path, "a file for --tokenize-file", max_tokenize_file_bytes);
}

// `gpt2 train`: its options, bound to a.train (what the run computes) and a.run (where and how it runs).
inline void add_train_options(CLI::App& app, Arguments& a) {
  CLI::App* tn = app.add_subcommand("train",
                                    "train a GPT-2 on a UTF-8 text (from scratch with a BPE learnt from it, or from --init's weights) into "
                                    "OUTPUT, in the layout `gpt2 --model` reads (docs/gpt2_training.md)");
  gpt2_train::Settings& t = a.train;
  gpt2_train::RunOptions& r = a.run;
  using I64 = std::int64_t;
  tn->add_option("--text", r.text, "the text to learn from (UTF-8); its last --val-fraction validates")->required();
  tn->add_option("--output", r.output, "directory for the model, checkpoint.safetensors, train_log.tsv and loss.svg")->required();
  tn->add_option("--init", r.init, "continue from this GPT-2 directory (fine-tuning): its weights, shape and tokenizer");
  tn->add_option("--tokenizer", r.tokenizer, "use this directory's vocab.json and merges.txt instead of learning a BPE");
  tn->add_option("--vocab-size", t.vocab_size, "tokens of the BPE learnt from the text (256 bytes + merges + <|endoftext|>)")
      ->capture_default_str()->check(CLI::Range(Index(257), Index(1) << 20));
  tn->add_option("--n-layer", t.n_layer, "layers of a new model")->capture_default_str()->check(CLI::Range(Index(1), Index(128)));
  tn->add_option("--n-head", t.n_head, "attention heads of a new model")->capture_default_str()->check(CLI::Range(Index(1), Index(128)));
  tn->add_option("--n-embd", t.n_embd, "width of a new model")->capture_default_str()->check(CLI::Range(Index(1), Index(8192)));
  tn->add_option("--context", t.context, "tokens per training window (a new model's n_positions)")->capture_default_str()->check(CLI::Range(Index(1), Index(65536)));
  tn->add_option("--batch-size", t.batch_size, "windows per step")->capture_default_str()->check(CLI::Range(Index(1), Index(100000)));
  tn->add_option("--steps", t.steps, "optimiser steps")->capture_default_str()->check(CLI::Range(I64(1), I64(100000000)));
  tn->add_option("--lr", t.lr, "peak learning rate (AdamW)")->capture_default_str()->check(example_cli::finite_number)->check(CLI::Range(1e-7, 1.0));
  tn->add_option("--min-lr", t.min_lr, "learning rate at the last step (cosine decay from the peak)")->capture_default_str()->check(example_cli::finite_number)->check(CLI::Range(0.0, 1.0));
  tn->add_option("--warmup", t.warmup, "steps of linear warmup")->capture_default_str()->check(CLI::Range(I64(0), I64(100000000)));
  tn->add_option("--weight-decay", t.weight_decay, "AdamW's decoupled weight decay (weight matrices and embeddings)")
      ->capture_default_str()->check(example_cli::finite_number)->check(CLI::Range(0.0, 10.0));
  tn->add_option("--clip", t.clip, "clip the gradients' global norm to this (0: no clipping)")->capture_default_str()->check(example_cli::finite_number)->check(CLI::Range(0.0, 1e6));
  tn->add_option("--dropout", t.dropout, "dropout probability in training (embd_pdrop, resid_pdrop)")->capture_default_str()->check(example_cli::finite_number)->check(CLI::Range(0.0, 0.95));
  tn->add_option("--seed", a.train_seed_text, "seed of the weights, the windows and dropout, 0 to 2^64 - 1")->capture_default_str();
  tn->add_option("--val-fraction", t.val_fraction, "the share of the text, at its end, kept for validation")->capture_default_str()->check(example_cli::finite_number)->check(CLI::Range(0.001, 0.5));
  tn->add_option("--max-val-tokens", t.max_val_tokens, "validation targets scored at most")->capture_default_str()->check(CLI::Range(Index(1), Index(1) << 30));
  tn->add_option("--eval-every", r.eval_every, "steps between validation losses (and at the end; 0: only at the end)")
      ->capture_default_str()->check(CLI::Range(I64(0), I64(100000000)));
  tn->add_option("--checkpoint-every", r.checkpoint_every, "steps between checkpoints (0: only at the end)")
      ->capture_default_str()->check(CLI::Range(I64(0), I64(100000000)));
  tn->add_option("--log-every", r.log_every, "steps between progress lines when stderr is not a terminal (0: about 20 a run)")
      ->check(CLI::Range(I64(0), I64(100000000)));
  tn->add_option("--stop-after", r.stop_after, "end this run after that step, with a checkpoint; --resume goes on")->check(CLI::Range(I64(1), I64(100000000)));
  tn->add_flag("--resume", r.resume, "continue the run in OUTPUT from its checkpoint (same settings)");
  tn->add_flag("--force", r.force, "start over even if OUTPUT holds a run");
  tn->add_option("--save-dtype", r.save_dtype, "the saved model's weights: f32, or bf16 (half the size)")
      ->capture_default_str()->check(CLI::IsMember({"f32", "bf16"}));
  tn->add_option("--threads", a.threads, "threads (default: all cores)")->check(CLI::Range(1, 1024));
}

// gpt2 train's checks that CLI11 cannot express (CLI::ValidationError).
inline void check_train(const CLI::App& train, Arguments& a) {
  if (a.run.text.empty()) throw CLI::ValidationError("--text", "is empty; expected a file");
  if (a.run.output.empty()) throw CLI::ValidationError("--output", "is empty; expected a directory");
  if (a.run.resume && a.run.force) throw CLI::ValidationError("--resume and --force", "contradict each other; give one");
  // What gpt2_train::train writes in OUTPUT, checked before the text is even read.
  example_cli::check_output_directory(a.run.output, "--output", {"checkpoint.safetensors", "train_log.tsv", "loss.svg", "vocab.json", "merges.txt",
                                                                  "config.json", "model.safetensors"});
  if (!a.run.init.empty()) {
    for (const char* shape : {"--n-layer", "--n-head", "--n-embd", "--vocab-size", "--tokenizer"})
      if (train.count(shape) > 0) throw CLI::ValidationError(shape, "cannot go with --init: the model and its tokenizer come from the --init directory");
  } else if (a.train.n_embd % a.train.n_head != 0) {
    throw CLI::ValidationError("--n-embd", std::to_string(a.train.n_embd) + " is not a multiple of --n-head " + std::to_string(a.train.n_head));
  }
  if (!a.run.tokenizer.empty() && train.count("--vocab-size") > 0)
    throw CLI::ValidationError("--vocab-size", "cannot go with --tokenizer: the vocabulary is that tokenizer's");
  if (a.train.warmup >= a.train.steps)
    throw CLI::ValidationError("--warmup", std::to_string(a.train.warmup) + " is not below --steps " + std::to_string(a.train.steps));
  if (a.train.min_lr > a.train.lr)
    throw CLI::ValidationError("--min-lr", eigenformer::detail::number_text(a.train.min_lr) + " is above --lr " + eigenformer::detail::number_text(a.train.lr));
  a.train.seed = example_cli::parse_u64(a.train_seed_text, "--seed");
}

// Declares every option of `app`, bound to the fields of `a`.
inline void add_options(CLI::App& app, Arguments& a) {
  app.description("Generate text with a Hugging Face GPT-2 checkpoint directory (config.json, model.safetensors, vocab.json, merges.txt).");
  app.add_option("--model", a.model, "checkpoint directory");
  app.add_option("--prompt", a.prompt, "prompt text (UTF-8)");
  app.add_option("--prompt-ids", a.prompt_ids, "prompt as token ids, e.g. \"15496 995\"");
  app.add_flag("--output-ids", a.output_ids, "print the generated ids on one line instead of text");
  app.add_option("--tokenize-file", a.tokenize_file, "print the ids of this file's bytes and exit (needs vocab.json, merges.txt)");
  app.add_option("--max-new-tokens", a.max_new_tokens, "tokens to generate at most")->capture_default_str()->check(CLI::Range(Index(1), Index(1) << 30));
  app.add_option("--temperature", a.temperature, "sampling temperature; 0 is greedy")->capture_default_str()->check(example_cli::finite_number)->check(CLI::Range(0.0, 1e6));
  app.add_option("--top-k", a.top_k, "sample among the k most likely tokens (0: all)")->capture_default_str()->check(CLI::Range(Index(0), Index(1) << 30));
  app.add_option("--top-p", a.top_p, "sample within the nucleus of probability p")->capture_default_str()->check(example_cli::finite_number)->check(CLI::Range(1e-9, 1.0));
  app.add_option("--repetition-penalty", a.repetition_penalty, "penalty for tokens already present (1: none)")->capture_default_str()->check(example_cli::finite_number)->check(CLI::Range(1e-6, 1e6));
  app.add_option("--seed", a.seed_text, "seed of the sampler, 0 to 2^64 - 1: the same seed gives the same text")->capture_default_str();
  app.add_option("--threads", a.threads, "threads (default: all cores)")->check(CLI::Range(1, 1024));
  example_cli::add_memory_budget_option(app, a.memory_budget);
  app.add_option("--dtype", a.dtype,
                 "weights kept for generation: f32, bf16 (half the bytes; decoding one sequence measured 1.2-2.3x as fast as f32 on our "
                 "machines, eight 1.1-1.9x) or int8 (a quarter, a scale per row; 1.9-3.9x, eight 1.3-2.0x)")
      ->capture_default_str()
      ->check(CLI::IsMember({"f32", "bf16", "int8"}));
  app.add_option("--explain", a.explain,
                 "also write a page (one HTML file) that shows each layer's and head's attention, the next-token probabilities "
                 "and the residual stream over the prompt and what was generated (docs/inspect.md)");
  app.add_option("--explain-top-k", a.explain_top_k, "--explain: tokens shown per next-token distribution")
      ->capture_default_str()
      ->check(CLI::Range(Index(1), Index(100)));
  app.add_option("--dump-activations", a.dump_activations,
                 "also write every recorded tensor of the prompt and what was generated to this safetensors file (names: docs/inspect.md)");
  app.add_option("--init-random", a.init_random, "write a random-weight checkpoint into this directory and exit (with --tokenizer-dir)");
  app.add_option("--tokenizer-dir", a.tokenizer_dir, "where vocab.json and merges.txt are, for --init-random");
  app.add_option("--n-layer", a.n_layer, "--init-random: layers")->capture_default_str()->check(CLI::Range(1, 128));
  app.add_option("--n-head", a.n_head, "--init-random: heads")->capture_default_str()->check(CLI::Range(1, 128));
  app.add_option("--n-embd", a.n_embd, "--init-random: width")->capture_default_str()->check(CLI::Range(1, 8192));
  app.add_option("--n-positions", a.n_positions, "--init-random: context")->capture_default_str()->check(CLI::Range(1, 65536));
  add_train_options(app, a);
  // CLI11 quotes the arguments it refuses as they were typed: escaped and cut here (eigenformer::detail::escape_text).
  app.failure_message([](const CLI::App*, const CLI::Error& e) {
    return std::string("gpt2: ") + eigenformer::detail::printable(e.what(), 240) + " (see --help)\n";
  });
}

// The checks CLI11 cannot express: which options go together, and the memory budget's syntax. Throws
// CLI::ValidationError, which main() reports like CLI11's own errors.
inline void check(const CLI::App& app, Arguments& a) {
  if (app.got_subcommand("train")) {
    a.command = "train";
    check_train(*app.get_subcommand("train"), a);
    return;
  }
  if (app.count("--init-random") > 0 && a.init_random.empty()) throw CLI::ValidationError("--init-random", "is empty; expected a directory");
  if (a.init_random.empty()) {
    // Given but empty (--model ""), a directory would become "/config.json": a file at the root, not the user's.
    if (a.model.empty()) throw CLI::ValidationError("--model", app.count("--model") > 0 ? "is empty; expected a directory" : "is required");
    const int modes = (app.count("--prompt") > 0) + (app.count("--prompt-ids") > 0) + (app.count("--tokenize-file") > 0);
    if (modes != 1) throw CLI::ValidationError("give exactly one of --prompt, --prompt-ids and --tokenize-file");
    if (app.count("--prompt") > 0 && a.prompt.empty()) throw CLI::ValidationError("--prompt: the prompt is empty; expected some text");
    if (app.count("--tokenize-file") > 0 && a.tokenize_file.empty()) throw CLI::ValidationError("--tokenize-file: the file name is empty");
    for (const auto& [option, file] : {std::pair{"--explain", &a.explain}, std::pair{"--dump-activations", &a.dump_activations}}) {
      if (app.count(option) == 0) continue;
      if (!a.tokenize_file.empty()) throw CLI::ValidationError(option, "cannot go with --tokenize-file: there is no generation to show");
      example_cli::check_output_file(*file, option);
    }
  } else if (a.tokenizer_dir.empty()) {
    throw CLI::ValidationError("--init-random", "needs --tokenizer-dir");
  } else {
    example_cli::check_output_directory(a.init_random, "--init-random", {"config.json", "model.safetensors", "vocab.json", "merges.txt"});
  }
  a.memory_budget_bytes = example_cli::memory_budget_bytes(a.memory_budget);
  a.seed = example_cli::parse_u64(a.seed_text, "--seed");
}

// Parses the command line into `a` and checks it. Throws CLI::ParseError (--help included) for main() to report
// with app.exit(e).
inline void parse(CLI::App& app, Arguments& a, int argc, const char* const* argv) {
  app.parse(argc, argv);
  check(app, a);
}

}  // namespace gpt2_cli
