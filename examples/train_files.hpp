// examples/train_files.hpp: the files a training run writes beside its checkpoint, shared by `translator train` and
// `gpt2 train`:
//   train_log.tsv   one row a step: step, loss, learning rate, gradient norm, and (runs that validate) the validation
//                   loss measured after that step, empty on the steps that did not measure it
//   loss.svg        the loss curve: every step's loss (thin), its moving average (thick), the validation loss (dots
//                   joined), on a linear scale
// and the one way they are written: to a temporary file, then renamed over the old one, so that a reader never sees
// half a file and a failure leaves the last good one.
#pragma once

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <eigenformer/core/bounded_reader.hpp>
#include <eigenformer/core/error.hpp>
#include <eigenformer/core/output_file.hpp>
#include <eigenformer/io/safetensors.hpp>

namespace example_train {

// Writes `text` to path through a temporary and a rename (eigenformer::write_file_atomically): a directory, FIFO or
// device at `path` is refused by name.
inline void write_file_atomically(const std::string& path, const std::string& text) { eigenformer::write_file_atomically(path, text); }

// One row of train_log.tsv. val_loss: NaN on a step that did not validate.
struct LogRow {
  std::int64_t step = 0;
  double loss = 0, lr = 0, grad_norm = 0;
  double val_loss = std::numeric_limits<double>::quiet_NaN();
};

// The log's text; with_validation adds the val_loss column.
inline std::string log_text(const std::vector<LogRow>& log, bool with_validation = false) {
  std::ostringstream out;
  out << "step\tloss\tlr\tgrad_norm" << (with_validation ? "\tval_loss" : "") << '\n';
  for (const LogRow& r : log) {
    out << r.step << '\t' << r.loss << '\t' << r.lr << '\t' << r.grad_norm;
    if (with_validation) {
      out << '\t';
      if (!std::isnan(r.val_loss)) out << r.val_loss;
    }
    out << '\n';
  }
  return out.str();
}

// The rows of a train_log.tsv up to step `last` (a checkpoint's step; rows past it, from a run stopped after its last
// checkpoint, are dropped); FormatError naming the file and line for anything else.
inline std::vector<LogRow> read_log(const std::string& path, std::int64_t last, bool with_validation = false) {
  using eigenformer::detail::printable;
  eigenformer::BoundedReader in = eigenformer::BoundedReader::open_file(path, "a training log", std::uint64_t(256) << 20);
  const std::string header = std::string("step\tloss\tlr\tgrad_norm") + (with_validation ? "\tval_loss" : "");
  std::vector<LogRow> log;
  std::string line;
  if (!in.read_line(line, 4096) || line != header)
    throw eigenformer::FormatError(printable(path) + ": line 1: expected the header " + printable(header));
  while (in.read_line(line, 4096)) {
    LogRow r;
    std::istringstream fields(line);
    std::string val, rest;
    bool ok = static_cast<bool>(fields >> r.step >> r.loss >> r.lr >> r.grad_norm);
    if (ok && with_validation && (fields >> val)) {
      std::size_t used = 0;
      try {
        r.val_loss = std::stod(val, &used);
      } catch (const std::exception&) {
        ok = false;
      }
      ok = ok && used == val.size();
    }
    if (!ok || (fields >> rest) || r.step != static_cast<std::int64_t>(log.size()) + 1)
      throw eigenformer::FormatError(printable(path) + ": line " + std::to_string(in.lines()) + ": expected step " +
                                     std::to_string(log.size() + 1) + ", then loss, lr and grad_norm" +
                                     (with_validation ? " (and the validation loss, or nothing)" : ""));
    if (r.step > last) break;
    log.push_back(r);
  }
  if (static_cast<std::int64_t>(log.size()) != last)
    throw eigenformer::FormatError(printable(path) + ": holds " + std::to_string(log.size()) + " steps; the checkpoint is at step " +
                                   std::to_string(last));
  return log;
}

// The loss curve of `log`: every step's loss (thin), its moving average over 1% of the run (thick) and, where the run
// validated, the validation loss (orange), on one linear scale from 0.
inline std::string loss_svg(const std::vector<LogRow>& log, const std::string& title) {
  const double W = 720, H = 360, left = 60, right = 20, top = 30, bottom = 40;
  std::ostringstream svg;
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H << "\" viewBox=\"0 0 " << W << ' ' << H
      << "\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  svg << "<text x=\"" << left << "\" y=\"18\" font-size=\"14\">" << title << "</text>\n";
  if (log.empty()) return svg.str() + "</svg>\n";
  double hi = 0;
  bool validated = false;
  for (const LogRow& r : log) {
    hi = std::max(hi, std::isfinite(r.loss) ? r.loss : 0.0);
    if (std::isfinite(r.val_loss)) hi = std::max(hi, r.val_loss), validated = true;
  }
  hi = std::max(hi, 1e-3);
  const double steps = double(log.back().step);
  const auto x = [&](double step) { return left + (W - left - right) * (steps > 1 ? (step - 1) / (steps - 1) : 0.5); };
  const auto y = [&](double loss) { return top + (H - top - bottom) * (1 - std::min(std::max(loss, 0.0), hi) / hi); };
  svg.setf(std::ios::fixed);
  svg.precision(1);
  for (int k = 0; k <= 4; ++k) {  // axes, ticks and labels
    const double value = hi * k / 4;
    svg << "<line x1=\"" << left << "\" x2=\"" << W - right << "\" y1=\"" << y(value) << "\" y2=\"" << y(value) << "\" stroke=\"#ddd\"/>"
        << "<text x=\"" << left - 6 << "\" y=\"" << y(value) + 4 << "\" text-anchor=\"end\">" << value << "</text>\n";
    const double step = 1 + (steps - 1) * k / 4;
    svg << "<text x=\"" << x(step) << "\" y=\"" << H - bottom + 16 << "\" text-anchor=\"middle\">" << static_cast<long long>(step + 0.5)
        << "</text>\n";
  }
  svg << "<text x=\"" << (left + W - right) / 2 << "\" y=\"" << H - 6 << "\" text-anchor=\"middle\">step</text>\n";
  svg << "<text x=\"14\" y=\"" << (top + H - bottom) / 2 << "\" transform=\"rotate(-90 14 " << (top + H - bottom) / 2
      << ")\" text-anchor=\"middle\">loss</text>\n";
  // At most ~2000 points a line: a long run's curve is thinned, not its file grown.
  const std::size_t stride = std::max<std::size_t>(1, log.size() / 2000);
  svg << "<polyline fill=\"none\" stroke=\"#9ecae1\" stroke-width=\"1\" points=\"";
  for (std::size_t i = 0; i < log.size(); i += stride) svg << x(double(log[i].step)) << ',' << y(log[i].loss) << ' ';
  svg << "\"/>\n";
  const std::size_t window = std::max<std::size_t>(1, log.size() / 100);
  svg << "<polyline fill=\"none\" stroke=\"#08519c\" stroke-width=\"2\" points=\"";
  double sum = 0;
  for (std::size_t i = 0; i < log.size(); ++i) {
    sum += log[i].loss;
    if (i >= window) sum -= log[i - window].loss;
    if (i % stride == 0 || i + 1 == log.size()) svg << x(double(log[i].step)) << ',' << y(sum / double(std::min(i + 1, window))) << ' ';
  }
  svg << "\"/>\n";
  if (validated) {
    svg << "<polyline fill=\"none\" stroke=\"#e6550d\" stroke-width=\"2\" points=\"";
    for (const LogRow& r : log)
      if (std::isfinite(r.val_loss)) svg << x(double(r.step)) << ',' << y(r.val_loss) << ' ';
    svg << "\"/>\n";
    for (const LogRow& r : log)
      if (std::isfinite(r.val_loss)) svg << "<circle cx=\"" << x(double(r.step)) << "\" cy=\"" << y(r.val_loss) << "\" r=\"2.5\" fill=\"#e6550d\"/>";
    svg << "\n<text x=\"" << W - right << "\" y=\"18\" text-anchor=\"end\"><tspan fill=\"#08519c\">training (moving average)</tspan>"
        << "<tspan fill=\"#e6550d\" dx=\"12\">validation</tspan></text>\n";
  }
  svg << "</svg>\n";
  return svg.str();
}

// --resume: the settings a checkpoint's run started with (its "user.<key>" metadata) must be `settings`; the first
// difference is an error naming the key, checked before any tensor is read (a checkpoint of another shape would
// otherwise be reported tensor by tensor).
inline void check_run_settings(const std::string& checkpoint_path, const std::map<std::string, std::string>& settings) {
  const std::map<std::string, std::string> recorded = eigenformer::SafeTensors(checkpoint_path).metadata();
  for (const auto& [key, value] : settings) {
    const auto it = recorded.find("user." + key);
    const std::string was = it == recorded.end() ? "(none)" : it->second;
    if (was != value)
      throw eigenformer::RangeError(eigenformer::detail::printable(checkpoint_path) + ": the run was started with " + key + " " + was +
                                    ", not " + value + "; resume with the settings it started with");
  }
}

}  // namespace example_train
