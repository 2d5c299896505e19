// progress.h — the command line's view of a training run: a progress bar on stderr (redrawn in
// place on a terminal, one line per ~5% otherwise) and eval lines.
#pragma once
#include <chrono>

#include "train/trainer.h"

namespace meft::cli {

class ProgressPrinter : public TrainObserver {
public:
    explicit ProgressPrinter(bool quiet);
    void on_step(const StepReport& r) override;
    void on_eval(const EvalReport& r) override;
    void finish();
    void on_reconstruction(const StepReport& r);

private:
    bool quiet_, tty_;
    int last_printed_ = 0;
    double smoothed_loss_ = -1;
    std::chrono::steady_clock::time_point last_draw_{};
};

std::string format_duration(double seconds);

}  // namespace meft::cli
