// fuzz_gpt2_cli: the gpt2 program's command-line parsing (examples/gpt2/gpt2_cli.hpp, the same code main() runs) on
// arbitrary arguments: the input cut at NUL bytes is argv after the program name. Parsing and checking may refuse
// with a CLI::Error; then --prompt-ids is parsed as for a 50257-token vocabulary, which may refuse with a RangeError.
// Nothing is read or loaded.
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_support.hpp"
#include "gpt2_cli.hpp"

using namespace eigenformer;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::vector<std::string> parts = fuzz::split_at_nul(fuzz::as_text(data, size));
  const std::vector<const char*> argv = fuzz::make_argv("gpt2", parts);
  CLI::App app;
  gpt2_cli::Arguments a;
  gpt2_cli::add_options(app, a);
  try {
    gpt2_cli::parse(app, a, static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::CallForHelp&) {
    (void)app.help();
    return 0;
  } catch (const CLI::Error&) {
    return 0;
  }
  fuzz::require(!a.model.empty() || !a.init_random.empty(), "a model or --init-random");
  if (!a.prompt_ids.empty()) {
    fuzz::allow_library_errors([&] {
      for (const std::int64_t id : gpt2_cli::parse_ids(a.prompt_ids, 50257)) fuzz::require(id >= 0 && id < 50257, "ids in the vocabulary");
    });
  }
  return 0;
}
