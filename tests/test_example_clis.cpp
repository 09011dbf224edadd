// tests/test_example_clis.cpp: the command-line parsers of the two programs, examples/gpt2/gpt2_cli.hpp and
// examples/translator/translator_cli.hpp (what main() and the fuzz targets run), on argument lists built here. The
// programs themselves are run by the CLI tests of tests/CMakeLists.txt.
#include "gpt2/gpt2_cli.hpp"
#include "translator/translator_cli.hpp"

#include <doctest/doctest.h>

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <new>
#include <sstream>
#include <string>
#include <vector>

#include "support/temp_file.hpp"

using namespace eigenformer;

namespace {

// Parses `args` (after the program name) with `parse`; returns "" or the error CLI11 or check() raised.
template <typename Arguments, typename Setup, typename Parse>
std::string parse_error(std::vector<std::string> args, Arguments& a, Setup&& setup, Parse&& parse) {
  std::vector<const char*> argv{"program"};
  for (const std::string& s : args) argv.push_back(s.c_str());
  CLI::App app;
  setup(app, a);
  try {
    parse(app, a, static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::Error& e) {
    return e.what();
  }
  return "";
}

std::string gpt2_error(const std::vector<std::string>& args, gpt2_cli::Arguments& a) {
  return parse_error(args, a, gpt2_cli::add_options, gpt2_cli::parse);
}
std::string translator_error(const std::vector<std::string>& args, translator_cli::Arguments& a) {
  return parse_error(args, a, translator_cli::add_options, translator_cli::parse);
}

}  // namespace

TEST_CASE("gpt2_cli: options, the checks between them, and --memory-budget in bytes") {
  gpt2_cli::Arguments a;
  CHECK(gpt2_error({"--model", "dir", "--prompt", "Hi", "--max-new-tokens", "7", "--memory-budget", "2G"}, a).empty());
  CHECK(a.model == "dir");
  CHECK(a.max_new_tokens == 7);
  CHECK(a.memory_budget_bytes == 2ull << 30);
  gpt2_cli::Arguments b;
  CHECK(gpt2_error({"--model", "dir", "--prompt-ids", "5"}, b).empty());
  CHECK(b.memory_budget_bytes == 0);  // none by default
  gpt2_cli::Arguments c;
  CHECK(gpt2_error({"--prompt-ids", "5"}, c) == "--model: is required");
  gpt2_cli::Arguments d;
  CHECK(gpt2_error({"--model", "dir", "--prompt", "a", "--prompt-ids", "5"}, d) == "give exactly one of --prompt, --prompt-ids and --tokenize-file");
  gpt2_cli::Arguments e;
  CHECK(gpt2_error({"--model", "dir", "--prompt-ids", "5", "--memory-budget", "12Q"}, e) ==
        "--memory-budget: '12Q' has an unknown unit; expected bytes such as 512M or 2G, or none");
  gpt2_cli::Arguments f;
  CHECK(gpt2_error({"--init-random", "out"}, f) == "--init-random: needs --tokenizer-dir");
}

TEST_CASE("gpt2_cli: --seed is a whole number from 0 to 2^64 - 1, never wrapped or saturated (issue 13)") {
  for (const char* word : {"0", "7", "18446744073709551615"}) {
    CAPTURE(word);
    gpt2_cli::Arguments a;
    CHECK(gpt2_error({"--model", "dir", "--prompt-ids", "5", "--seed", word}, a).empty());
    CHECK(std::to_string(a.seed) == word);
  }
  for (const char* word : {"-1", "18446744073709551616", "99999999999999999999999", "1e3", " 5", "+5", "0x10", ""}) {
    CAPTURE(word);
    gpt2_cli::Arguments a;
    CHECK(gpt2_error({"--model", "dir", "--prompt-ids", "5", "--seed", word}, a) ==
          "--seed: " + quote(word) + " is not a whole number from 0 to 18446744073709551615");
  }
}

TEST_CASE("gpt2_cli: an empty --prompt or --tokenize-file is named, not mistaken for a missing one (issue 13)") {
  gpt2_cli::Arguments a;
  CHECK(gpt2_error({"--model", "dir", "--prompt", ""}, a) == "--prompt: the prompt is empty; expected some text");
  gpt2_cli::Arguments b;
  CHECK(gpt2_error({"--model", "dir", "--tokenize-file", ""}, b) == "--tokenize-file: the file name is empty");
  gpt2_cli::Arguments c;
  CHECK(gpt2_error({"--model", "dir", "--prompt", "", "--prompt-ids", "5"}, c) == "give exactly one of --prompt, --prompt-ids and --tokenize-file");
}

TEST_CASE("gpt2_cli and translator_cli: --memory-budget below 1 KiB is refused, not taken as no limit (issue 13)") {
  for (const char* word : {"0", "1", "1023", "0K", "0.5K"}) {
    CAPTURE(word);
    gpt2_cli::Arguments a;
    CHECK(gpt2_error({"--model", "dir", "--prompt-ids", "5", "--memory-budget", word}, a) ==
          "--memory-budget: " + quote(word) + " is less than 1 KiB; expected a budget such as 512M or 2G, or none");
    translator_cli::Arguments b;
    CHECK(translator_error({"translate", "--model", "dir", "--src-ids", "5", "--memory-budget", word}, b) ==
          "--memory-budget: " + quote(word) + " is less than 1 KiB; expected a budget such as 512M or 2G, or none");
  }
  gpt2_cli::Arguments a;
  CHECK(gpt2_error({"--model", "dir", "--prompt-ids", "5", "--memory-budget", "1K"}, a).empty());
  CHECK(a.memory_budget_bytes == 1024);
  gpt2_cli::Arguments none;
  CHECK(gpt2_error({"--model", "dir", "--prompt-ids", "5", "--memory-budget", "none"}, none).empty());
  CHECK(none.memory_budget_bytes == 0);
}

TEST_CASE("gpt2_cli and translator_cli: an empty --model is refused (fuzz finding: it would read /config.json)") {
  // fuzz_translator_cli: `translate --model "" --src-ids ...` parsed, and the program then looked for the model in
  // "" + "/config.json", a file at the root of the file system.
  gpt2_cli::Arguments a;
  CHECK(gpt2_error({"--model", "", "--prompt-ids", "5"}, a) == "--model: is empty; expected a directory");
  translator_cli::Arguments b;
  CHECK(translator_error({"translate", "--model", "", "--src-ids", "5"}, b) == "--model: is empty; expected a directory");
  translator_cli::Arguments c;
  CHECK(translator_error({"resave", "--model", "in", "--output", ""}, c) == "--output: is empty; expected a directory");
}

TEST_CASE("gpt2_cli::parse_ids: ids in the vocabulary, each bad word named") {
  CHECK(gpt2_cli::parse_ids(" 15496  995\n", 50257) == std::vector<std::int64_t>{15496, 995});
  CHECK_THROWS_WITH_AS(gpt2_cli::parse_ids("5 x", 50257), "--prompt-ids: 'x' is not a token id", RangeError);
  CHECK_THROWS_WITH_AS(gpt2_cli::parse_ids("5 5.0", 50257), "--prompt-ids: '5.0' is not a token id", RangeError);
  CHECK_THROWS_WITH_AS(gpt2_cli::parse_ids("-1", 50257), "--prompt-ids: token id -1 is outside the vocabulary [0, 50257)", RangeError);
  CHECK_THROWS_WITH_AS(gpt2_cli::parse_ids("  ", 50257), "--prompt-ids: no token ids given", RangeError);
}

TEST_CASE("example_cli::parse_token_id: an id past 64 bits is outside the vocabulary, quoted as written (harden-c)") {
  // std::stoll's out_of_range had made these "not a token id", as if they were words.
  for (const std::string& word : {std::string("99999999999999999999999"), std::string("18446744073709551616"), std::string("9223372036854775808"),
                                 std::string("-99999999999999999999999"), std::string("+99999999999999999999999")}) {
    CAPTURE(word);
    CHECK_THROWS_WITH_AS(gpt2_cli::parse_ids("5 " + word, 50257), ("--prompt-ids: token id " + word + " is outside the vocabulary [0, 50257)").c_str(),
                         RangeError);
    TransformerConfig config;
    config.src_vocab_size = 37;
    CHECK_THROWS_WITH_AS(translator_cli::parse_ids(word, "--src-ids 1", config),
                         ("--src-ids 1: token id " + word + " is outside the source vocabulary [0, 37)").c_str(), RangeError);
  }
  const std::string huge(1000, '9');  // cut as every quoted text is: both ends, 80 characters
  CHECK_THROWS_WITH_AS(gpt2_cli::parse_ids(huge, 50257),
                       ("--prompt-ids: token id " + detail::printable(huge) + " is outside the vocabulary [0, 50257)").c_str(), RangeError);
  CHECK(detail::printable(huge).size() <= 80);
  CHECK_THROWS_WITH_AS(gpt2_cli::parse_ids("99999999999999999999999x", 50257), "--prompt-ids: '99999999999999999999999x' is not a token id", RangeError);
}

TEST_CASE("gpt2_cli and translator_cli: every floating-point option refuses nan and inf, by name (harden-c)") {
  // CLI::Range compares with < and >, which a NaN passes: --temperature nan was taken. Every option whose type is
  // FLOAT, found on the parsers themselves (so that a new one is covered), with the arguments its command needs.
  const auto check_app = [](auto add_options, auto parse, const auto& fresh, const std::map<std::string, std::vector<std::string>>& base) {
    std::size_t checked = 0;
    CLI::App probe;
    auto probe_args = fresh;
    add_options(probe, probe_args);
    std::vector<std::pair<std::string, const CLI::App*>> commands{{"", &probe}};
    for (const CLI::App* sub : probe.get_subcommands([](const CLI::App*) { return true; })) commands.emplace_back(sub->get_name(), sub);
    for (const auto& [command, app] : commands) {
      for (const CLI::Option* opt : app->get_options()) {
        if (opt->get_type_name().rfind("FLOAT", 0) != 0) continue;  // "FLOAT", then the validators' descriptions
        for (const char* word : {"nan", "NaN", "-nan", "inf", "-inf", "infinity", "1e400"}) {
          std::vector<std::string> args = base.at(command);
          args.push_back(opt->get_name());
          args.push_back(word);
          CAPTURE(args);
          auto a = fresh;
          CHECK(parse_error(args, a, add_options, parse) == opt->get_name() + ": " + quote(word) + " is not a finite number");
        }
        ++checked;
      }
    }
    return checked;
  };
  const std::size_t gpt2 = check_app(gpt2_cli::add_options, gpt2_cli::parse, gpt2_cli::Arguments{},
                                     {{"", {"--model", "dir", "--prompt-ids", "5"}}, {"train", {"train", "--text", "t", "--output", "o"}}});
  const std::size_t translator = check_app(translator_cli::add_options, translator_cli::parse, translator_cli::Arguments{},
                                           {{"translate", {"translate", "--model", "dir", "--src-ids", "5"}},
                                            {"train", {"train", "--corpus", "c", "--output", "o"}},
                                            {"eval", {"eval", "--model", "m", "--corpus", "c"}},
                                            {"resave", {"resave", "--model", "m", "--output", "o"}},
                                            {"make-corpus", {"make-corpus", "--output", "o"}}});
  CHECK(gpt2 >= 3);  // --temperature, --top-p, --repetition-penalty at least: the search found the options
  CHECK(translator >= 1);
  gpt2_cli::Arguments a;  // finite values still parse, and the range still applies after
  CHECK(gpt2_error({"--model", "dir", "--prompt-ids", "5", "--temperature", "0.5", "--top-p", "1e-3"}, a).empty());
  CHECK(a.temperature == 0.5);
  gpt2_cli::Arguments b;
  CHECK(gpt2_error({"--model", "dir", "--prompt-ids", "5", "--temperature", "-1"}, b).rfind("--temperature: Value -1 not in range", 0) == 0);
  // --memory-budget is text read by parse_byte_size, which never took these for sizes: pinned all the same.
  for (const char* word : {"nan", "inf", "-inf", "infG", "nanM"}) {
    CAPTURE(word);
    gpt2_cli::Arguments c;
    CHECK(gpt2_error({"--model", "dir", "--prompt-ids", "5", "--memory-budget", word}, c) ==
          "--memory-budget: " + quote(word) + " is not a size; expected bytes such as 512M or 2G, or none");
  }
  gpt2_cli::Arguments d;
  CHECK(gpt2_error({"--model", "dir", "--prompt-ids", "5", "--memory-budget", "1e400"}, d) ==
        "--memory-budget: '1e400' has an unknown unit; expected bytes such as 512M or 2G, or none");
}

TEST_CASE("gpt2_cli and translator_cli: an output that exists and is not a regular file is refused by name before any work (harden-c)") {
  // A device (/dev/null or /dev/zero: the output vanishes; /dev/full: it fails after the work; run as root, the temporary renamed
  // over it would replace the device), a FIFO (blocks) or a directory, for a file or for a file in an output directory.
  testing::TempDir dir;
  const std::string fifo = dir.path() + "/fifo", file = dir.path() + "/file";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  testing::write_text_file(file, "x");
  for (const char* option : {"--explain", "--dump-activations"}) {
    CAPTURE(option);
    for (const std::string& path : {std::string("/dev/zero"), std::string("/dev/full")}) {
      gpt2_cli::Arguments a;
      CHECK(gpt2_error({"--model", "m", "--prompt-ids", "5", option, path}, a) == std::string(option) + ": " + quote(path) + " is a character device; expected a file name");
      translator_cli::Arguments b;
      CHECK(translator_error({"translate", "--model", "m", "--src-ids", "5", option, path}, b) ==
            std::string(option) + ": " + quote(path) + " is a character device; expected a file name");
    }
    gpt2_cli::Arguments a;
    CHECK(gpt2_error({"--model", "m", "--prompt-ids", "5", option, fifo}, a) == std::string(option) + ": " + quote(fifo) + " is a FIFO (named pipe); expected a file name");
    gpt2_cli::Arguments b;  // a regular file is replaced
    CHECK(gpt2_error({"--model", "m", "--prompt-ids", "5", option, file}, b).empty());
  }
  // Output directories: the directory itself, and each file the command writes there.
  const std::string out = dir.path() + "/out";
  std::filesystem::create_directory(out);
  gpt2_cli::Arguments a;
  CHECK(gpt2_error({"--init-random", "/dev/zero", "--tokenizer-dir", "t"}, a) == "--init-random: '/dev/zero' is a character device; expected a directory");
  gpt2_cli::Arguments b;
  CHECK(gpt2_error({"--init-random", file, "--tokenizer-dir", "t"}, b) == "--init-random: " + quote(file) + " is a file; expected a directory");
  gpt2_cli::Arguments c;
  CHECK(gpt2_error({"--init-random", out, "--tokenizer-dir", "t"}, c).empty());
  gpt2_cli::Arguments c1;  // given but empty: its files would go to "/config.json", at the root
  CHECK(gpt2_error({"--init-random", "", "--tokenizer-dir", "t"}, c1) == "--init-random: is empty; expected a directory");
  gpt2_cli::Arguments c2;  // under a file: no directory can be made there
  CHECK(gpt2_error({"train", "--text", "t", "--output", file + "/run"}, c2) ==
        "--output: " + quote(file + "/run") + ": " + std::strerror(ENOTDIR) + "; expected a directory");
  translator_cli::Arguments d;
  CHECK(translator_error({"make-corpus", "--output", "/dev/full"}, d) == "--output: '/dev/full' is a character device; expected a directory");
  translator_cli::Arguments e;
  CHECK(translator_error({"train", "--corpus", "c", "--output", fifo}, e) == "--output: " + quote(fifo) + " is a FIFO (named pipe); expected a directory");
  const std::vector<std::pair<std::vector<std::string>, std::vector<std::string>>> writers = {
      {{"config.json", "model.safetensors", "vocab.json", "merges.txt"}, {"--init-random", out, "--tokenizer-dir", "t"}},
      {{"checkpoint.safetensors", "train_log.tsv", "loss.svg", "vocab.json", "merges.txt", "config.json", "model.safetensors"},
       {"train", "--text", "t", "--output", out}},
  };
  for (const auto& [files, args] : writers) {
    for (const std::string& name : files) {
      CAPTURE(name);
      const std::string taken = out + "/" + name;
      std::filesystem::create_directory(taken);
      gpt2_cli::Arguments g;
      CHECK(gpt2_error(args, g) == args[args[0] == "train" ? 3 : 0] + ": " + quote(taken) + " is a directory; the program writes a file there");
      std::filesystem::remove(taken);
    }
  }
  const std::vector<std::pair<std::vector<std::string>, std::vector<std::string>>> translator_writers = {
      {{"checkpoint.safetensors", "train_log.tsv", "loss.svg", "src_vocab.json", "tgt_vocab.json", "config.json", "model.safetensors"},
       {"train", "--corpus", "c", "--output", out}},
      {{"config.json", "model.safetensors"}, {"resave", "--model", "m", "--output", out}},
      {{"train.tsv", "test.tsv"}, {"make-corpus", "--output", out, "--force"}},
  };
  for (const auto& [files, args] : translator_writers) {
    for (const std::string& name : files) {
      CAPTURE(name);
      const std::string taken = out + "/" + name;
      REQUIRE(::mkfifo(taken.c_str(), 0600) == 0);
      translator_cli::Arguments t;
      CHECK(translator_error(args, t) == "--output: " + quote(taken) + " is a FIFO (named pipe); the program writes a file there");
      std::filesystem::remove(taken);
    }
  }
}

TEST_CASE("translator_cli: subcommands, options and source ids with BOS and EOS") {
  translator_cli::Arguments a;
  CHECK(translator_error({"translate", "--model", "dir", "--src-ids", "5 9", "--src-ids", "4", "--batch-size", "2", "--memory-budget", "64M"}, a)
            .empty());
  CHECK(a.src_ids == std::vector<std::string>{"5 9", "4"});
  CHECK(a.batch_size == 2);
  CHECK(a.memory_budget_bytes == 64ull << 20);
  translator_cli::Arguments b;
  CHECK(translator_error({"--model", "dir"}, b) == "A subcommand is required");
  TransformerConfig config;
  config.src_vocab_size = 37;
  config.tgt_vocab_size = 29;
  config.max_len = 5;
  CHECK(translator_cli::parse_ids("5 9 23", "line 1", config) == std::vector<std::int64_t>{2, 5, 9, 23, 3});
  CHECK_THROWS_WITH_AS(translator_cli::parse_ids("5 9 23 7", "line 2", config),
                       "line 2: 4 tokens (6 with BOS and EOS) do not fit the model's max_len 5", RangeError);
  CHECK_THROWS_WITH_AS(translator_cli::parse_ids("37", "--src-ids 1", config), "--src-ids 1: token id 37 is outside the source vocabulary [0, 37)",
                       RangeError);
}

TEST_CASE("translator_cli: make-corpus, its defaults, and what it refuses") {
  translator_cli::Arguments a;
  CHECK(translator_error({"make-corpus", "--output", "data"}, a).empty());
  CHECK(a.command == "make-corpus");
  CHECK(a.output == "data");
  CHECK(a.seed == 0);
  CHECK(a.train_pairs == 30000);
  CHECK(a.test_pairs == 1000);
  CHECK_FALSE(a.force);
  CHECK(a.model.empty());  // not needed, not asked for
  translator_cli::Arguments b;
  CHECK(translator_error({"make-corpus", "--output", "d", "--seed", "18446744073709551615", "--train", "500", "--test", "20", "--force"}, b).empty());
  CHECK(b.seed == 18446744073709551615ull);
  CHECK(b.train_pairs == 500);
  CHECK(b.test_pairs == 20);
  CHECK(b.force);
  translator_cli::Arguments c;
  CHECK(translator_error({"make-corpus"}, c) == "--output is required");
  translator_cli::Arguments d;
  CHECK(translator_error({"make-corpus", "--output", ""}, d) == "--output: is empty; expected a directory");
  translator_cli::Arguments e;
  CHECK(translator_error({"make-corpus", "--output", "d", "--seed", "-1"}, e) == "--seed: '-1' is not a whole number from 0 to 18446744073709551615");
  translator_cli::Arguments f;
  CHECK(translator_error({"make-corpus", "--output", "d", "--train", "0"}, f) == "--train: Value 0 not in range 1 to 1000000");
  translator_cli::Arguments g;
  CHECK(translator_error({"make-corpus", "--output", "d", "--test", "100001"}, g) == "--test: Value 100001 not in range 1 to 100000");
  translator_cli::Arguments h;
  CHECK(translator_error({"make-corpus", "--output", "d", "--model", "m"}, h) == "The following arguments were not expected: m --model");
  // The other subcommands are told apart the same way.
  translator_cli::Arguments t;
  CHECK(translator_error({"translate", "--model", "m"}, t).empty());
  CHECK(t.command == "translate");
  translator_cli::Arguments r;
  CHECK(translator_error({"resave", "--model", "m", "--output", "o"}, r).empty());
  CHECK(r.command == "resave");
}

TEST_CASE("translator_cli::read_sources: standard input that fails half-way is an error, not the end of the sources") {
  // translator translated the lines read before the failure and exited 0: std::getline took the failure for EOF.
  TransformerConfig config;
  config.src_vocab_size = 37;
  config.max_len = 8;
  auto source = [](std::string text, int error) {
    auto pos = std::make_shared<std::size_t>(0);
    return [text, error, pos](char* buf, std::size_t n) -> long {
      if (*pos == text.size()) {
        if (error == 0) return 0;
        errno = error;
        return -1;
      }
      const std::size_t k = std::min(n, text.size() - *pos);
      std::memcpy(buf, text.data() + *pos, k);
      *pos += k;
      return static_cast<long>(k);
    };
  };
  std::vector<std::string> names;
  BoundedReader good(source("5 9\n4\n", 0), "standard input", "standard input", translator_cli::max_stdin_bytes);
  CHECK(translator_cli::read_sources(good, config, names) == std::vector<std::vector<std::int64_t>>{{2, 5, 9, 3}, {2, 4, 3}});
  CHECK(names == std::vector<std::string>{"line 1", "line 2"});
  BoundedReader failing(source("5 9\n4\n", EIO), "standard input", "standard input", translator_cli::max_stdin_bytes);
  CHECK_THROWS_WITH_AS(translator_cli::read_sources(failing, config, names), "standard input: cannot read: Input/output error", IoError);
  // One line longer than max_stdin_line_bytes (spaces are no ids, so only the cap can refuse it).
  BoundedReader long_line(source("4\n" + std::string(translator_cli::max_stdin_line_bytes + 1, ' ') + "\n", 0), "standard input", "standard input",
                          translator_cli::max_stdin_bytes);
  CHECK_THROWS_WITH_AS(translator_cli::read_sources(long_line, config, names),
                       "standard input: line 2 is longer than 1 MiB (1048576 bytes); a line of standard input may be at most that long", FormatError);
  // Many short lines past max_stdin_bytes.
  std::string many;
  while (many.size() <= translator_cli::max_stdin_bytes) many += std::string(1000, ' ') + "\n";
  BoundedReader too_much(source(many, 0), "standard input", "standard input", translator_cli::max_stdin_bytes);
  CHECK_THROWS_WITH_AS(translator_cli::read_sources(too_much, config, names),
                       "standard input: is larger than 64 MiB (67108864 bytes); standard input may be at most that", FormatError);
}

TEST_CASE("gpt2_cli::read_tokenize_file: a regular file of at most 64 MiB, else refused with its name") {
  eigenformer::testing::TempFile f("Hello world");
  CHECK(gpt2_cli::read_tokenize_file(f.path()) == "Hello world");
  CHECK_THROWS_WITH_AS(gpt2_cli::read_tokenize_file("/dev/zero"), "/dev/zero: is a character device, not a file", IoError);
  const eigenformer::testing::TempDir dir;
  CHECK_THROWS_WITH_AS(gpt2_cli::read_tokenize_file(dir.path()), (dir.path() + ": is a directory, not a file").c_str(), IoError);
  const std::string fifo = dir.path() + "/fifo";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  CHECK_THROWS_WITH_AS(gpt2_cli::read_tokenize_file(fifo), (fifo + ": is a FIFO (named pipe), not a file").c_str(), IoError);
  std::filesystem::resize_file(f.path(), gpt2_cli::max_tokenize_file_bytes + 1);  // a sparse file: nothing written
  CHECK_THROWS_WITH_AS(gpt2_cli::read_tokenize_file(f.path()),
                       (f.path() + ": is larger than 64 MiB (67108864 bytes); a file for --tokenize-file may be at most that").c_str(), FormatError);
}

TEST_CASE("example_cli::parse_token_id: a bad word is quoted escaped and cut (issue 13)") {
  CHECK_THROWS_WITH_AS(gpt2_cli::parse_ids("5 \x1b[31mred", 50257), "--prompt-ids: '\\u001b[31mred' is not a token id", RangeError);
  TransformerConfig config;
  config.src_vocab_size = 37;
  CHECK_THROWS_WITH_AS(translator_cli::parse_ids(std::string("4 \0x", 4), "line 1", config), "line 1: '\\u0000x' is not a token id", RangeError);
  const std::string word = std::string(500, '9') + "x";
  CHECK_THROWS_WITH_AS(gpt2_cli::parse_ids(word, 50257), ("--prompt-ids: '" + std::string(39, '9') + "..." + std::string(37, '9') + "x' is not a token id").c_str(),
                       RangeError);
}

TEST_CASE("gpt2_cli and translator_cli: what CLI11 quotes from the command line is printed escaped and cut (issue 13)") {
  const auto printed = [](auto add_options, auto parse, auto& a, std::vector<std::string> args) {
    std::vector<const char*> argv{"program"};
    for (const std::string& s : args) argv.push_back(s.c_str());
    CLI::App app;
    add_options(app, a);
    std::ostringstream out, err;
    try {
      parse(app, a, static_cast<int>(argv.size()), argv.data());
    } catch (const CLI::ParseError& e) {
      app.exit(e, out, err);
    }
    return err.str();
  };
  gpt2_cli::Arguments a;
  CHECK(printed(gpt2_cli::add_options, gpt2_cli::parse, a, {"--model", "d", "--prompt-ids", "5", "--dtype", "\x1b[2J"}) ==
        "gpt2: --dtype: \\u001b[2J not in {f32,bf16,int8} (see --help)\n");
  translator_cli::Arguments b;
  const std::string err = printed(translator_cli::add_options, translator_cli::parse, b, {"translate", "--model", "d", std::string(10000, '\x07')});
  CHECK(err.find('\x07') == std::string::npos);
  CHECK(err.size() < 300);
}

TEST_CASE("translator_cli: train, eval and translate with words; what they refuse before reading anything") {
  translator_cli::Arguments a;
  CHECK(translator_error({"train", "--corpus", "data", "--output", "m"}, a).empty());
  CHECK(a.command == "train");
  CHECK(a.run.corpus == "data");
  CHECK(a.train.seed == 1);
  CHECK(a.train.decoder_layers == a.train.encoder_layers);
  translator_cli::Arguments b;
  CHECK(translator_error({"train", "--corpus", "d", "--output", "m", "--resume", "--force"}, b) ==
        "--resume and --force: contradict each other; give one");
  translator_cli::Arguments c;
  CHECK(translator_error({"train", "--corpus", "d", "--output", "m", "--steps", "10", "--warmup", "10"}, c) ==
        "--warmup: 10 is not below --steps 10");
  translator_cli::Arguments d;
  CHECK(translator_error({"train", "--corpus", "d", "--output", "m", "--d-model", "100", "--heads", "3"}, d) ==
        "--d-model: 100 is not a multiple of --heads 3");
  translator_cli::Arguments e;
  CHECK(translator_error({"eval", "--model", "m", "--corpus", "d"}, e).empty());
  CHECK(e.beam == 4);
  translator_cli::Arguments f;
  CHECK(translator_error({"translate", "--model", "m", "the red cars", "--beam", "3"}, f).empty());
  CHECK(f.sentences == std::vector<std::string>{"the red cars"});
  CHECK(f.beam == 3);
  translator_cli::Arguments g;
  CHECK(translator_error({"translate", "--model", "m", "the red cars", "--src-ids", "5"}, g) ==
        "--src-ids: and sentences given together; translate either words or ids");
  translator_cli::Arguments h;
  CHECK(translator_error({"train", "--corpus", "d", "--output", "m", "--seed", "-3"}, h) ==
        "--seed: '-3' is not a whole number from 0 to 18446744073709551615");
}

TEST_CASE("example_cli::error_line: one line; out of memory also points at --memory-budget (issue 13)") {
  const std::string hint = "; free memory, or give --memory-budget (such as 2G) to refuse before loading a model that needs more";
  CHECK(example_cli::error_line("gpt2", RangeError("x: bad\x1b[2J")) == "gpt2: x: bad\\u001b[2J");  // escaped, no hint
  CHECK(example_cli::error_line("translator", OutOfMemoryError("dir: out of memory loading it, which needs 1.0 GiB")) ==
        "translator: dir: out of memory loading it, which needs 1.0 GiB" + hint);
  CHECK(example_cli::error_line("gpt2", std::bad_alloc()) == "gpt2: out of memory (" + std::string(std::bad_alloc().what()) + ")" + hint);
  // What a model that cannot be allocated throws (io/memory_budget.hpp), as the program prints it.
  MemoryEstimate need;
  need.weight_bytes = 3ull << 30;
  need.batch = need.context = 1;
  const std::string line = example_cli::error_line("gpt2", out_of_memory_error(need, "dir", "loading GPT-2 as float"));
  CHECK(line == "gpt2: dir: out of memory loading GPT-2 as float, which needs 3.0 GiB (3221225472 bytes): 3.0 GiB (3221225472 bytes) of weights and "
                "0 bytes of KV cache (batch 1 x 1 positions)" + hint);
  CHECK(line.find('\n') == std::string::npos);
  // A command without --memory-budget (training) is pointed at a smaller model instead (harden-c).
  CHECK(example_cli::error_line("gpt2", OutOfMemoryError("out: out of memory training it"), /*with_memory_budget=*/false) ==
        "gpt2: out: out of memory training it; free memory, or choose a smaller model");
  CHECK(example_cli::error_line("gpt2", RangeError("x"), false) == "gpt2: x");
}
