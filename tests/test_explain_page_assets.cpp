// inspect/explain_page_assets.hpp: the page's own style and script, which explain_html() inlines. What must hold of
// them as text: no part can end the <script> or <style> element that holds it, each part stays under the 16 KB a
// string literal may portably hold, both are ASCII (so is the whole page: Chromium reads an ASCII page faster), the
// script is strict and reads the data block explain_html() writes, weights included, and it builds every element of
// the DOM contract (explain_page.hpp) that tools/check_page.mjs relies on. The browser test (ctest label `browser`)
// runs the script itself.
#include "eigenformer/inspect/explain_page_assets.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <string>

using eigenformer::detail::explain_page_css;
using eigenformer::detail::explain_page_script;

TEST_CASE("explain page assets: nothing ends its element early, every part fits a literal, ASCII, the script builds the DOM contract") {
  const auto ascii = [](const std::string& text) {
    return std::all_of(text.begin(), text.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
  };
  const std::string css = explain_page_css;
  CHECK(css.find("</style") == std::string::npos);
  CHECK(ascii(css));
  std::string script;
  for (const char* part : explain_page_script) {
    CHECK(std::strlen(part) < 16 * 1024);
    CHECK(std::string(part).find("</script") == std::string::npos);
    CHECK(std::string(part).find("<!--") == std::string::npos);
    script += part;
  }
  CHECK(ascii(script));
  CHECK(script.rfind("\"use strict\";", 0) == 0);
  CHECK(script.find("getElementById(\"data\")") != std::string::npos);
  for (const char* field : {"view.weights", "view.layer_starts", "view.weight_scale"}) {
    CAPTURE(field);
    CHECK(script.find(field) != std::string::npos);
  }
  for (const char* name : {"\"attention\"", "\"layer\"", "\"head\"", "\"heatmap\"", "\"cells\"", "\"labels\"", "\"query-label\"",
                           "\"key-label\"", "\"row-mark\"", "highlight", "\"step\"", "\"bars\"", "\"bar\"", "\"residual\"",
                           "\"temperature\"", "\"tooltip\"", "rendered"}) {
    CAPTURE(name);
    CHECK(script.find(name) != std::string::npos);
  }
}
