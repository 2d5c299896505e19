#include "cli/run_recorder.h"

#include <atomic>
#include <csignal>

namespace meft::cli {

namespace {
std::atomic<bool> g_stop{false};
extern "C" void on_signal(int) { g_stop.store(true); }
}  // namespace

void RunRecorder::install_interrupt_handler() {
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
}

bool RunRecorder::interrupted() { return g_stop.load(); }

RunRecorder::RunRecorder(ExperimentDb& db, std::int64_t run, TrainObserver* also) : db_(db), run_(run), also_(also) {}

RunRecorder::~RunRecorder() {
    try {
        flush();
    } catch (...) {
        // destructors must not throw; the caller records the failure
    }
}

void RunRecorder::on_step(const StepReport& r) {
    StepRow row;
    row.step = r.step;
    row.loss = r.loss;
    row.learning_rate = r.learning_rate;
    row.grad_norm = r.grad_norm;
    row.elapsed_s = r.elapsed_s;
    row.tokens_per_s = r.elapsed_s > 0 ? double(r.tokens) / r.elapsed_s : 0.0;
    pending_.push_back(row);
    if (!r.reconstruction_error.empty()) db_.add_reconstruction(run_, r.step, r.reconstruction_error);
    // Batched: one transaction per second or per 50 steps, and always at the end.
    if (pending_.size() >= 50 || std::chrono::steady_clock::now() - last_flush_ > std::chrono::seconds(1)) flush();
    if (also_) also_->on_step(r);
}

void RunRecorder::on_eval(const EvalReport& r) {
    flush();
    db_.add_eval(run_, r.step, r.metrics, r.loss);
    if (also_) also_->on_eval(r);
}

bool RunRecorder::should_stop() { return interrupted() || (also_ && also_->should_stop()); }

void RunRecorder::flush() {
    db_.add_steps(run_, pending_);
    pending_.clear();
    last_flush_ = std::chrono::steady_clock::now();
}

}  // namespace meft::cli
