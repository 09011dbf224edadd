// translator: run an encoder-decoder Transformer saved in the PyTorch translation tutorial's layout
// (config.json + model.safetensors) from the command line, or write a toy corpus to train one.
//   translator translate --model DIR --src-ids "5 9 23 7" [--src-ids "..."] [--max-new-tokens N] [--threads N]
//                        [--batch-size N] [--memory-budget 2G]
//   translator resave --model DIR --output DIR2     (writes the model again in the same layout, F32)
//   translator make-corpus --output DIR [--seed N] [--train N] [--test N] [--force]
//                                                   (DIR/train.tsv and DIR/test.tsv: toy_corpus.hpp, docs/toy_corpus.md)
// Each source is a line of token ids without BOS and EOS (added here, as the tutorial's tensor_transform does);
// without --src-ids, one source per line of standard input (at most 1 MiB a line and 64 MiB in all; a failed read
// is an error, not the end of the sources). All sources go through the model as padded batches
// (--batch-size at a time) and come out one line each, in order: the greedy target ids without BOS and EOS.
// Errors are one line on stderr and exit status 1; a translation cut by max_len is reported on stderr. The options
// are declared and checked in translator_cli.hpp.
#include <CLI/CLI.hpp>

#include <cstdint>
#include <filesystem>
#include <iostream>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <eigenformer/core/threading.hpp>
#include <eigenformer/generate/translate.hpp>
#include <eigenformer/io/parameters.hpp>
#include <eigenformer/io/pytorch_transformer.hpp>

#include "toy_corpus.hpp"
#include "translator_cli.hpp"

using namespace eigenformer;

namespace {

using translator_cli::Arguments;
using translator_cli::parse_ids;

int translate(const Arguments& args) {
  if (args.threads > 0) set_num_threads(args.threads);
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
  ModelLoadOptions load;
  load.memory_budget = args.memory_budget_bytes;
  load.batch = std::max<Index>(1, std::min<Index>(args.batch_size, static_cast<Index>(sources.size())));
  const Transformer<float> model = load_transformer<float>(args.model, load);

  TranslateOptions options;
  options.max_new_tokens = args.max_new_tokens;
  for (std::size_t first = 0; first < sources.size(); first += static_cast<std::size_t>(args.batch_size)) {
    const std::size_t last = std::min(sources.size(), first + static_cast<std::size_t>(args.batch_size));
    const std::vector<std::vector<std::int64_t>> batch(sources.begin() + static_cast<std::ptrdiff_t>(first),
                                                       sources.begin() + static_cast<std::ptrdiff_t>(last));
    const std::vector<GenerationResult> out = translate(model, batch, options);
    for (std::size_t i = 0; i < out.size(); ++i) {
      for (std::size_t k = 0; k < out[i].ids.size(); ++k) std::cout << (k ? " " : "") << out[i].ids[k];
      std::cout << "\n";
      if (out[i].stop == StopReason::context_full)
        std::cerr << "translator: " << names[first + i] << ": stopped at the model's max_len (" << model.config().max_len
                  << " target positions) before EOS\n";
    }
    std::cout.flush();
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
  save_transformer(model, args.output);
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
    return args.command == "resave" ? resave(args) : translate(args);
  } catch (const std::exception& e) {
    std::cerr << "translator: " << detail::printable_message(e.what()) << "\n";  // whatever a message quotes, no control byte reaches the terminal
    return 1;
  }
}
