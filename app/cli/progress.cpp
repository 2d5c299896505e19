#include "cli/progress.h"

#include <unistd.h>

#include <cstdio>
#include <string>

namespace meft::cli {

std::string format_duration(double s) {
    const long t = static_cast<long>(s + 0.5);
    char buf[32];
    if (t >= 3600) std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
    else std::snprintf(buf, sizeof buf, "%ld:%02ld", t / 60, t % 60);
    return buf;
}

ProgressPrinter::ProgressPrinter(bool quiet) : quiet_(quiet), tty_(isatty(STDERR_FILENO) != 0) {}

void ProgressPrinter::on_step(const StepReport& r) {
    smoothed_loss_ = smoothed_loss_ < 0 ? r.loss : 0.9 * smoothed_loss_ + 0.1 * r.loss;
    if (quiet_) return;
    if (!r.reconstruction_error.empty()) on_reconstruction(r);
    const auto now = std::chrono::steady_clock::now();
    const bool last = r.step == r.total_steps;
    if (tty_) {
        if (!last && now - last_draw_ < std::chrono::milliseconds(100)) return;
    } else {
        const int every = std::max(1, r.total_steps / 20);
        if (!last && r.step - last_printed_ < every) return;
    }
    last_draw_ = now;
    last_printed_ = r.step;
    constexpr int width = 30;
    const int filled = r.total_steps ? width * r.step / r.total_steps : width;
    std::string bar(static_cast<std::size_t>(filled), '#');
    bar.resize(width, '.');
    const double per_step = r.elapsed_s / r.step;
    const double tps = r.elapsed_s > 0 ? double(r.tokens) / r.elapsed_s : 0.0;
    std::fprintf(stderr, "%s[%s] step %d/%d  loss %.4f  %.0f tok/s  %.2f s/step  ETA %s%s", tty_ ? "\r" : "",
                 bar.c_str(), r.step, r.total_steps, smoothed_loss_, tps, per_step,
                 format_duration(per_step * (r.total_steps - r.step)).c_str(), tty_ ? "\033[K" : "\n");
    std::fflush(stderr);
}

void ProgressPrinter::on_reconstruction(const StepReport& r) {
    double worst = 0;
    std::size_t at = 0;
    for (std::size_t l = 0; l < r.reconstruction_error.size(); ++l)
        if (r.reconstruction_error[l] > worst) worst = r.reconstruction_error[l], at = l;
    std::fprintf(stderr, "%sreconstruction @ step %d: largest relative error %.3g (layer %zu)%s\n", tty_ ? "\r\033[K" : "",
                 r.step, worst, at, worst == 0 ? " — bit-exact" : "");
}

void ProgressPrinter::on_eval(const EvalReport& r) {
    if (quiet_) return;
    std::string m;
    for (const auto& [k, v] : r.metrics) {  // as the results table prints them (rounded, not cut)
        char buf[64];
        std::snprintf(buf, sizeof buf, "  %s %.4f", k.c_str(), v);
        m += buf;
    }
    std::fprintf(stderr, "%seval @ step %d: loss %.4f%s\n", tty_ ? "\r\033[K" : "", r.step, r.loss, m.c_str());
}

void ProgressPrinter::finish() {
    if (!quiet_ && tty_) std::fprintf(stderr, "\n");
}

}  // namespace meft::cli
