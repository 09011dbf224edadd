// text/word_vocabulary.hpp: a word-level vocabulary for toy languages, built as the PyTorch translation tutorial builds
// its own with torchtext's build_vocab_from_iterator: the specials <unk> = 0, <pad> = 1, <bos> = 2, <eos> = 3 (the
// defaults of TransformerConfig), then every word of the training sentences, the most frequent first and words of equal
// count in byte order (torchtext's order too), so that the same sentences always give the same ids. A word is what lies
// between ASCII whitespace; nothing is lowercased or split further. Deviation from the tutorial, which maps an unknown
// word to <unk> (set_default_index): encode() refuses it by name, since on a toy corpus an unknown word is a typo or
// a mismatch of files, and a silent <unk> would hide it. Saved as a JSON object {word: id}, in id order; load() checks
// that the ids are 0..V-1 each once with the specials in place. Needs nlohmann/json, not utf8proc.
#pragma once

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "eigenformer/core/bounded_reader.hpp"
#include "eigenformer/core/error.hpp"
#include "eigenformer/core/json.hpp"
#include "eigenformer/core/output_file.hpp"
#include "eigenformer/text/utf8.hpp"

namespace eigenformer {

class WordVocabulary {
 public:
  // The PyTorch translation tutorial's special ids (UNK_IDX, PAD_IDX, BOS_IDX, EOS_IDX) and their words.
  static constexpr std::int64_t unk_id = 0, pad_id = 1, bos_id = 2, eos_id = 3;
  static constexpr std::array<const char*, 4> specials = {"<unk>", "<pad>", "<bos>", "<eos>"};

  // The largest vocabulary file load() reads (16 MiB: a million words of a dozen bytes).
  static constexpr std::uint64_t max_file_bytes = std::uint64_t(16) << 20;

  // The specials, then each word of `sentences` by count (highest first), then bytes. FormatError for a sentence that
  // is not valid UTF-8 (a JSON file cannot hold it), RangeError for one holding a special as a word.
  static WordVocabulary build(const std::vector<std::string>& sentences) {
    std::unordered_map<std::string, std::int64_t> counts;
    for (std::size_t i = 0; i < sentences.size(); ++i) {
      const std::string& s = sentences[i];
      const std::size_t bad = find_invalid_utf8(s);
      if (bad != s.size())
        throw FormatError("WordVocabulary.build: sentence " + std::to_string(i + 1) + " is not valid UTF-8: " + utf8_error_message(s, bad));
      const std::vector<std::string_view> words = split(s);
      for (std::size_t k = 0; k < words.size(); ++k) {
        if (is_special(words[k]))
          throw RangeError("WordVocabulary.build: sentence " + std::to_string(i + 1) + " holds the special token " + quote(words[k]) + " (word " +
                           std::to_string(k + 1) + "); specials are not words");
        ++counts[std::string(words[k])];
      }
    }
    std::vector<std::pair<std::string, std::int64_t>> order(counts.begin(), counts.end());
    std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) { return a.second != b.second ? a.second > b.second : a.first < b.first; });
    std::vector<std::string> words(specials.begin(), specials.end());
    for (auto& [word, count] : order) words.push_back(std::move(word));
    return WordVocabulary(std::move(words));
  }

  // A file that save() wrote: a JSON object {word: id}. FormatError "<path>: ..." unless it is an object whose ids are
  // the integers 0..V-1, each once, with <unk> = 0, <pad> = 1, <bos> = 2, <eos> = 3, and whose words are not empty and
  // hold no whitespace (encode() could never produce them); IoError if it cannot be read.
  static WordVocabulary load(const std::string& path) {
    const std::string name = detail::printable(path);
    std::string duplicate;
    const nlohmann::json j = parse_json(read_file_bounded(path, "a vocabulary file", max_file_bytes), name + ": not valid JSON: ", &duplicate);
    if (!j.is_object()) throw FormatError(name + ": the top level is a JSON " + std::string(j.type_name()) + "; expected an object {word: id}");
    if (!duplicate.empty()) throw FormatError(name + ": the word " + quote(duplicate) + " appears twice");
    const std::size_t n = j.size();
    std::vector<std::string> words(n);
    std::vector<bool> used(n, false);
    for (auto it = j.begin(); it != j.end(); ++it) {
      const std::string& word = it.key();
      const nlohmann::json& value = it.value();
      if (!value.is_number_integer() || value.get<std::int64_t>() < 0 || value.get<std::int64_t>() >= static_cast<std::int64_t>(n))
        throw FormatError(name + ": the word " + quote(word) + " has id " + detail::brief_json(value) + "; expected an integer in [0, " +
                          std::to_string(n) + "), the " + std::to_string(n) + " words numbered 0.." + std::to_string(n - 1) + " each once");
      const auto id = static_cast<std::size_t>(value.get<std::int64_t>());
      if (used[id])
        throw FormatError(name + ": the words " + quote(words[id]) + " and " + quote(word) + " both have id " + std::to_string(id) +
                          "; expected each id once");
      if (word.empty() || std::any_of(word.begin(), word.end(), is_space))
        throw FormatError(name + ": the word " + quote(word) + " (id " + std::to_string(id) + ") is empty or holds whitespace; a word cannot");
      used[id] = true;
      words[id] = word;
    }
    for (std::size_t id = 0; id < specials.size(); ++id) {
      if (id >= n || words[id] != specials[id])
        throw FormatError(name + ": id " + std::to_string(id) + " is " + (id < n ? quote(words[id]) : std::string("missing")) + "; expected " +
                          quote(specials[id]) + " (the specials are <unk> = 0, <pad> = 1, <bos> = 2, <eos> = 3)");
    }
    return WordVocabulary(std::move(words));
  }

  // Writes the vocabulary as load() reads it, one "word": id a line in id order, UTF-8 as it is. IoError on failure.
  void save(const std::string& path) const {
    nlohmann::ordered_json j = nlohmann::ordered_json::object();
    for (std::size_t id = 0; id < words_.size(); ++id) j[words_[id]] = id;
    write_file_atomically(path, j.dump(1) + "\n");  // a directory, FIFO or device at `path` is refused by name
  }

  // The ids of the words of `sentence`, without <bos> and <eos> (the caller adds them, as the tutorial's
  // tensor_transform does). RangeError "WordVocabulary.encode: 'word' (word 3 of 5) is not in the vocabulary (V ids)"
  // for a word it does not hold, and likewise for a special written as a word.
  std::vector<std::int64_t> encode(std::string_view sentence) const {
    const std::vector<std::string_view> words = split(sentence);
    std::vector<std::int64_t> ids;
    ids.reserve(words.size());
    for (std::size_t k = 0; k < words.size(); ++k) {
      const std::string where = quote(words[k]) + " (word " + std::to_string(k + 1) + " of " + std::to_string(words.size()) + ")";
      if (is_special(words[k])) throw RangeError("WordVocabulary.encode: " + where + " is a special token; a sentence holds words only");
      const auto it = ids_.find(std::string(words[k]));
      if (it == ids_.end())
        throw RangeError("WordVocabulary.encode: " + where + " is not in the vocabulary (" + std::to_string(words_.size()) + " ids)");
      ids.push_back(it->second);
    }
    return ids;
  }

  // The words of `ids` joined by single spaces, leaving out <pad>, <bos> and <eos>; <unk> is written "<unk>". RangeError
  // for an id outside the vocabulary.
  std::string decode(const std::vector<std::int64_t>& ids) const {
    std::string out;
    for (std::size_t i = 0; i < ids.size(); ++i) {
      const std::int64_t id = ids[i];
      if (id < 0 || id >= size())
        throw RangeError("WordVocabulary.decode: token id " + std::to_string(id) + " at position " + std::to_string(i) +
                         " is outside the vocabulary [0, " + std::to_string(size()) + ")");
      if (id == pad_id || id == bos_id || id == eos_id) continue;
      if (!out.empty()) out += ' ';
      out += words_[static_cast<std::size_t>(id)];
    }
    return out;
  }

  // V: the specials and the words.
  std::int64_t size() const { return static_cast<std::int64_t>(words_.size()); }
  // The word of an id; RangeError outside [0, V).
  const std::string& word(std::int64_t id) const {
    if (id < 0 || id >= size())
      throw RangeError("WordVocabulary.word: token id " + std::to_string(id) + " is outside the vocabulary [0, " + std::to_string(size()) + ")");
    return words_[static_cast<std::size_t>(id)];
  }
  // The id of a word (or of a special), if the vocabulary holds it.
  std::optional<std::int64_t> find(std::string_view word) const {
    const auto it = ids_.find(std::string(word));
    if (it == ids_.end()) return std::nullopt;
    return it->second;
  }
  // Every word in id order, the specials first.
  const std::vector<std::string>& words() const { return words_; }

 private:
  explicit WordVocabulary(std::vector<std::string> words) : words_(std::move(words)) {
    ids_.reserve(words_.size());
    for (std::size_t id = 0; id < words_.size(); ++id) ids_.emplace(words_[id], static_cast<std::int64_t>(id));
  }

  static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
  // The words of a text: the runs of bytes between ASCII whitespace.
  static std::vector<std::string_view> split(std::string_view text) {
    std::vector<std::string_view> words;
    std::size_t i = 0;
    while (i < text.size()) {
      while (i < text.size() && is_space(text[i])) ++i;
      const std::size_t start = i;
      while (i < text.size() && !is_space(text[i])) ++i;
      if (i > start) words.push_back(text.substr(start, i - start));
    }
    return words;
  }
  static bool is_special(std::string_view word) {
    return std::find(specials.begin(), specials.end(), word) != specials.end();
  }

  std::vector<std::string> words_;                        // [V] id -> word
  std::unordered_map<std::string, std::int64_t> ids_;     // word -> id
};

}  // namespace eigenformer
