// eigenformer.hpp: the umbrella header includes every public header but text/ (which needs utf8proc linked), as its
// first lines claim, so that a header added later cannot be forgotten there.
#include "eigenformer/eigenformer.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

TEST_CASE("eigenformer.hpp: includes every public header outside text/") {
  const std::filesystem::path root = std::filesystem::path(EIGENFORMER_SOURCE_DIR) / "include";
  std::ifstream in(root / "eigenformer" / "eigenformer.hpp");
  REQUIRE(in);
  std::stringstream text;
  text << in.rdbuf();
  std::set<std::string> headers;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(root / "eigenformer")) {
    const std::string relative = std::filesystem::relative(entry.path(), root).generic_string();
    if (entry.path().extension() != ".hpp" || relative == "eigenformer/eigenformer.hpp" || relative.rfind("eigenformer/text/", 0) == 0) continue;
    headers.insert(relative);
  }
  CHECK(headers.size() > 30);
  for (const std::string& h : headers) {
    CAPTURE(h);
    CHECK(text.str().find("#include \"" + h + "\"") != std::string::npos);
  }
}
