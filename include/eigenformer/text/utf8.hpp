// text/utf8.hpp: reading UTF-8 one code point at a time, strictly (Unicode 15.0 §3.9, Table 3-7:
// no overlong forms, no surrogates U+D800..U+DFFF, nothing above U+10FFFF), and turning arbitrary bytes
// into valid UTF-8 by replacing each "maximal subpart of an ill-formed subsequence" with U+FFFD
// (§3.9, "U+FFFD Substitution of Maximal Subparts"). That is what the WHATWG TextDecoder, Python's
// bytes.decode(errors="replace") and so Hugging Face's GPT-2 decode do, so our decode matches theirs
// byte for byte. A streaming caller can hold back a valid but unfinished sequence at the end.
#pragma once

#include "eigenformer/core/error.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace eigenformer {

// One step of reading UTF-8 at some position.
struct Utf8Step {
  enum class Kind {
    code_point,  // a well-formed sequence of `length` bytes encoding `code_point`
    invalid,     // `length` bytes (>= 1) form a maximal ill-formed subpart: one U+FFFD replaces them
    incomplete,  // the input ends after `length` bytes of a sequence that could still be completed
  };
  Kind kind;
  std::size_t length;
  char32_t code_point;  // code_point only
};

namespace detail {

inline unsigned char byte_at(std::string_view s, std::size_t i) { return static_cast<unsigned char>(s[i]); }

// The range of the second byte allowed after a lead byte (Table 3-7); the later bytes are 0x80..0xBF.
inline void second_byte_range(unsigned char lead, unsigned char& lo, unsigned char& hi) {
  lo = 0x80;
  hi = 0xBF;
  if (lead == 0xE0) lo = 0xA0;       // below: overlong
  else if (lead == 0xED) hi = 0x9F;  // above: surrogates
  else if (lead == 0xF0) lo = 0x90;  // below: overlong
  else if (lead == 0xF4) hi = 0x8F;  // above: beyond U+10FFFF
}

// Sequence length announced by a lead byte; 0 if it cannot start a sequence (0x80..0xC1, 0xF5..0xFF).
inline std::size_t sequence_length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if (lead < 0xC2) return 0;
  if (lead < 0xE0) return 2;
  if (lead < 0xF0) return 3;
  if (lead < 0xF5) return 4;
  return 0;
}

inline std::string hex_byte(unsigned char b) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02x", static_cast<unsigned>(b));
  return buf;
}

}  // namespace detail

// Reads the sequence that starts at text[pos] (pos < text.size()).
inline Utf8Step utf8_step(std::string_view text, std::size_t pos) {
  const unsigned char lead = detail::byte_at(text, pos);
  if (lead < 0x80) return {Utf8Step::Kind::code_point, 1, lead};
  const std::size_t n = detail::sequence_length(lead);
  if (n == 0) return {Utf8Step::Kind::invalid, 1, 0};
  char32_t cp = lead & (n == 2 ? 0x1F : n == 3 ? 0x0F : 0x07);
  unsigned char lo = 0, hi = 0;
  detail::second_byte_range(lead, lo, hi);
  for (std::size_t k = 1; k < n; ++k) {
    if (pos + k >= text.size()) return {Utf8Step::Kind::incomplete, k, 0};
    const unsigned char b = detail::byte_at(text, pos + k);
    if (b < lo || b > hi) return {Utf8Step::Kind::invalid, k, 0};  // the bad byte starts the next step
    cp = (cp << 6) | (b & 0x3F);
    lo = 0x80;
    hi = 0xBF;
  }
  return {Utf8Step::Kind::code_point, n, cp};
}

// Explains why the sequence at text[pos] is not valid UTF-8, for error messages:
// "invalid UTF-8 at byte 17 (0xff); 0xff never occurs in UTF-8". Offsets are printed plus `base`, for
// a text that is a part of the caller's.
inline std::string utf8_error_message(std::string_view text, std::size_t pos, std::size_t base = 0) {
  const Utf8Step step = utf8_step(text, pos);
  const unsigned char lead = detail::byte_at(text, pos);
  std::string msg = "invalid UTF-8 at byte " + std::to_string(base + pos) + " (" + detail::hex_byte(lead) + "); ";
  const std::size_t n = detail::sequence_length(lead);
  if (n == 0) {
    if (lead >= 0x80 && lead <= 0xBF) return msg + "a continuation byte with no lead byte before it";
    return msg + detail::hex_byte(lead) + " never occurs in UTF-8";
  }
  if (step.kind == Utf8Step::Kind::incomplete) {
    return msg + "the text ends inside a " + std::to_string(n) + "-byte sequence";
  }
  const std::size_t at = pos + step.length;
  const unsigned char b = detail::byte_at(text, at);
  if (step.length == 1 && b >= 0x80 && b <= 0xBF) {
    const std::string pair = " (" + detail::hex_byte(lead) + " " + detail::hex_byte(b) + ")";
    if (lead == 0xE0 || lead == 0xF0) return msg + "an overlong encoding" + pair;
    if (lead == 0xED) return msg + "encodes a UTF-16 surrogate" + pair;
    if (lead == 0xF4) return msg + "encodes a code point above U+10FFFF" + pair;
  }
  return msg + "expected a continuation byte (0x80..0xbf) at byte " + std::to_string(base + at) + ", found " + detail::hex_byte(b);
}

// Appends `bytes` to `out` as valid UTF-8, each maximal ill-formed subpart replaced by U+FFFD. With
// final = false, a valid but unfinished sequence at the end is left out; returns its length (0..3), so
// a streaming caller keeps those bytes and prepends them to the next chunk. With final = true it
// becomes one U+FFFD and the result is 0.
inline std::size_t append_utf8_replacing(std::string_view bytes, std::string& out, bool final) {
  static constexpr char replacement[] = "\xEF\xBF\xBD";  // U+FFFD
  std::size_t pos = 0;
  while (pos < bytes.size()) {
    const Utf8Step step = utf8_step(bytes, pos);
    if (step.kind == Utf8Step::Kind::code_point) {
      out.append(bytes.data() + pos, step.length);
    } else if (step.kind == Utf8Step::Kind::invalid) {
      out.append(replacement, 3);
    } else {
      if (!final) return step.length;
      out.append(replacement, 3);
    }
    pos += step.length;
  }
  return 0;
}

// `bytes` as valid UTF-8, each maximal ill-formed subpart replaced by U+FFFD.
inline std::string utf8_replacing_invalid(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  append_utf8_replacing(bytes, out, /*final=*/true);
  return out;
}

// The byte offset of the first ill-formed sequence, or text.size() if `text` is valid UTF-8.
inline std::size_t find_invalid_utf8(std::string_view text) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    const Utf8Step step = utf8_step(text, pos);
    if (step.kind != Utf8Step::Kind::code_point) return pos;
    pos += step.length;
  }
  return pos;
}

}  // namespace eigenformer
