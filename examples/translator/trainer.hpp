// examples/translator/trainer.hpp: trains the encoder-decoder Transformer from scratch on a parallel corpus
// (translator make-corpus writes one), as `translator train` runs it, and measures it as `translator eval` does.
//
// A run, step by step (train()):
//   words -> ids     word vocabularies of the training split (text/word_vocabulary.hpp), BOS + ids + EOS each side
//   start            Xavier-uniform weights from --seed (train/init.hpp), AdamW (betas 0.9, 0.98, eps 1e-9)
//   each step s      the batches of a seeded shuffle of the training pairs (epoch e's order from seed and e alone,
//                    so step s reads the same pairs in a run resumed from any checkpoint), teacher forcing
//                    (train/seq2seq_batch.hpp), label-smoothed cross-entropy ignoring padding, backward, gradient
//                    clipping, AdamW at the warmup + cosine rate of step s
//   every N steps    a checkpoint (train/train_checkpoint.hpp: weights, AdamW's moments, the step, the generator;
//                    written to a temporary file and renamed), the loss log and the loss curve as SVG
//   at the end       the model in the tutorial's layout (config.json + model.safetensors, which PyTorch loads
//                    strictly) beside src_vocab.json and tgt_vocab.json: the directory `translate --model` reads.
// What a run writes into its directory (OUT):
//   config.json, model.safetensors, src_vocab.json, tgt_vocab.json   the trained model
//   checkpoint.safetensors                                           the state to --resume from
//   train_log.tsv                                                    step, loss, learning rate, gradient norm
//   loss.svg                                                         the loss curve
// A resumed run continues bit for bit as the run it resumes would have: same pairs, same rates, same weights.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <new>
#include <numeric>
#include <sstream>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <eigenformer/core/error.hpp>
#include <eigenformer/core/random.hpp>
#include <eigenformer/core/threading.hpp>
#include <eigenformer/generate/beam_search.hpp>
#include <eigenformer/generate/translate.hpp>
#include <eigenformer/io/memory_budget.hpp>
#include <eigenformer/io/parameters.hpp>
#include <eigenformer/io/pytorch_transformer.hpp>
#include <eigenformer/io/safetensors.hpp>
#include <eigenformer/models/transformer.hpp>
#include <eigenformer/text/word_vocabulary.hpp>
#include <eigenformer/train/bleu.hpp>
#include <eigenformer/train/adamw.hpp>
#include <eigenformer/train/clip.hpp>
#include <eigenformer/train/cross_entropy.hpp>
#include <eigenformer/train/gradients.hpp>
#include <eigenformer/train/init.hpp>
#include <eigenformer/train/schedule.hpp>
#include <eigenformer/train/seq2seq_batch.hpp>
#include <eigenformer/train/train_checkpoint.hpp>

#include "../progress.hpp"
#include "../train_files.hpp"
#include "toy_corpus.hpp"

namespace translator_train {

using eigenformer::Index;
using example_train::LogRow;

// Everything that decides what a run computes. Saved in the checkpoint and compared on --resume: a run continues
// only with the settings it started with (threads and checkpoint spacing excepted: they change no value).
struct Settings {
  // The model (TransformerConfig; the vocabularies come from the corpus).
  Index d_model = 128, heads = 4, encoder_layers = 2, decoder_layers = 2, d_ff = 512;
  bool norm_first = true;
  Index max_len = 32;  // positions: sources and targets with BOS and EOS are at most toy_corpus::max_words + 2
  // The optimisation.
  Index batch_size = 64;
  std::int64_t steps = 1000;
  double lr = 1e-3, min_lr = 1e-4;
  std::int64_t warmup = 100;
  double label_smoothing = 0.1, weight_decay = 0.01, clip = 1.0;
  double dropout = 0.1;  // the tutorial's, everywhere nn.Transformer puts it; masks drawn from the run's generator
  std::uint64_t seed = 1;

  std::map<std::string, std::string> as_strings() const {
    return {{"d_model", std::to_string(d_model)},
            {"heads", std::to_string(heads)},
            {"encoder_layers", std::to_string(encoder_layers)},
            {"decoder_layers", std::to_string(decoder_layers)},
            {"d_ff", std::to_string(d_ff)},
            {"norm_first", norm_first ? "true" : "false"},
            {"max_len", std::to_string(max_len)},
            {"batch_size", std::to_string(batch_size)},
            {"steps", std::to_string(steps)},
            {"lr", eigenformer::detail::number_text(lr)},
            {"min_lr", eigenformer::detail::number_text(min_lr)},
            {"warmup", std::to_string(warmup)},
            {"label_smoothing", eigenformer::detail::number_text(label_smoothing)},
            {"weight_decay", eigenformer::detail::number_text(weight_decay)},
            {"clip", eigenformer::detail::number_text(clip)},
            {"dropout", eigenformer::detail::number_text(dropout)},
            {"seed", std::to_string(seed)}};
  }
};

// The corpus as ids: each side BOS + words + EOS.
struct EncodedPairs {
  std::vector<std::vector<std::int64_t>> sources, targets;
};

// Ids of every pair; a word outside a vocabulary is a RangeError naming the file, the line and the word.
inline EncodedPairs encode_pairs(const std::vector<toy_corpus::Pair>& pairs, const eigenformer::WordVocabulary& src_vocab,
                                 const eigenformer::WordVocabulary& tgt_vocab, const std::string& name, Index max_len) {
  using eigenformer::WordVocabulary;
  EncodedPairs out;
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    const std::string where = name + ": line " + std::to_string(i + 1);
    for (int side = 0; side < 2; ++side) {
      std::vector<std::int64_t> ids{WordVocabulary::bos_id};
      try {
        const std::vector<std::int64_t> words = (side == 0 ? src_vocab : tgt_vocab).encode(side == 0 ? pairs[i].first : pairs[i].second);
        ids.insert(ids.end(), words.begin(), words.end());
      } catch (const eigenformer::RangeError& e) {
        throw eigenformer::RangeError(where + ": " + (side == 0 ? "English: " : "Spanish: ") + e.what());
      }
      ids.push_back(WordVocabulary::eos_id);
      if (static_cast<Index>(ids.size()) > max_len)
        throw eigenformer::RangeError(where + ": " + std::to_string(ids.size() - 2) + " words (" + std::to_string(ids.size()) +
                                      " tokens with BOS and EOS) do not fit the model's max_len " + std::to_string(max_len));
      (side == 0 ? out.sources : out.targets).push_back(std::move(ids));
    }
  }
  return out;
}

inline eigenformer::TransformerConfig model_config(const Settings& s, Index src_vocab, Index tgt_vocab) {
  eigenformer::TransformerConfig c;
  c.d_model = s.d_model;
  c.num_heads = s.heads;
  c.num_encoder_layers = s.encoder_layers;
  c.num_decoder_layers = s.decoder_layers;
  c.d_ff = s.d_ff;
  c.activation = eigenformer::Activation::relu;
  c.norm_first = s.norm_first;
  c.src_vocab_size = src_vocab;
  c.tgt_vocab_size = tgt_vocab;
  c.max_len = s.max_len;
  c.dropout = s.dropout;
  c.bos_id = eigenformer::WordVocabulary::bos_id;
  c.eos_id = eigenformer::WordVocabulary::eos_id;
  c.pad_id = eigenformer::WordVocabulary::pad_id;
  c.validate("translator train");
  return c;
}

// The order in which epoch `epoch` visits the pairs: a Fisher-Yates shuffle drawn from the seed and the epoch alone.
inline std::vector<std::size_t> epoch_order(std::size_t pairs, std::uint64_t seed, std::int64_t epoch) {
  std::vector<std::size_t> order(pairs);
  std::iota(order.begin(), order.end(), std::size_t(0));
  eigenformer::Random rng(seed * 0x9E3779B97F4A7C15ULL + static_cast<std::uint64_t>(epoch) + 1);
  for (std::size_t i = pairs; i > 1; --i) std::swap(order[i - 1], order[static_cast<std::size_t>(rng.integer(0, std::int64_t(i) - 1))]);
  return order;
}

// What a run reports as it goes (the CLI prints it).
struct RunOptions {
  std::string corpus, output;
  std::int64_t checkpoint_every = 500;  // 0: only at the end
  bool resume = false, force = false;
  std::int64_t stop_after = 0;  // > 0: end this run after that step, with a checkpoint (the rest: --resume)
  std::int64_t log_every = 0;  // plain progress lines every N steps when not on a terminal (0: ~20 a run)
};

// Trains as the top of this file says. Returns the seconds the training steps took (this run's).
inline double train(const Settings& s, const RunOptions& run) {
  using namespace eigenformer;
  namespace fs = std::filesystem;
  const std::string checkpoint_path = run.output + "/checkpoint.safetensors", log_path = run.output + "/train_log.tsv";
  std::error_code ec;
  const bool have_checkpoint = fs::symlink_status(checkpoint_path, ec).type() != fs::file_type::not_found;
  if (run.resume && !have_checkpoint)
    throw IoError(detail::printable(checkpoint_path) + ": not found; --resume continues a run from the checkpoint it left");
  if (!run.resume && have_checkpoint && !run.force)
    throw IoError(detail::printable(checkpoint_path) + ": a run is there already; give --resume to continue it or --force to start over");
  if (s.steps < 1) throw RangeError("translator train: --steps is " + std::to_string(s.steps) + "; expected at least 1");

  // The data: the corpus's training split, its vocabularies, the pairs as ids.
  const std::vector<toy_corpus::Pair> pairs = toy_corpus::read_pairs(run.corpus + "/train.tsv");
  std::vector<std::string> english, spanish;
  for (const auto& p : pairs) english.push_back(p.first), spanish.push_back(p.second);
  const WordVocabulary src_vocab = WordVocabulary::build(english), tgt_vocab = WordVocabulary::build(spanish);
  const EncodedPairs data = encode_pairs(pairs, src_vocab, tgt_vocab, detail::printable(run.corpus + "/train.tsv"), s.max_len);
  const std::size_t batches_per_epoch = std::max<std::size_t>(1, pairs.size() / static_cast<std::size_t>(s.batch_size));
  if (pairs.size() < static_cast<std::size_t>(s.batch_size))
    throw RangeError(detail::printable(run.corpus + "/train.tsv") + ": " + std::to_string(pairs.size()) + " pairs, fewer than one batch of " +
                     std::to_string(s.batch_size));

  // The model, the optimiser, the generator (the checkpoint's "rng"; the data order needs none).
  const TransformerConfig config = model_config(s, src_vocab.size(), tgt_vocab.size());
  // Refused before anything is allocated when the machine could never hold it (check_memory_ceiling says why); a
  // std::bad_alloc below gives the same figures.
  const MemoryEstimate need = training_state_memory(estimate_transformer_memory<float>(config, 1, 1, detail::printable(run.output)), run.output);
  const std::string doing = "training the Seq2SeqTransformer as float (weights, gradients and AdamW's two moments)";
  check_memory_ceiling(need, run.output, doing);
  try {
    Transformer<float> model(config);
    Random rng(s.seed);
    xavier_uniform_init(model, rng);
    allocate_gradients(model);
    AdamWOptions adamw_options;
    adamw_options.lr = s.lr, adamw_options.beta1 = 0.9, adamw_options.beta2 = 0.98, adamw_options.eps = 1e-9;
    adamw_options.weight_decay = s.weight_decay;
    AdamW<float> adamw(adamw_options);
    WarmupCosineSchedule schedule;
    schedule.peak_lr = s.lr, schedule.min_lr = s.min_lr, schedule.warmup_steps = s.warmup, schedule.end_step = s.steps;
    schedule.lr(1);  // checks the settings before any work

    TrainingProgress progress;
    std::vector<LogRow> log;
    // The settings and the training pairs (by checksum) make the run: a resumed run must have the same.
    std::map<std::string, std::string> settings = s.as_strings();
    std::uint64_t corpus_hash = 14695981039346656037ULL;
    for (const auto& p : pairs)
      for (const std::string* side : {&p.first, &p.second}) corpus_hash = corpus_hash * 1099511628211ULL ^ detail::fnv1a64(side->data(), side->size());
    settings["train_pairs"] = std::to_string(pairs.size()) + " pairs, checksum " + detail::hex64(corpus_hash);
    if (run.resume) {
      example_train::check_run_settings(checkpoint_path, settings);  // the settings first, then the state
      progress = load_training_checkpoint(checkpoint_path, model, adamw, rng);
      if (progress.step >= s.steps)
        throw RangeError(detail::printable(checkpoint_path) + ": the run is complete (step " + std::to_string(progress.step) + " of " +
                         std::to_string(s.steps) + ")");
      log = example_train::read_log(log_path, progress.step);
    } else {
      fs::create_directories(run.output, ec);
      if (ec) throw IoError(detail::printable(run.output) + ": cannot create the directory: " + ec.message());
    }
    src_vocab.save(run.output + "/src_vocab.json");
    tgt_vocab.save(run.output + "/tgt_vocab.json");
    progress.info = settings;

    const auto save_state = [&] {
      save_training_checkpoint(checkpoint_path, model, adamw, rng, progress);
      example_train::write_file_atomically(log_path, example_train::log_text(log));
      example_train::write_file_atomically(run.output + "/loss.svg", example_train::loss_svg(log, "translator train: loss by step"));
    };

    CrossEntropyOptions ce;
    ce.ignore_index = config.pad_id;
    ce.label_smoothing = s.label_smoothing;
    TransformerActivations<float> saved;
    saved.rng = &rng;  // dropout masks, drawn in order: the checkpoint's generator state resumes them
    Tensor<float> dlogits;
    std::vector<std::size_t> order;
    std::int64_t order_epoch = -1;
    std::vector<const std::vector<std::int64_t>*> src_rows, tgt_rows;
    const std::int64_t last = run.stop_after > 0 ? std::min(run.stop_after, s.steps) : s.steps;
    std::fprintf(stderr, "translator: training %lld + %lld layers, d_model %lld, %lld heads, d_ff %lld (%lld parameters) on %zu pairs; steps %lld to %lld "
                 "of %lld, %lld pairs a step, peak lr %s, seed %llu, %d threads\n",
                 static_cast<long long>(s.encoder_layers), static_cast<long long>(s.decoder_layers), static_cast<long long>(s.d_model),
                 static_cast<long long>(s.heads), static_cast<long long>(s.d_ff), static_cast<long long>(count_parameters(model)), pairs.size(),
                 static_cast<long long>(progress.step + 1), static_cast<long long>(last), static_cast<long long>(s.steps),
                 static_cast<long long>(s.batch_size), detail::number_text(s.lr).c_str(), static_cast<unsigned long long>(s.seed), num_threads());
    example_cli::Progress bar(progress.step, s.steps, run.log_every);
    double tokens = 0;
    for (std::int64_t step = progress.step + 1; step <= last; ++step) {
      // The pairs of this step: batch (step - 1) of the run, in its epoch's order.
      const std::int64_t global = step - 1;
      const std::int64_t epoch = global / static_cast<std::int64_t>(batches_per_epoch);
      const std::size_t first = static_cast<std::size_t>(global % static_cast<std::int64_t>(batches_per_epoch)) * static_cast<std::size_t>(s.batch_size);
      if (epoch != order_epoch) order = epoch_order(pairs.size(), s.seed, epoch), order_epoch = epoch;
      src_rows.clear(), tgt_rows.clear();
      for (std::size_t i = first; i < first + static_cast<std::size_t>(s.batch_size); ++i)
        src_rows.push_back(&data.sources[order[i]]), tgt_rows.push_back(&data.targets[order[i]]);
      const Seq2SeqBatch batch = make_seq2seq_batch(src_rows, tgt_rows, config.pad_id);

      // The gradients are zero here: allocate_gradients, then each AdamW step leaves them so.
      const Tensor<float> logits = model.forward(batch.src, batch.src_lengths, batch.tgt, batch.tgt_lengths, saved);
      const Index N = batch.targets.size(), V = config.tgt_vocab_size;
      const double loss = cross_entropy_forward<float>(logits.matrix(N, V), batch.targets, ce);
      if (!std::isfinite(loss))
        throw RangeError("translator train: the loss is " + detail::number_text(loss) + " at step " + std::to_string(step) +
                         "; the run diverged (try a lower --lr); the last checkpoint is unchanged");
      dlogits.resize(logits.shape());
      cross_entropy_backward<float>(logits.matrix(N, V), batch.targets, nullptr, ce, 1.0, dlogits.matrix(N, V), Accumulate::no);
      model.backward(dlogits, saved);
      const double norm = gradient_norm(model);
      const double lr = schedule.lr(step);
      adamw.step(model, lr, AdamWStepOptions{clip_coefficient(norm, s.clip), /*zero_grad=*/true});  // clip, step, zero in one pass

      progress.step = step;
      log.push_back({step, loss, lr, norm});
      tokens += double(batch.tokens);
      bar.update(step, loss, tokens);
      if (run.checkpoint_every > 0 && step % run.checkpoint_every == 0 && step != last) save_state();
    }
    const double seconds = bar.seconds();
    save_state();
    if (last < s.steps) return seconds;  // stopped early: the checkpoint is the run's output until it resumes
    // The model, in the tutorial's layout, written beside and renamed in: a failure leaves the directory's last model.
    const std::string staging = run.output + "/.model.tmp";
    fs::remove_all(staging, ec);
    fs::create_directories(staging, ec);
    if (ec) throw IoError(detail::printable(staging) + ": cannot create the directory: " + ec.message());
    save_transformer(model, staging);
    for (const char* name : {"/model.safetensors", "/config.json"})
      if (std::rename((staging + name).c_str(), (run.output + name).c_str()) != 0)
        throw IoError(detail::printable(run.output + name) + ": cannot rename the new file over it: " + std::strerror(errno));
    fs::remove_all(staging, ec);
    return seconds;
  } catch (const std::bad_alloc&) {
    throw out_of_memory_error(need, run.output, doing);
  }
}

// ----------------------------------------------------------------------------------------------------------------------
// Evaluation.

// A trained model directory: the model and its vocabularies.
struct TrainedModel {
  eigenformer::Transformer<float> model;
  eigenformer::WordVocabulary src_vocab, tgt_vocab;
};

inline TrainedModel load_trained(const std::string& dir, const eigenformer::ModelLoadOptions& load = {}) {
  using namespace eigenformer;
  WordVocabulary src = WordVocabulary::load(dir + "/src_vocab.json"), tgt = WordVocabulary::load(dir + "/tgt_vocab.json");
  Transformer<float> model = load_transformer<float>(dir, load);
  const TransformerConfig& c = model.config();
  if (src.size() != c.src_vocab_size || tgt.size() != c.tgt_vocab_size)
    throw FormatError(detail::printable(dir) + ": the vocabularies hold " + std::to_string(src.size()) + " and " + std::to_string(tgt.size()) +
                      " words; config.json says src_vocab_size " + std::to_string(c.src_vocab_size) + " and tgt_vocab_size " +
                      std::to_string(c.tgt_vocab_size));
  return {std::move(model), std::move(src), std::move(tgt)};
}

struct Evaluation {
  std::size_t sentences = 0, exact = 0;  // exact: outputs equal to the reference, word for word
  eigenformer::BleuScore bleu;
  double seconds = 0;
  double exact_match() const { return sentences ? double(exact) / double(sentences) : 0.0; }
};

// What a person types, as the corpus writes it: ASCII letters lowercased, spaces at either end and one final . ! or ?
// dropped ("The red cars are not fast." -> "the red cars are not fast").
inline std::string normalize_sentence(std::string text) {
  for (char& ch : text)
    if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
  const auto space = [](char ch) { return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n'; };
  while (!text.empty() && space(text.back())) text.pop_back();
  if (!text.empty() && (text.back() == '.' || text.back() == '!' || text.back() == '?')) text.pop_back();
  while (!text.empty() && space(text.back())) text.pop_back();
  std::size_t start = 0;
  while (start < text.size() && space(text[start])) ++start;
  return text.substr(start);
}

// Translates sources (BOS + ids + EOS each) greedily (beam 1) or by beam search, batch_size at a time; the target ids
// without BOS and EOS, and whether each stopped at EOS.
inline std::vector<eigenformer::GenerationResult> translate_ids(const eigenformer::Transformer<float>& model,
                                                                 const std::vector<std::vector<std::int64_t>>& sources, Index beam,
                                                                 double length_penalty, Index batch_size = 128) {
  using namespace eigenformer;
  std::vector<GenerationResult> out;
  for (std::size_t first = 0; first < sources.size(); first += static_cast<std::size_t>(batch_size)) {
    const std::size_t last = std::min(sources.size(), first + static_cast<std::size_t>(batch_size));
    const std::vector<std::vector<std::int64_t>> batch(sources.begin() + long(first), sources.begin() + long(last));
    if (beam == 1) {
      TranslateOptions options;
      options.max_new_tokens = model.config().max_len - 1;
      for (GenerationResult& r : translate(model, batch, options)) out.push_back(std::move(r));
    } else {
      BeamSearchOptions options;
      options.beam = beam;
      options.length_penalty = length_penalty;
      options.max_new_tokens = model.config().max_len - 1;
      for (BeamSearchResult& r : beam_search(model, batch, options)) out.push_back(std::move(r));
    }
  }
  return out;
}

// Translates every source of `pairs` and scores the outputs against their references.
inline Evaluation evaluate(const TrainedModel& m, const std::vector<toy_corpus::Pair>& pairs, const std::string& name, Index beam = 1,
                           double length_penalty = 0.6) {
  using namespace eigenformer;
  const auto start = std::chrono::steady_clock::now();
  const EncodedPairs data = encode_pairs(pairs, m.src_vocab, m.tgt_vocab, name, m.model.config().max_len);
  Evaluation out;
  std::vector<std::vector<std::int64_t>> hypotheses, references;
  std::vector<GenerationResult> results = translate_ids(m.model, data.sources, beam, length_penalty);
  for (std::size_t i = 0; i < results.size(); ++i) {
    const std::vector<std::int64_t>& target = data.targets[i];
    std::vector<std::int64_t> ref(target.begin() + 1, target.end() - 1);
    out.exact += results[i].ids == ref;  // ids: without the EOS that ended them
    hypotheses.push_back(std::move(results[i].ids));
    references.push_back(std::move(ref));
  }
  out.sentences = pairs.size();
  out.bleu = corpus_bleu(hypotheses, references);
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return out;
}

}  // namespace translator_train
