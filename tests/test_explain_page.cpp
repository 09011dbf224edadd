// inspect/explain_page.hpp: next_token_step against a brute-force softmax in long double; the page's data block read
// back (it parses as JSON, gives back every token, even "</script>", and every weight rounded to 4 decimals, layer by
// layer); the page is ASCII whatever its tokens; invalid UTF-8 replaced, never thrown; every malformed input refused by
// name; the file written whole or not at all.
// What the page's script draws is checked in a browser by tools/check_page.mjs.
#include "eigenformer/inspect/explain_page.hpp"

#include <doctest/doctest.h>

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "support/temp_file.hpp"

using namespace eigenformer;
using eigenformer::testing::TempDir;

namespace {

std::string label_of(std::int64_t id) { return "tok" + std::to_string(id); }

// softmax(logits / t) in long double, straight from the definition (no shift by the maximum: the logits of these tests
// are small enough), with the ids sorted by probability, highest first, ties by lower id (a stable sort).
struct BruteForce {
  std::vector<long double> p;
  std::vector<std::int64_t> order;
};
template <typename Scalar>
BruteForce brute_force(const std::vector<Scalar>& logits, double t) {
  BruteForce b;
  long double z = 0;
  for (Scalar x : logits) z += std::exp(static_cast<long double>(x) / t);
  for (Scalar x : logits) b.p.push_back(std::exp(static_cast<long double>(x) / t) / z);
  b.order.resize(logits.size());
  std::iota(b.order.begin(), b.order.end(), std::int64_t{0});
  std::stable_sort(b.order.begin(), b.order.end(), [&](std::int64_t a, std::int64_t c) { return b.p[a] > b.p[c]; });
  return b;
}

// The text of <script type="application/json" id="data">, as the browser hands it to JSON.parse.
std::string data_block(const std::string& page) {
  const std::string open = "<script type=\"application/json\" id=\"data\">";
  const std::size_t begin = page.find(open);
  REQUIRE(begin != std::string::npos);
  const std::size_t end = page.find("</script>", begin);  // the first one ends the block, as in HTML
  REQUIRE(end != std::string::npos);
  return page.substr(begin + open.size(), end - begin - open.size());
}

// One view's weights as the page decodes them: integers k [L][H][T][S] (w = k / weight_scale) from its one string, layer
// l from layer_starts[l]; per row the count of keys kept, then their k; each number in base64 digits of 5 bits, most
// significant first, 32 marking a digit that another follows. `kept` gets each row's count.
std::vector<long> decode_weights(const nlohmann::json& view, std::vector<long>* kept = nullptr) {
  const std::string text = view["weights"].get<std::string>();
  const std::vector<std::size_t> starts = view["layer_starts"].get<std::vector<std::size_t>>();
  const std::size_t L = view["layers"].get<std::size_t>(), H = view["heads"].get<std::size_t>();
  const std::size_t T = view["queries"].size(), S = view["keys"].size();
  REQUIRE(starts.size() == L);
  const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::size_t at = 0;
  const auto next = [&] {
    long value = 0;
    for (;;) {
      REQUIRE(at < text.size());
      const char* digit = std::strchr(alphabet, text[at++]);
      REQUIRE(digit != nullptr);
      const long d = digit - alphabet;
      value = value * 32 + (d & 31);
      if (!(d & 32)) return value;
    }
  };
  std::vector<long> k(L * H * T * S, 0);
  for (std::size_t l = 0; l < L; ++l) {
    CHECK(starts[l] == at);
    for (std::size_t row = l * H * T; row < (l + 1) * H * T; ++row) {
      const long n = next();
      REQUIRE(n >= 0);
      REQUIRE(n <= static_cast<long>(S));
      if (kept) kept->push_back(n);
      for (long j = 0; j < n; ++j) k[row * S + static_cast<std::size_t>(j)] = next();
    }
  }
  CHECK(at == text.size());
  return k;
}

// A view of L x H causal maps over T tokens with random rows (each sums to 1 over keys 0..i).
AttentionView causal_view(const std::string& name, const std::vector<std::string>& tokens, Index layers, Index heads,
                          unsigned seed) {
  AttentionView v;
  v.name = name;
  v.queries = v.keys = tokens;
  v.layers = layers;
  v.heads = heads;
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> u(0.05, 1.0);
  const std::size_t T = tokens.size();
  for (Index m = 0; m < layers * heads; ++m)
    for (std::size_t i = 0; i < T; ++i) {
      std::vector<double> row(T, 0.0);
      double sum = 0;
      for (std::size_t j = 0; j <= i; ++j) sum += row[j] = u(gen);
      for (double x : row) v.weights.push_back(static_cast<float>(x / sum));
    }
  return v;
}

ExplainData small_data() {
  ExplainData d;
  d.title = "test";
  d.views.push_back(causal_view("self-attention", {"a", " b", "c"}, 2, 2, 1));
  d.temperatures = default_temperatures();
  std::vector<float> logits = {0.5f, 2.0f, -1.0f, 1.0f};
  NextTokenStep s = next_token_step(logits.data(), 4, 2, d.temperatures, label_of);
  d.steps.push_back(s);
  d.residual.layers = {"embed", "h.0"};
  d.residual.tokens = {"a", " b", "c"};
  d.residual.norms = {{1, 2, 3}, {4, 5, 6}};
  return d;
}

}  // namespace

TEST_CASE("default_temperatures: an increasing grid that holds 0.5, 1 and 2 exactly") {
  const std::vector<double> t = default_temperatures();
  CHECK(std::is_sorted(t.begin(), t.end()));
  CHECK(std::adjacent_find(t.begin(), t.end()) == t.end());
  for (double fixed : {0.5, 1.0, 2.0}) CHECK(std::find(t.begin(), t.end(), fixed) != t.end());
  CHECK(t.front() > 0);
}

TEST_CASE_TEMPLATE("next_token_step: the k most likely tokens and their softmax at every temperature, as brute force", Scalar,
                   float, double) {
  std::mt19937 gen(7);
  std::normal_distribution<double> normal(0.0, 3.0);
  std::vector<Scalar> logits(1000);
  for (Scalar& x : logits) x = static_cast<Scalar>(normal(gen));
  logits[17] = logits[400] = logits[999] = static_cast<Scalar>(20);  // a three-way tie at the top
  const std::vector<double> temperatures = {0.25, 0.5, 1.0, 2.0, 3.0};
  const Index k = 8;
  const NextTokenStep step = next_token_step(logits.data(), static_cast<Index>(logits.size()), k, temperatures, label_of);
  REQUIRE(step.top.size() == static_cast<std::size_t>(k));
  for (std::size_t i = 0; i < temperatures.size(); ++i) {
    CAPTURE(temperatures[i]);
    const BruteForce b = brute_force(logits, temperatures[i]);
    for (Index r = 0; r < k; ++r) {
      const TokenChoice& c = step.top[static_cast<std::size_t>(r)];
      CAPTURE(r);
      CHECK(c.id == b.order[static_cast<std::size_t>(r)]);
      CHECK(c.token == label_of(c.id));
      CHECK(c.logit == static_cast<double>(logits[static_cast<std::size_t>(c.id)]));
      REQUIRE(c.p.size() == temperatures.size());
      CHECK(std::abs(c.p[i] - static_cast<double>(b.p[static_cast<std::size_t>(c.id)])) <=
            1e-12 * static_cast<double>(b.p[static_cast<std::size_t>(c.id)]));
    }
  }
  // The tie: ids 17, 400, 999 in that order, with equal probabilities.
  CHECK(step.top[0].id == 17);
  CHECK(step.top[1].id == 400);
  CHECK(step.top[2].id == 999);
  CHECK(step.top[0].p == step.top[2].p);
}

TEST_CASE("next_token_step: shifting every logit by 10000 changes no probability (log-sum-exp), -inf is probability 0") {
  std::vector<double> logits = {1.0, -2.0, 0.5, 3.0, -std::numeric_limits<double>::infinity(), 0.0};
  const std::vector<double> temperatures = default_temperatures();
  const NextTokenStep plain = next_token_step(logits.data(), 6, 6, temperatures, label_of);
  for (double& x : logits) x += 10000;
  const NextTokenStep shifted = next_token_step(logits.data(), 6, 6, temperatures, label_of);
  for (std::size_t r = 0; r < 6; ++r) {
    CHECK(plain.top[r].id == shifted.top[r].id);
    for (std::size_t i = 0; i < temperatures.size(); ++i) CHECK(shifted.top[r].p[i] == doctest::Approx(plain.top[r].p[i]).epsilon(1e-9));
  }
  CHECK(plain.top.back().id == 4);
  for (double p : plain.top.back().p) CHECK(p == 0.0);
}

TEST_CASE("next_token_step: k larger than the vocabulary shows all of it, whose probabilities sum to 1") {
  const std::vector<float> logits = {0.1f, 0.2f, 0.3f};
  const std::vector<double> temperatures = {0.5, 1.0, 2.0};
  const NextTokenStep step = next_token_step(logits.data(), 3, 10, temperatures, label_of);
  REQUIRE(step.top.size() == 3);
  for (std::size_t i = 0; i < temperatures.size(); ++i) {
    double sum = 0;
    for (const TokenChoice& c : step.top) sum += c.p[i];
    CHECK(sum == doctest::Approx(1.0).epsilon(1e-15));
  }
}

TEST_CASE("next_token_step: refuses what has no distribution to show, by name") {
  const std::vector<double> t = {1.0};
  const double inf = std::numeric_limits<double>::infinity();
  const std::vector<double> ok = {1.0, 2.0};
  CHECK_THROWS_WITH_AS(next_token_step(ok.data(), 2, 0, t, label_of), "next_token_step: k is 0; expected at least 1 token to show", RangeError);
  CHECK_THROWS_WITH_AS(next_token_step(ok.data(), 0, 1, t, label_of), "next_token_step: vocab is 0; expected at least 1 logit", RangeError);
  CHECK_THROWS_WITH_AS(next_token_step(ok.data(), 2, 1, {}, label_of), "next_token_step: no temperatures; expected at least one", RangeError);
  CHECK_THROWS_WITH_AS(next_token_step(ok.data(), 2, 1, {1.0, 0.0}, label_of),
                       "next_token_step: temperature 0 (at 1) is not a positive finite number", RangeError);
  const std::vector<double> with_nan = {1.0, std::nan("")};
  CHECK_THROWS_WITH_AS(next_token_step(with_nan.data(), 2, 1, t, label_of),
                       "next_token_step: the logit of id 1 is nan; expected a finite number or -inf", RangeError);
  const std::vector<double> with_inf = {inf, 1.0};
  CHECK_THROWS_WITH_AS(next_token_step(with_inf.data(), 2, 1, t, label_of),
                       "next_token_step: the logit of id 0 is inf; expected a finite number or -inf", RangeError);
  const std::vector<double> all_out = {-inf, -inf};
  CHECK_THROWS_WITH_AS(next_token_step(all_out.data(), 2, 1, t, label_of),
                       "next_token_step: all 2 logits are -inf; there is no distribution to show", RangeError);
}

TEST_CASE("explain_html: every token comes back from the data block, even </script> and <!--, and nothing else ends it") {
  ExplainData d = small_data();
  const std::vector<std::string> tokens = {"</script><script>alert(1)</script>", "<!--", "a\nb", "</SCRIPT >"};
  d.views = {causal_view("self-attention", tokens, 1, 1, 2)};
  d.steps[0].context = "</script>";
  d.title = "<title></title>";
  const std::string page = explain_html(d);
  const nlohmann::json j = nlohmann::json::parse(data_block(page));
  CHECK(j["views"][0]["queries"].get<std::vector<std::string>>() == tokens);
  CHECK(j["steps"][0]["context"] == "</script>");
  CHECK(j["title"] == "<title></title>");
  CHECK(page.find("<!--") == std::string::npos);
  // Two </script>: the data block's and the page script's; none from the tokens, in any case.
  std::size_t ends = 0;
  for (std::size_t at = page.find("</script>"); at != std::string::npos; at = page.find("</script>", at + 1)) ++ends;
  CHECK(ends == 2);
  CHECK(page.find("</SCRIPT") == std::string::npos);
}

TEST_CASE("explain_html: invalid UTF-8 in a token is shown as U+FFFD, not thrown") {
  ExplainData d = small_data();
  d.views = {causal_view("self-attention", {"\xe2\x80", " ok", "\xff"}, 1, 1, 3)};
  d.steps[0].chosen = "\xc3";
  std::string page;
  REQUIRE_NOTHROW(page = explain_html(d));
  const nlohmann::json j = nlohmann::json::parse(data_block(page));  // nlohmann refuses invalid UTF-8: it is valid
  const std::string replacement = "\xef\xbf\xbd";
  CHECK(j["views"][0]["queries"][0].get<std::string>().find(replacement) != std::string::npos);
  CHECK(j["views"][0]["queries"][1] == " ok");
  CHECK(j["views"][0]["queries"][2] == replacement);
  CHECK(j["steps"][0]["chosen"] == replacement);
}

TEST_CASE("explain_html: every weight comes back rounded to 4 decimals, each row kept up to its last nonzero") {
  ExplainData d = small_data();
  const std::vector<std::string> tokens = {"a", "b", "c", "d", "e"};
  d.views = {causal_view("self-attention", tokens, 2, 3, 4)};
  AttentionView cross;  // not causal, with one fully masked row (all 0) and one one-hot row
  cross.name = "cross-attention";
  cross.queries = {"x", "y", "z"};
  cross.keys = tokens;
  cross.layers = cross.heads = 1;
  cross.weights = {0.2f, 0.2f, 0.2f, 0.2f, 0.2f, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0};
  d.views.push_back(cross);
  // Each length of number: k = 31 and 1023 (the largest of 1 and 2 digits), 32 and 1024 (the smallest of 2 and 3),
  // 10000 (a weight of 1), and a weight under 0.00005 at the end of its row, which rounds to 0 and is cut.
  AttentionView edges;
  edges.name = "edges";
  edges.queries = {"p", "q"};
  edges.keys = {"a", "b", "c"};
  edges.layers = 1;
  edges.heads = 2;
  edges.weights = {0.0031f, 0.0032f, 0.00004f, 0.1023f, 0.1024f, 0, 1, 0, 0, 0.5f, 0.4999f, 0.0001f};
  d.views.push_back(edges);
  const nlohmann::json j = nlohmann::json::parse(data_block(explain_html(d)));
  for (std::size_t v = 0; v < d.views.size(); ++v) {
    const AttentionView& view = d.views[v];
    CAPTURE(view.name);
    REQUIRE(j["views"][v]["weight_scale"] == 10000);
    const std::vector<long> k = decode_weights(j["views"][v]);
    REQUIRE(k.size() == view.weights.size());
    for (std::size_t i = 0; i < k.size(); ++i) {
      CAPTURE(i);
      CHECK(k[i] == std::lround(static_cast<double>(view.weights[i]) * 10000));
      CHECK(std::abs(k[i] / 10000.0 - view.weights[i]) <= 0.5e-4 + 1e-7);
    }
  }
  // Causal rows keep keys 0..i; the cross view keeps 5, 0 and 3; the edges 2 (the third rounds to 0), 2, 1 and 3.
  std::vector<long> causal, crossed, edge;
  decode_weights(j["views"][0], &causal);
  for (std::size_t row = 0; row < causal.size(); ++row) CHECK(causal[row] == static_cast<long>(row % tokens.size() + 1));
  decode_weights(j["views"][1], &crossed);
  CHECK(crossed == std::vector<long>({5, 0, 3}));
  decode_weights(j["views"][2], &edge);
  CHECK(edge == std::vector<long>({2, 2, 1, 3}));
  // The digits, spelt out: count 2 "C", 31 "f", 32 "hA" (1 then 0, the 1 marked as followed: 1 + 32 = 'h'); "C",
  // 1023 "/f", 1024 "hgA"; count 1 "B", 10000 = groups 9, 24, 16: "p4Q"; count 3 "D", 5000 "k8I", 4999 "k8H", 1 "B".
  CHECK(j["views"][2]["weights"] == "CfhAC/fhgABp4QDk8Ik8HB");
  CHECK(j["views"][2]["layer_starts"] == nlohmann::json({0}));
}

TEST_CASE("explain_html: the page is ASCII, whatever its tokens; what is beyond ASCII travels as \\u escapes") {
  ExplainData d = small_data();
  d.views = {causal_view("self-attention", {"caf\xc3\xa9", "\xe2\x80\x94", "\xf0\x9f\x90\xb3", "\xff"}, 1, 1, 5)};
  d.title = "Moby-Dick \xe2\x80\x94 the whale";
  d.steps[0].chosen = "r\xc3\xa1pidos";
  const std::string page = explain_html(d);
  const std::size_t beyond = static_cast<std::size_t>(
      std::count_if(page.begin(), page.end(), [](char c) { return static_cast<unsigned char>(c) >= 0x80; }));
  CHECK(beyond == 0);
  const nlohmann::json j = nlohmann::json::parse(data_block(page));
  CHECK(j["views"][0]["queries"] == nlohmann::json({"caf\xc3\xa9", "\xe2\x80\x94", "\xf0\x9f\x90\xb3", "\xef\xbf\xbd"}));
  CHECK(j["title"] == "Moby-Dick \xe2\x80\x94 the whale");
  CHECK(j["steps"][0]["chosen"] == "r\xc3\xa1pidos");
  CHECK(page.find("\\u2014") != std::string::npos);
}

TEST_CASE("explain_html: no views, steps or norms is a page too; without steps the temperatures are free") {
  ExplainData d;
  std::string page;
  REQUIRE_NOTHROW(page = explain_html(d));
  CHECK(page.find("id=\"data\"") != std::string::npos);
  d.temperatures = {3.0};
  CHECK_NOTHROW(explain_html(d));
}

TEST_CASE("explain_html: refuses data that does not fit, naming the view, step or layer") {
  {
    ExplainData d = small_data();
    d.views[0].weights.pop_back();
    CHECK_THROWS_WITH_AS(explain_html(d),
                         "explain_html: view 0 'self-attention' has 35 weights; expected layers * heads * queries * keys = "
                         "2 * 2 * 3 * 3 = 36",
                         ShapeError);
  }
  {
    ExplainData d = small_data();
    d.views[0].heads = 0;
    CHECK_THROWS_WITH_AS(explain_html(d), "explain_html: view 0 'self-attention' has 2 layers and 0 heads; expected at least 1 of each",
                         ShapeError);
  }
  {
    ExplainData d = small_data();
    d.views[0].keys.clear();
    CHECK_THROWS_WITH_AS(explain_html(d), "explain_html: view 0 'self-attention' has 3 queries and 0 keys; expected at least 1 of each",
                         ShapeError);
  }
  {
    ExplainData d = small_data();
    d.views[0].weights[(1 * 2 + 1) * 9 + 2 * 3 + 1] = std::nanf("");  // layer 1, head 1, query 2, key 1
    CHECK_THROWS_WITH_AS(explain_html(d),
                         "explain_html: view 0 'self-attention': the weight at layer 1, head 1, query 2, key 1 is nan; "
                         "expected a probability in [0, 1]",
                         RangeError);
  }
  {
    ExplainData d = small_data();
    d.temperatures = {0.5, 1.0, 3.0};
    for (TokenChoice& c : d.steps[0].top) c.p.resize(3);
    CHECK_THROWS_WITH_AS(explain_html(d), "explain_html: the temperatures lack 2; the three fixed panels show 0.5, 1 and 2", RangeError);
  }
  {
    ExplainData d = small_data();
    d.temperatures[3] = d.temperatures[2];
    CHECK_THROWS_WITH_AS(explain_html(d),
                         "explain_html: temperature 0.3 (at 3) breaks the grid; expected positive finite numbers in increasing order",
                         RangeError);
  }
  {
    ExplainData d = small_data();
    d.steps[0].position = 7;
    d.steps[0].top[1].p.pop_back();
    CHECK_THROWS_WITH_AS(explain_html(d),
                         "explain_html: step 0 (position 7) token 'tok3' has 29 probabilities; expected one per temperature (30)",
                         ShapeError);
  }
  {
    ExplainData d = small_data();
    d.steps[0].top.clear();
    CHECK_THROWS_WITH_AS(explain_html(d), "explain_html: step 0 (position 0) has no tokens; expected the top k (k >= 1)", ShapeError);
  }
  {
    ExplainData d = small_data();
    d.residual.norms[1].pop_back();
    CHECK_THROWS_WITH_AS(explain_html(d),
                         "explain_html: residual norms of layer 'h.0' have 2 values; expected one per token (3)", ShapeError);
  }
  {
    ExplainData d = small_data();
    d.residual.norms.pop_back();
    CHECK_THROWS_WITH_AS(explain_html(d), "explain_html: residual norms have 1 rows; expected one per layer (2)", ShapeError);
  }
  {
    ExplainData d = small_data();
    d.residual.norms[0][2] = -1;
    CHECK_THROWS_WITH_AS(explain_html(d), "explain_html: the residual norm of layer 'embed' at token 2 is -1; expected a finite norm >= 0",
                         RangeError);
  }
}

TEST_CASE("write_explain_html: writes the page whole, leaves no temporary; a missing directory is an IoError naming the path") {
  TempDir dir;
  const ExplainData d = small_data();
  const std::string path = dir.path() + "/page.html";
  write_explain_html(d, path);
  CHECK(eigenformer::testing::read_text_file(path) == explain_html(d));
  std::size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) files += entry.is_regular_file() ? 1 : 0;
  CHECK(files == 1);

  // A FIFO or a directory at the path: refused by name before the page is made, left as it was (harden-c).
  const std::string fifo = dir.path() + "/fifo.html";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  CHECK_THROWS_WITH_AS(write_explain_html(d, fifo), (fifo + ": is a FIFO (named pipe), not a regular file; refusing to write over it").c_str(), IoError);
  CHECK_THROWS_WITH_AS(write_explain_html(d, dir.path()), (dir.path() + ": is a directory, not a regular file; refusing to write over it").c_str(), IoError);
  struct stat st {};
  REQUIRE(::stat(fifo.c_str(), &st) == 0);
  CHECK(S_ISFIFO(st.st_mode));
  std::filesystem::remove(fifo);

  const std::string missing = dir.path() + "/no/such/dir/page.html";
  const std::string expected = missing + ": cannot write the explain page: " + std::strerror(ENOENT);
  CHECK_THROWS_WITH_AS(write_explain_html(d, missing), expected.c_str(), IoError);
}
