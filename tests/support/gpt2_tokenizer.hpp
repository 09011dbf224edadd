// tests/support/gpt2_tokenizer.hpp: the real GPT-2 tokenizer files (./setup.sh puts them into .deps/gpt2), for the
// tests of text/.
#pragma once

#include <doctest/doctest.h>

#include <filesystem>
#include <optional>
#include <string>

#include "eigenformer/text/gpt2_tokenizer.hpp"

namespace eigenformer::testing {

inline const std::string gpt2_tokenizer_dir = EIGENFORMER_GPT2_TOKENIZER_DIR;

// The real GPT-2 tokenizer, loaded once per process. Missing files fail the test with what to do about it.
inline const GPT2Tokenizer& real_gpt2_tokenizer() {
  static const std::optional<GPT2Tokenizer> tokenizer = []() -> std::optional<GPT2Tokenizer> {
    const std::string& dir = gpt2_tokenizer_dir;
    if (!std::filesystem::exists(dir + "/vocab.json") || !std::filesystem::exists(dir + "/merges.txt")) return std::nullopt;
    return GPT2Tokenizer::from_directory(dir);
  }();
  if (!tokenizer) FAIL("the GPT-2 vocabulary is missing: " << gpt2_tokenizer_dir << "/vocab.json and merges.txt; run ./setup.sh, which installs them");
  return *tokenizer;
}

// Bytes in GPT-2's spelling, as vocab.json and merges.txt write them ("Ġ" for a space), through the tokenizer's own
// byte table.
inline std::string spelled(const std::string& bytes) {
  std::string s;
  for (const unsigned char b : bytes) s += detail::utf8_encode(detail::gpt2_byte_to_char(b));
  return s;
}

}  // namespace eigenformer::testing
