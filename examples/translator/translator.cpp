// translator: run an encoder-decoder Transformer saved in the PyTorch translation tutorial's layout
// (config.json + model.safetensors) from the command line.
//   translator translate --model DIR --src-ids "5 9 23 7" [--src-ids "..."] [--max-new-tokens N] [--threads N]
//   translator resave --model DIR --output DIR2     (writes the model again in the same layout, F32)
// Each source is a line of token ids without BOS and EOS (added here, as the tutorial's tensor_transform does);
// without --src-ids, one source per line of standard input. All sources go through the model as padded batches
// (--batch-size at a time) and come out one line each, in order: the greedy target ids without BOS and EOS.
// Errors are one line on stderr and exit status 1; a translation cut by max_len is reported on stderr.
#include <CLI/CLI.hpp>

#include <cstdint>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <eigenformer/core/threading.hpp>
#include <eigenformer/generate/translate.hpp>
#include <eigenformer/io/parameters.hpp>
#include <eigenformer/io/pytorch_transformer.hpp>

using namespace eigenformer;

namespace {

// "5 9 23 7" -> ids; `where` names the input in messages ("--src-ids 2", "line 3").
std::vector<std::int64_t> parse_ids(const std::string& text, const std::string& where, const TransformerConfig& config) {
  std::vector<std::int64_t> ids{config.bos_id};
  std::istringstream in(text);
  for (std::string word; in >> word;) {
    std::size_t used = 0;
    long long id = 0;
    try {
      id = std::stoll(word, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != word.size()) throw RangeError(where + ": '" + word + "' is not a token id");
    if (id < 0 || id >= config.src_vocab_size)
      throw RangeError(where + ": token id " + word + " is outside the source vocabulary [0, " + std::to_string(config.src_vocab_size) + ")");
    ids.push_back(id);
  }
  ids.push_back(config.eos_id);
  if (static_cast<Index>(ids.size()) > config.max_len)
    throw RangeError(where + ": " + std::to_string(ids.size() - 2) + " tokens (" + std::to_string(ids.size()) +
                     " with BOS and EOS) do not fit the model's max_len " + std::to_string(config.max_len));
  return ids;
}

struct Arguments {
  std::string model, output;
  std::vector<std::string> src_ids;
  Index max_new_tokens = -1;
  int threads = 0;
  Index batch_size = 64;
};

int translate(const Arguments& args) {
  if (args.threads > 0) set_num_threads(args.threads);
  const Transformer<float> model = load_seq2seq<float>(args.model);

  // Every source is read and checked before any is translated.
  std::vector<std::vector<std::int64_t>> sources;
  std::vector<std::string> names;
  if (!args.src_ids.empty()) {
    for (std::size_t i = 0; i < args.src_ids.size(); ++i) {
      names.push_back("--src-ids " + std::to_string(i + 1));
      sources.push_back(parse_ids(args.src_ids[i], names.back(), model.config()));
    }
  } else {
    std::string line;
    for (int n = 1; std::getline(std::cin, line); ++n) {
      names.push_back("line " + std::to_string(n));
      sources.push_back(parse_ids(line, names.back(), model.config()));
    }
  }

  TranslateOptions options;
  options.max_new_tokens = args.max_new_tokens;
  for (std::size_t first = 0; first < sources.size(); first += static_cast<std::size_t>(args.batch_size)) {
    const std::size_t last = std::min(sources.size(), first + static_cast<std::size_t>(args.batch_size));
    const std::vector<std::vector<std::int64_t>> batch(sources.begin() + static_cast<std::ptrdiff_t>(first),
                                                       sources.begin() + static_cast<std::ptrdiff_t>(last));
    const std::vector<Translation> out = translate_greedy(model, batch, options);
    for (std::size_t i = 0; i < out.size(); ++i) {
      for (std::size_t k = 0; k < out[i].ids.size(); ++k) std::cout << (k ? " " : "") << out[i].ids[k];
      std::cout << "\n";
      if (out[i].stop == StopReason::max_len)
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
  Transformer<float> model = load_seq2seq<float>(args.model);
  std::error_code ec;
  std::filesystem::create_directories(args.output, ec);
  if (ec) throw IoError(args.output + ": cannot create the directory: " + ec.message());
  save_seq2seq(model, args.output);
  std::cerr << "translator: wrote " << args.output << "/config.json and model.safetensors (" << count_parameters(model) << " parameters)\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Run an encoder-decoder Transformer saved in the PyTorch translation tutorial's layout."};
  app.require_subcommand(1);
  Arguments args;
  CLI::App* tr = app.add_subcommand("translate", "greedy-translate token ids (one source per --src-ids, or per line of stdin)");
  tr->add_option("--model", args.model, "directory with config.json and model.safetensors")->required();
  tr->add_option("--src-ids", args.src_ids, "source token ids without BOS/EOS, e.g. \"5 9 23 7\" (repeatable)");
  tr->add_option("--max-new-tokens", args.max_new_tokens,
                 "most target tokens per source (default: the tutorial's, source length with BOS and EOS + 4)")
      ->check(CLI::Range(Index(1), Index(1) << 40));
  tr->add_option("--threads", args.threads, "threads (default: all cores)")->check(CLI::Range(1, 1024));
  tr->add_option("--batch-size", args.batch_size, "sources decoded together")->capture_default_str()->check(CLI::Range(1, 100000));
  CLI::App* rs = app.add_subcommand("resave", "load a model and write it again (config.json + model.safetensors, F32)");
  rs->add_option("--model", args.model, "directory with config.json and model.safetensors")->required();
  rs->add_option("--output", args.output, "directory to write (created if missing)")->required();
  app.failure_message([](const CLI::App*, const CLI::Error& e) { return std::string("translator: ") + e.what() + " (see --help)\n"; });
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    return rs->parsed() ? resave(args) : translate(args);
  } catch (const Error& e) {
    std::cerr << "translator: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "translator: " << e.what() << "\n";
    return 1;
  }
}
