// tests/fuzz/fuzz_support.hpp: what every fuzz target shares. The rule they enforce: input from anywhere may make
// the library throw an eigenformer::Error (a FormatError, RangeError, ...), and nothing else. Another exception
// escaping, an InternalError (a broken invariant of ours), a crash, a leak, undefined behaviour, or an allocation
// over libFuzzer's -malloc_limit_mb is a finding. Properties that must hold whatever the input (round trips) are
// checked with require(), which aborts, and so is reported as a crash with the input saved.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "eigenformer/core/error.hpp"

namespace eigenformer::fuzz {

// Runs f(); an eigenformer::Error other than InternalError is the expected way to refuse bad input.
template <typename F>
void allow_library_errors(F&& f) {
  try {
    f();
  } catch (const InternalError&) {
    throw;
  } catch (const Error&) {
  }
}

inline void require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz: property failed: %s\n", what);
    std::abort();
  }
}

inline std::string_view as_text(const std::uint8_t* data, std::size_t size) { return {reinterpret_cast<const char*>(data), size}; }

// The input cut at NUL bytes: "--model\0dir\0--prompt\0hi" -> {"--model", "dir", "--prompt", "hi"}. At most
// `max_parts` (the rest stays in the last part), so a run of NULs cannot make a million empty arguments.
inline std::vector<std::string> split_at_nul(std::string_view text, std::size_t max_parts = 64) {
  std::vector<std::string> parts;
  std::size_t begin = 0;
  while (parts.size() + 1 < max_parts) {
    const std::size_t nul = text.find('\0', begin);
    if (nul == std::string_view::npos) break;
    parts.emplace_back(text.substr(begin, nul - begin));
    begin = nul + 1;
  }
  parts.emplace_back(text.substr(begin));
  return parts;
}

// argv for CLI11: the program name, then the parts; pointers into `parts`, which must outlive the result.
inline std::vector<const char*> make_argv(const char* program, const std::vector<std::string>& parts) {
  std::vector<const char*> argv{program};
  for (const std::string& p : parts) argv.push_back(p.c_str());
  return argv;
}

}  // namespace eigenformer::fuzz
