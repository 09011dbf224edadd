// fuzz_translator_cli: the translator program's command-line parsing (examples/translator/translator_cli.hpp, the
// same code main() runs) on arbitrary arguments: the input cut at NUL bytes is argv after the program name.
// Parsing and checking may refuse with a CLI::Error; then each --src-ids is parsed for the fixture model
// post_gelu_odd (37 source tokens, max_len 64), which may refuse with a RangeError. Nothing is read, loaded, drawn
// or written (make-corpus's options are only checked).
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_support.hpp"
#include "translator_cli.hpp"

using namespace eigenformer;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::vector<std::string> parts = fuzz::split_at_nul(fuzz::as_text(data, size));
  const std::vector<const char*> argv = fuzz::make_argv("translator", parts);
  CLI::App app;
  translator_cli::Arguments a;
  translator_cli::add_options(app, a);
  try {
    translator_cli::parse(app, a, static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::CallForHelp&) {
    (void)app.help();
    return 0;
  } catch (const CLI::Error&) {
    return 0;
  }
  if (a.command == "make-corpus") {
    fuzz::require(!a.output.empty(), "make-corpus: --output is required and not empty");
    fuzz::require(a.train_pairs >= 1 && a.train_pairs <= 1000000 && a.test_pairs >= 1 && a.test_pairs <= 100000, "make-corpus: sizes in range");
    return 0;  // nothing is drawn or written here
  }
  fuzz::require(!a.model.empty(), "--model is required and not empty");
  fuzz::require(a.command != "resave" || !a.output.empty(), "resave: --output is required and not empty");
  TransformerConfig config;
  config.src_vocab_size = 37;
  config.tgt_vocab_size = 29;
  config.max_len = 64;
  for (const std::string& source : a.src_ids) {
    fuzz::allow_library_errors([&] {
      const std::vector<std::int64_t> ids = translator_cli::parse_ids(source, "--src-ids 1", config);
      fuzz::require(static_cast<Index>(ids.size()) <= config.max_len, "BOS + ids + EOS fit max_len");
    });
  }
  return 0;
}
