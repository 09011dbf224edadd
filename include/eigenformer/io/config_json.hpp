// io/config_json.hpp: reading a model's config.json with every field checked: ConfigReader gives typed fields
// ("dir/config.json: field 'n_head' is missing", "... field 'n_embd' is 12.5; expected an integer"); the file itself
// is read and parsed by read_json_file() (core/json.hpp), which names the file in any parse error.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <string>
#include <utility>

#include "eigenformer/core/error.hpp"
#include "eigenformer/core/json.hpp"
#include "eigenformer/core/shape.hpp"

namespace eigenformer {

// Typed access to a config.json object: every field required unless a default is given, every type checked.
class ConfigReader {
 public:
  ConfigReader(const nlohmann::json& j, std::string path) : j_(j), path_(std::move(path)), shown_(detail::printable(path_)) {
    if (!j_.is_object()) throw FormatError(shown_ + ": the top level is not a JSON object");
  }
  // A 64-bit integer. One beyond it (9223372036854775808, 18446744073709551617, -9223372036854775809) is a RangeError
  // that quotes it as written: never wrapped into a negative count, nor rounded.
  Index integer(const char* key) const {
    const nlohmann::json& v = field(key);
    const std::string beyond = json_integer_beyond_int64(v);
    if (!beyond.empty())
      throw RangeError(shown_ + ": field '" + key + "' is " + detail::brief_json(v, 100) +
                       "; expected an integer from -9223372036854775808 to 9223372036854775807");
    if (!v.is_number_integer()) throw FormatError(shown_ + ": field '" + key + "' is " + detail::brief_json(v, 100) + "; expected an integer");
    return v.get<Index>();
  }
  // A number; an integer beyond 64 bits, kept as written by parse_json, is read as the double nearest to it.
  double number(const char* key) const {
    const nlohmann::json& v = field(key);
    if (detail::is_json_big_integer(v)) return std::strtod(json_integer_beyond_int64(v).c_str(), nullptr);
    if (!v.is_number()) throw FormatError(shown_ + ": field '" + key + "' is " + detail::brief_json(v, 100) + "; expected a number");
    return v.get<double>();
  }
  // An optional integer: absent or null gives the fallback.
  Index integer_or(const char* key, Index fallback) const {
    if (!j_.contains(key) || j_.at(key).is_null()) return fallback;
    return integer(key);
  }
  double number_or(const char* key, double fallback) const { return j_.contains(key) ? number(key) : fallback; }
  std::string string_or(const char* key, const std::string& fallback) const { return j_.contains(key) ? string(key) : fallback; }
  bool boolean(const char* key, bool fallback) const {
    if (!j_.contains(key)) return fallback;
    const nlohmann::json& v = j_.at(key);
    if (!v.is_boolean()) throw FormatError(shown_ + ": field '" + key + "' is " + detail::brief_json(v, 100) + "; expected true or false");
    return v.get<bool>();
  }
  std::string string(const char* key) const {
    const nlohmann::json& v = field(key);
    if (!v.is_string()) throw FormatError(shown_ + ": field '" + key + "' is " + detail::brief_json(v, 100) + "; expected a string");
    return v.get<std::string>();
  }
  const std::string& path() const { return path_; }

 private:
  const nlohmann::json& field(const char* key) const {
    if (!j_.contains(key)) throw FormatError(shown_ + ": field '" + std::string(key) + "' is missing");
    return j_.at(key);
  }
  const nlohmann::json& j_;
  std::string path_;
  std::string shown_;  // path_ as messages show it (detail::printable)
};

}  // namespace eigenformer
