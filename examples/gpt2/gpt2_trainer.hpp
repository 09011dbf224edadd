// examples/gpt2/gpt2_trainer.hpp: trains a GPT-2 from scratch on a UTF-8 text (or continues one, --init), as
// `gpt2 train` runs it.
//
// A run, step by step (train()):
//   the text        read whole (a regular file, at most max_text_bytes, UTF-8 without NUL bytes), then cut in two at
//                   the first line break after (1 - val_fraction) of its bytes: the part before trains, the part
//                   after validates. Any text gets the same cut; Moby-Dick's last tenth is its last chapters.
//   tokens          a byte-level BPE learnt from the training part alone (text/bpe_trainer.hpp; vocab_size ids), or
//                   --init's / --tokenizer's vocab.json and merges.txt; both parts encoded with it.
//   start           GPT-2's initialisation (train/init.hpp) from --seed, or --init's weights; AdamW with betas
//                   (0.9, 0.95), eps 1e-8, weight decay on the weight matrices and embeddings only (nanoGPT's choice)
//   each step s     batch_size windows of context + 1 tokens at offsets drawn from (seed, s) alone (so a resumed run
//                   reads what the uninterrupted one would), the window's first context tokens in, the next ones as
//                   targets; mean cross-entropy, backward (dropout from the run's generator), gradient clipping,
//                   AdamW at the warmup + cosine rate of step s
//   every N steps   the validation loss: mean cross-entropy over consecutive windows of the validation part (at most
//                   max_val_tokens targets), without dropout; and a checkpoint (weights, AdamW's moments, the step,
//                   the generator; written to a temporary file and renamed), the log and the loss curve
//   at the end      the model in Hugging Face's GPT-2 layout (config.json, model.safetensors in F32 or BF16,
//                   vocab.json, merges.txt): the directory `gpt2 --model` reads, and `gpt2 train --init` continues.
// The baselines the validation loss is compared with (report()): a unigram and a bigram model counted on the training
// tokens, scored on exactly the validation targets the model predicts (ngram_baselines below).
// What a run writes into its directory (OUT):
//   config.json, model.safetensors, vocab.json, merges.txt   the trained model (vocab.json and merges.txt at the start)
//   checkpoint.safetensors                                   the state to --resume from
//   train_log.tsv                                            step, loss, lr, gradient norm, validation loss
//   loss.svg                                                 the loss curves, training and validation
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <utility>
#include <vector>

#include <eigenformer/core/bounded_reader.hpp>
#include <eigenformer/core/error.hpp>
#include <eigenformer/core/random.hpp>
#include <eigenformer/core/threading.hpp>
#include <eigenformer/io/hf_gpt2.hpp>
#include <eigenformer/io/memory_budget.hpp>
#include <eigenformer/io/parameters.hpp>
#include <eigenformer/io/safetensors.hpp>
#include <eigenformer/models/gpt2.hpp>
#include <eigenformer/text/bpe_trainer.hpp>
#include <eigenformer/text/gpt2_tokenizer.hpp>
#include <eigenformer/text/utf8.hpp>
#include <eigenformer/train/adamw.hpp>
#include <eigenformer/train/clip.hpp>
#include <eigenformer/train/cross_entropy.hpp>
#include <eigenformer/train/gradients.hpp>
#include <eigenformer/train/init.hpp>
#include <eigenformer/train/schedule.hpp>
#include <eigenformer/train/train_checkpoint.hpp>

#include "../progress.hpp"
#include "../train_files.hpp"

namespace gpt2_train {

using eigenformer::Index;

// The largest --text read (256 MiB): it is held whole, with its tokens (8 bytes each, about one per 3-4 bytes).
inline constexpr std::uint64_t max_text_bytes = std::uint64_t(256) << 20;

// Everything that decides what a run computes. Saved in the checkpoint and compared on --resume (threads, spacing of
// checkpoints and validation excepted: they change no weight).
struct Settings {
  // The model from scratch (with --init, the model's own).
  Index n_layer = 4, n_head = 4, n_embd = 128;
  Index context = 128;      // tokens a window holds; n_positions of a new model
  Index vocab_size = 4096;  // the BPE learnt from the training part (with --init or --tokenizer: theirs)
  // The optimisation.
  Index batch_size = 16;
  std::int64_t steps = 2000;
  double lr = 3e-3, min_lr = 3e-4;
  std::int64_t warmup = 100;
  double weight_decay = 0.1, clip = 1.0;
  double dropout = 0.0;  // embd_pdrop and resid_pdrop of the trained model
  std::uint64_t seed = 1;
  // The data.
  double val_fraction = 0.1;
  Index max_val_tokens = 32768;

  std::map<std::string, std::string> as_strings() const {
    using eigenformer::detail::number_text;
    return {{"n_layer", std::to_string(n_layer)},         {"n_head", std::to_string(n_head)},
            {"n_embd", std::to_string(n_embd)},           {"context", std::to_string(context)},
            {"vocab_size", std::to_string(vocab_size)},   {"batch_size", std::to_string(batch_size)},
            {"steps", std::to_string(steps)},             {"lr", number_text(lr)},
            {"min_lr", number_text(min_lr)},              {"warmup", std::to_string(warmup)},
            {"weight_decay", number_text(weight_decay)},  {"clip", number_text(clip)},
            {"dropout", number_text(dropout)},            {"seed", std::to_string(seed)},
            {"val_fraction", number_text(val_fraction)},  {"max_val_tokens", std::to_string(max_val_tokens)}};
  }
};

struct RunOptions {
  std::string text, output;
  std::string init;       // a GPT-2 directory to continue from (fine-tuning): its weights, its tokenizer
  std::string tokenizer;  // a directory with vocab.json and merges.txt to use instead of learning one
  std::string save_dtype = "f32";  // the saved model's weights: f32 or bf16
  std::int64_t eval_every = 100;   // validation loss every N steps (and at the end)
  std::int64_t checkpoint_every = 500;  // 0: only at the end
  bool resume = false, force = false;
  std::int64_t stop_after = 0;  // > 0: end this run after that step, with a checkpoint (the rest: --resume)
  std::int64_t log_every = 0;   // plain progress lines every N steps when not on a terminal (0: ~20 a run)
};

// ----------------------------------------------------------------------------------------------------------------------
// The text.

// --text's bytes: a regular file of at most max_text_bytes, not empty, UTF-8, without NUL bytes (a binary file is
// refused by name, with the offset of its first bad byte).
inline std::string read_text(const std::string& path) {
  using eigenformer::detail::printable;
  std::string text = eigenformer::read_file_bounded(path, "a text for --text", max_text_bytes);
  if (text.empty()) throw eigenformer::FormatError(printable(path) + ": the file is empty; expected UTF-8 text");
  const std::size_t bad = eigenformer::find_invalid_utf8(text);
  if (bad != text.size())
    throw eigenformer::FormatError(printable(path) + ": not UTF-8 text (a binary file?): " + eigenformer::utf8_error_message(text, bad));
  const std::size_t nul = text.find('\0');
  if (nul != std::string::npos)
    throw eigenformer::FormatError(printable(path) + ": byte " + std::to_string(nul) + " is NUL; expected text, not a binary file");
  return text;
}

// The text cut in two: training = [0, cut), validation = [cut, end), cut just after the first line break at or past
// (1 - val_fraction) of the bytes (or there exactly, moved back to a character's start, if no line break follows).
struct TextSplit {
  std::string_view train, validation;
};

inline TextSplit split_text(std::string_view text, double val_fraction) {
  std::size_t cut = static_cast<std::size_t>(double(text.size()) * (1.0 - val_fraction));
  cut = std::min(cut, text.size());
  const std::size_t newline = text.find('\n', cut);
  if (newline != std::string_view::npos && newline + 1 < text.size()) {
    cut = newline + 1;
  } else {
    while (cut > 0 && cut < text.size() && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  }
  return {text.substr(0, cut), text.substr(cut)};
}

// ----------------------------------------------------------------------------------------------------------------------
// Baselines.

// Cross-entropy in nats per token of two count models over the same (previous, next) token pairs the GPT-2's
// validation loss scores:
//   unigram   p(w) = (c(w) + 1) / (N + V)                               add-one (Laplace), counts of the training tokens
//   bigram    p(w | u) = max(c(u w) - d, 0) / c(u) + d n(u) / c(u) p(w)   absolute discounting (Ney et al. 1994) with
//             d = 0.75, n(u) = distinct words seen after u, interpolated with the unigram; p(w) alone for an unseen u.
struct Baselines {
  double unigram = 0, bigram = 0;
};

inline Baselines ngram_baselines(const std::vector<std::int64_t>& train, const std::vector<std::pair<std::int64_t, std::int64_t>>& pairs,
                                 Index vocab_size) {
  const double d = 0.75, N = double(train.size()), V = double(vocab_size);
  std::vector<double> unigram_count(static_cast<std::size_t>(vocab_size), 0.0), context_count(static_cast<std::size_t>(vocab_size), 0.0),
      followers(static_cast<std::size_t>(vocab_size), 0.0);
  std::unordered_map<std::uint64_t, double> bigram_count;
  const auto key = [&](std::int64_t u, std::int64_t w) { return static_cast<std::uint64_t>(u) * static_cast<std::uint64_t>(vocab_size) + static_cast<std::uint64_t>(w); };
  for (std::size_t i = 0; i < train.size(); ++i) {
    unigram_count[static_cast<std::size_t>(train[i])] += 1;
    if (i + 1 < train.size()) {
      double& c = bigram_count[key(train[i], train[i + 1])];
      if (c == 0) followers[static_cast<std::size_t>(train[i])] += 1;
      c += 1;
      context_count[static_cast<std::size_t>(train[i])] += 1;
    }
  }
  Baselines out;
  for (const auto& [u, w] : pairs) {
    const double p_uni = (unigram_count[static_cast<std::size_t>(w)] + 1) / (N + V);
    out.unigram -= std::log(p_uni);
    const double cu = context_count[static_cast<std::size_t>(u)];
    double p_bi = p_uni;
    if (cu > 0) {
      const auto it = bigram_count.find(key(u, w));
      const double c = it == bigram_count.end() ? 0.0 : it->second;
      p_bi = std::max(c - d, 0.0) / cu + d * followers[static_cast<std::size_t>(u)] / cu * p_uni;
    }
    out.bigram -= std::log(p_bi);
  }
  if (!pairs.empty()) out.unigram /= double(pairs.size()), out.bigram /= double(pairs.size());
  return out;
}

// ----------------------------------------------------------------------------------------------------------------------
// Batches and the validation loss.

// Row b of inputs and targets [B, T]: the window of T + 1 tokens starting at `at`, its first T tokens in, its last T
// as the targets.
inline void copy_window(const std::vector<std::int64_t>& tokens, std::size_t at, Index b, eigenformer::Tensor<std::int64_t>& inputs,
                        eigenformer::Tensor<std::int64_t>& targets) {
  const Index T = inputs.dim(1);
  std::copy_n(tokens.begin() + static_cast<std::ptrdiff_t>(at), T, inputs.data() + b * T);
  std::copy_n(tokens.begin() + static_cast<std::ptrdiff_t>(at) + 1, T, targets.data() + b * T);
}

// Batch `step` of a run: batch_size windows at offsets drawn from (seed, step) alone. inputs, targets: [B, T].
inline void make_batch(const std::vector<std::int64_t>& tokens, Index batch_size, Index context, std::uint64_t seed, std::int64_t step,
                       eigenformer::Tensor<std::int64_t>& inputs, eigenformer::Tensor<std::int64_t>& targets) {
  inputs.resize(eigenformer::Shape{batch_size, context});
  targets.resize(eigenformer::Shape{batch_size, context});
  eigenformer::Random rng(seed * 0x9E3779B97F4A7C15ULL ^ (static_cast<std::uint64_t>(step) * 0xD1B54A32D192ED03ULL + 1));
  const std::int64_t offsets = static_cast<std::int64_t>(tokens.size()) - context;  // window starts: [0, offsets)
  for (Index b = 0; b < batch_size; ++b) copy_window(tokens, static_cast<std::size_t>(rng.integer(0, offsets)), b, inputs, targets);
}

// The validation windows: consecutive, non-overlapping windows of context + 1 tokens from the validation part's start,
// as many as fit in max_tokens targets (at least one). Each window's first `context` tokens are the input, the last
// `context` the targets.
inline std::vector<std::size_t> validation_windows(std::size_t tokens, Index context, Index max_tokens) {
  std::vector<std::size_t> starts;
  const std::size_t T = static_cast<std::size_t>(context);
  for (std::size_t at = 0; at + T + 1 <= tokens && (starts.empty() || (starts.size() + 1) * T <= static_cast<std::size_t>(max_tokens)); at += T)
    starts.push_back(at);
  return starts;
}

// Mean cross-entropy (nats per token) of the model over the validation windows, batch_size at a time, no dropout.
inline double validation_loss(const eigenformer::GPT2<float>& model, const std::vector<std::int64_t>& tokens, const std::vector<std::size_t>& starts,
                              Index context, Index batch_size) {
  using namespace eigenformer;
  double sum = 0;
  const Index V = model.config().vocab_size;
  for (std::size_t first = 0; first < starts.size(); first += static_cast<std::size_t>(batch_size)) {
    const Index B = static_cast<Index>(std::min(starts.size() - first, static_cast<std::size_t>(batch_size)));
    Tensor<std::int64_t> inputs(Shape{B, context}), targets(Shape{B, context});
    for (Index b = 0; b < B; ++b) copy_window(tokens, starts[first + static_cast<std::size_t>(b)], b, inputs, targets);
    const Tensor<float> logits = model.forward(inputs);
    sum += cross_entropy_forward<float>(logits.matrix(B * context, V), targets.view().reshaped(Shape{B * context}), CrossEntropyOptions{}) *
           double(B * context);
  }
  return sum / double(starts.size() * static_cast<std::size_t>(context));
}

// ----------------------------------------------------------------------------------------------------------------------
// One step.

struct StepResult {
  double loss = 0, grad_norm = 0;
};

// One optimiser step on a batch: forward (keeping what backward needs; dropout from saved.rng if set), mean
// cross-entropy over the B x T targets, backward, clip the gradients' global norm to `clip` (0: no clipping), AdamW at
// rate lr. The gradients are zero on entry (allocate_gradients, then the previous step) and on return: AdamW applies
// the clipping and zeroes them in its pass over them. Returns the loss before the step and the gradient norm before
// clipping.
template <typename Scalar>
StepResult train_step(eigenformer::GPT2<Scalar>& model, eigenformer::AdamW<Scalar>& adamw, const eigenformer::Tensor<std::int64_t>& inputs,
                      const eigenformer::Tensor<std::int64_t>& targets, double lr, double clip, eigenformer::GPT2Activations<Scalar>& saved,
                      eigenformer::Tensor<Scalar>& dlogits) {
  using namespace eigenformer;
  const Tensor<Scalar> logits = model.forward(inputs, saved);
  const Index N = targets.size(), V = model.config().vocab_size;
  StepResult r;
  const TensorView<const std::int64_t> flat = targets.view().reshaped(Shape{N});
  r.loss = cross_entropy_forward<Scalar>(logits.matrix(N, V), flat, CrossEntropyOptions{});
  dlogits.resize(logits.shape());
  cross_entropy_backward<Scalar>(logits.matrix(N, V), flat, nullptr, CrossEntropyOptions{}, 1.0, dlogits.matrix(N, V), Accumulate::no);
  model.backward(dlogits, saved);
  r.grad_norm = gradient_norm(model);
  adamw.step(model, lr, AdamWStepOptions{clip > 0 ? clip_coefficient(r.grad_norm, clip) : 1.0, /*zero_grad=*/true});
  return r;
}

// ----------------------------------------------------------------------------------------------------------------------
// A run.

// What train() measured, for the summary it prints and the docs.
struct Report {
  double train_seconds = 0;      // this run's steps
  double tokenizer_seconds = 0;  // learning the BPE (0 if none was learnt)
  double tokens_per_second = 0;
  std::size_t train_tokens = 0, val_tokens = 0, val_targets = 0;
  double val_loss = 0;  // at the end (nats per token)
  Baselines baselines;
  std::int64_t parameters = 0;
};

// The AdamW options of every run (nanoGPT's for GPT-2: betas 0.9 / 0.95, eps 1e-8).
inline eigenformer::AdamWOptions adamw_options(const Settings& s) {
  eigenformer::AdamWOptions o;
  o.lr = s.lr, o.beta1 = 0.9, o.beta2 = 0.95, o.eps = 1e-8, o.weight_decay = s.weight_decay;
  return o;
}

inline std::uint64_t text_checksum(std::string_view text) { return eigenformer::detail::fnv1a64(text.data(), text.size()); }

// A tokenizer's two files, as GPT-2 ships them.
struct TokenizerFiles {
  std::string vocab_json, merges_txt;
  std::string vocab_name = "the learnt vocab.json", merges_name = "the learnt merges.txt";  // for messages
};

// The tokenizer of a run: --init's, --tokenizer's, the one a resumed run saved in OUT, or one learnt from `train`.
inline TokenizerFiles run_tokenizer(const Settings& s, const RunOptions& run, std::string_view train, Report& report) {
  using namespace eigenformer;
  const std::string& dir = !run.init.empty() ? run.init : !run.tokenizer.empty() ? run.tokenizer : run.resume ? run.output : std::string();
  if (!dir.empty())
    return {read_file_bounded(dir + "/vocab.json", "a vocab.json", GPT2Tokenizer::max_vocab_json_bytes),
            read_file_bounded(dir + "/merges.txt", "a merges.txt", GPT2Tokenizer::max_merges_txt_bytes), dir + "/vocab.json",
            dir + "/merges.txt"};
  const auto start = std::chrono::steady_clock::now();
  BPETrainerOptions options;
  options.vocab_size = s.vocab_size;
  const TrainedBPE bpe = train_bpe(train, options);
  report.tokenizer_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::fprintf(stderr, "gpt2: learnt a byte-level BPE of %zu tokens (%zu merges) from the training text in %.1f s\n", bpe.tokens.size(),
               bpe.merges.size(), report.tokenizer_seconds);
  return {bpe.vocab_json(), bpe.merges_txt()};
}

// Trains as the top of this file says; prints a summary on stderr and returns what it measured.
inline Report train(Settings s, const RunOptions& run) {
  using namespace eigenformer;
  namespace fs = std::filesystem;
  using detail::printable;
  const std::string checkpoint_path = run.output + "/checkpoint.safetensors", log_path = run.output + "/train_log.tsv";
  std::error_code ec;
  const bool have_checkpoint = fs::symlink_status(checkpoint_path, ec).type() != fs::file_type::not_found;
  if (run.resume && !have_checkpoint)
    throw IoError(printable(checkpoint_path) + ": not found; --resume continues a run from the checkpoint it left");
  if (!run.resume && have_checkpoint && !run.force)
    throw IoError(printable(checkpoint_path) + ": a run is there already; give --resume to continue it or --force to start over");
  if (run.save_dtype != "f32" && run.save_dtype != "bf16") throw RangeError("gpt2 train: --save-dtype " + printable(run.save_dtype) + "; expected f32 or bf16");
  Report report;

  // The text, its two parts, the tokenizer, the tokens.
  const std::string text = read_text(run.text);
  const TextSplit split = split_text(text, s.val_fraction);
  GPT2Config config;
  std::optional<GPT2<float>> init;
  if (!run.init.empty()) {
    init.emplace(load_gpt2<float>(run.init));
    config = init->config();
    s.n_layer = config.n_layer, s.n_head = config.n_head, s.n_embd = config.n_embd, s.vocab_size = config.vocab_size;
    if (s.context > config.n_positions)
      throw RangeError("--context " + std::to_string(s.context) + " is longer than " + printable(run.init) + "'s n_positions " +
                       std::to_string(config.n_positions));
  }
  const TokenizerFiles tokenizer_files = run_tokenizer(s, run, split.train, report);
  const GPT2Tokenizer tokenizer = GPT2Tokenizer::from_text(tokenizer_files.vocab_json, tokenizer_files.merges_txt, {},
                                                           printable(tokenizer_files.vocab_name), printable(tokenizer_files.merges_name));
  if (!run.init.empty() && tokenizer.vocab_size() != config.vocab_size)
    throw FormatError(printable(run.init) + ": vocab.json has " + std::to_string(tokenizer.vocab_size()) + " tokens but config.json says vocab_size " +
                      std::to_string(config.vocab_size));
  s.vocab_size = tokenizer.vocab_size();
  const auto encode = [&](std::string_view part, const char* which) {
    try {
      return tokenizer.encode(part);
    } catch (const Error& e) {
      throw FormatError(printable(run.text) + ": the " + which + " part: " + e.what());
    }
  };
  const std::vector<std::int64_t> train_tokens = encode(split.train, "training"), val_tokens = encode(split.validation, "validation");
  report.train_tokens = train_tokens.size(), report.val_tokens = val_tokens.size();
  if (static_cast<Index>(train_tokens.size()) < s.context + 1 || static_cast<Index>(val_tokens.size()) < s.context + 1)
    throw RangeError(printable(run.text) + ": " + std::to_string(train_tokens.size()) + " training and " + std::to_string(val_tokens.size()) +
                     " validation tokens; each part needs at least --context + 1 = " + std::to_string(s.context + 1) +
                     " (give more text, a shorter --context or another --val-fraction)");
  const std::vector<std::size_t> val_starts = validation_windows(val_tokens.size(), s.context, s.max_val_tokens);
  std::vector<std::pair<std::int64_t, std::int64_t>> val_pairs;
  for (std::size_t at : val_starts)
    for (std::size_t t = 0; t < static_cast<std::size_t>(s.context); ++t) val_pairs.emplace_back(val_tokens[at + t], val_tokens[at + t + 1]);
  report.val_targets = val_pairs.size();
  report.baselines = ngram_baselines(train_tokens, val_pairs, s.vocab_size);

  // The model, the optimiser, the generator (dropout; the batches need none).
  if (!init) {
    config.n_layer = s.n_layer, config.n_head = s.n_head, config.n_embd = s.n_embd, config.n_positions = s.context;
    config.vocab_size = s.vocab_size;
    config.bos_token_id = config.eos_token_id = tokenizer.eos_id();
  }
  config.embd_pdrop = config.resid_pdrop = s.dropout;
  config.attn_pdrop = 0.0;  // not applied in training (models/gpt2.hpp); the saved config says what was done
  config.validate("gpt2 train");
  // Refused before anything is allocated when the machine could never hold it (check_memory_ceiling says why); a
  // std::bad_alloc below gives the same figures.
  const MemoryEstimate need = training_state_memory(estimate_gpt2_memory<float>(config, 1, 1, printable(run.output)), run.output);
  const std::string doing = "training GPT-2 as float (weights, gradients and AdamW's two moments)";
  check_memory_ceiling(need, run.output, doing);
  try {
    GPT2<float> model(config);
    Random rng(s.seed);
    if (init) {
      std::map<std::string, const Tensor<float>*> from;
      init->visit_parameters([&](const std::string& name, Tensor<float>& t) { from[name] = &t; });
      model.visit_parameters([&](const std::string& name, Tensor<float>& t) { t.matrix() = from.at(name)->matrix(); });
      init.reset();
    } else {
      gpt2_normal_init(model, rng);
    }
    allocate_gradients(model);
    AdamW<float> adamw(adamw_options(s));
    WarmupCosineSchedule schedule;
    schedule.peak_lr = s.lr, schedule.min_lr = s.min_lr, schedule.warmup_steps = s.warmup, schedule.end_step = s.steps;
    schedule.lr(1);  // checks the settings before any work
    report.parameters = count_parameters(model);

    // The settings, the text (by checksum) and the starting point make the run: a resumed run must have the same.
    std::map<std::string, std::string> settings = s.as_strings();
    settings["text"] = std::to_string(text.size()) + " bytes, checksum " + detail::hex64(text_checksum(text));
    settings["init"] = run.init.empty() ? "(none)" : printable(run.init);
    TrainingProgress progress;
    std::vector<example_train::LogRow> log;
    if (run.resume) {
      example_train::check_run_settings(checkpoint_path, settings);  // the settings first, then the state
      progress = load_training_checkpoint(checkpoint_path, model, adamw, rng);
      if (progress.step >= s.steps)
        throw RangeError(printable(checkpoint_path) + ": the run is complete (step " + std::to_string(progress.step) + " of " + std::to_string(s.steps) + ")");
      log = example_train::read_log(log_path, progress.step, /*with_validation=*/true);
    } else {
      fs::create_directories(run.output, ec);
      if (ec) throw IoError(printable(run.output) + ": cannot create the directory: " + ec.message());
      example_train::write_file_atomically(run.output + "/vocab.json", tokenizer_files.vocab_json);
      example_train::write_file_atomically(run.output + "/merges.txt", tokenizer_files.merges_txt);
    }
    progress.info = settings;

    const auto save_state = [&] {
      save_training_checkpoint(checkpoint_path, model, adamw, rng, progress);
      example_train::write_file_atomically(log_path, example_train::log_text(log, true));
      example_train::write_file_atomically(run.output + "/loss.svg", example_train::loss_svg(log, "gpt2 train: loss by step (nats per token)"));
    };

    GPT2Activations<float> saved;
    if (s.dropout > 0) saved.rng = &rng;
    Tensor<std::int64_t> inputs, targets;
    Tensor<float> dlogits;
    const std::int64_t last = run.stop_after > 0 ? std::min(run.stop_after, s.steps) : s.steps;
    std::fprintf(stderr,
                 "gpt2: training %lld layers, n_embd %lld, %lld heads, context %lld, vocabulary %lld (%lld parameters) on %zu tokens, "
                 "validating on %zu; steps %lld to %lld of %lld, %lld windows a step, peak lr %s, seed %llu, %d threads\n",
                 static_cast<long long>(config.n_layer), static_cast<long long>(config.n_embd), static_cast<long long>(config.n_head),
                 static_cast<long long>(s.context), static_cast<long long>(config.vocab_size), static_cast<long long>(report.parameters),
                 train_tokens.size(), report.val_targets, static_cast<long long>(progress.step + 1), static_cast<long long>(last),
                 static_cast<long long>(s.steps), static_cast<long long>(s.batch_size), detail::number_text(s.lr).c_str(),
                 static_cast<unsigned long long>(s.seed), num_threads());
    example_cli::Progress bar(progress.step, s.steps, run.log_every);
    double tokens = 0;
    for (std::int64_t step = progress.step + 1; step <= last; ++step) {
      make_batch(train_tokens, s.batch_size, s.context, s.seed, step, inputs, targets);
      const double lr = schedule.lr(step);
      const StepResult r = train_step(model, adamw, inputs, targets, lr, s.clip, saved, dlogits);
      if (!std::isfinite(r.loss))
        throw RangeError("gpt2 train: the loss is " + detail::number_text(r.loss) + " at step " + std::to_string(step) +
                         "; the run diverged (try a lower --lr); the last checkpoint is unchanged");
      progress.step = step;
      example_train::LogRow row{step, r.loss, lr, r.grad_norm};
      if ((run.eval_every > 0 && step % run.eval_every == 0) || step == s.steps) {
        row.val_loss = validation_loss(model, val_tokens, val_starts, s.context, s.batch_size);
        bar.note("validation loss " + detail::number_text(row.val_loss));
      }
      log.push_back(row);
      tokens += double(s.batch_size * s.context);
      bar.update(step, r.loss, tokens);
      if (run.checkpoint_every > 0 && step % run.checkpoint_every == 0 && step != last) save_state();
    }
    report.train_seconds = bar.seconds();
    report.tokens_per_second = report.train_seconds > 0 ? tokens / report.train_seconds : 0.0;
    save_state();
    if (last < s.steps) return report;  // stopped early: the checkpoint is the run's output until it resumes
    report.val_loss = log.back().val_loss;

    // The model in Hugging Face's layout, written beside and renamed in: a failure leaves the directory's last model.
    const std::string staging = run.output + "/.model.tmp";
    fs::remove_all(staging, ec);
    fs::create_directories(staging, ec);
    if (ec) throw IoError(printable(staging) + ": cannot create the directory: " + ec.message());
    save_gpt2(model, staging, run.save_dtype == "bf16" ? DType::BF16 : DType::F32);
    for (const char* name : {"/model.safetensors", "/config.json"})
      if (std::rename((staging + name).c_str(), (run.output + name).c_str()) != 0)
        throw IoError(printable(run.output + name) + ": cannot rename the new file over it: " + std::strerror(errno));
    fs::remove_all(staging, ec);
    std::fprintf(stderr,
                 "gpt2: validation loss %.4f nats/token (perplexity %.1f) over %zu tokens; unigram %.4f, bigram %.4f (counted on the %zu "
                 "training tokens)\n",
                 report.val_loss, std::exp(report.val_loss), report.val_targets, report.baselines.unigram, report.baselines.bigram,
                 report.train_tokens);
    return report;
  } catch (const std::bad_alloc&) {
    throw out_of_memory_error(need, run.output, doing);
  }
}

}  // namespace gpt2_train
