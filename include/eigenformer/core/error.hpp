// core/error.hpp: the exceptions Eigenformer throws, and the internal-invariant check.
// Every error message has the form "where: what is wrong; what was expected" on one line, naming the
// file, tensor, shape or token at fault. Input from outside is always checked and reported with one of
// these types; EIGENFORMER_ASSERT guards invariants deep inside kernels (active in tests and debug builds).
#pragma once

#include <cstddef>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace eigenformer {

// Base of every exception the library throws on purpose.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A tensor's shape does not fit the operation (wrong rank, wrong width, batch sizes that differ).
class ShapeError : public Error {
 public:
  using Error::Error;
};

// A value is outside its allowed range: a token id outside the vocabulary, a negative length.
class RangeError : public Error {
 public:
  using Error::Error;
};

// A file or document is malformed: a corrupt safetensors file, bad JSON, a missing config field.
class FormatError : public Error {
 public:
  using Error::Error;
};

// A file cannot be opened, mapped or written.
class IoError : public Error {
 public:
  using Error::Error;
};

// Memory for a model that passed every check could not be had (std::bad_alloc while loading or running it): the message
// says how much the model needs (io/memory_budget.hpp), so that the caller can set a budget or free memory.
class OutOfMemoryError : public Error {
 public:
  using Error::Error;
};

// An internal invariant failed: a bug in Eigenformer, never the caller's input.
class InternalError : public Error {
 public:
  using Error::Error;
};

namespace detail {

// escape_text's pieces: each character of `text` as it is shown; returns how many characters they show in all.
inline std::size_t escape_units(std::string_view text, char quote, std::vector<std::string>& units) {
  std::size_t shown = 0;
  auto hex = [](const char* format, unsigned v) {
    char buf[16];
    std::snprintf(buf, sizeof buf, format, v);
    return std::string(buf);
  };
  for (std::size_t i = 0; i < text.size();) {
    const unsigned char b = static_cast<unsigned char>(text[i]);
    // Decode one UTF-8 sequence (shortest form, no surrogates, at most U+10FFFF); len 0 means not valid.
    std::size_t len = 0;
    char32_t c = 0;
    if (b < 0x80) {
      len = 1;
      c = b;
    } else {
      const std::size_t need = b >= 0xF0 && b <= 0xF4 ? 4 : b >= 0xE0 && b <= 0xEF ? 3 : b >= 0xC2 && b <= 0xDF ? 2 : 0;
      if (need && i + need <= text.size()) {
        c = b & (need == 2 ? 0x1F : need == 3 ? 0x0F : 0x07);
        bool ok = true;
        for (std::size_t k = 1; k < need && ok; ++k) {
          const unsigned char t = static_cast<unsigned char>(text[i + k]);
          ok = (t & 0xC0) == 0x80;
          c = (c << 6) | (t & 0x3F);
        }
        const char32_t min = need == 2 ? 0x80 : need == 3 ? 0x800 : 0x10000;
        if (ok && c >= min && c <= 0x10FFFF && !(c >= 0xD800 && c <= 0xDFFF)) len = need;
      }
    }
    std::string unit;
    if (len == 0) {
      unit = hex("\\x%02x", b);
      len = 1;
    } else if (c == '\n') {
      unit = "\\n";
    } else if (c == '\t') {
      unit = "\\t";
    } else if (c == '\r') {
      unit = "\\r";
    } else if (c < 0x20 || (c >= 0x7F && c <= 0x9F) || c == 0x2028 || c == 0x2029 || (c >= 0x202A && c <= 0x202E) ||
               (c >= 0x2066 && c <= 0x2069)) {
      unit = hex("\\u%04x", static_cast<unsigned>(c));
    } else if (quote != 0 && (c == static_cast<char32_t>(quote) || c == '\\')) {
      unit = std::string("\\") + static_cast<char>(c);
    } else {
      unit.assign(text.data() + i, len);
    }
    shown += unit.size() == len ? 1 : unit.size();  // a character shown as itself counts once, an escape its length
    units.push_back(std::move(unit));
    i += len;
  }
  return shown;
}

// The one helper behind quote(), printable() and printable_message(): text from outside (a word typed by a user, a
// file name, a token or key from a file) as an error message may show it. Every control character (C0, DEL, and C1
// U+0080..U+009F, which some terminals obey), the line separators U+2028/U+2029 and the bidirectional overrides
// U+202A..U+202E, U+2066..U+2069 are escaped (\n, \t, \r, \u001b, \u202e), and so is each byte that is not valid
// UTF-8 (\xff): no terminal escape sequence, NUL or reordering passes through. Text longer than max_chars characters
// (an escape counts its length) keeps its start and its end, joined by "...", in max_chars in all. `quote` ('\'' or
// '"') is put around the text and escaped inside it, as is the backslash; quote 0 is for a file name or a whole
// message, whose backslashes stay as they are.
inline std::string escape_text(std::string_view text, std::size_t max_chars, char quote) {
  // A long text is escaped at its two ends only: each shown character takes at least one byte of text, so the
  // 4 * max_chars bytes at either end hold whatever can be shown (the tail starts at a character boundary).
  const std::size_t end_bytes = max_chars < (std::size_t(1) << 40) ? 4 * max_chars + 4 : text.size();
  std::vector<std::string> head_units, tail_units;
  bool cut = false;
  if (text.size() > 2 * end_bytes) {
    std::size_t tail_from = text.size() - end_bytes;
    for (int k = 0; k < 3 && (static_cast<unsigned char>(text[tail_from]) & 0xC0) == 0x80; ++k) ++tail_from;
    escape_units(text.substr(0, end_bytes), quote, head_units);
    escape_units(text.substr(tail_from), quote, tail_units);
    cut = true;
  } else {
    cut = escape_units(text, quote, head_units) > max_chars;
    if (cut) tail_units = head_units;
  }
  std::string out;
  if (quote) out += quote;
  if (!cut) {
    for (const std::string& u : head_units) out += u;
  } else {
    // An escape is as wide as it is long, any other unit one character.
    auto cost = [](const std::string& u) -> std::size_t { return u.size() > 1 && u[0] == '\\' ? u.size() : 1; };
    const std::size_t budget = max_chars > 3 ? max_chars - 3 : 0;
    const std::size_t head_budget = budget - budget / 2, tail_budget = budget / 2;
    std::size_t head = 0, used = 0;
    while (head < head_units.size() && used + cost(head_units[head]) <= head_budget) used += cost(head_units[head++]);
    std::size_t tail = tail_units.size(), tail_stop = text.size() > 2 * end_bytes ? 0 : head;
    used = 0;
    while (tail > tail_stop && used + cost(tail_units[tail - 1]) <= tail_budget) used += cost(tail_units[--tail]);
    for (std::size_t k = 0; k < head; ++k) out += head_units[k];
    out += "...";
    for (std::size_t k = tail; k < tail_units.size(); ++k) out += tail_units[k];
  }
  if (quote) out += quote;
  return out;
}

// Text from outside, as escape_text shows it, without quotes: for file names at the head of a message.
inline std::string printable(std::string_view text, std::size_t max_chars = 80) { return escape_text(text, max_chars, 0); }

// A whole message, its control characters and invalid UTF-8 escaped but not cut: what a program prints last, in case
// a part of it came from outside unescaped.
inline std::string printable_message(std::string_view message) { return escape_text(message, static_cast<std::size_t>(-1), 0); }

// A number as a message shows it, as printf's %g does: 6 significant digits, "0.001", "1e-08", "nan", "-inf".
inline std::string number_text(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", x);
  return buf;
}

}  // namespace detail

// Text from outside in single quotes, as an error message shows it: control bytes, invalid UTF-8 and the quote
// escaped, at most 80 characters of it ('\u001b[31mred', 'aaaa...zzzz'). The one way a message quotes a word, a
// token, a key or a tensor name that came from a file, a command line or a prompt.
// (Not named `quoted`: std::quoted, found by argument-dependent lookup on a std::string, would win.)
inline std::string quote(std::string_view text, std::size_t max_chars = 80) { return detail::escape_text(text, max_chars, '\''); }

}  // namespace eigenformer

#if defined(EIGENFORMER_ENABLE_ASSERTS) || !defined(NDEBUG)
#define EIGENFORMER_ASSERT(cond, why)                                                              \
  do {                                                                                             \
    if (!(cond))                                                                                   \
      throw ::eigenformer::InternalError(std::string(__FILE__) + ":" + std::to_string(__LINE__) + \
                                         ": internal check failed: " #cond "; " why);              \
  } while (false)
#else
#define EIGENFORMER_ASSERT(cond, why) \
  do {                                \
  } while (false)
#endif
