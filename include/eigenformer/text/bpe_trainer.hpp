// text/bpe_trainer.hpp: learns a byte-level BPE vocabulary from a text (Sennrich et al. 2016, §3.1, on bytes as in
// GPT-2) and writes it as GPT-2's vocab.json and merges.txt, which GPT2Tokenizer loads unchanged.
//   pieces:   GPT-2's pre-tokenization of the text (text/gpt2_pretokenizer.hpp); a literal "<|endoftext|>" is split
//             out first, as GPT2Tokenizer::encode does, and never merged into; count(w) = occurrences of piece w
//   start:    every piece is its bytes, one token each
//   repeat:   n(a, b) = Σ_w count(w) · (occurrences of a next to b in w)
//             (a, b)  = argmax n; ties go to the smallest (bytes(a), bytes(b)), compared as unsigned bytes
//             every (a, b) in every piece, left to right, becomes the new token ab
//   stop:     when the vocabulary is full, or when no pair occurs twice (n < 2)
// Ids: 0..255 the bytes in GPT-2's order, then one per merge in merge order, then "<|endoftext|>". A pair whose bytes
// ab are already a token (made earlier as (a', b'), a' + b' = ab) is passed over, so that each merge has its own id as in
// GPT-2's files; we have not seen one (Moby-Dick to its last merge, 300 000 small random texts), nor can rule it out.
// Pair counts change incrementally (pair -> pieces holding it, a max-heap of counts): a merge costs the pieces it
// touches, not the corpus. Link eigenformer::text (utf8proc).
#pragma once

#include "eigenformer/core/error.hpp"
#include "eigenformer/core/output_file.hpp"
#include "eigenformer/text/gpt2_pretokenizer.hpp"
#include "eigenformer/text/gpt2_tokenizer.hpp"
#include "eigenformer/text/utf8.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace eigenformer {

struct BPETrainerOptions {
  // Every id: the 256 bytes, one token per merge, and "<|endoftext|>". 257 learns no merge; at least 257.
  std::int64_t vocab_size = 4096;
  // Called after each merge with (merges made, vocab_size - 257). The last call has done < total when training
  // stops early. An exception thrown here stops training and propagates.
  std::function<void(std::int64_t done, std::int64_t total)> on_progress;
};

// What train_bpe learned, in GPT-2's spelling: each byte stands for a printable character (a space is "Ġ", a newline
// "Ċ"; detail::gpt2_byte_to_char in text/gpt2_tokenizer.hpp).
struct TrainedBPE {
  std::vector<std::string> tokens;                          // [V] id -> token; 256 bytes, one per merge, "<|endoftext|>"
  std::vector<std::pair<std::string, std::string>> merges;  // [V - 257] (left, right) in the order learned (= rank)

  // vocab.json as GPT-2's: {"!": 0, "\"": 1, ...} on one line, non-ASCII escaped as \uXXXX, no newline at the end.
  std::string vocab_json() const;
  // merges.txt as GPT-2's: "#version: 0.2", then "left right" a line, each line ending in "\n".
  std::string merges_txt() const;
  // Writes dir/vocab.json and dir/merges.txt (the directory must exist); IoError naming the file on failure.
  void save(const std::string& dir) const;
};

namespace detail {

// One distinct piece of the text: its current tokens and how often it occurs.
struct BpeWord {
  std::vector<std::int32_t> symbols;
  std::int64_t count;
};

// n(a, b), and the pieces that hold or once held (a, b): a piece that lost the pair is skipped when the pair merges.
struct BpePairStats {
  std::int64_t count = 0;
  std::vector<std::int32_t> words;
};

// A heap entry: n(a, b) when it was pushed. Counts only fall once a pair exists (a merge makes pairs only with its new
// token), so an entry whose count is out of date is pushed again with the current count when it reaches the top.
struct BpeCandidate {
  std::int64_t count;
  std::int32_t left, right;
};

inline std::uint64_t bpe_pair_key(std::int32_t left, std::int32_t right) {
  return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(left)) << 32) | static_cast<std::uint32_t>(right);
}

// Bytes -> GPT-2's spelling ("\n" -> "Ċ").
inline std::string gpt2_spelling(std::string_view bytes) {
  std::string s;
  for (const char b : bytes) s += utf8_encode(gpt2_byte_to_char(static_cast<unsigned char>(b)));
  return s;
}

// The 256 bytes in the order of GPT-2's ids 0..255: bytes_to_unicode's order, which is that of the characters standing
// for them ('!'..'~', U+00A1..U+00AC, U+00AE..U+00FF, then U+0100.. for the others in byte order).
inline std::vector<unsigned char> gpt2_byte_order() {
  std::vector<unsigned char> order(256);
  for (int b = 0; b < 256; ++b) order[static_cast<std::size_t>(b)] = static_cast<unsigned char>(b);
  std::sort(order.begin(), order.end(), [](unsigned char x, unsigned char y) { return gpt2_byte_to_char(x) < gpt2_byte_to_char(y); });
  return order;
}

// Through write_file_atomically: a directory, FIFO or device at `path` is refused by name, and the file appears whole.
inline void write_text_file(const std::string& path, const std::string& text) { write_file_atomically(path, text); }

}  // namespace detail

// Learns merges from `utf8_text` until the vocabulary holds options.vocab_size ids or no pair occurs twice.
// Throws RangeError if vocab_size is outside [257, 2147483647], FormatError if the text is empty or not valid UTF-8
// ("train_bpe: invalid UTF-8 at byte N (0xNN); why").
inline TrainedBPE train_bpe(std::string_view utf8_text, const BPETrainerOptions& options = {}) {
  constexpr std::int64_t min_vocab = 257, max_vocab = std::numeric_limits<std::int32_t>::max();
  if (options.vocab_size < min_vocab || options.vocab_size > max_vocab)
    throw RangeError("train_bpe: vocab_size is " + std::to_string(options.vocab_size) + "; expected " +
                     (options.vocab_size < min_vocab ? "at least 257 (the 256 bytes and \"<|endoftext|>\")" : "at most 2147483647"));
  if (utf8_text.empty()) throw FormatError("train_bpe: the text is empty; expected UTF-8 text to learn merges from");
  const std::size_t bad = find_invalid_utf8(utf8_text);
  if (bad != utf8_text.size()) throw FormatError("train_bpe: " + utf8_error_message(utf8_text, bad));

  // count(w) for each piece, as GPT2Tokenizer::encode cuts the text.
  std::unordered_map<std::string_view, std::int64_t> piece_count;
  std::vector<detail::Gpt2Char> chars;
  for (std::size_t pos = 0; pos <= utf8_text.size();) {
    const std::size_t special = utf8_text.find(GPT2Tokenizer::end_of_text, pos);
    const std::size_t end = special == std::string_view::npos ? utf8_text.size() : special;
    detail::gpt2_pretokenize(utf8_text.substr(pos, end - pos), "train_bpe", pos, chars,
                             [&](std::string_view piece) { ++piece_count[piece]; });
    if (special == std::string_view::npos) break;
    pos = special + GPT2Tokenizer::end_of_text.size();
  }

  // Ids 0..255: the bytes; bytes_of[id] is what each token stands for.
  std::vector<std::string> bytes_of;
  std::unordered_map<std::string, std::int32_t> id_of_bytes;
  std::int32_t byte_id[256];
  for (const unsigned char b : detail::gpt2_byte_order()) {
    byte_id[b] = static_cast<std::int32_t>(bytes_of.size());
    id_of_bytes.emplace(std::string(1, static_cast<char>(b)), byte_id[b]);
    bytes_of.emplace_back(1, static_cast<char>(b));
  }

  // The pieces as byte tokens (a piece of one byte has no pair and is left out), and n(a, b) over them.
  std::vector<detail::BpeWord> words;
  std::unordered_map<std::uint64_t, detail::BpePairStats> pairs;
  for (const auto& [piece, count] : piece_count) {
    if (piece.size() < 2) continue;
    detail::BpeWord w{{}, count};
    for (const char b : piece) w.symbols.push_back(byte_id[static_cast<unsigned char>(b)]);
    const auto index = static_cast<std::int32_t>(words.size());
    for (std::size_t k = 0; k + 1 < w.symbols.size(); ++k) {
      detail::BpePairStats& s = pairs[detail::bpe_pair_key(w.symbols[k], w.symbols[k + 1])];
      s.count += count;
      if (s.words.empty() || s.words.back() != index) s.words.push_back(index);
    }
    words.push_back(std::move(w));
  }

  // The max-heap: the highest count on top, then the smallest (bytes(a), bytes(b)). A pair under 2 never rises to 2.
  const auto ranks_below = [&](const detail::BpeCandidate& x, const detail::BpeCandidate& y) {
    if (x.count != y.count) return x.count < y.count;
    const int left = bytes_of[static_cast<std::size_t>(x.left)].compare(bytes_of[static_cast<std::size_t>(y.left)]);
    if (left != 0) return left > 0;
    return bytes_of[static_cast<std::size_t>(x.right)] > bytes_of[static_cast<std::size_t>(y.right)];
  };
  std::vector<detail::BpeCandidate> heap;
  const auto push = [&](std::int64_t count, std::int32_t left, std::int32_t right) {
    heap.push_back({count, left, right});
    std::push_heap(heap.begin(), heap.end(), ranks_below);
  };
  for (const auto& [key, s] : pairs)
    if (s.count >= 2) push(s.count, static_cast<std::int32_t>(key >> 32), static_cast<std::int32_t>(key & 0xFFFFFFFFu));

  TrainedBPE result;
  const std::int64_t total = options.vocab_size - min_vocab;
  std::vector<std::uint64_t> grown;  // pairs with the new token, made by one merge
  while (static_cast<std::int64_t>(result.merges.size()) < total && !heap.empty()) {
    const detail::BpeCandidate top = heap.front();
    std::pop_heap(heap.begin(), heap.end(), ranks_below);
    heap.pop_back();
    const std::int32_t a = top.left, b = top.right;
    const std::uint64_t merged_key = detail::bpe_pair_key(a, b);
    const auto found = pairs.find(merged_key);
    const std::int64_t now = found == pairs.end() ? 0 : found->second.count;
    if (now != top.count) {  // out of date: back in at its current count, if that can still win
      if (now >= 2) push(now, a, b);
      continue;
    }
    std::string joined = bytes_of[static_cast<std::size_t>(a)] + bytes_of[static_cast<std::size_t>(b)];
    if (id_of_bytes.count(joined)) continue;  // already a token: passed over (see the top of the file)

    const auto c = static_cast<std::int32_t>(bytes_of.size());
    id_of_bytes.emplace(joined, c);
    bytes_of.push_back(std::move(joined));
    result.merges.emplace_back(detail::gpt2_spelling(bytes_of[static_cast<std::size_t>(a)]),
                               detail::gpt2_spelling(bytes_of[static_cast<std::size_t>(b)]));
    const std::vector<std::int32_t> holders = std::move(found->second.words);
    pairs.erase(found);  // every (a, b) becomes c

    // In each piece, left to right: x a b y -> x c y, so n(x, a) and n(b, y) fall, n(x, c) and n(c, y) rise.
    grown.clear();
    for (const std::int32_t index : holders) {
      detail::BpeWord& w = words[static_cast<std::size_t>(index)];
      const auto change = [&](std::int32_t left, std::int32_t right, std::int64_t delta) {
        const std::uint64_t key = detail::bpe_pair_key(left, right);
        if (key == merged_key) return;  // gone as a whole
        detail::BpePairStats& s = pairs[key];
        s.count += delta;
        EIGENFORMER_ASSERT(s.count >= 0, "a pair cannot occur a negative number of times");
        if (delta > 0) {
          if (s.words.empty() || s.words.back() != index) s.words.push_back(index);
          grown.push_back(key);
        } else if (s.count == 0) {
          pairs.erase(key);
        }
      };
      std::vector<std::int32_t>& sym = w.symbols;
      std::size_t out = 0;  // sym[0, out) is the rewritten piece, sym[i, n) what is left of the old one
      for (std::size_t i = 0, n = sym.size(); i < n;) {
        if (i + 1 < n && sym[i] == a && sym[i + 1] == b) {
          if (out > 0) {
            change(sym[out - 1], a, -w.count);
            change(sym[out - 1], c, w.count);
          }
          if (i + 2 < n) {
            change(b, sym[i + 2], -w.count);
            change(c, sym[i + 2], w.count);
          }
          sym[out++] = c;
          i += 2;
        } else {
          sym[out++] = sym[i++];
        }
      }
      sym.resize(out);
    }
    std::sort(grown.begin(), grown.end());
    grown.erase(std::unique(grown.begin(), grown.end()), grown.end());
    for (const std::uint64_t key : grown) {
      const auto it = pairs.find(key);
      if (it != pairs.end() && it->second.count >= 2)
        push(it->second.count, static_cast<std::int32_t>(key >> 32), static_cast<std::int32_t>(key & 0xFFFFFFFFu));
    }
    if (options.on_progress) options.on_progress(static_cast<std::int64_t>(result.merges.size()), total);
  }

  result.tokens.reserve(bytes_of.size() + 1);
  for (const std::string& bytes : bytes_of) result.tokens.push_back(detail::gpt2_spelling(bytes));
  result.tokens.emplace_back(GPT2Tokenizer::end_of_text);
  return result;
}

inline std::string TrainedBPE::vocab_json() const {
  std::string out = "{";
  for (std::size_t id = 0; id < tokens.size(); ++id) {
    const std::size_t bad = find_invalid_utf8(tokens[id]);
    if (bad != tokens[id].size()) throw FormatError("TrainedBPE.vocab_json: token " + std::to_string(id) + ": " + utf8_error_message(tokens[id], bad));
    if (id > 0) out += ", ";
    out += nlohmann::json(tokens[id]).dump(-1, ' ', /*ensure_ascii=*/true);
    out += ": " + std::to_string(id);
  }
  return out + "}";
}

inline std::string TrainedBPE::merges_txt() const {
  std::string out = "#version: 0.2\n";
  for (const auto& [left, right] : merges) out += left + " " + right + "\n";
  return out;
}

inline void TrainedBPE::save(const std::string& dir) const {
  const std::string vocab = vocab_json(), merges_text = merges_txt();  // both made before either file is written
  check_output_path(dir + "/vocab.json");  // and both paths checked
  check_output_path(dir + "/merges.txt");
  detail::write_text_file(dir + "/vocab.json", vocab);
  detail::write_text_file(dir + "/merges.txt", merges_text);
}

}  // namespace eigenformer
