// text/gpt2_pretokenizer.hpp: GPT-2's pre-tokenizer, which cuts text into the pieces that BPE then
// encodes one by one. It matches the regular expression of OpenAI's encoder.py, used with JavaScript
// semantics by the npm packages gpt-3-encoder and gpt-tokenizer (our references):
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// written out by hand as a matcher over code points (no regex engine). Letters (L*) and numbers (N*)
// are Unicode general categories from utf8proc; white space is JavaScript's \s (see gpt2_char_class).
// Link with eigenformer::text (utf8proc). The pieces concatenate to the text; invalid UTF-8 throws.
#pragma once

#include "eigenformer/core/error.hpp"
#include "eigenformer/text/utf8.hpp"

#include <utf8proc.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace eigenformer {

// The classes the pattern tells apart.
enum class Gpt2CharClass : unsigned char { letter, number, space, other };

// letter: \p{L} (Lu, Ll, Lt, Lm, Lo); number: \p{N} (Nd, Nl, No); space: JavaScript's \s; other: the rest,
// including marks (M*), so "hi" + U+0301 splits into "hi" and the accent, exactly as the references do.
//
// JavaScript's \s (ECMA-262, WhiteSpace and LineTerminator) is U+0009..U+000D, U+FEFF (ZWNBSP), U+2028,
// U+2029 and category Zs. tools/make_tokenizer_cases.mjs checks this against node over all code points.
// Python's `regex` module, which OpenAI's encoder.py uses, and tiktoken take \s to be the White_Space
// property instead: that adds U+0085 (NEL) and leaves out U+FEFF. We follow the JavaScript references;
// the two characters appear in tests/fixtures/tokenizer/cases.json.
// Categories are those of the utf8proc we link (Unicode 15.0 in Debian 12); node's regex uses its ICU's
// version. Code points that changed class between the versions are kept out of the test corpus.
inline Gpt2CharClass gpt2_char_class(char32_t cp) {
  if ((cp >= 0x09 && cp <= 0x0D) || cp == 0x2028 || cp == 0x2029 || cp == 0xFEFF) return Gpt2CharClass::space;
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(cp))) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
      return Gpt2CharClass::letter;
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO:
      return Gpt2CharClass::number;
    case UTF8PROC_CATEGORY_ZS:
      return Gpt2CharClass::space;
    default:
      return Gpt2CharClass::other;
  }
}

namespace detail {

// One character of the text in 4 bytes (the pre-tokenizer holds one per character of the text it cuts, so a text
// of n bytes takes at most 4n bytes here): its code point (21 bits), its class and its UTF-8 length - 1. Pieces
// are cut at byte offsets found by adding up the lengths, so no offset is stored.
struct Gpt2Char {
  std::uint32_t packed;  // code point << 4 | (length - 1) << 2 | class

  Gpt2Char(char32_t code_point, std::size_t length, Gpt2CharClass cls)
      : packed(static_cast<std::uint32_t>(code_point) << 4 | static_cast<std::uint32_t>(length - 1) << 2 | static_cast<std::uint32_t>(cls)) {}
  char32_t cp() const { return packed >> 4; }
  std::size_t length() const { return ((packed >> 2) & 3u) + 1; }
  Gpt2CharClass cls() const { return static_cast<Gpt2CharClass>(packed & 3u); }
};

// Decodes `text` into `chars` (plus a sentinel of class `other`); throws FormatError
// "<where>: invalid UTF-8 at byte <base + i> ..." at the first ill-formed sequence.
inline void decode_for_pretokenizer(std::string_view text, const std::string& where, std::size_t base,
                                    std::vector<Gpt2Char>& chars) {
  chars.clear();
  chars.reserve(text.size() + 1);
  std::size_t pos = 0;
  while (pos < text.size()) {
    const unsigned char b = static_cast<unsigned char>(text[pos]);
    if (b < 0x80) {  // ASCII, most of most text: no need for the general step
      chars.emplace_back(b, 1, gpt2_char_class(b));
      ++pos;
      continue;
    }
    const Utf8Step step = utf8_step(text, pos);
    if (step.kind != Utf8Step::Kind::code_point) {
      throw FormatError(where + ": " + utf8_error_message(text, pos, base));
    }
    chars.emplace_back(step.code_point, step.length, gpt2_char_class(step.code_point));
    pos += step.length;
  }
  chars.emplace_back(0, 1, Gpt2CharClass::other);  // sentinel: never read as a character
}

// The matcher. chars[0..n) are the text's code points, chars[n] the sentinel. Calls emit(begin, end)
// with character indices of each piece, in order.
template <typename Emit>
void match_gpt2_pattern(const std::vector<Gpt2Char>& chars, Emit&& emit) {
  const std::size_t n = chars.size() - 1;
  std::size_t i = 0;
  while (i < n) {
    const char32_t c = chars[i].cp();
    // 's|'t|'re|'ve|'m|'ll|'d  (lower case only, as in the pattern)
    if (c == U'\'' && i + 1 < n) {
      const char32_t a = chars[i + 1].cp();
      if (a == U's' || a == U't' || a == U'm' || a == U'd') {
        emit(i, i + 2);
        i += 2;
        continue;
      }
      if (i + 2 < n) {
        const char32_t b = chars[i + 2].cp();
        if ((a == U'r' && b == U'e') || (a == U'v' && b == U'e') || (a == U'l' && b == U'l')) {
          emit(i, i + 3);
          i += 3;
          continue;
        }
      }
    }
    // ' ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+': an optional space, then a run of one class. The space
    // belongs to the piece only if a run follows it; otherwise the space is white space (below).
    const std::size_t start = (c == U' ' && i + 1 < n && chars[i + 1].cls() != Gpt2CharClass::space) ? i + 1 : i;
    const Gpt2CharClass cls = chars[start].cls();
    if (cls != Gpt2CharClass::space) {
      std::size_t end = start + 1;
      while (end < n && chars[end].cls() == cls) ++end;
      emit(i, end);
      i = end;
      continue;
    }
    // \s+(?!\S)|\s+: a run of white space. At the end of the text it is one piece. Before a
    // non-space, the first alternative backtracks by one character (the last white space then starts
    // the next piece, e.g. " word"); a single white space before a non-space falls to \s+.
    std::size_t end = i + 1;
    while (end < n && chars[end].cls() == Gpt2CharClass::space) ++end;
    if (end < n && end - i >= 2) --end;
    emit(i, end);
    i = end;
  }
}

template <typename Emit>
void gpt2_pretokenize(std::string_view text, const std::string& where, std::size_t base, std::vector<Gpt2Char>& chars,
                      Emit&& emit) {
  decode_for_pretokenizer(text, where, base, chars);
  std::size_t offset = 0;  // of chars[b]: the pieces come in order and join up to the text
  match_gpt2_pattern(chars, [&](std::size_t b, std::size_t e) {
    std::size_t bytes = 0;
    for (std::size_t k = b; k < e; ++k) bytes += chars[k].length();
    emit(text.substr(offset, bytes));
    offset += bytes;
  });
}

}  // namespace detail

// Calls emit(std::string_view piece) for each piece of `text`, in order; the pieces view `text`.
// Throws FormatError "gpt2_pretokenize: invalid UTF-8 at byte N (0xNN); ..." if text is not UTF-8.
template <typename Emit>
void gpt2_pretokenize(std::string_view text, Emit&& emit) {
  std::vector<detail::Gpt2Char> chars;
  detail::gpt2_pretokenize(text, "gpt2_pretokenize", 0, chars, emit);
}

// The pieces of `text`, as views into it.
inline std::vector<std::string_view> gpt2_pretokenize(std::string_view text) {
  std::vector<std::string_view> pieces;
  gpt2_pretokenize(text, [&](std::string_view piece) { pieces.push_back(piece); });
  return pieces;
}

}  // namespace eigenformer
