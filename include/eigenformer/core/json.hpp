// core/json.hpp: the JSON helpers that io/ (config.json, safetensors headers) and text/ (vocab.json) share, below
// both: parse_json() turns every syntax error into a FormatError with the caller's prefix and reports a repeated
// top-level key, and keeps an integer beyond 64 bits as written; read_json_file() reads a file of bounded size and names
// it; brief_json() quotes a value from anywhere, short and ASCII, for messages. Only io/ and text/ include it, so the
// core blocks never need nlohmann/json.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "eigenformer/core/bounded_reader.hpp"
#include "eigenformer/core/error.hpp"

namespace eigenformer {

// An integer literal beyond 64 bits (above 2^64 - 1, or below -2^63) as parse_json keeps it: nlohmann would turn it
// into a double (18446744073709551617 -> 1.8446744073709552e19), losing the digits that a message must quote, so
// parse_json stores it as written, in a binary value of this subtype, which no JSON text can produce otherwise. A reader
// that expects an integer or a string refuses it by its type, brief_json() quotes it as written, and
// json_integer_beyond_int64() gives its digits.
inline constexpr std::uint64_t json_big_integer_subtype = 0x6269676e756dULL;  // "bignum"

namespace detail {
// True for a big integer as parse_json keeps it (json_big_integer_subtype).
inline bool is_json_big_integer(const nlohmann::json& j) {
  return j.is_binary() && j.get_binary().has_subtype() && j.get_binary().subtype() == json_big_integer_subtype;
}
}  // namespace detail

// The digits of a JSON integer that int64 cannot hold, as the file wrote them: a big integer literal (above), or an
// unsigned value from 2^63 to 2^64 - 1. "" for any other value. For messages: "n_layer is 18446744073709551617".
inline std::string json_integer_beyond_int64(const nlohmann::json& j) {
  if (detail::is_json_big_integer(j))
    return std::string(j.get_binary().begin(), j.get_binary().end());
  if (j.is_number_unsigned() && j.get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
    return std::to_string(j.get<std::uint64_t>());
  return "";
}

namespace detail {

// Appends j to `out` as compact JSON with non-ASCII escaped, stopping soon after `out` passes `limit` characters and
// writing containers nested deeper than 16 levels as [...] or {...}. For error messages about documents from anywhere:
// nlohmann's dump() recurses once per level of nesting, and a file of a million '[' would overflow the stack.
inline void append_brief_json(const nlohmann::json& j, std::string& out, std::size_t limit, int depth = 0) {
  constexpr int max_depth = 16;
  if (j.is_array() || j.is_object()) {
    const bool array = j.is_array();
    if (depth >= max_depth) {
      out += array ? "[...]" : "{...}";
      return;
    }
    out += array ? '[' : '{';
    bool first = true;
    for (auto it = j.begin(); it != j.end() && out.size() <= limit; ++it) {
      if (!first) out += ',';
      first = false;
      if (!array) out += nlohmann::json(it.key()).dump(-1, ' ', /*ensure_ascii=*/true) + ":";
      append_brief_json(it.value(), out, limit, depth + 1);
    }
    out += array ? ']' : '}';
  } else if (is_json_big_integer(j)) {
    out += json_integer_beyond_int64(j);  // digits and a sign, as written
  } else {
    out += j.dump(-1, ' ', /*ensure_ascii=*/true);
  }
}

// A JSON value as it appears in the file, ASCII-only and cut to `max` characters (the last three "..."), for messages.
inline std::string brief_json(const nlohmann::json& j, std::size_t max = 40) {
  std::string s;
  append_brief_json(j, s, max);
  if (s.size() > max) s = s.substr(0, max - 3) + "...";
  return s;
}

}  // namespace detail

// What parse_json watches in a top-level object while it parses, in one pass: nlohmann keeps only the last of two
// equal keys, silently, so the first key that appears twice is noted for the caller to refuse; and a caller that
// knows how many members make sense (SafeTensors::max_tensors) stops the parse one member past it, before building
// the rest.
struct JsonTopLevel {
  std::size_t max_members = std::numeric_limits<std::size_t>::max();  // in: stop after max_members + 1 members
  std::string duplicate_key;  // out: the first top-level key that appears twice; "" if none
  std::size_t members = 0;    // out: top-level members read; max_members + 1 if the parse stopped there
  bool stopped() const { return members > max_members; }
};

namespace detail {

// A SAX handler for nlohmann::json::sax_parse: builds the value as nlohmann::json::parse does (its own
// json_sax_dom_parser, to which every event is forwarded) and watches the keys of a top-level object. Each key
// costs one lookup in the object being built, so the parse stays linear in the text. (The callback form of
// nlohmann::json::parse, used before, rescans the parent after every member that is itself a container: an object
// of n objects cost n^2/2 steps, seconds for 50,000 tensors and hours for a 100 MB safetensors header.)
// It also knows where in the document the parse is (the key or index of each of the first 16 open containers), so
// that a number too large for a double, which nlohmann reports with the number alone, is reported with its field.
class TopLevelWatcher {
 public:
  using json = nlohmann::json;
  TopLevelWatcher(json& root, JsonTopLevel& top) : dom_(root), root_(root), top_(top) {}

  bool null() { return value_done(dom_.null()); }
  bool boolean(bool v) { return value_done(dom_.boolean(v)); }
  bool number_integer(json::number_integer_t v) { return value_done(dom_.number_integer(v)); }
  bool number_unsigned(json::number_unsigned_t v) { return value_done(dom_.number_unsigned(v)); }
  bool number_float(json::number_float_t v, const json::string_t& s) {
    // nlohmann reports an integer literal that overflows 64 bits as a double, with the literal in s: kept as written.
    if (s.find_first_not_of("-0123456789") == std::string::npos) {
      json::binary_t digits(std::vector<std::uint8_t>(s.begin(), s.end()), json_big_integer_subtype);
      return value_done(dom_.binary(digits));
    }
    return value_done(dom_.number_float(v, s));
  }
  bool string(json::string_t& v) { return value_done(dom_.string(v)); }
  bool binary(json::binary_t& v) { return value_done(dom_.binary(v)); }
  bool start_object(std::size_t n) {
    open(/*array=*/false);
    return dom_.start_object(n);
  }
  bool end_object() {
    close();
    return value_done(dom_.end_object());
  }
  bool start_array(std::size_t n) {
    open(/*array=*/true);
    return dom_.start_array(n);
  }
  bool end_array() {
    close();
    return value_done(dom_.end_array());
  }
  bool key(json::string_t& k) {
    if (depth_ == 1) {  // a key of the top-level object, which root_ is while it is being filled
      if (++top_.members > top_.max_members) return false;  // sax_parse stops here and returns false
      if (top_.duplicate_key.empty() && root_.find(k) != root_.end()) top_.duplicate_key = k;
    }
    if (depth_ <= max_path_depth) path_.back().key = k;
    return dom_.key(k);
  }
  template <typename Exception>
  bool parse_error(std::size_t position, const std::string& token, const Exception& e) {
    // nlohmann's "number overflow parsing '1e400'" (out_of_range.406) names neither the field nor the place.
    if constexpr (std::is_base_of_v<json::out_of_range, Exception>) {
      if (e.id == 406) {
        const std::size_t start = position >= token.size() ? position - token.size() : 0;  // position is just past it
        const std::string field = path_text();
        overflow_message_ = "number overflow: " + (field.empty() ? std::string() : "field " + quote(field) + " is ") + printable(token) +
                            " (at byte " + std::to_string(start) + "), beyond the range of a double (about 1.8e308)";
      }
    }
    return dom_.parse_error(position, token, e);  // throws e, as nlohmann::json::parse does
  }
  // After a parse that threw: what to say instead of nlohmann's message, or "".
  const std::string& overflow_message() const { return overflow_message_; }

 private:
  static constexpr std::size_t max_path_depth = 16;  // containers whose key or index a message can name
  struct PathLevel {
    bool array = false;
    std::size_t index = 0;  // array: the element being read
    std::string key;        // object: the member being read
  };
  void open(bool array) {
    if (++depth_ <= max_path_depth) path_.push_back(PathLevel{array, 0, {}});
  }
  void close() {
    if (depth_-- <= max_path_depth) path_.pop_back();
  }
  bool value_done(bool result) {  // a value ended: the next one in an array has the next index
    if (depth_ >= 1 && depth_ <= max_path_depth && path_.back().array) ++path_.back().index;
    return result;
  }
  // "n_layer", "h.0.weight/data_offsets/1": the keys and indices from the top, joined by '/' as in a JSON Pointer
  // (RFC 6901, without its leading '/'); "" at the top level. Deeper than max_path_depth: ".../..." at the end.
  std::string path_text() const {
    std::string text;
    for (const PathLevel& level : path_) {
      if (!text.empty()) text += '/';
      if (level.array) {
        text += std::to_string(level.index);
        continue;
      }
      for (char c : level.key) text += c == '~' ? std::string("~0") : c == '/' ? std::string("~1") : std::string(1, c);
    }
    if (depth_ > max_path_depth) text += "/...";
    return text;
  }

  nlohmann::detail::json_sax_dom_parser<json> dom_;  // internal to nlohmann, but the very builder parse() uses
  json& root_;
  JsonTopLevel& top_;
  std::size_t depth_ = 0;        // containers open around the current event
  std::vector<PathLevel> path_;  // the first max_path_depth of them
  std::string overflow_message_;
};

}  // namespace detail

// Parses `text` as JSON, in time linear in its length. An integer beyond 64 bits is kept as written
// (json_big_integer_subtype), not rounded to a double. A syntax error throws FormatError(error_prefix + nlohmann's
// message without its id, cut to 200 characters, since it may quote a long token). A number too large for a double
// ("1e999", which nlohmann reports as out_of_range, not parse_error, with the number alone) throws FormatError(
// error_prefix + "number overflow: field 'h.0.weight/data_offsets/1' is 1e999 (at byte 57), beyond the range of a
// double (about 1.8e308)"): the keys and indices down to it, its offset in `text`, the number as written, cut to 80
// characters. (One below the smallest double, 1e-400, reads as 0, as in nlohmann and Python.) `top` notes what the
// top-level object holds (JsonTopLevel); when top.stopped(), the value returned is null and the caller reports the count.
inline nlohmann::json parse_json(std::string_view text, const std::string& error_prefix, JsonTopLevel& top) {
  nlohmann::json result;
  detail::TopLevelWatcher watcher(result, top);
  try {
    if (!nlohmann::json::sax_parse(text.begin(), text.end(), &watcher)) return nlohmann::json();  // stopped at max_members
  } catch (const nlohmann::json::exception& e) {
    if (!watcher.overflow_message().empty()) throw FormatError(error_prefix + watcher.overflow_message());
    std::string what = e.what();
    const std::size_t bracket = what.find("] ");  // drop nlohmann's "[json.exception.parse_error.101] "
    if (what.rfind("[json.exception.", 0) == 0 && bracket != std::string::npos) what = what.substr(bracket + 2);
    if (what.size() > 200) what = what.substr(0, 197) + "...";
    throw FormatError(error_prefix + detail::printable_message(what));  // nlohmann quotes bytes >= 0x80 as they are
  }
  return result;
}

// The same; the first top-level key that appears twice is returned in *duplicate_key ("" if none).
inline nlohmann::json parse_json(std::string_view text, const std::string& error_prefix, std::string* duplicate_key = nullptr) {
  JsonTopLevel top;
  nlohmann::json j = parse_json(text, error_prefix, top);
  if (duplicate_key) *duplicate_key = top.duplicate_key;
  return j;
}

// The text of a JSON file, every syntax error and repeated top-level key reported with the file's path.
inline nlohmann::json parse_json_file(std::string_view text, const std::string& path) {
  std::string duplicate;
  const std::string shown = detail::printable(path);
  nlohmann::json j = parse_json(text, shown + ": not valid JSON: ", &duplicate);
  if (!duplicate.empty()) throw FormatError(shown + ": field " + quote(duplicate) + " appears twice");
  return j;
}

// The largest config.json read_json_file reads (4 MiB): Hugging Face's are a few KB, and the largest, with label maps
// of thousands of entries, about 100 KB. Checked as the file is read (core/bounded_reader.hpp).
inline constexpr std::uint64_t max_config_json_bytes = std::uint64_t(4) << 20;

// A JSON file of at most max_bytes (`what` names it in the cap's message), read with BoundedReader: a path that is not
// a regular file, or cannot be read, is an IoError; every syntax error and repeated top-level key is reported with the
// file's path.
inline nlohmann::json read_json_file(const std::string& path, const std::string& what = "a config.json",
                                     std::uint64_t max_bytes = max_config_json_bytes) {
  return parse_json_file(read_file_bounded(path, what, max_bytes), path);
}

}  // namespace eigenformer
