// run_recorder.h — records a training run into the experiment database as it goes: step rows in
// batched transactions (one per 50 steps or per second, and before every evaluation), evaluations
// and reconstruction checks. Progress views (CLI printer, workbench) chain behind it as `also`;
// its should_stop() is theirs.
#pragma once
#include <chrono>
#include <vector>

#include "store/database.h"
#include "train/trainer.h"

namespace meft {

// The database row of a step report (throughput = padded tokens so far / elapsed time).
StepRow step_row(const StepReport& r);

class RunRecorder : public TrainObserver {
public:
    RunRecorder(ExperimentDb& db, std::int64_t run, TrainObserver* also);
    ~RunRecorder() override;
    void on_step(const StepReport& r) override;
    void on_eval(const EvalReport& r) override;
    bool should_stop() override;
    void flush();

private:
    ExperimentDb& db_;
    std::int64_t run_;
    TrainObserver* also_;
    std::vector<StepRow> pending_;
    std::chrono::steady_clock::time_point last_flush_ = std::chrono::steady_clock::now();
};

}  // namespace meft
