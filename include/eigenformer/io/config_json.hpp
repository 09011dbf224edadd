// io/config_json.hpp: reading a model's config.json with every field checked: read_json_file() names the file in
// any parse error, ConfigReader gives typed fields ("dir/config.json: field 'n_head' is missing",
// "... field 'n_embd' is 12.5; expected an integer").
#pragma once

#include <nlohmann/json.hpp>

#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>

#include "eigenformer/core/error.hpp"
#include "eigenformer/core/shape.hpp"

namespace eigenformer {

// Parses `text` as JSON. A syntax error throws FormatError(error_prefix + nlohmann's message without its id, cut to
// 200 characters, since it may quote a long token). nlohmann keeps only the last of two equal keys, silently: the
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
  } catch (const nlohmann::json::parse_error& e) {
    std::string what = e.what();
    const std::size_t bracket = what.find("] ");  // drop nlohmann's "[json.exception.parse_error.101] "
    if (what.rfind("[json.exception.", 0) == 0 && bracket != std::string::npos) what = what.substr(bracket + 2);
    if (what.size() > 200) what = what.substr(0, 197) + "...";
    throw FormatError(error_prefix + what);
  }
}

// A JSON file, every syntax error and repeated top-level key reported with the file's path.
inline nlohmann::json read_json_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(path + ": cannot open");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::string duplicate;
  nlohmann::json j = parse_json(text, path + ": not valid JSON: ", &duplicate);
  if (!duplicate.empty()) throw FormatError(path + ": field '" + duplicate + "' appears twice");
  return j;
}

// Typed access to a config.json object: every field required unless a default is given, every type checked.
class ConfigReader {
 public:
  ConfigReader(const nlohmann::json& j, std::string path) : j_(j), path_(std::move(path)) {
    if (!j_.is_object()) throw FormatError(path_ + ": the top level is not a JSON object");
  }
  Index integer(const char* key) const {
    const nlohmann::json& v = field(key);
    if (!v.is_number_integer()) throw FormatError(path_ + ": field '" + key + "' is " + v.dump() + "; expected an integer");
    return v.get<Index>();
  }
  double number(const char* key) const {
    const nlohmann::json& v = field(key);
    if (!v.is_number()) throw FormatError(path_ + ": field '" + key + "' is " + v.dump() + "; expected a number");
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
    if (!v.is_boolean()) throw FormatError(path_ + ": field '" + key + "' is " + v.dump() + "; expected true or false");
    return v.get<bool>();
  }
  std::string string(const char* key) const {
    const nlohmann::json& v = field(key);
    if (!v.is_string()) throw FormatError(path_ + ": field '" + key + "' is " + v.dump() + "; expected a string");
    return v.get<std::string>();
  }
  const std::string& path() const { return path_; }

 private:
  const nlohmann::json& field(const char* key) const {
    if (!j_.contains(key)) throw FormatError(path_ + ": field '" + std::string(key) + "' is missing");
    return j_.at(key);
  }
  const nlohmann::json& j_;
  std::string path_;
};

}  // namespace eigenformer
