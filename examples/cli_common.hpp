// examples/cli_common.hpp: what the gpt2 and translator command lines parse the same way: one token id typed by a
// person, and --memory-budget (declared with the same help, turned into bytes the same way).
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <exception>
#include <string>

#include <eigenformer/core/error.hpp>
#include <eigenformer/core/shape.hpp>
#include <eigenformer/io/memory_budget.hpp>

namespace example_cli {

// A whole decimal integer in [0, vocab_size); otherwise RangeError "<where>: ..." naming the word and the
// `vocabulary` ("vocabulary", "source vocabulary") it must fall in.
inline std::int64_t parse_token_id(const std::string& word, eigenformer::Index vocab_size, const std::string& where,
                                   const std::string& vocabulary = "vocabulary") {
  std::size_t used = 0;
  long long id = -1;
  try {
    id = std::stoll(word, &used);
  } catch (const std::exception&) {
    used = 0;  // not a number, or beyond long long
  }
  if (used != word.size()) throw eigenformer::RangeError(where + ": " + eigenformer::quote(word) + " is not a token id");
  if (id < 0 || id >= vocab_size)
    throw eigenformer::RangeError(where + ": token id " + word + " is outside the " + vocabulary + " [0, " + std::to_string(vocab_size) + ")");
  return id;
}

// --memory-budget on `app`, bound to `text` ("none" unless given).
inline void add_memory_budget_option(CLI::App& app, std::string& text) {
  app.add_option("--memory-budget", text,
                 "refuse, before loading, a model whose weights and KV cache need more memory than this (512M, 2G: powers of 1024)")
      ->capture_default_str();
}

// --memory-budget's text -> bytes (0: no limit); a CLI::ValidationError, as CLI11 reports its own, when malformed.
inline std::uint64_t memory_budget_bytes(const std::string& text) {
  try {
    return eigenformer::parse_byte_size(text, "--memory-budget");
  } catch (const eigenformer::RangeError& e) {
    throw CLI::ValidationError(e.what());
  }
}

}  // namespace example_cli
