// text/gpt2_tokenizer.hpp: GPT-2's byte-level BPE tokenizer, from a Hugging Face checkpoint's vocab.json
// and merges.txt. encode() gives the ids of OpenAI's encoder.py (as ported by the npm package
// gpt-3-encoder, which tests/fixtures/tokenizer/cases.json comes from): pre-tokenize with GPT-2's pattern
// (text/gpt2_pretokenizer.hpp), map each piece's UTF-8 bytes to the byte alphabet, merge by rank (line
// order of merges.txt), look the tokens up in vocab.json. Deviation from gpt-3-encoder, following Hugging
// Face instead: the literal text "<|endoftext|>" becomes eos_id() (50256) unless
// EncodeOptions::special_tokens is false. decode() replaces invalid UTF-8 with U+FFFD as HF does;
// StreamingDecoder emits text id by id without ever cutting a character. Link eigenformer::text.
#pragma once

#include "eigenformer/core/bounded_reader.hpp"
#include "eigenformer/core/error.hpp"
#include "eigenformer/core/json.hpp"
#include "eigenformer/text/gpt2_pretokenizer.hpp"
#include "eigenformer/text/utf8.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace eigenformer {

struct EncodeOptions {
  // true (Hugging Face's default): each literal "<|endoftext|>" in the text is split out and becomes
  // eos_id(); the text around it is encoded as usual ("a <|endoftext|> b" -> [64, 220, 50256, 275]).
  // false: it is plain text, "<", "|", "end", "of", "text", "|", ">" (gpt-3-encoder's behaviour).
  bool special_tokens = true;
};

struct GPT2TokenizerOptions {
  // How many pieces (words, mostly) keep their ids for reuse; the cache is shared by all threads
  // and stops growing when full. 0 turns it off. Pieces over 256 bytes are never cached (as in HF tokenizers).
  std::size_t cache_capacity = 65536;
};

namespace detail {

// encoder.py's bytes_to_unicode(): the printable bytes '!'..'~', U+00A1..U+00AC and U+00AE..U+00FF stand
// for themselves; the 68 others (0x00..0x20, 0x7F..0xA0, 0xAD), in byte order, get U+0100..U+0143.
// So a space is 'Ġ' (U+0120) and a newline 'Ċ' (U+010A) in vocab.json and merges.txt.
inline char32_t gpt2_byte_to_char(unsigned char b) {
  if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE) return b;
  if (b <= 0x20) return 0x100 + b;                 // 0x00..0x20 -> U+0100..U+0120
  if (b <= 0xA0) return 0x100 + 33 + (b - 0x7F);   // 0x7F..0xA0 -> U+0121..U+0142
  return 0x100 + 33 + 34;                          // 0xAD -> U+0143
}

// The inverse; -1 for a character outside the 256 of the alphabet.
inline int gpt2_char_to_byte(char32_t c) {
  if (c < 0x100) {
    const bool printable = (c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || c >= 0xAE;
    return printable ? static_cast<int>(c) : -1;
  }
  if (c <= 0x120) return static_cast<int>(c - 0x100);
  if (c <= 0x142) return static_cast<int>(c - 0x100 - 33 + 0x7F);
  if (c == 0x143) return 0xAD;
  return -1;
}

inline std::string utf8_encode(char32_t c) {
  std::string s;
  if (c < 0x80) {
    s += static_cast<char>(c);
  } else if (c < 0x800) {
    s += static_cast<char>(0xC0 | (c >> 6));
    s += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    s += static_cast<char>(0xE0 | (c >> 12));
    s += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    s += static_cast<char>(0xF0 | (c >> 18));
    s += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    s += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (c & 0x3F));
  }
  return s;
}

// A token as it reads in an error message: in double quotes, control characters and invalid UTF-8 escaped, at most
// 80 characters (core/error.hpp's escape_text, behind quote()).
inline std::string json_quoted(std::string_view s) { return escape_text(s, 80, '"'); }

inline std::string code_point_name(char32_t c) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "U+%04X", static_cast<unsigned>(c));
  return buf;
}

struct Gpt2MergeRule {
  std::int32_t rank;    // line of merges.txt, counted from 0 after the #version header
  std::int32_t merged;  // id of the two tokens joined
};

struct Gpt2RankedMerge {  // the rule of one rank: left + right -> merged (ids)
  std::int32_t left, right, merged;
};

// Everything read from the two files; immutable once built, shared by copies of a tokenizer and by
// its StreamingDecoders.
struct Gpt2Vocabulary {
  std::vector<std::string> spelling;  // [V] id -> token as in vocab.json ("Ġthe")
  std::vector<std::string> bytes;     // [V] id -> the bytes it stands for (" the")
  std::unordered_map<std::string, std::int32_t> id_of_spelling;
  std::array<std::int32_t, 256> byte_id{};  // id of each single-byte token
  std::unordered_map<std::uint64_t, Gpt2MergeRule> merges;  // key: left id << 32 | right id
  std::vector<Gpt2RankedMerge> merge_of_rank;               // [merges] the same rules, by rank
  std::int32_t eos_id = -1;

  static std::uint64_t pair_key(std::int32_t left, std::int32_t right) {
    return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(left)) << 32) | static_cast<std::uint32_t>(right);
  }
};

// vocab.json: one JSON object {token: id}, ids 0..V-1 each used once, every token spelled in the byte
// alphabet, all 256 single-byte tokens and "<|endoftext|>" present. `file` names the text in messages.
// Nothing is sized from a number in the file: V is the count of tokens the JSON holds, so what is allocated is
// bounded by the file's size.
inline void parse_gpt2_vocab(std::string_view text, const std::string& file, Gpt2Vocabulary& v) {
  const std::string path = printable(file);  // for messages
  std::string duplicate;
  const nlohmann::json j = parse_json(text, path + ": not valid JSON: ", &duplicate);
  if (!j.is_object()) throw FormatError(path + ": the top level is a JSON " + j.type_name() + "; expected an object {token: id}");
  if (!duplicate.empty()) throw FormatError(path + ": token " + json_quoted(duplicate) + " appears twice");
  const std::size_t n = j.size();
  if (n > static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max()))  // ids are stored as int32
    throw FormatError(path + ": " + std::to_string(n) + " tokens; at most 2147483647 are supported");
  v.spelling.assign(n, std::string());
  v.bytes.assign(n, std::string());
  std::vector<bool> used(n, false);
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& token = it.key();
    const nlohmann::json& value = it.value();
    if (!value.is_number_integer() || value.get<std::int64_t>() < 0) {
      throw FormatError(path + ": token " + json_quoted(token) + " has id " + brief_json(value) + "; expected a non-negative integer");
    }
    const std::int64_t id = value.get<std::int64_t>();
    if (id >= static_cast<std::int64_t>(n)) {
      std::size_t missing = 0;
      for (auto jt = j.begin(); jt != j.end(); ++jt) {
        const nlohmann::json& w = jt.value();
        if (w.is_number_integer() && w.get<std::int64_t>() >= 0 && w.get<std::int64_t>() < static_cast<std::int64_t>(n))
          used[static_cast<std::size_t>(w.get<std::int64_t>())] = true;
      }
      while (missing < n && used[missing]) ++missing;
      throw FormatError(path + ": token " + json_quoted(token) + " has id " + std::to_string(id) + ", but there are " + std::to_string(n) +
                        " tokens; expected the ids 0.." + std::to_string(n - 1) + " each once (no token has id " +
                        std::to_string(missing) + ")");
    }
    const auto slot = static_cast<std::size_t>(id);
    if (used[slot]) {
      throw FormatError(path + ": tokens " + json_quoted(v.spelling[slot]) + " and " + json_quoted(token) + " both have id " + std::to_string(id) +
                        "; expected each id once");
    }
    used[slot] = true;
    if (token.empty()) throw FormatError(path + ": token \"\" (id " + std::to_string(id) + ") is empty");
    std::string bytes;
    for (std::size_t pos = 0; pos < token.size();) {
      const Utf8Step step = utf8_step(token, pos);  // nlohmann has checked the UTF-8
      const int b = gpt2_char_to_byte(step.code_point);
      if (b < 0) {
        throw FormatError(path + ": token " + json_quoted(token) + " (id " + std::to_string(id) + ") holds " + code_point_name(step.code_point) +
                          ", which is not one of the 256 characters that stand for bytes");
      }
      bytes += static_cast<char>(b);
      pos += step.length;
    }
    v.spelling[slot] = token;
    v.bytes[slot] = std::move(bytes);
  }
  v.id_of_spelling.reserve(n);
  for (std::size_t id = 0; id < n; ++id) v.id_of_spelling.emplace(v.spelling[id], static_cast<std::int32_t>(id));
  for (int b = 0; b < 256; ++b) {
    const std::string spelled = utf8_encode(gpt2_byte_to_char(static_cast<unsigned char>(b)));
    const auto it = v.id_of_spelling.find(spelled);
    if (it == v.id_of_spelling.end()) {
      throw FormatError(path + ": no token for the byte " + hex_byte(static_cast<unsigned char>(b)) + " (" + json_quoted(spelled) +
                        "); expected one for each of the 256 bytes");
    }
    v.byte_id[static_cast<std::size_t>(b)] = it->second;
  }
  const auto eos = v.id_of_spelling.find("<|endoftext|>");
  if (eos == v.id_of_spelling.end()) throw FormatError(path + ": no token \"<|endoftext|>\"; GPT-2 ends its vocabulary with it (id 50256)");
  v.eos_id = eos->second;
}

// merges.txt: a "#version" line, then one merge per line, "left right" (one space between), ranked by
// line order. Both tokens and their concatenation must be in the vocabulary. `file` and `vocab_file` name
// the texts in messages.
inline void parse_gpt2_merges(std::string_view text, const std::string& file, const std::string& vocab_file, Gpt2Vocabulary& v) {
  const std::string path = printable(file), vocab_path = printable(vocab_file);  // for messages
  std::unordered_map<std::uint64_t, std::size_t> line_of;  // for "repeats line N"
  std::size_t line_no = 0;
  std::size_t pos = 0;
  std::int32_t rank = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    const bool last = end == std::string::npos;
    if (last) end = text.size();
    std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);  // a file saved with CRLF line ends
    const std::string where = path + ":" + std::to_string(line_no) + ": ";
    if (line_no == 1) {
      if (line.rfind("#version", 0) != 0) {
        throw FormatError(where + "the first line is " + json_quoted(line) + "; expected the header \"#version: 0.2\"");
      }
      continue;
    }
    if (line.empty()) {
      if (last || pos == text.size()) break;  // the newline that ends the file
      throw FormatError(where + "the line is empty; expected two tokens separated by one space");
    }
    std::vector<std::string_view> parts;
    for (std::size_t b = 0;;) {
      const std::size_t sp = line.find(' ', b);
      parts.push_back(line.substr(b, sp == std::string_view::npos ? std::string_view::npos : sp - b));
      if (sp == std::string_view::npos) break;
      b = sp + 1;
    }
    if (parts.size() != 2 || parts[0].empty() || parts[1].empty()) {
      throw FormatError(where + json_quoted(line) + " is not two tokens separated by one space");
    }
    std::int32_t ids[2] = {0, 0};
    for (int k = 0; k < 2; ++k) {
      const auto it = v.id_of_spelling.find(std::string(parts[static_cast<std::size_t>(k)]));
      if (it == v.id_of_spelling.end()) {
        throw FormatError(where + "token " + json_quoted(parts[static_cast<std::size_t>(k)]) + " is not in the vocabulary " + vocab_path);
      }
      ids[k] = it->second;
    }
    const std::string joined = std::string(parts[0]) + std::string(parts[1]);
    const auto merged = v.id_of_spelling.find(joined);
    if (merged == v.id_of_spelling.end()) {
      throw FormatError(where + "the merge of " + json_quoted(parts[0]) + " and " + json_quoted(parts[1]) + ", " + json_quoted(joined) +
                        ", is not in the vocabulary " + vocab_path);
    }
    const std::uint64_t key = Gpt2Vocabulary::pair_key(ids[0], ids[1]);
    const auto seen = line_of.find(key);
    if (seen != line_of.end()) throw FormatError(where + "the merge " + json_quoted(line) + " repeats line " + std::to_string(seen->second));
    line_of.emplace(key, line_no);
    v.merges.emplace(key, Gpt2MergeRule{rank++, merged->second});
    v.merge_of_rank.push_back({ids[0], ids[1], merged->second});
  }
  if (line_no == 0) throw FormatError(path + ":1: the file is empty; expected the header \"#version: 0.2\"");
}

// Ids of the pieces seen before, shared by every thread that encodes with one tokenizer.
class Gpt2PieceCache {
 public:
  static constexpr std::size_t max_piece_bytes = 256;
  explicit Gpt2PieceCache(std::size_t capacity) : capacity_(capacity) {}

  // Appends the cached ids of `piece` to `out`; false if it is not cached.
  bool find(const std::string& piece, std::vector<std::int64_t>& out) const {
    std::shared_lock<std::shared_mutex> lock(mutex_);
    const auto it = map_.find(piece);
    if (it == map_.end()) return false;
    out.insert(out.end(), it->second.begin(), it->second.end());
    return true;
  }
  void insert(const std::string& piece, const std::int64_t* ids, std::size_t n) {
    std::unique_lock<std::shared_mutex> lock(mutex_);
    if (map_.size() >= capacity_) return;
    map_.emplace(piece, std::vector<std::int32_t>(ids, ids + n));
  }
  void clear() {
    std::unique_lock<std::shared_mutex> lock(mutex_);
    map_.clear();
  }
  std::size_t size() const {
    std::shared_lock<std::shared_mutex> lock(mutex_);
    return map_.size();
  }
  std::size_t capacity() const { return capacity_; }

 private:
  std::size_t capacity_;
  mutable std::shared_mutex mutex_;
  std::unordered_map<std::string, std::vector<std::int32_t>> map_;
};

// Working memory of bpe_long_piece.
struct Gpt2LongPieceScratch {
  std::vector<std::int32_t> symbol, prev;                              // [bytes of the piece]
  std::unordered_map<std::int32_t, std::vector<std::int32_t>> bucket;  // rank -> starts of pairs of that rank
  std::vector<std::int32_t> ranks;                                     // min-heap: the ranks with a bucket
  std::vector<std::int32_t> round;                                     // the bucket being merged
};

// Working memory of one encode() call (so that encode() is const and needs no lock for it).
struct Gpt2EncodeScratch {
  struct Candidate {  // the adjacent symbols left, right could merge, with rule rank
    std::int32_t rank, left, right, left_id, right_id, merged;
  };
  std::vector<Gpt2Char> chars;                 // the pre-tokenizer's code points
  std::vector<std::int32_t> id, prev, next;    // [bytes of the piece] a linked list of symbols
  std::vector<Candidate> heap, round;
  std::string key;
  Gpt2LongPieceScratch long_piece;
};

// Pieces up to this many bytes go through bpe_piece, longer ones through bpe_long_piece: both give the same ids.
// bpe_piece is the faster on the short pieces of text; its working memory grows by about 100 bytes per byte of a
// piece (a run of one letter), so it is kept to at most 16 KiB, where bpe_long_piece is as fast (issue 13, item 7).
inline constexpr std::size_t gpt2_heap_bpe_max_bytes = 16384;

// BPE on one piece, with encoder.py's semantics: while some adjacent pair has a merge rule, take the
// rule of lowest rank and merge every occurrence of its pair, left to right without overlaps; repeat.
// Done with a heap of candidate pairs: all candidates of the lowest rank form one round, applied in text
// order. A merge cannot create a pair of the same rank (the new token is longer than either part), so
// each round is exactly one iteration of encoder.py's loop, and the result is the same for any
// merges file. O(n log n) for a piece of n bytes, where the loop of encoder.py is O(n^2).
inline void bpe_piece(const Gpt2Vocabulary& v, std::string_view piece, Gpt2EncodeScratch& s, std::vector<std::int64_t>& out) {
  const auto n = static_cast<std::int32_t>(piece.size());
  if (n == 0) return;
  s.id.resize(piece.size());
  s.prev.resize(piece.size());
  s.next.resize(piece.size());
  for (std::int32_t k = 0; k < n; ++k) {
    s.id[static_cast<std::size_t>(k)] = v.byte_id[static_cast<unsigned char>(piece[static_cast<std::size_t>(k)])];
    s.prev[static_cast<std::size_t>(k)] = k - 1;
    s.next[static_cast<std::size_t>(k)] = k + 1 < n ? k + 1 : -1;
  }
  const auto later = [](const Gpt2EncodeScratch::Candidate& a, const Gpt2EncodeScratch::Candidate& b) {
    return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
  };
  s.heap.clear();
  const auto consider = [&](std::int32_t left, std::int32_t right) {
    const std::int32_t a = s.id[static_cast<std::size_t>(left)];
    const std::int32_t b = s.id[static_cast<std::size_t>(right)];
    const auto it = v.merges.find(Gpt2Vocabulary::pair_key(a, b));
    if (it == v.merges.end()) return;
    s.heap.push_back({it->second.rank, left, right, a, b, it->second.merged});
    std::push_heap(s.heap.begin(), s.heap.end(), later);
  };
  for (std::int32_t k = 0; k + 1 < n; ++k) consider(k, k + 1);
  while (!s.heap.empty()) {
    const std::int32_t rank = s.heap.front().rank;
    s.round.clear();
    while (!s.heap.empty() && s.heap.front().rank == rank) {
      std::pop_heap(s.heap.begin(), s.heap.end(), later);
      s.round.push_back(s.heap.back());
      s.heap.pop_back();
    }
    // Popped in order of `left` already (the heap breaks ties by position): text order.
    for (const auto& c : s.round) {
      const auto l = static_cast<std::size_t>(c.left);
      const auto r = static_cast<std::size_t>(c.right);
      // Stale if either symbol has changed since: merged away (id -1), grown, or no longer adjacent.
      if (s.id[l] != c.left_id || s.id[r] != c.right_id || s.next[l] != c.right) continue;
      s.id[l] = c.merged;
      s.id[r] = -1;
      const std::int32_t after = s.next[r];
      s.next[l] = after;
      if (after >= 0) s.prev[static_cast<std::size_t>(after)] = c.left;
      if (s.prev[l] >= 0) consider(s.prev[l], c.left);
      if (after >= 0) consider(c.left, after);
    }
  }
  for (std::int32_t k = 0; k >= 0; k = s.next[static_cast<std::size_t>(k)]) out.push_back(s.id[static_cast<std::size_t>(k)]);
}

// The same BPE as bpe_piece, for a piece of any length, in working memory linear in the piece with a small constant.
// bpe_piece's heap holds 24 bytes per candidate pair and its rounds may hold every pair once more: about 100 bytes per
// byte of a long run of one letter, reached in random order. Here, for a piece of n bytes:
//   symbol[k]  the id of the token that starts at byte k, -1 if none does; the token ends at k + its length in bytes
//   prev[k]    the start of the token before the one at k
//   bucket[r]  the starts k whose pair (token at k, token after it) had merge rank r when it formed
// A round takes the bucket of the lowest rank, sorts it into text order and merges each pair that still is that
// rank's rule (a pair that has changed since is not: its tokens only grow). A merge never forms a pair of its own
// rank (the new token is longer than either part), so a round is one iteration of encoder.py's loop; a pair of a
// lower rank that a merge forms (merges.txt may list rules in any order) waits in its bucket for the next round, as
// it does in encoder.py. The buckets hold at most n - 1 + (merges so far) <= 2n starts: with symbol and prev, at
// most 16 bytes per byte, 24 with the slack of growing vectors, and every round walks memory in text order.
inline void bpe_long_piece(const Gpt2Vocabulary& v, std::string_view piece, Gpt2LongPieceScratch& s, std::vector<std::int64_t>& out) {
  const auto n = static_cast<std::int32_t>(piece.size());
  if (n == 0) return;
  const auto length = [&](std::int32_t id) { return static_cast<std::int32_t>(v.bytes[static_cast<std::size_t>(id)].size()); };
  s.symbol.resize(piece.size());
  s.prev.resize(piece.size());
  for (std::int32_t k = 0; k < n; ++k) {
    s.symbol[static_cast<std::size_t>(k)] = v.byte_id[static_cast<unsigned char>(piece[static_cast<std::size_t>(k)])];
    s.prev[static_cast<std::size_t>(k)] = k - 1;
  }
  s.bucket.clear();
  s.ranks.clear();
  const auto consider = [&](std::int32_t left, std::int32_t right) {
    const auto it = v.merges.find(Gpt2Vocabulary::pair_key(s.symbol[static_cast<std::size_t>(left)], s.symbol[static_cast<std::size_t>(right)]));
    if (it == v.merges.end()) return;
    const auto [b, added] = s.bucket.try_emplace(it->second.rank);
    if (added) {
      s.ranks.push_back(it->second.rank);
      std::push_heap(s.ranks.begin(), s.ranks.end(), std::greater<std::int32_t>());
    }
    b->second.push_back(left);
  };
  for (std::int32_t k = 0; k + 1 < n; ++k) consider(k, k + 1);
  while (!s.ranks.empty()) {
    std::pop_heap(s.ranks.begin(), s.ranks.end(), std::greater<std::int32_t>());
    const std::int32_t rank = s.ranks.back();
    s.ranks.pop_back();
    const auto taken = s.bucket.find(rank);
    s.round.swap(taken->second);  // the last round's memory goes with the erased bucket
    s.bucket.erase(taken);
    if (!std::is_sorted(s.round.begin(), s.round.end())) std::sort(s.round.begin(), s.round.end());
    const Gpt2RankedMerge& rule = v.merge_of_rank[static_cast<std::size_t>(rank)];
    for (const std::int32_t k : s.round) {
      if (s.symbol[static_cast<std::size_t>(k)] != rule.left) continue;  // merged away or grown since
      const std::int32_t r = k + length(rule.left);
      if (r >= n || s.symbol[static_cast<std::size_t>(r)] != rule.right) continue;
      s.symbol[static_cast<std::size_t>(k)] = rule.merged;
      s.symbol[static_cast<std::size_t>(r)] = -1;
      const std::int32_t after = r + length(rule.right);
      if (after < n) s.prev[static_cast<std::size_t>(after)] = k;
      if (k > 0) consider(s.prev[static_cast<std::size_t>(k)], k);
      if (after < n) consider(k, after);
    }
    s.round.clear();
  }
  for (std::int32_t k = 0; k < n; k += length(s.symbol[static_cast<std::size_t>(k)])) out.push_back(s.symbol[static_cast<std::size_t>(k)]);
}

}  // namespace detail

class StreamingDecoder;

// Thread safety: after load(), every const member may be called from any number of threads at once
// (the piece cache is behind a shared mutex). Copies share the vocabulary and the cache. A moved-from
// tokenizer may only be assigned to or destroyed.
class GPT2Tokenizer {
 public:
  static constexpr std::string_view end_of_text = "<|endoftext|>";

  // The largest files load() reads, checked as they are read: GPT-2's are 1.0 MB and 0.46 MB, and a vocabulary of
  // a million tokens fits in either. What is built from them is bounded by their size.
  static constexpr std::uint64_t max_vocab_json_bytes = std::uint64_t(64) << 20;
  static constexpr std::uint64_t max_merges_txt_bytes = std::uint64_t(64) << 20;

  // Reads and checks both files. IoError if one is not a regular file or cannot be read; FormatError naming the
  // file (and, for merges.txt, the line) for anything malformed, or a file over its cap above.
  static GPT2Tokenizer load(const std::string& vocab_json_path, const std::string& merges_txt_path,
                            const GPT2TokenizerOptions& options = {}) {
    auto v = std::make_shared<detail::Gpt2Vocabulary>();
    detail::parse_gpt2_vocab(read_file_bounded(vocab_json_path, "a vocab.json", max_vocab_json_bytes), vocab_json_path, *v);
    detail::parse_gpt2_merges(read_file_bounded(merges_txt_path, "a merges.txt", max_merges_txt_bytes), merges_txt_path, vocab_json_path, *v);
    return GPT2Tokenizer(std::move(v), options);
  }
  // The same from the two files' contents, already in memory; the names stand for their paths in messages.
  static GPT2Tokenizer from_text(std::string_view vocab_json, std::string_view merges_txt, const GPT2TokenizerOptions& options = {},
                                 const std::string& vocab_name = "vocab.json", const std::string& merges_name = "merges.txt") {
    auto v = std::make_shared<detail::Gpt2Vocabulary>();
    detail::parse_gpt2_vocab(vocab_json, vocab_name, *v);
    detail::parse_gpt2_merges(merges_txt, merges_name, vocab_name, *v);
    return GPT2Tokenizer(std::move(v), options);
  }
  // A Hugging Face checkpoint directory: <dir>/vocab.json and <dir>/merges.txt.
  static GPT2Tokenizer from_directory(const std::string& dir, const GPT2TokenizerOptions& options = {}) {
    return load(dir + "/vocab.json", dir + "/merges.txt", options);
  }

  // UTF-8 text -> ids. Throws FormatError "GPT2Tokenizer.encode: invalid UTF-8 at byte N (0xNN); why"
  // if `utf8` is not valid UTF-8 (nothing is encoded then).
  std::vector<std::int64_t> encode(std::string_view utf8, const EncodeOptions& options = {}) const {
    const std::size_t bad = find_invalid_utf8(utf8);
    if (bad != utf8.size()) throw FormatError("GPT2Tokenizer.encode: " + utf8_error_message(utf8, bad));
    std::vector<std::int64_t> ids;
    ids.reserve(utf8.size() / 3 + 1);
    detail::Gpt2EncodeScratch scratch;
    std::size_t pos = 0;
    while (pos <= utf8.size()) {
      const std::size_t special = options.special_tokens ? utf8.find(end_of_text, pos) : std::string_view::npos;
      const std::size_t end = special == std::string_view::npos ? utf8.size() : special;
      detail::gpt2_pretokenize(utf8.substr(pos, end - pos), "GPT2Tokenizer.encode", pos, scratch.chars,
                               [&](std::string_view piece) { encode_piece(piece, scratch, ids); });
      if (special == std::string_view::npos) break;
      ids.push_back(vocab_->eos_id);
      pos = special + end_of_text.size();
    }
    return ids;
  }

  // ids -> text. Bytes that do not form valid UTF-8 (ids that cut a character, e.g. the first of the
  // two ids of an emoji) become U+FFFD, one per maximal ill-formed subpart, as Hugging Face's
  // decode (errors="replace") and gpt-3-encoder do. Throws RangeError for an id outside the vocabulary.
  std::string decode(const std::vector<std::int64_t>& ids) const { return utf8_replacing_invalid(decode_bytes(ids)); }

  // ids -> the bytes they stand for, unchanged (possibly not valid UTF-8).
  std::string decode_bytes(const std::vector<std::int64_t>& ids) const {
    std::string out;
    for (std::size_t i = 0; i < ids.size(); ++i) out += vocab_->bytes[checked_id(ids[i], "GPT2Tokenizer.decode", i)];
    return out;
  }

  std::int64_t vocab_size() const { return static_cast<std::int64_t>(vocab_->spelling.size()); }  // V: 50257 for GPT-2
  std::int64_t eos_id() const { return vocab_->eos_id; }  // id of "<|endoftext|>": 50256 for GPT-2
  // The token as spelled in vocab.json ("Ġthe"), as HF's convert_ids_to_tokens.
  const std::string& token(std::int64_t id) const { return vocab_->spelling[checked_id(id, "GPT2Tokenizer.token")]; }
  // The bytes the token stands for (" the").
  const std::string& token_bytes(std::int64_t id) const { return vocab_->bytes[checked_id(id, "GPT2Tokenizer.token_bytes")]; }
  // The id of a token spelled as in vocab.json, if there is one.
  std::optional<std::int64_t> token_id(const std::string& spelling) const {
    const auto it = vocab_->id_of_spelling.find(spelling);
    if (it == vocab_->id_of_spelling.end()) return std::nullopt;
    return it->second;
  }

  // The piece cache (see GPT2TokenizerOptions): how many pieces it holds, and emptying it.
  std::size_t cache_size() const { return cache_->size(); }
  void clear_cache() const { cache_->clear(); }

 private:
  friend class StreamingDecoder;

  GPT2Tokenizer(std::shared_ptr<const detail::Gpt2Vocabulary> vocab, const GPT2TokenizerOptions& options)
      : vocab_(std::move(vocab)), cache_(std::make_shared<detail::Gpt2PieceCache>(options.cache_capacity)) {}

  std::size_t checked_id(std::int64_t id, const char* where, std::optional<std::size_t> position = std::nullopt) const {
    return check_id(*vocab_, id, where, position);
  }
  static std::size_t check_id(const detail::Gpt2Vocabulary& v, std::int64_t id, const char* where,
                              std::optional<std::size_t> position) {
    const auto size = static_cast<std::int64_t>(v.spelling.size());
    if (id < 0 || id >= size) {
      throw RangeError(std::string(where) + ": token id " + std::to_string(id) +
                       (position ? " at position " + std::to_string(*position) : std::string()) + " is outside the vocabulary [0, " +
                       std::to_string(size) + ")");
    }
    return static_cast<std::size_t>(id);
  }

  void encode_piece(std::string_view piece, detail::Gpt2EncodeScratch& scratch, std::vector<std::int64_t>& ids) const {
    if (piece.size() == 1) {  // one byte is one token, no merges to look for
      ids.push_back(vocab_->byte_id[static_cast<unsigned char>(piece[0])]);
      return;
    }
    const bool cacheable = cache_->capacity() > 0 && piece.size() <= detail::Gpt2PieceCache::max_piece_bytes;
    if (cacheable) {
      scratch.key.assign(piece.data(), piece.size());
      if (cache_->find(scratch.key, ids)) return;
    }
    const std::size_t first = ids.size();
    if (piece.size() <= detail::gpt2_heap_bpe_max_bytes) {
      detail::bpe_piece(*vocab_, piece, scratch, ids);
    } else {
      if (piece.size() > static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max()))
        throw FormatError("GPT2Tokenizer.encode: one piece of the text (a run of letters, digits, spaces or other characters) is " +
                          std::to_string(piece.size()) + " bytes long; at most 2147483647 are supported");
      detail::bpe_long_piece(*vocab_, piece, scratch.long_piece, ids);
    }
    if (cacheable) cache_->insert(scratch.key, ids.data() + first, ids.size() - first);
  }

  std::shared_ptr<const detail::Gpt2Vocabulary> vocab_;
  std::shared_ptr<detail::Gpt2PieceCache> cache_;
};

// Decodes ids one at a time, returning only complete UTF-8: a character whose bytes are split over
// several ids (an emoji is often two or three) comes out with the id that completes it, so a program
// printing tokens as they are generated never prints half a character. Bytes that can never become
// valid are replaced by U+FFFD as soon as that is certain. Concatenating every push() and the final
// flush() gives exactly GPT2Tokenizer::decode of all the ids (the WHATWG TextDecoder's stream mode).
// One decoder per stream; it shares the tokenizer's vocabulary, so it may outlive the tokenizer.
class StreamingDecoder {
 public:
  explicit StreamingDecoder(const GPT2Tokenizer& tokenizer) : vocab_(tokenizer.vocab_) {}

  // The text that `id` completes (often all of its bytes; empty while a character is unfinished).
  // Throws RangeError "StreamingDecoder.push: token id N at position P is outside the vocabulary [0, V)",
  // P counting the ids pushed since construction or the last flush().
  std::string push(std::int64_t id) {
    const std::size_t slot = GPT2Tokenizer::check_id(*vocab_, id, "StreamingDecoder.push", position_);
    ++position_;
    pending_ += vocab_->bytes[slot];
    std::string out;
    const std::size_t keep = append_utf8_replacing(pending_, out, /*final=*/false);
    pending_.erase(0, pending_.size() - keep);
    return out;
  }

  // The end of the stream: bytes still held (an unfinished character, 1 to 3 bytes) come out as one
  // U+FFFD, as in decode(); empty if none. The decoder then starts a new stream.
  std::string flush() {
    std::string out;
    append_utf8_replacing(pending_, out, /*final=*/true);
    pending_.clear();
    position_ = 0;
    return out;
  }

  // Bytes held back, waiting for the rest of a character (0..3).
  std::size_t pending_bytes() const { return pending_.size(); }

 private:
  std::shared_ptr<const detail::Gpt2Vocabulary> vocab_;
  std::string pending_;
  std::size_t position_ = 0;
};

}  // namespace eigenformer
