// translator: trains an encoder-decoder Transformer on a toy English -> Spanish corpus and translates with it; also runs
// a model saved in the PyTorch translation tutorial's layout (config.json + model.safetensors).
//   translator make-corpus --output DATA                    (DATA/train.tsv, DATA/test.tsv: toy_corpus.hpp, docs/toy_corpus.md)
//   translator train --corpus DATA --output MODEL [--steps N] [--resume] ...   (trainer.hpp)
//   translator eval --model MODEL --corpus DATA [--beam N]  (exact match and corpus BLEU on DATA/test.tsv, greedy and beam)
//   translator translate --model MODEL "the red cars are not fast" [...] [--beam N] [--length-penalty A]
//   translator translate --model DIR --src-ids "5 9 23 7" [--src-ids "..."] [--max-new-tokens N] [--threads N]
//                        [--batch-size N] [--memory-budget 2G]
//   translator translate --model MODEL "the red car" --explain page.html [--dump-activations acts.safetensors]
//                        (one sentence: its cross-attention and word probabilities as a page; docs/inspect.md)
//   translator resave --model DIR --output DIR2             (writes the model again in the same layout, F32)
// translate reads words when MODEL holds src_vocab.json and tgt_vocab.json (what train writes) and ids otherwise (a
// tutorial model, or --src-ids). Without sentences or --src-ids it reads one source per line of standard input (at
// most 1 MiB a line and 64 MiB in all; a failed read is an error, not the end of the sources). All sources go through
// the model as padded batches (--batch-size at a time) and come out one line each, in order: the Spanish words, or
// the target ids without BOS and EOS.
// Errors are one line on stderr and exit status 1; a translation cut by max_len is reported on stderr. The options
// are declared and checked in translator_cli.hpp.
#include <CLI/CLI.hpp>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <iostream>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <eigenformer/core/threading.hpp>
#include <eigenformer/generate/beam_search.hpp>
#include <eigenformer/generate/translate.hpp>
#include <eigenformer/inspect/explain.hpp>
#include <eigenformer/inspect/recorder.hpp>
#include <eigenformer/io/parameters.hpp>
#include <eigenformer/io/pytorch_transformer.hpp>

#include "toy_corpus.hpp"
#include "translator_cli.hpp"

using namespace eigenformer;

namespace {

using translator_cli::Arguments;
using translator_cli::parse_ids;

// --explain and --dump-activations for one source (BOS + ids + EOS) and its translation `out` (ids without BOS and
// EOS): the model runs once more over them, teacher-forced and watched by a Recorder (eigenformer/inspect/). Decoder
// position t reads target token t (BOS first) and chose token t + 1, so each row of the page is labelled with the word
// it chose and shows what the model looked at while choosing it.
void inspect_translation(const Transformer<float>& model, const std::vector<std::int64_t>& source, const GenerationResult& out,
                         const std::function<std::string(std::int64_t)>& src_label, const std::function<std::string(std::int64_t)>& tgt_label,
                         const Arguments& args) {
  const TransformerConfig& c = model.config();
  std::vector<std::int64_t> target{c.bos_id}, chosen = out.ids;
  target.insert(target.end(), out.ids.begin(), out.ids.end());
  if (out.stop == StopReason::eos) chosen.push_back(c.eos_id);
  else target.pop_back();  // no word was chosen after the last one
  const Index S = static_cast<Index>(source.size()), T = static_cast<Index>(target.size());
  Tensor<std::int64_t> src(Shape{1, S}), tgt(Shape{1, T});
  std::copy(source.begin(), source.end(), src.data());
  std::copy(target.begin(), target.end(), tgt.data());
  Recorder<float> recorded;
  if (args.dump_activations.empty()) recorded = Recorder<float>({Probe::attention_weights, Probe::residual, Probe::logits});
  const Tensor<float> memory = model.encode(src, {S}, &recorded);
  model.decode(tgt, {T}, memory, {S}, &recorded);

  if (!args.dump_activations.empty()) {
    recorded.save(args.dump_activations, DType::F32, {{"source_ids", example_cli::ids_text(source)}, {"target_ids", example_cli::ids_text(target)}});
    std::cerr << "translator: wrote " << recorded.names().size() << " tensors to " << args.dump_activations << "\n";
  }
  if (args.explain.empty()) return;

  std::vector<std::string> src_words, tgt_in, tgt_out;
  for (std::int64_t id : source) src_words.push_back(src_label(id));
  for (std::int64_t id : target) tgt_in.push_back(tgt_label(id));
  for (std::int64_t id : chosen) tgt_out.push_back(tgt_label(id));
  ExplainData page;
  page.title = "Translator " + args.model;
  page.subtitle = std::to_string(c.num_encoder_layers) + " encoder and " + std::to_string(c.num_decoder_layers) + " decoder layers, " +
                  std::to_string(c.num_heads) + " heads, d_model " + std::to_string(c.d_model) + "; " +
                  (args.beam == 1 ? std::string("greedy") : "beam " + std::to_string(args.beam)) +
                  ". Rows are the target words each position chose.";
  page.views.push_back(attention_view(recorded, "cross-attention (target word chosen x source word)", "decoder.layers", c.num_decoder_layers,
                                      "cross_attn", tgt_out, src_words));
  page.views.push_back(attention_view(recorded, "decoder self-attention (target word chosen x target word read)", "decoder.layers",
                                      c.num_decoder_layers, "self_attn", tgt_out, tgt_in));
  page.views.push_back(attention_view(recorded, "encoder self-attention", "encoder.layers", c.num_encoder_layers, "self_attn", src_words, src_words));
  page.temperatures = default_temperatures();
  std::vector<std::pair<Index, std::int64_t>> steps;
  for (Index t = 0; t < T; ++t) steps.emplace_back(t, chosen[static_cast<std::size_t>(t)]);
  page.steps = next_token_steps(recorded.at("logits"), steps, std::min<Index>(10, c.tgt_vocab_size), page.temperatures, tgt_label);
  for (NextTokenStep& step : page.steps) step.context = tgt_in[static_cast<std::size_t>(step.position)];
  page.residual = residual_norms(recorded, "decoder.layers", c.num_decoder_layers, tgt_in);
  write_explain_html(page, args.explain);
  std::cerr << "translator: wrote " << args.explain << " (" << S << " source and " << T << " target tokens)\n";
}

// How the model is loaded for `sources` sources: the memory budget, and a KV cache for the rows translated at once
// (--batch-size sources, each --beam times).
ModelLoadOptions load_options(const Arguments& args, std::size_t sources) {
  ModelLoadOptions load;
  load.memory_budget = args.memory_budget_bytes;
  load.batch = std::max<Index>(1, std::min<Index>(args.batch_size, static_cast<Index>(sources))) * args.beam;
  return load;
}

// translate_words, once the model is loaded: each text to ids, translated, and its words printed.
int translate_texts(const Arguments& args, const translator_train::TrainedModel& m, const std::vector<std::string>& texts,
                    const std::vector<std::string>& names) {
  std::vector<std::vector<std::int64_t>> sources;
  for (std::size_t i = 0; i < texts.size(); ++i) {
    const std::string text = translator_train::normalize_sentence(texts[i]);
    if (text.empty()) throw RangeError(names[i] + ": is empty; expected an English sentence");
    std::vector<std::int64_t> ids{WordVocabulary::bos_id};
    try {
      for (std::int64_t id : m.src_vocab.encode(text)) ids.push_back(id);
    } catch (const RangeError& e) {
      throw RangeError(names[i] + ": " + e.what());
    }
    ids.push_back(WordVocabulary::eos_id);
    if (static_cast<Index>(ids.size()) > m.model.config().max_len)
      throw RangeError(names[i] + ": " + std::to_string(ids.size() - 2) + " words do not fit the model's max_len " +
                       std::to_string(m.model.config().max_len) + " (with BOS and EOS)");
    sources.push_back(std::move(ids));
  }
  const std::vector<GenerationResult> out = translator_train::translate_ids(m.model, sources, args.beam, args.length_penalty, args.batch_size);
  for (std::size_t i = 0; i < out.size(); ++i) {
    std::cout << m.tgt_vocab.decode(out[i].ids) << "\n";
    if (out[i].stop != StopReason::eos) std::cerr << "translator: " << names[i] << ": stopped at the model's max_len before EOS\n";
  }
  std::cout.flush();
  if (!args.explain.empty() || !args.dump_activations.empty())
    inspect_translation(m.model, sources[0], out[0], [&](std::int64_t id) { return m.src_vocab.word(id); },
                        [&](std::int64_t id) { return m.tgt_vocab.word(id); }, args);
  return 0;
}

// Words in, words out: a model that `train` wrote, with its vocabularies.
int translate_words(const Arguments& args) {
  std::vector<std::string> texts = args.sentences, names;
  if (texts.empty()) {
    eigenformer::BoundedReader in = translator_cli::standard_input();
    for (std::string line; in.read_line(line, translator_cli::max_stdin_line_bytes);) {
      texts.push_back(line);
      names.push_back("line " + std::to_string(in.lines()));
    }
  } else {
    for (std::size_t i = 0; i < texts.size(); ++i) names.push_back("sentence " + std::to_string(i + 1));
  }
  const ModelLoadOptions load = load_options(args, texts.size());
  const translator_train::TrainedModel m = translator_train::load_trained(args.model, load);
  // Out of memory past loading (the KV cache, activations) is reported with the model's figures too.
  const MemoryEstimate need = estimate_transformer_memory<float>(m.model.config(), load.batch, load.context, args.model);
  return with_memory_estimate(need, args.model, "translating with the Seq2SeqTransformer as float", [&] { return translate_texts(args, m, texts, names); });
}

// translate with ids, once the sources are read and the model loaded: --batch-size sources at a time, one line of ids each.
int translate_sources(const Arguments& args, const Transformer<float>& model, const std::vector<std::vector<std::int64_t>>& sources,
                      const std::vector<std::string>& names) {
  TranslateOptions options;
  options.max_new_tokens = args.max_new_tokens;
  BeamSearchOptions beam;
  beam.beam = args.beam;
  beam.length_penalty = args.length_penalty;
  beam.max_new_tokens = args.max_new_tokens;
  for (std::size_t first = 0; first < sources.size(); first += static_cast<std::size_t>(args.batch_size)) {
    const std::size_t last = std::min(sources.size(), first + static_cast<std::size_t>(args.batch_size));
    const std::vector<std::vector<std::int64_t>> batch(sources.begin() + static_cast<std::ptrdiff_t>(first),
                                                       sources.begin() + static_cast<std::ptrdiff_t>(last));
    std::vector<GenerationResult> out;
    if (args.beam == 1) out = translate(model, batch, options);
    else
      for (BeamSearchResult& r : beam_search(model, batch, beam)) out.push_back(std::move(r));
    for (std::size_t i = 0; i < out.size(); ++i) {
      std::cout << example_cli::ids_text(out[i].ids) << "\n";
      if (out[i].stop == StopReason::context_full)
        std::cerr << "translator: " << names[first + i] << ": stopped at the model's max_len (" << model.config().max_len
                  << " target positions) before EOS\n";
    }
    std::cout.flush();
    if (!args.explain.empty() || !args.dump_activations.empty()) {
      const auto id_label = [](std::int64_t id) { return "#" + std::to_string(id); };
      inspect_translation(model, sources[0], out[0], id_label, id_label, args);
    }
  }
  return 0;
}

int translate(const Arguments& args) {
  if (args.threads > 0) set_num_threads(args.threads);
  std::error_code exists_ec;
  if (!args.sentences.empty() ||
      (args.src_ids.empty() && std::filesystem::exists(args.model + "/src_vocab.json", exists_ec) &&
       std::filesystem::exists(args.model + "/tgt_vocab.json", exists_ec)))
    return translate_words(args);
  // Every source is read and checked before any is translated, and before the model is loaded: the batch they
  // make sizes the KV cache that the memory budget counts.
  const TransformerConfig config = read_transformer_config(args.model + "/config.json");
  std::vector<std::vector<std::int64_t>> sources;
  std::vector<std::string> names;
  if (!args.src_ids.empty()) {
    for (std::size_t i = 0; i < args.src_ids.size(); ++i) {
      names.push_back("--src-ids " + std::to_string(i + 1));
      sources.push_back(parse_ids(args.src_ids[i], names.back(), config));
    }
  } else {
    eigenformer::BoundedReader in = translator_cli::standard_input();
    sources = translator_cli::read_sources(in, config, names);
  }
  const ModelLoadOptions load = load_options(args, sources.size());
  const MemoryEstimate need = estimate_transformer_memory<float>(config, load.batch, load.context, args.model);
  return with_memory_estimate(need, args.model, "translating with the Seq2SeqTransformer as float", [&] {
    const Transformer<float> model = load_transformer<float>(args.model, load);
    return translate_sources(args, model, sources, names);
  });
}

// Trains (trainer.hpp), then scores the model on the corpus's test split, greedily.
int train(Arguments& args) {
  if (args.threads > 0) set_num_threads(args.threads);
  const translator_train::Settings& s = args.train;
  const double seconds = translator_train::train(s, args.run);
  if (args.run.stop_after > 0 && args.run.stop_after < s.steps) {
    std::cerr << "translator: stopped after step " << args.run.stop_after << " of " << s.steps << " (" << example_cli::Progress::clock_text(seconds)
              << "); wrote " << args.run.output << "/checkpoint.safetensors; the same command with --resume instead of --stop-after goes on\n";
    return 0;
  }
  std::cerr << "translator: trained in " << example_cli::Progress::clock_text(seconds) << "; wrote " << args.run.output
            << "/model.safetensors, config.json, src_vocab.json, tgt_vocab.json, checkpoint.safetensors, train_log.tsv and loss.svg\n";
  const std::string test = args.corpus + "/test.tsv";
  std::error_code ec;
  if (!std::filesystem::exists(test, ec)) return 0;
  const translator_train::TrainedModel m = translator_train::load_trained(args.run.output);
  const translator_train::Evaluation e = translator_train::evaluate(m, toy_corpus::read_pairs(test), detail::printable(test));
  std::cerr << "translator: held-out " << test << ": exact match " << e.exact << "/" << e.sentences << " (" << 100 * e.exact_match()
            << "%), BLEU " << 100 * e.bleu.bleu << ", greedy\n";
  return 0;
}

// Exact match and BLEU on the test split, greedy and with a beam.
int eval(const Arguments& args) {
  if (args.threads > 0) set_num_threads(args.threads);
  const std::string test = args.corpus + "/test.tsv";
  const std::vector<toy_corpus::Pair> pairs = toy_corpus::read_pairs(test);
  const translator_train::TrainedModel m = translator_train::load_trained(args.model);
  std::printf("%s: %zu pairs\n", detail::printable(test).c_str(), pairs.size());
  std::printf("%-28s %12s %8s %8s\n", "decoding", "exact match", "BLEU", "seconds");
  for (Index beam : {Index(1), args.beam}) {
    const translator_train::Evaluation e = translator_train::evaluate(m, pairs, detail::printable(test), beam, args.length_penalty);
    const std::string name = beam == 1 ? "greedy" : "beam " + std::to_string(beam) + ", length penalty " + detail::number_text(args.length_penalty);
    std::printf("%-28s %11.1f%% %8.2f %8.1f\n", name.c_str(), 100 * e.exact_match(), 100 * e.bleu.bleu, e.seconds);
    std::fflush(stdout);
    if (args.beam == 1) break;
  }
  return 0;
}

// Load and save again: converts F16/BF16/F64 checkpoints to F32, and shows that what we write is what we read
// (tools/check_torch_loads_translator.py checks that PyTorch loads it too).
int resave(const Arguments& args) {
  Transformer<float> model = load_transformer<float>(args.model);
  std::error_code ec;
  std::filesystem::create_directories(args.output, ec);
  if (ec) throw IoError(detail::printable(args.output) + ": cannot create the directory: " + ec.message());
  // Saving copies every weight (SafeTensorsWriter holds them until it writes): out of memory there names the figures too.
  MemoryEstimate need = estimate_transformer_memory<float>(model.config(), 1, 1, args.output);
  need.cache_bytes = 0, need.batch = 0, need.context = 0;
  with_memory_estimate(need, args.output, "saving the Seq2SeqTransformer as float (a copy of its weights)", [&] { save_transformer(model, args.output); });
  std::cerr << "translator: wrote " << args.output << "/config.json and model.safetensors (" << count_parameters(model) << " parameters)\n";
  return 0;
}

// Draws the toy corpus and writes DIR/train.tsv and DIR/test.tsv. Files already there are refused before anything
// is drawn, unless --force.
int make_corpus(const Arguments& args) {
  if (!args.force) {
    for (const char* name : {"/train.tsv", "/test.tsv"}) {
      std::error_code ec;
      if (std::filesystem::symlink_status(args.output + name, ec).type() != std::filesystem::file_type::not_found)
        throw IoError(detail::printable(args.output + name) + ": exists already; give --force to overwrite it");
    }
  }
  toy_corpus::Options options;
  options.seed = args.seed;
  options.train_pairs = args.train_pairs;
  options.test_pairs = args.test_pairs;
  const toy_corpus::Corpus corpus = toy_corpus::make_corpus(options);
  toy_corpus::write_corpus(args.output, corpus, args.force);
  std::set<std::string_view> english, spanish;
  for (const toy_corpus::Pair& pair : corpus.train) {
    for (std::string_view w : toy_corpus::detail::words(pair.first)) english.insert(w);
    for (std::string_view w : toy_corpus::detail::words(pair.second)) spanish.insert(w);
  }
  std::cerr << "translator: wrote " << args.output << "/train.tsv (" << corpus.train.size() << " pairs) and test.tsv (" << corpus.test.size()
            << " pairs), seed " << args.seed << "; the training pairs hold " << english.size() << " English and " << spanish.size()
            << " Spanish words\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app;
  Arguments args;
  translator_cli::add_options(app, args);
  try {
    translator_cli::parse(app, args, argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    if (args.command == "make-corpus") return make_corpus(args);
    if (args.command == "train") return train(args);
    if (args.command == "eval") return eval(args);
    return args.command == "resave" ? resave(args) : translate(args);
  } catch (const std::exception& e) {
    std::cerr << example_cli::error_line("translator", e, /*with_memory_budget=*/args.command == "translate") << "\n";  // escaped: whatever a message quotes, no control byte reaches the terminal
    return 1;
  }
}
