#include "run/run_recorder.h"

#include <cstdio>
#include <cstdlib>

namespace meft {

namespace {

// Test hook: with MEFT_TRACE_COMMITS set (non-empty), every transaction of this recorder that has
// committed is reported on stderr, flushed at once, as
//   meft-trace: committed run R steps <= N      (add_steps: the batch ending at step N)
//   meft-trace: committed run R eval at step N  (add_eval)
// so that tests/test_kill_soak can assert that every step reported committed before a kill -9 is
// in the database afterwards, and tests/test_live_reader that readers only see whole batches.
bool trace_commits() {
    static const bool on = [] {
        const char* v = std::getenv("MEFT_TRACE_COMMITS");
        return v && *v;
    }();
    return on;
}
}  // namespace

RunRecorder::RunRecorder(ExperimentDb& db, std::int64_t run, TrainObserver* also) : db_(db), run_(run), also_(also) {}

RunRecorder::~RunRecorder() {
    try {
        flush();
    } catch (...) {
        // destructors must not throw; the caller records the failure
    }
}

StepRow step_row(const StepReport& r) {
    return StepRow{r.step, r.loss, r.learning_rate, r.grad_norm, r.elapsed_s > 0 ? double(r.tokens) / r.elapsed_s : 0.0,
                   r.elapsed_s, r.activation_bytes, r.resident_bytes, r.activation_rows, r.activation_seq};
}

void RunRecorder::on_step(const StepReport& r) {
    pending_.push_back(step_row(r));
    if (!r.reconstruction_error.empty()) db_.add_reconstruction(run_, r.step, r.reconstruction_error);
    // Batched: one transaction per second or per 50 steps, and always at the end.
    if (pending_.size() >= 50 || std::chrono::steady_clock::now() - last_flush_ > std::chrono::seconds(1)) flush();
    if (also_) also_->on_step(r);
}

void RunRecorder::on_eval(const EvalReport& r) {
    flush();
    db_.add_eval(run_, r.step, r.metrics, r.loss);
    if (trace_commits()) {
        std::fprintf(stderr, "meft-trace: committed run %lld eval at step %d\n", static_cast<long long>(run_), r.step);
        std::fflush(stderr);
    }
    if (also_) also_->on_eval(r);
}

bool RunRecorder::should_stop() { return also_ && also_->should_stop(); }

void RunRecorder::flush() {
    db_.add_steps(run_, pending_);
    if (trace_commits() && !pending_.empty()) {
        std::fprintf(stderr, "meft-trace: committed run %lld steps <= %d\n", static_cast<long long>(run_),
                     pending_.back().step);
        std::fflush(stderr);
    }
    pending_.clear();
    last_flush_ = std::chrono::steady_clock::now();
}

}  // namespace meft
