// inspect/explain_page_assets.hpp: the page's own style and script, which explain_html() inlines. What must hold of
// them as text: no part can end the <script> or <style> element that holds it, each part stays under the 16 KB a
// string literal may portably hold, the script is strict and reads the data block explain_html() writes, and it
// builds every element of the DOM contract (explain_page.hpp) that tools/check_page.mjs relies on. The browser test
// (ctest label `browser`) runs the script itself.
#include "eigenformer/inspect/explain_page_assets.hpp"

#include <doctest/doctest.h>

#include <cstring>
#include <string>

using namespace eigenformer::detail;

TEST_CASE("explain page assets: nothing ends its element early, every part fits a literal, the script builds the DOM contract") {
  const std::string css = explain_page_css;
  CHECK(css.find("</style") == std::string::npos);
  std::string script;
  for (const char* part : explain_page_script) {
    CHECK(std::strlen(part) < 16 * 1024);
    CHECK(std::string(part).find("</script") == std::string::npos);
    CHECK(std::string(part).find("<!--") == std::string::npos);
    script += part;
  }
  CHECK(script.rfind("\"use strict\";", 0) == 0);
  CHECK(script.find("getElementById(\"data\")") != std::string::npos);
  for (const char* name : {"\"attention\"", "\"layer\"", "\"head\"", "\"heatmap\"", "\"row\"", "\"cell\"", "\"step\"", "\"bars\"", "\"bar\"",
                           "\"residual\"", "\"temperature\"", "\"tooltip\"", "rendered"}) {
    CAPTURE(name);
    CHECK(script.find(name) != std::string::npos);
  }
}
