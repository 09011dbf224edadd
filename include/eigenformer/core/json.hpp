// core/json.hpp: the JSON helpers that io/ (config.json, safetensors headers) and text/ (vocab.json) share, below
// both: parse_json() turns every syntax error into a FormatError with the caller's prefix and reports a repeated
// top-level key; read_json_file() names the file; brief_json() quotes a value from anywhere, short and ASCII, for
// messages. Only io/ and text/ include it, so the core blocks never need nlohmann/json.
#pragma once

#include <nlohmann/json.hpp>

#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <unordered_set>

#include "eigenformer/core/error.hpp"

namespace eigenformer {

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

// Parses `text` as JSON. A syntax error, or a number too large for a double ("1e999", which nlohmann reports as
// out_of_range, not parse_error), throws FormatError(error_prefix + nlohmann's message without its id, cut to 200
// characters, since it may quote a long token). nlohmann keeps only the last of two equal keys, silently: the
// first top-level key that appears twice is returned in *duplicate_key ("" if none), for the caller to refuse.
inline nlohmann::json parse_json(std::string_view text, const std::string& error_prefix, std::string* duplicate_key = nullptr) {
  std::unordered_set<std::string> keys;
  try {
    return nlohmann::json::parse(text.begin(), text.end(), [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
      if (duplicate_key && depth == 1 && event == nlohmann::json::parse_event_t::key && duplicate_key->empty() &&
          !keys.insert(parsed.get<std::string>()).second)
        *duplicate_key = parsed.get<std::string>();
      return true;
    });
  } catch (const nlohmann::json::exception& e) {
    std::string what = e.what();
    const std::size_t bracket = what.find("] ");  // drop nlohmann's "[json.exception.parse_error.101] "
    if (what.rfind("[json.exception.", 0) == 0 && bracket != std::string::npos) what = what.substr(bracket + 2);
    if (what.size() > 200) what = what.substr(0, 197) + "...";
    throw FormatError(error_prefix + what);
  }
}

// The text of a JSON file, every syntax error and repeated top-level key reported with the file's path.
inline nlohmann::json parse_json_file(std::string_view text, const std::string& path) {
  std::string duplicate;
  nlohmann::json j = parse_json(text, path + ": not valid JSON: ", &duplicate);
  if (!duplicate.empty()) throw FormatError(path + ": field '" + duplicate + "' appears twice");
  return j;
}

// A JSON file, every syntax error and repeated top-level key reported with the file's path.
inline nlohmann::json read_json_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(path + ": cannot open");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return parse_json_file(text, path);
}

}  // namespace eigenformer
