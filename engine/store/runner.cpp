#include "store/runner.h"

#include <algorithm>
#include <cstdio>
#include <new>
#include <thread>

#include "core/backend_select.h"
#include "core/error.h"
#include "core/host_memory.h"
#include "data/batching.h"
#include "store/run_recorder.h"
#include "store/preflight.h"
#include "store/run_setup.h"
#include "train/memory_plan.h"

#ifndef MEFT_GIT_COMMIT
#define MEFT_GIT_COMMIT "unknown"
#endif

namespace meft {

namespace {

nlohmann::json environment(const Backend& backend, const nlohmann::json& extra) {
    nlohmann::json env = {{"program", "meft 0.1.0"}, {"git_commit", MEFT_GIT_COMMIT}, {"backend", backend.name()},
                          {"device", backend.is_host() ? "cpu" : "cuda"},
                          {"threads", static_cast<int>(std::thread::hardware_concurrency())}};
    env.update(extra);
    return env;
}

nlohmann::json final_metrics(const TrainResult& r, const RunStart& s) {
    nlohmann::json j = r.final_eval.metrics;
    j["dev_loss"] = r.final_eval.loss;
    j["train_loss_first"] = r.first_loss;
    j["train_loss_last"] = r.final_loss;
    j["steps"] = r.steps;
    j["early_stopped"] = r.early_stopped;
    j["best_step"] = r.best_eval.step;
    for (const auto& [k, v] : r.best_eval.metrics) j["best_" + k] = v;
    j["starting_point_deviation"] = r.start_deviation;
    j["activation_peak_bytes"] = r.memory.activation_peak;
    j["resident_bytes"] = r.memory.resident();
    j["tokens_per_s"] = r.tokens_per_s;
    j["trainable_parameters"] = s.trainable_parameters;
    j["all_parameters"] = s.parameters;
    j["steps_per_epoch"] = s.steps_per_epoch;
    return j;
}

// Runs one phase of setting a run up, so that running out of memory there says what was being
// done, how many bytes were asked for and what is available (never a bare std::bad_alloc).
template <typename F> auto phase(const std::string& doing, F&& body) -> decltype(body()) {
    try {
        return body();
    } catch (const std::bad_alloc&) {
        throw OutOfMemoryError(out_of_memory_message(doing));
    }
}

// The message a failed run records: the error's own, or for an allocation failure what was
// being allocated and what is available.
std::string failure_message(const std::exception& ex, const std::string& doing) {
    if (dynamic_cast<const std::bad_alloc*>(&ex)) return out_of_memory_message(doing);
    return ex.what();
}

// The part of a run that happens once its row exists (execute_run marks it failed on any
// exception); `doing` says what it is doing, for an out-of-memory message.
void run_recorded(const Experiment& e, ExperimentDb& db, const RunOptions& o, RunOutcome& out,
                         const TaskData& data, TrainHooks& hooks, const TrainState& resume_state, RunStart& start,
                         std::string& doing) {
    Model& model = *out.model;
    db.set_status(start.run_id, "running");
    if (o.resume_run > 0) db.add_event(start.run_id, "resumed", "from step " + std::to_string(resume_state.step));
    if (o.resume_run > 0) db.remove_stale_checkpoint_files(o.resume_run);
    if (data.choice_lm || data.choice_pairs) {  // rows are choices: count questions
        const auto questions = [](const std::vector<Example>& ex) {
            std::size_t n = 0;
            for (std::size_t i = 0; i < ex.size(); ++i) n += i == 0 || ex[i].group != ex[i - 1].group;
            return n;
        };
        start.unit = "questions";
        start.train_examples = questions(data.train);
        start.dev_examples = questions(data.dev);
    } else {
        start.train_examples = data.train.size();
        start.dev_examples = data.dev.size();
    }
    const std::size_t units = unit_starts(data.train).size() - 1;  // a multiple-choice question is one
    start.total_steps = total_steps_for(e.train, units);
    start.first_step = resume_state.step;
    TrainConfig one_epoch = e.train;
    one_epoch.max_steps = 0;
    one_epoch.epochs = 1;
    start.steps_per_epoch = total_steps_for(one_epoch, units);
    start.trainable_parameters = model.params().count(true);
    start.parameters = model.params().count(false);
    start.backend = out.backend->name();
    if (o.on_start) o.on_start(start);

    RunRecorder recorder(db, start.run_id, o.observer);
    hooks.every = e.train.checkpoint_every;
    hooks.save = [&](const TrainState& s, const AdamW& opt) {
        // Steps up to the checkpoint are committed first: a resume from it never leaves a gap.
        recorder.flush();
        save_training_checkpoint(db.checkpoint_path(start.run_id), model, opt, s);
    };
    doing = "training";
    try {
        out.result = train(model, data, e.train, &recorder, &hooks);
        recorder.flush();
    } catch (...) {
        try {
            recorder.flush();  // the steps before the failure stay recorded
        } catch (...) {
            // the original error is the one to report
        }
        throw;
    }
    doing = "recording the run's results";
    const TrainResult& r = out.result;
    std::vector<LayerMemoryRow> layers;
    for (const LayerMemory& l : r.memory.layers)
        layers.push_back({"measured", l.layer, l.label, static_cast<std::int64_t>(l.held), static_cast<std::int64_t>(l.transient)});
    // The plan for a full-length batch (batch_size x max_seq_length; multiple choice: every
    // question with the task's most choices), for comparison.
    const MemoryPlanResult plan = plan_memory(model.config(), e.method, e.dtype, e.train.batch_size * rows_per_unit(e),
                                              e.train.max_seq_length);
    for (const LayerMemory& l : plan.report.layers)
        layers.push_back({"planned", l.layer, l.label, static_cast<std::int64_t>(l.held), static_cast<std::int64_t>(l.transient)});
    out.metrics = final_metrics(r, start);
    out.status = r.stopped ? "cancelled" : "finished";
    db.finish_with_memory(start.run_id, out.status, out.metrics,
                          r.stopped ? "stopped by the user after step " + std::to_string(start.first_step + r.steps) : "",
                          layers);
}

}  // namespace

RunOutcome execute_run(const Experiment& e, ExperimentDb& db, const RunOptions& o) {
    RunOutcome out;
    out.backend = make_backend(e.backend, backend_options(e));
    // What is already known to fail is refused before anything is recorded.
    const Preflight pf = phase("planning the run's memory", [&] { return preflight(e, *out.backend); });
    if (!pf.ok()) throw Error(e.file.string() + ": " + pf.message());
    out.model = phase("loading the model", [&] { return build_model(e, *out.backend, task_num_labels(e), o.notice); });
    Model& model = *out.model;
    const TaskData data = phase("reading and tokenizing the task data", [&] { return build_task(e, model.config(), o.notice); });

    TrainHooks hooks;
    TrainState resume_state;
    if (o.resume_run > 0) {
        resume_state = phase("loading the checkpoint", [&] {
            return load_training_checkpoint(db.checkpoint_path(o.resume_run), model, &hooks.adam_steps);
        });
        hooks.resume = &resume_state;
    }
    RunStart start;
    start.run_id = o.resume_run > 0 ? o.resume_run
                                    : db.add_run(o.experiment_id ? o.experiment_id() : 0, resolved_config(e),
                                                 environment(*out.backend, o.environment_extra));
    out.run_id = start.run_id;
    // From here on the run row exists: whatever fails marks it failed with a message, then rethrows.
    std::string doing = "starting the run";
    try {
        run_recorded(e, db, o, out, data, hooks, resume_state, start, doing);
        return out;
    } catch (const std::exception& ex) {
        const std::string message = failure_message(ex, doing);
        try {
            db.add_event(start.run_id, "error", message);
            db.finish(start.run_id, "failed", nlohmann::json::object(), message);
        } catch (...) {
            // the original error is the one to report
        }
        if (dynamic_cast<const std::bad_alloc*>(&ex)) throw OutOfMemoryError(message);
        throw;
    }
}

}  // namespace meft
