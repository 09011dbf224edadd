// examples/progress.hpp: the progress of a long run (training), on standard error. On a terminal, one line redrawn in
// place at most ten times a second: a bar, the step, the loss, tokens per second and the time left. Anywhere else (a
// file, a pipe, CI), a plain line every `every` steps and at the end, so that logs stay readable.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace example_cli {

class Progress {
 public:
  // total: the step the run ends at; first: the step it starts from (a resumed run starts past 0); every: the plain
  // lines' spacing in steps (0: about 20 lines per run).
  Progress(std::int64_t first, std::int64_t total, std::int64_t every = 0)
      : first_(first), total_(total), every_(every > 0 ? every : std::max<std::int64_t>(1, (total - first) / 20)),
        terminal_(::isatty(STDERR_FILENO) == 1), start_(Clock::now()), last_draw_(start_) {}

  // After step `step` (first < step <= total), whose loss was `loss`; tokens: the target tokens learnt from so far in
  // this run.
  void update(std::int64_t step, double loss, double tokens) {
    const auto now = Clock::now();
    const double seconds = std::chrono::duration<double>(now - start_).count();
    const double per_step = seconds / double(step - first_);
    const double eta = per_step * double(total_ - step);
    const double rate = seconds > 0 ? tokens / seconds : 0.0;
    if (terminal_) {
      if (step != total_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
      last_draw_ = now;
      const int width = 30;
      const int filled = static_cast<int>(double(width) * double(step) / double(total_));
      std::string bar(static_cast<std::size_t>(filled), '#');
      bar.resize(static_cast<std::size_t>(width), '.');
      std::fprintf(stderr, "\r[%s] step %lld/%lld  loss %.4f  %.0f tok/s  %s left ", bar.c_str(), static_cast<long long>(step),
                   static_cast<long long>(total_), loss, rate, clock_text(eta).c_str());
      if (step == total_) std::fprintf(stderr, "\n");
      std::fflush(stderr);
      return;
    }
    if (step % every_ != 0 && step != total_) return;
    std::fprintf(stderr, "step %lld/%lld loss %.4f %.0f tok/s elapsed %s left %s\n", static_cast<long long>(step),
                 static_cast<long long>(total_), loss, rate, clock_text(seconds).c_str(), clock_text(eta).c_str());
    std::fflush(stderr);
  }

  // A line of its own between the progress lines (on a terminal: above the bar, which the next update redraws).
  void note(const std::string& text) {
    if (terminal_) std::fprintf(stderr, "\r\033[K%s\n", text.c_str());
    else std::fprintf(stderr, "%s\n", text.c_str());
    std::fflush(stderr);
    last_draw_ = Clock::time_point{};  // redraw the bar at the next update
  }

  // Ends a redrawn line before something else is written to standard error.
  void interrupt() const {
    if (terminal_) std::fprintf(stderr, "\n");
  }

  double seconds() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }

  // 75 -> "1:15", 3700 -> "1:01:40".
  static std::string clock_text(double seconds) {
    const long long s = seconds > 0 && seconds < 1e9 ? static_cast<long long>(seconds + 0.5) : 0;
    char buf[32];
    if (s >= 3600) std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", s / 3600, s / 60 % 60, s % 60);
    else std::snprintf(buf, sizeof buf, "%lld:%02lld", s / 60, s % 60);
    return buf;
  }

 private:
  using Clock = std::chrono::steady_clock;
  std::int64_t first_, total_, every_;
  bool terminal_;
  Clock::time_point start_, last_draw_;
};

}  // namespace example_cli
