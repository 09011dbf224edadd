// inspect/explain_page.hpp: one self-contained HTML page that shows what a model did on one input, in the manner of
// the Transformer Explainer: attention heatmaps per layer and head (queries x keys, token texts as labels), the top-k
// next-token probabilities at each generated step, softmax(logits / t) at t = 0.5, 1 and 2 side by side and at any t
// of a grid on a slider, and the norm of the residual stream per layer and token.
// C++ only gathers the numbers (ExplainData) and encodes them; the page's own script (explain_page_assets.hpp)
// draws them. The page needs no network: inline CSS, script, SVG and canvas, and a Content-Security-Policy that forbids
// loading anything. It is ASCII throughout. Weights travel as integers round(w * 10^4), the 4 decimals the page shows,
// in a base64-alphabet variable-length code, each row cut after its last nonzero weight, one string per view with
// the start of each layer, so that the page decodes only the layer it shows (GPT-2 small, 12 x 12 causal heads of
// 84 x 84 from random weights: 1.06 MB of text; detail::encode_weights), inside the JSON of
// <script type="application/json" id="data">, which holds everything.
//
// The DOM contract (tools/check_page.mjs relies on it; change both together):
//   section.attention            one per view, in order; data-view = its index
//     select.layer               L options, values 0..L-1
//     select.head                H + 1 options: values 0..H-1, then "average" (the mean of the heads)
//     div.heatmap                the map shown; data-layer and data-head say which (as the selects' values);
//                                data-highlight = the query whose row is marked, absent when none is
//       canvas.cells             S x T pixels, one per cell: pixel (j, i) has the colour of query i's weight on key j
//                                (the palette of explain_page_assets.hpp); shown data-cell CSS px per cell; hovering
//                                a cell fills #tooltip ("weight 0.1234", the query, the key, the layer and head)
//       svg.labels               over the canvas: one text.query-label per query (data-query = i), one text.key-label
//                                per key (data-key = j); hovering a query label shows path.row-mark (data-query = i,
//                                visibility "visible") around that row's cells and sets data-highlight
//   section.next-token           present when there are steps
//     input#temperature          type=range over the indices of the temperature grid
//     div.step                   one per step; four svg.bars: data-temperature "0.5", "1", "2" and then the
//                                slider's panel (class "slider"); each holds one rect.bar per top-k token. The bars
//                                are drawn when their step comes within a window's height of the visible part
//   section.residual             present when there are norms; its svg.residual, drawn when the section comes within
//                                a window's height of the visible part, holds one rect.norm per layer and token
//   div#tooltip                  the one tooltip; its text is set with textContent, never as HTML
//   body[data-rendered]          milliseconds from navigation start to the end of the first render: everything but
//                                what waits to be near the window, laid out
#pragma once

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <limits>
#include <numeric>
#include <string>
#include <system_error>
#include <vector>

#include <unistd.h>

#include "eigenformer/core/error.hpp"
#include "eigenformer/core/output_file.hpp"
#include "eigenformer/core/shape.hpp"
#include "eigenformer/inspect/explain_page_assets.hpp"

namespace eigenformer {

// One family of attention maps, e.g. GPT-2's "self-attention" or the translator's "cross-attention".
struct AttentionView {
  std::string name;
  std::vector<std::string> queries;  // T row labels (token texts, any bytes)
  std::vector<std::string> keys;     // S column labels
  Index layers = 0, heads = 0;       // L, H
  std::vector<float> weights;        // [L, H, T, S] row-major; each row a distribution, or all 0 (fully masked)
};

// One of the k tokens shown at a step: p[i] is its probability softmax(logits / t) at t = temperatures[i].
struct TokenChoice {
  std::string token;
  std::int64_t id = 0;
  double logit = 0;
  std::vector<double> p;
};

// The next-token distribution at one position: `context` is the token read there, `chosen` the token generated.
struct NextTokenStep {
  Index position = 0;
  std::string context;
  std::string chosen;
  std::int64_t chosen_id = -1;   // -1: none (e.g. the last position)
  std::vector<TokenChoice> top;  // by logit, highest first
};

// The norm of the residual stream after each layer: norms[layer][token], e.g. layers "embed", "h.0", ..., "h.11".
struct ResidualNorms {
  std::vector<std::string> layers;
  std::vector<std::string> tokens;
  std::vector<std::vector<double>> norms;
};

struct ExplainData {
  std::string title, subtitle;
  std::vector<AttentionView> views;
  std::vector<double> temperatures;  // the slider's grid, increasing; holds 0.5, 1 and 2 (the fixed panels) when there are steps
  std::vector<NextTokenStep> steps;  // may be empty
  ResidualNorms residual;            // may be empty
};

// 0.1, 0.2, ..., 3.0 (i / 10.0, so 0.5, 1 and 2 are exact).
inline std::vector<double> default_temperatures() {
  std::vector<double> t;
  for (int i = 1; i <= 30; ++i) t.push_back(i / 10.0);
  return t;
}

// The next-token distribution of one row of logits [V]: the k tokens of highest logit (ties: lower id first; k > V
// shows all V), each with its probability softmax(logits / t) over all V logits at every t of `temperatures`, by
// log-sum-exp in double. label(id) gives a token's text. A logit may be -inf (a token ruled out: probability 0);
// NaN and +inf are refused (RangeError), as are k < 1, V < 1 and a temperature that is not a positive number.
// position, context and chosen are left for the caller.
template <typename Scalar>
NextTokenStep next_token_step(const Scalar* logits, Index vocab, Index k, const std::vector<double>& temperatures,
                              const std::function<std::string(std::int64_t)>& label) {
  const std::string where = "next_token_step: ";
  if (vocab < 1) throw RangeError(where + "vocab is " + std::to_string(vocab) + "; expected at least 1 logit");
  if (k < 1) throw RangeError(where + "k is " + std::to_string(k) + "; expected at least 1 token to show");
  if (temperatures.empty()) throw RangeError(where + "no temperatures; expected at least one");
  for (std::size_t i = 0; i < temperatures.size(); ++i)
    if (!(temperatures[i] > 0) || !std::isfinite(temperatures[i]))
      throw RangeError(where + "temperature " + detail::number_text(temperatures[i]) + " (at " + std::to_string(i) +
                       ") is not a positive finite number");
  double max_logit = -std::numeric_limits<double>::infinity();
  for (Index v = 0; v < vocab; ++v) {
    const double x = static_cast<double>(logits[v]);
    if (std::isnan(x) || x == std::numeric_limits<double>::infinity())
      throw RangeError(where + "the logit of id " + std::to_string(v) + " is " + detail::number_text(x) +
                       "; expected a finite number or -inf");
    max_logit = std::max(max_logit, x);
  }
  if (max_logit == -std::numeric_limits<double>::infinity())
    throw RangeError(where + "all " + std::to_string(vocab) + " logits are -inf; there is no distribution to show");

  // log Z(t) = max/t + log sum_v exp((l_v - max) / t): every exponent <= 0, and the largest is exactly 0.
  std::vector<double> log_z(temperatures.size());
  for (std::size_t i = 0; i < temperatures.size(); ++i) {
    double sum = 0;
    for (Index v = 0; v < vocab; ++v) sum += std::exp((static_cast<double>(logits[v]) - max_logit) / temperatures[i]);
    log_z[i] = std::log(sum);
  }

  const Index shown = std::min(k, vocab);
  std::vector<std::int64_t> ids(static_cast<std::size_t>(vocab));
  std::iota(ids.begin(), ids.end(), std::int64_t{0});
  std::partial_sort(ids.begin(), ids.begin() + shown, ids.end(), [&](std::int64_t a, std::int64_t b) {
    const double la = static_cast<double>(logits[a]), lb = static_cast<double>(logits[b]);
    return la > lb || (la == lb && a < b);
  });
  NextTokenStep step;
  for (Index r = 0; r < shown; ++r) {
    TokenChoice c;
    c.id = ids[static_cast<std::size_t>(r)];
    c.logit = static_cast<double>(logits[c.id]);
    c.token = label ? label(c.id) : std::to_string(c.id);
    for (std::size_t i = 0; i < temperatures.size(); ++i) c.p.push_back(std::exp((c.logit - max_logit) / temperatures[i] - log_z[i]));
    step.top.push_back(std::move(c));
  }
  return step;
}

namespace detail {

// The page's weights are integers k = round(w * explain_weight_scale): the tooltip's 4 decimals are exactly k / 10^4,
// the weight rounded to 4 places.
inline constexpr int explain_weight_scale = 10000;

// One view's weights as the page reads them: one string, layer after layer, and where each layer starts in it, so that
// the page decodes only the layers it shows. (One string rather than one per layer: V8 puts a string of over 128 KB
// straight in its large-object space, where a dozen smaller ones cost the page's first render two young-generation
// garbage collections.) A layer: for each head h, then each query i, the row's count n of keys kept (cut after its
// last nonzero k: a causal row keeps at most i + 1, half the page), then k for keys 0 .. n - 1. Each number is
// written with the base64 alphabet, most significant group of 5 bits first, one character per group: value =
// (character's index & 31), and index & 32 says that another character follows. So k < 32 takes 1 character,
// k < 1024 2, and 10000 (a weight of 1) 3.
inline void append_varint(std::string& out, unsigned value) {
  static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  int groups = 1;
  while (groups < 7 && (value >> (5 * groups)) != 0) ++groups;
  for (int g = groups - 1; g >= 0; --g) out += alphabet[((value >> (5 * g)) & 31) | (g > 0 ? 32 : 0)];
}
struct EncodedWeights {
  std::string text;
  std::vector<std::size_t> layer_starts;  // L offsets into text
};
inline EncodedWeights encode_weights(const AttentionView& v) {
  const std::size_t S = v.keys.size(), T = v.queries.size(), H = static_cast<std::size_t>(v.heads);
  EncodedWeights out;
  std::string& text = out.text;
  std::vector<unsigned> row(S);
  for (std::size_t l = 0; l < static_cast<std::size_t>(v.layers); ++l) {
    out.layer_starts.push_back(text.size());
    for (std::size_t row_index = l * H * T; row_index < (l + 1) * H * T; ++row_index) {
      std::size_t kept = 0;
      for (std::size_t j = 0; j < S; ++j) {
        const double w = std::min(1.0, std::max(0.0, static_cast<double>(v.weights[row_index * S + j])));
        row[j] = static_cast<unsigned>(std::lround(w * explain_weight_scale));
        if (row[j] != 0) kept = j + 1;
      }
      append_varint(text, static_cast<unsigned>(kept));
      for (std::size_t j = 0; j < kept; ++j) append_varint(text, row[j]);
    }
  }
  return out;
}

// x with 6 significant digits, so that the JSON holds "0.123457" rather than 17 digits (the page shows at most 4).
inline double short_number(double x) { return std::isfinite(x) ? std::stod(number_text(x)) : x; }

inline void check_probability(double p, const std::string& where) {
  if (!(p >= 0 && p <= 1)) throw RangeError(where + " is " + number_text(p) + "; expected a probability in [0, 1]");
}

inline void validate_view(const AttentionView& v, std::size_t index) {
  const std::string where = "explain_html: view " + std::to_string(index) + " " + quote(v.name);
  if (v.layers < 1 || v.heads < 1)
    throw ShapeError(where + " has " + std::to_string(v.layers) + " layers and " + std::to_string(v.heads) +
                     " heads; expected at least 1 of each");
  if (v.queries.empty() || v.keys.empty())
    throw ShapeError(where + " has " + std::to_string(v.queries.size()) + " queries and " + std::to_string(v.keys.size()) +
                     " keys; expected at least 1 of each");
  const std::size_t T = v.queries.size(), S = v.keys.size();
  const std::size_t expected = static_cast<std::size_t>(v.layers) * static_cast<std::size_t>(v.heads) * T * S;
  if (v.weights.size() != expected)
    throw ShapeError(where + " has " + std::to_string(v.weights.size()) + " weights; expected layers * heads * queries * keys = " +
                     std::to_string(v.layers) + " * " + std::to_string(v.heads) + " * " + std::to_string(T) + " * " +
                     std::to_string(S) + " = " + std::to_string(expected));
  // A weight a little above 1 is float rounding of a one-hot row; anything else outside [0, 1] is a caller's bug.
  for (std::size_t i = 0; i < v.weights.size(); ++i) {
    const double w = v.weights[i];
    if (!(w >= 0 && w <= 1 + 1e-5)) {
      const std::size_t key = i % S, query = i / S % T, head = i / (S * T) % static_cast<std::size_t>(v.heads),
                        layer = i / (S * T * static_cast<std::size_t>(v.heads));
      throw RangeError(where + ": the weight at layer " + std::to_string(layer) + ", head " + std::to_string(head) + ", query " +
                       std::to_string(query) + ", key " + std::to_string(key) + " is " + number_text(w) +
                       "; expected a probability in [0, 1]");
    }
  }
}

inline void validate_steps(const ExplainData& d) {
  if (d.steps.empty()) return;
  for (std::size_t i = 0; i < d.temperatures.size(); ++i) {
    const double t = d.temperatures[i];
    if (!(t > 0) || !std::isfinite(t) || (i > 0 && !(t > d.temperatures[i - 1])))
      throw RangeError("explain_html: temperature " + number_text(t) + " (at " + std::to_string(i) +
                       ") breaks the grid; expected positive finite numbers in increasing order");
  }
  for (double fixed : {0.5, 1.0, 2.0})
    if (std::find(d.temperatures.begin(), d.temperatures.end(), fixed) == d.temperatures.end())
      throw RangeError("explain_html: the temperatures lack " + number_text(fixed) + "; the three fixed panels show 0.5, 1 and 2");
  for (std::size_t s = 0; s < d.steps.size(); ++s) {
    const NextTokenStep& step = d.steps[s];
    const std::string where = "explain_html: step " + std::to_string(s) + " (position " + std::to_string(step.position) + ")";
    if (step.top.empty()) throw ShapeError(where + " has no tokens; expected the top k (k >= 1)");
    for (const TokenChoice& c : step.top) {
      const std::string token = where + " token " + quote(c.token);
      if (c.p.size() != d.temperatures.size())
        throw ShapeError(token + " has " + std::to_string(c.p.size()) + " probabilities; expected one per temperature (" +
                         std::to_string(d.temperatures.size()) + ")");
      for (double p : c.p) check_probability(p, token + "'s probability");
    }
  }
}

inline void validate_residual(const ResidualNorms& r) {
  const std::string where = "explain_html: residual norms";
  if (r.norms.size() != r.layers.size())
    throw ShapeError(where + " have " + std::to_string(r.norms.size()) + " rows; expected one per layer (" +
                     std::to_string(r.layers.size()) + ")");
  for (std::size_t l = 0; l < r.norms.size(); ++l) {
    if (r.norms[l].size() != r.tokens.size())
      throw ShapeError(where + " of layer " + quote(r.layers[l]) + " have " + std::to_string(r.norms[l].size()) +
                       " values; expected one per token (" + std::to_string(r.tokens.size()) + ")");
    for (std::size_t t = 0; t < r.norms[l].size(); ++t)
      if (!(r.norms[l][t] >= 0) || !std::isfinite(r.norms[l][t]))
        throw RangeError("explain_html: the residual norm of layer " + quote(r.layers[l]) + " at token " + std::to_string(t) + " is " +
                         number_text(r.norms[l][t]) + "; expected a finite norm >= 0");
  }
}

// The data as the page's script reads it (explain_page_assets.hpp, `const data = ...`).
inline nlohmann::json explain_json(const ExplainData& d) {
  nlohmann::json j;
  j["title"] = d.title;
  j["subtitle"] = d.subtitle;
  j["views"] = nlohmann::json::array();
  for (const AttentionView& v : d.views) {
    EncodedWeights w = encode_weights(v);
    j["views"].push_back({{"name", v.name}, {"queries", v.queries}, {"keys", v.keys}, {"layers", v.layers}, {"heads", v.heads},
                          {"weight_scale", explain_weight_scale}, {"weights", std::move(w.text)}, {"layer_starts", w.layer_starts}});
  }
  j["temperatures"] = d.temperatures;
  j["steps"] = nlohmann::json::array();
  for (const NextTokenStep& s : d.steps) {
    nlohmann::json top = nlohmann::json::array();
    for (const TokenChoice& c : s.top) {
      std::vector<double> p;
      for (double x : c.p) p.push_back(short_number(x));
      // A -inf logit (a token ruled out) has no JSON number: null.
      top.push_back({{"token", c.token}, {"id", c.id}, {"logit", std::isfinite(c.logit) ? nlohmann::json(short_number(c.logit)) : nlohmann::json()}, {"p", p}});
    }
    j["steps"].push_back({{"position", s.position}, {"context", s.context}, {"chosen", s.chosen}, {"chosen_id", s.chosen_id}, {"top", top}});
  }
  nlohmann::json norms = nlohmann::json::array();
  for (const std::vector<double>& row : d.residual.norms) {
    std::vector<double> r;
    for (double x : row) r.push_back(short_number(x));
    norms.push_back(r);
  }
  j["residual"] = {{"layers", d.residual.layers}, {"tokens", d.residual.tokens}, {"norms", norms}};
  return j;
}

}  // namespace detail

// The page, as one string. Validates first: ShapeError or RangeError naming the view, step or layer at fault.
// Token texts may be any bytes: invalid UTF-8 is shown as U+FFFD, and no text can close the data's <script>.
inline std::string explain_html(const ExplainData& data) {
  for (std::size_t i = 0; i < data.views.size(); ++i) detail::validate_view(data.views[i], i);
  detail::validate_steps(data);
  detail::validate_residual(data.residual);

  // ASCII only (the rest of the page is ASCII too): Chromium decodes and parses an ASCII page of a megabyte in half the
  // time of one with a few non-ASCII characters (docs/inspect.md). Text beyond ASCII travels as \uXXXX escapes.
  std::string json = detail::explain_json(data).dump(-1, ' ', /*ensure_ascii=*/true, nlohmann::json::error_handler_t::replace);
  // '<' appears only inside JSON strings, where \u003c means the same: "</script>" and "<!--" cannot end the block.
  std::string safe;
  safe.reserve(json.size());
  for (char c : json) {
    if (c == '<') safe += "\\u003c";
    else safe += c;
  }
  std::string page;
  page.reserve(safe.size() + 64 * 1024);
  page += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  page += "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
          "script-src 'unsafe-inline'; img-src data:\">\n";
  page += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
  page += "<link rel=\"icon\" href=\"data:,\">\n";  // no request for /favicon.ico
  page += "<title>Eigenformer: explain</title>\n";  // the script sets the data's title, as text
  page += "<style>\n";
  page += detail::explain_page_css;
  page += "</style>\n</head>\n<body>\n";
  page += "<script type=\"application/json\" id=\"data\">" + safe + "</script>\n";
  page += "<main id=\"page\"></main>\n<div id=\"tooltip\" hidden></div>\n<script>\n";
  for (const char* part : detail::explain_page_script) page += part;
  page += "</script>\n</body>\n</html>\n";
  return page;
}

// Writes explain_html(data) to `path`: to PATH.tmp-<pid> first, then renamed over PATH, so that a reader never sees
// half a page. IoError naming the path when it cannot be written (its directory missing, no permission, disk full).
// A path that exists and is not a regular file (a directory, a FIFO, /dev/null) is refused by name before the page
// is made (check_output_path, core/output_file.hpp).
inline void write_explain_html(const ExplainData& data, const std::string& path) {
  check_output_path(path);
  const std::string page = explain_html(data);
  const std::string target = output_target(path);  // a link's target, not the link
  const std::string temporary = target + ".tmp-" + std::to_string(::getpid());
  std::FILE* f = std::fopen(temporary.c_str(), "wb");
  if (!f) throw IoError(detail::printable(path) + ": cannot write the explain page: " + std::strerror(errno));
  const bool written = std::fwrite(page.data(), 1, page.size(), f) == page.size();
  const int write_errno = errno;
  const bool closed = std::fclose(f) == 0;
  const int close_errno = errno;
  if (!written || !closed || std::rename(temporary.c_str(), target.c_str()) != 0) {
    const int err = !written ? write_errno : !closed ? close_errno : errno;
    std::error_code ignored;
    std::filesystem::remove(temporary, ignored);
    throw IoError(detail::printable(path) + ": cannot write the explain page: " + std::strerror(err));
  }
}

}  // namespace eigenformer
