// examples/cli_common.hpp: what the gpt2 and translator command lines parse the same way: one token id typed by a
// person, --memory-budget (declared with the same help, turned into bytes the same way), the files that --explain
// and --dump-activations write, and the one line an error prints.
#pragma once

#include <CLI/CLI.hpp>

#include <sys/stat.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <initializer_list>
#include <new>
#include <string>
#include <vector>

#include <eigenformer/core/bounded_reader.hpp>
#include <eigenformer/core/error.hpp>
#include <eigenformer/core/shape.hpp>
#include <eigenformer/io/memory_budget.hpp>

namespace example_cli {

// A whole decimal integer in [0, vocab_size); otherwise RangeError "<where>: ..." naming the word and the
// `vocabulary` ("vocabulary", "source vocabulary") it must fall in. A whole number too long for 64 bits
// (99999999999999999999999) is outside the vocabulary too, and is quoted as written (cut to 80 characters), never
// wrapped or saturated.
inline std::int64_t parse_token_id(const std::string& word, eigenformer::Index vocab_size, const std::string& where,
                                   const std::string& vocabulary = "vocabulary") {
  const auto outside = [&] {
    return eigenformer::RangeError(where + ": token id " + eigenformer::detail::printable(word) + " is outside the " + vocabulary + " [0, " +
                                   std::to_string(vocab_size) + ")");
  };
  std::size_t used = 0;
  long long id = -1;
  try {
    id = std::stoll(word, &used);
  } catch (const std::out_of_range&) {
    // std::stoll's digits, too many for long long: a number, but not one the vocabulary can hold.
    const std::size_t digits = word[0] == '-' || word[0] == '+' ? 1 : 0;
    if (word.size() > digits && word.find_first_not_of("0123456789", digits) == std::string::npos) throw outside();
    used = 0;
  } catch (const std::exception&) {
    used = 0;  // not a number
  }
  if (used != word.size()) throw eigenformer::RangeError(where + ": " + eigenformer::quote(word) + " is not a token id");
  if (id < 0 || id >= vocab_size) throw outside();
  return id;
}

// Put before CLI::Range on every floating-point option: CLI11 reads "nan", "inf" and "1e400" (inf) as doubles, and its
// Range compares with < and >, which a NaN passes, so `--temperature nan` was taken and sampled from NaN
// probabilities. No option of the two programs has a meaning for an infinity either. The error, as CLI11 reports a
// validator's: "--temperature: 'nan' is not a finite number".
inline const CLI::Validator finite_number(
    [](std::string& input) -> std::string {
      double value = 0;
      if (CLI::detail::lexical_cast(input, value) && !std::isfinite(value)) return eigenformer::quote(input) + " is not a finite number";
      return "";  // a finite number, or not a number at all: Range, after this, names either
    },
    "", "finite");

// --memory-budget on `app`, bound to `text` ("none" unless given).
inline void add_memory_budget_option(CLI::App& app, std::string& text) {
  app.add_option("--memory-budget", text,
                 "refuse, before loading, a model whose weights and KV cache need more memory than this (512M, 2G: powers of 1024)")
      ->capture_default_str();
}

// --memory-budget's text -> bytes (0: none, the word "none", no limit); a CLI::ValidationError, as CLI11 reports its
// own, when malformed or below a kibibyte: "0" or "100" is a typo or a misunderstanding, never a usable budget, and
// must not silently mean "no limit".
inline std::uint64_t memory_budget_bytes(const std::string& text) {
  std::uint64_t bytes = 0;
  try {
    bytes = eigenformer::parse_byte_size(text, "--memory-budget");
  } catch (const eigenformer::RangeError& e) {
    throw CLI::ValidationError(e.what());
  }
  if (text != "none" && bytes < 1024)
    throw CLI::ValidationError("--memory-budget: " + eigenformer::quote(text) + " is less than 1 KiB; expected a budget such as 512M or 2G, or none");
  return bytes;
}

// A whole decimal number from 0 to 2^64 - 1, digits only (no sign, no space, no exponent), for --seed; a
// CLI::ValidationError naming `option` and the word otherwise: a seed that wrapped (-1) or saturated would give
// another run's text without a word.
inline std::uint64_t parse_u64(const std::string& word, const std::string& option) {
  const auto bad = [&] {
    return CLI::ValidationError(option + ": " + eigenformer::quote(word) + " is not a whole number from 0 to 18446744073709551615");
  };
  if (word.empty() || word.size() > 20 || word.find_first_not_of("0123456789") != std::string::npos) throw bad();
  std::uint64_t n = 0;
  for (char d : word) {
    const std::uint64_t digit = static_cast<std::uint64_t>(d - '0');
    if (n > (UINT64_MAX - digit) / 10) throw bad();
    n = n * 10 + digit;
  }
  return n;
}

// What main() prints for an exception that ends the program, one line without its newline: "<program>: <message>",
// the message's control characters escaped (eigenformer::detail::printable_message) whatever it quotes. Out of memory
// (OutOfMemoryError, which says what the model needs, or a bare std::bad_alloc) also points at --memory-budget, with
// which a model too large is refused before any of it is allocated; a command without that option (training)
// passes with_memory_budget false and is pointed at a smaller model instead.
inline std::string error_line(const std::string& program, const std::exception& e, bool with_memory_budget = true) {
  std::string line = program + ": ";
  const bool out_of_memory = dynamic_cast<const eigenformer::OutOfMemoryError*>(&e) || dynamic_cast<const std::bad_alloc*>(&e);
  if (dynamic_cast<const std::bad_alloc*>(&e)) line += "out of memory (" + std::string(e.what()) + ")";
  else line += eigenformer::detail::printable_message(e.what());
  if (out_of_memory && with_memory_budget) line += "; free memory, or give --memory-budget (such as 2G) to refuse before loading a model that needs more";
  else if (out_of_memory) line += "; free memory, or choose a smaller model";
  return line;
}

// Token ids as the programs print them: "15496 995" (also the metadata of --dump-activations).
inline std::string ids_text(const std::vector<std::int64_t>& ids) {
  std::string text;
  for (std::int64_t id : ids) text += (text.empty() ? "" : " ") + std::to_string(id);
  return text;
}

// A file the program will write (--explain, --dump-activations): checked before any work, so that a typo costs no
// generation. CLI::ValidationError naming `option` when the name is empty, names something that is not a regular
// file (a directory, a FIFO, a device such as /dev/null or /dev/full: the page would vanish, block or fail, and its
// temporary would be renamed over the device), or its directory does not exist.
inline void check_output_file(const std::string& path, const std::string& option) {
  namespace fs = std::filesystem;
  if (path.empty()) throw CLI::ValidationError(option, "is empty; expected a file name");
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode))
    throw CLI::ValidationError(option, eigenformer::quote(path) + " is " + eigenformer::detail::file_kind(st.st_mode) + "; expected a file name");
  std::error_code ec;
  const fs::path dir = fs::path(path).parent_path();
  if (!dir.empty() && !fs::is_directory(dir, ec))
    throw CLI::ValidationError(option, eigenformer::quote(path) + ": the directory " + eigenformer::quote(dir.string()) + " does not exist");
}

// A directory the program will write `files` into (--output, --init-random), checked before any work: if it exists it
// must be a directory, and each of the files there that exists must be a regular file (it is replaced). A
// CLI::ValidationError naming `option` and the path otherwise: "--output: '/dev/null' is a character device; expected a
// directory", "--output: 'run/loss.svg' is a directory; the program writes a file there".
inline void check_output_directory(const std::string& dir, const std::string& option, std::initializer_list<const char*> files) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    const int err = errno;
    if (err == ENOENT) return;  // created when written
    // /dev/null/out, file.txt/out: no directory can be made there (ENOTDIR), or it cannot be looked at (EACCES).
    throw CLI::ValidationError(option, eigenformer::quote(dir) + ": " + std::strerror(err) + "; expected a directory");
  }
  if (!S_ISDIR(st.st_mode))
    throw CLI::ValidationError(option, eigenformer::quote(dir) + " is " + (S_ISREG(st.st_mode) ? std::string("a file") : eigenformer::detail::file_kind(st.st_mode)) +
                                           "; expected a directory");
  for (const char* file : files) {
    const std::string path = dir + "/" + file;
    if (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode))
      throw CLI::ValidationError(option, eigenformer::quote(path) + " is " + eigenformer::detail::file_kind(st.st_mode) +
                                             "; the program writes a file there");
  }
}

}  // namespace example_cli
