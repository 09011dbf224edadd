// gpt2: run a Hugging Face GPT-2 checkpoint directory (config.json, model.safetensors, vocab.json, merges.txt).
//   gpt2 --model DIR --prompt "text" [--max-new-tokens N] [--temperature T] [--top-k K] [--top-p P]
//        [--repetition-penalty R] [--seed S] [--threads N] [--memory-budget 2G] [--dtype f32|bf16|int8]
//   gpt2 --model DIR --prompt-ids "15496 995" --output-ids      ids in, ids out (no tokenizer needed)
//   gpt2 --model DIR --tokenize-file PATH                        the ids of a file's exact bytes (at most 64 MiB)
//   gpt2 --init-random DIR --tokenizer-dir .deps/gpt2            a random-weight checkpoint, for trying things out
//   gpt2 train --text FILE --output DIR [--init DIR] [...]       train one on a text (gpt2_trainer.hpp, docs/gpt2_training.md)
//   gpt2 --model DIR --prompt "text" --explain page.html [--dump-activations acts.safetensors]
//                                                                also show (or dump) what the model computed (docs/inspect.md)
// The continuation streams to stdout as it is generated (never a broken UTF-8 character); prompt and generation
// speed go to stderr. Errors are one line on stderr and exit status 1. The options are declared and checked in
// gpt2_cli.hpp; --memory-budget refuses, before loading, a model whose weights and KV cache would need more (none by
// default: the operating system's limits apply).
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <string>
#include <vector>

#include <eigenformer/core/bounded_reader.hpp>
#include <eigenformer/core/output_file.hpp>
#include <eigenformer/core/random.hpp>
#include <eigenformer/core/threading.hpp>
#include <eigenformer/generate/generate.hpp>
#include <eigenformer/inspect/explain.hpp>
#include <eigenformer/inspect/recorder.hpp>
#include <eigenformer/io/hf_gpt2.hpp>
#include <eigenformer/text/gpt2_tokenizer.hpp>
#include <eigenformer/train/init.hpp>

#include "gpt2_cli.hpp"

using namespace eigenformer;
using Clock = std::chrono::steady_clock;

namespace {

using gpt2_cli::Arguments;

void print_ids(const std::vector<std::int64_t>& ids) { std::cout << example_cli::ids_text(ids) << "\n"; }

int write_random_gpt2(const Arguments& a, const GPT2Config& c);

// A GPT-2 with random weights (as Hugging Face initialises it: train/init.hpp) and the real vocabulary's size, written
// with the tokenizer files beside it: a complete checkpoint directory for trying the program without downloads.
int init_random(const Arguments& a) {
  const GPT2Tokenizer tokenizer = GPT2Tokenizer::from_directory(a.tokenizer_dir);
  GPT2Config c;
  c.n_layer = a.n_layer;
  c.n_head = a.n_head;
  c.n_embd = a.n_embd;
  c.n_positions = a.n_positions;
  c.vocab_size = tokenizer.vocab_size();
  c.bos_token_id = c.eos_token_id = tokenizer.eos_id();
  c.validate("--init-random");
  // The model is made and saved, never run: its weights alone, checked against --memory-budget and what the machine
  // has before anything is allocated; a std::bad_alloc after that says the same figures, as loading does.
  MemoryEstimate need = estimate_gpt2_memory<float>(c, 1, 1, a.init_random);
  need.weight_bytes *= 2;  // the weights, and the copy SafeTensorsWriter holds until it writes them
  need.cache_bytes = 0, need.batch = 0, need.context = 0;
  ModelLoadOptions budget;
  budget.memory_budget = a.memory_budget_bytes;
  const std::string doing = "creating a random GPT-2 as float (its weights, and their copy while they are written)";
  check_memory_budget(need, budget, a.init_random, "a random GPT-2 as float", "creating");
  check_memory_ceiling(need, a.init_random, doing);
  return with_memory_estimate(need, a.init_random, doing, [&] { return write_random_gpt2(a, c); });
}

// init_random's work, once the model is known to fit.
int write_random_gpt2(const Arguments& a, const GPT2Config& c) {
  GPT2<float> model(c);
  Random rng(a.seed);
  gpt2_normal_init(model, rng);
  std::error_code ec;
  std::filesystem::create_directories(a.init_random, ec);
  if (ec) throw IoError(detail::printable(a.init_random) + ": cannot create the directory: " + ec.message());
  // The tokenizer first and config.json last (save_gpt2), each file through a temporary: a directory left half-way
  // holds no config.json, so it is never taken for a model.
  const std::pair<const char*, std::uint64_t> tokenizer_files[] = {{"vocab.json", GPT2Tokenizer::max_vocab_json_bytes},
                                                                   {"merges.txt", GPT2Tokenizer::max_merges_txt_bytes}};
  for (const auto& [file, cap] : tokenizer_files)
    write_file_atomically(a.init_random + "/" + file, read_file_bounded(a.tokenizer_dir + "/" + file, std::string("a ") + file, cap));
  save_gpt2(model, a.init_random);
  std::cerr << "gpt2: wrote a random " << count_parameters(model) << "-parameter GPT-2 to " << a.init_random << "\n";
  return 0;
}

// --explain and --dump-activations: one more forward pass, over the prompt and what was generated, watched by a
// Recorder (eigenformer/inspect/). Causal attention makes row t of that pass what the model saw when it chose token
// t + 1, so the page shows the generation itself. The last token is left out if it does not fit the context.
void inspect(const GPT2<float>& model, const std::optional<GPT2Tokenizer>& tokenizer, const std::vector<std::int64_t>& prompt,
             const GenerationResult& out, const Arguments& a) {
  std::vector<std::int64_t> ids = prompt;
  ids.insert(ids.end(), out.ids.begin(), out.ids.end());
  if (static_cast<Index>(ids.size()) > model.config().n_positions) ids.pop_back();
  const Index T = static_cast<Index>(ids.size()), P = static_cast<Index>(prompt.size());
  Tensor<std::int64_t> input(Shape{1, T});
  std::copy(ids.begin(), ids.end(), input.data());
  Recorder<float> recorded;  // everything for a dump; the page needs only weights, residual stream and logits
  if (a.dump_activations.empty()) recorded = Recorder<float>({Probe::attention_weights, Probe::residual, Probe::logits});
  model.forward(input, {}, &recorded);

  const auto label = [&](std::int64_t id) { return tokenizer ? tokenizer->decode({id}) : "#" + std::to_string(id); };
  std::vector<std::string> tokens;
  for (std::int64_t id : ids) tokens.push_back(label(id));
  if (!a.dump_activations.empty()) {
    recorded.save(a.dump_activations, DType::F32, {{"token_ids", example_cli::ids_text(ids)}, {"prompt_tokens", std::to_string(P)}});
    std::cerr << "gpt2: wrote " << recorded.names().size() << " tensors of " << T << " tokens to " << a.dump_activations << "\n";
  }
  if (a.explain.empty()) return;

  const GPT2Config& c = model.config();
  ExplainData page;
  page.title = "GPT-2 " + a.model;
  page.subtitle = std::to_string(c.n_layer) + " layers, " + std::to_string(c.n_head) + " heads, n_embd " + std::to_string(c.n_embd) + "; " +
                  std::to_string(P) + " prompt tokens, " + std::to_string(out.ids.size()) + " generated at temperature " +
                  detail::number_text(a.temperature) + ", seed " + std::to_string(a.seed);
  page.views.push_back(attention_view(recorded, "self-attention", "h", c.n_layer, "attn", tokens, tokens));
  page.temperatures = default_temperatures();
  std::vector<std::pair<Index, std::int64_t>> chosen;  // the logits at position P - 1 + j chose generated token j
  for (std::size_t j = 0; j < out.ids.size() && P + static_cast<Index>(j) <= T; ++j) chosen.emplace_back(P - 1 + static_cast<Index>(j), out.ids[j]);
  page.steps = next_token_steps(recorded.at("logits"), chosen, a.explain_top_k, page.temperatures, label);
  for (NextTokenStep& step : page.steps) step.context = tokens[static_cast<std::size_t>(step.position)];
  page.residual = residual_norms(recorded, "h", c.n_layer, tokens);
  write_explain_html(page, a.explain);
  std::cerr << "gpt2: wrote " << a.explain << " (" << T << " tokens, " << c.n_layer << " x " << c.n_head << " attention maps)\n";
}

// Loads the model, generates from `prompt` (streaming text or printing ids) and, if asked, shows or dumps the run.
int generate_text(const Arguments& a, const std::optional<GPT2Tokenizer>& tokenizer, const std::vector<std::int64_t>& prompt,
                  const ModelLoadOptions& load) {
  const bool text_out = !a.output_ids;
  GPT2<float> model = load_gpt2<float>(a.model, load);
  model.narrow_weights(parse_weight_type(a.dtype));  // f32: nothing changes

  GenerateOptions options;
  options.max_new_tokens = a.max_new_tokens;
  options.sampling.temperature = a.temperature;
  options.sampling.top_k = a.top_k;
  options.sampling.top_p = a.top_p;
  options.sampling.repetition_penalty = a.repetition_penalty;
  options.sampling.seed = a.seed;
  std::optional<StreamingDecoder> stream;
  if (text_out) stream.emplace(*tokenizer);
  const Clock::time_point start = Clock::now();
  Clock::time_point first = start;
  Index generated = 0;
  options.on_token = [&](Index, std::int64_t id) {
    if (generated++ == 0) first = Clock::now();
    if (stream && id != model.config().eos_token_id) std::cout << stream->push(id) << std::flush;
    return true;
  };
  const std::vector<GenerationResult> out = generate(model, {prompt}, options);
  const Clock::time_point end = Clock::now();
  if (stream) std::cout << stream->flush() << "\n";
  else print_ids(out[0].ids);

  const double prompt_s = std::chrono::duration<double>(first - start).count();
  const double gen_s = std::chrono::duration<double>(end - first).count();
  std::cerr << std::fixed << std::setprecision(1) << "gpt2: prompt " << prompt.size() << " tokens in " << prompt_s * 1e3 << " ms ("
            << static_cast<double>(prompt.size()) / std::max(prompt_s, 1e-9) << " tokens/s); generated " << out[0].ids.size() << " tokens";
  if (generated > 1) std::cerr << " in " << gen_s * 1e3 << " ms (" << static_cast<double>(generated - 1) / std::max(gen_s, 1e-9) << " tokens/s)";
  std::cerr << "; stopped: " << stop_reason_name(out[0].stop) << "\n";
  if (out[0].stop == StopReason::context_full)
    std::cerr << "gpt2: the context of " << model.config().n_positions << " positions (n_positions) is full\n";
  if (!a.explain.empty() || !a.dump_activations.empty()) inspect(model, tokenizer, prompt, out[0], a);
  return 0;
}

int run(const Arguments& a) {
  if (a.threads > 0) set_num_threads(a.threads);
  if (a.command == "train") {
    gpt2_train::train(a.train, a.run);
    return 0;
  }
  if (!a.init_random.empty()) return init_random(a);

  if (!a.tokenize_file.empty()) {
    const GPT2Tokenizer tokenizer = GPT2Tokenizer::from_directory(a.model);
    const std::string text = gpt2_cli::read_tokenize_file(a.tokenize_file);
    std::vector<std::int64_t> ids;
    try {
      ids = tokenizer.encode(text);
    } catch (const Error& e) {
      throw FormatError(detail::printable(a.tokenize_file) + ": " + e.what());
    }
    print_ids(ids);
    return 0;
  }

  // The prompt first, from the config alone: its length sizes the KV cache that the memory budget counts.
  const GPT2Config config = read_gpt2_config(a.model + "/config.json");
  const bool text_out = !a.output_ids;
  std::optional<GPT2Tokenizer> tokenizer;
  std::error_code ec;  // --explain labels tokens with their text, even when they come and go as ids
  if (!a.prompt.empty() || text_out || (!a.explain.empty() && std::filesystem::exists(a.model + "/vocab.json", ec)))
    tokenizer = GPT2Tokenizer::from_directory(a.model);
  if (tokenizer && tokenizer->vocab_size() != config.vocab_size)
    throw FormatError(a.model + ": vocab.json has " + std::to_string(tokenizer->vocab_size()) + " tokens but config.json says vocab_size " +
                      std::to_string(config.vocab_size));
  std::vector<std::int64_t> prompt;
  if (a.prompt.empty()) {
    prompt = gpt2_cli::parse_ids(a.prompt_ids, config.vocab_size);
  } else {
    try {
      prompt = tokenizer->encode(a.prompt);
    } catch (const Error& e) {
      throw FormatError(std::string("--prompt: ") + e.what());
    }
  }
  if (prompt.empty()) throw RangeError("--prompt: the text encodes to no tokens");

  if (!a.explain.empty()) {
    const Index maps = config.n_layer * config.n_head, most = explain_max_tokens(maps);
    const Index P = static_cast<Index>(prompt.size()), reach = std::min(P + a.max_new_tokens, config.n_positions);
    if (reach > most)
      throw RangeError("--explain: a page holds at most " + std::to_string(most) + " tokens of this model's " + std::to_string(maps) +
                       " attention maps; the prompt's " + std::to_string(P) + " tokens and --max-new-tokens " + std::to_string(a.max_new_tokens) +
                       " could make " + std::to_string(reach) + ": shorten the prompt or lower --max-new-tokens");
  }

  ModelLoadOptions load;
  load.memory_budget = a.memory_budget_bytes;
  // generate() reserves the prompt plus max_new_tokens - 1 positions (the last token is never fed back), at most
  // the context; a prompt longer than the context is refused by generate() below, with its own message.
  const Index prompt_length = static_cast<Index>(prompt.size());
  load.context = std::min(config.n_positions, std::max(prompt_length, prompt_length + a.max_new_tokens - 1));
  // Out of memory past loading (the KV cache, activations, --dtype's copy) is reported with the model's figures too.
  const MemoryEstimate need = estimate_gpt2_memory<float>(config, load.batch, load.context, a.model);
  return with_memory_estimate(need, a.model, "generating with GPT-2 as float", [&] { return generate_text(a, tokenizer, prompt, load); });
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app;
  Arguments a;
  gpt2_cli::add_options(app, a);
  try {
    gpt2_cli::parse(app, a, argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    return run(a);
  } catch (const std::exception& e) {
    std::cerr << example_cli::error_line("gpt2", e, /*with_memory_budget=*/a.command != "train") << "\n";  // escaped: whatever a message quotes, no control byte reaches the terminal
    return 1;
  }
}
