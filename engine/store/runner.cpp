#include "store/runner.h"

#include <algorithm>
#include <cstdio>
#include <thread>

#include "core/backend_select.h"
#include "core/error.h"
#include "data/batching.h"
#include "store/run_recorder.h"
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

std::string size_text(std::size_t bytes) {
    char buf[32];
    const double mib = double(bytes) / (1024.0 * 1024.0);
    if (mib >= 1024.0) std::snprintf(buf, sizeof buf, "%.1f GiB", mib / 1024.0);
    else std::snprintf(buf, sizeof buf, "%.1f MiB", mib);
    return buf;
}

// Whether a step fits the device: the planner's bytes for the largest micro-batch at the longest
// sequence the task can produce, against the device's free memory before the model takes any.
// "" when it fits; else the message the failed run records. (Arena chunk rounding, the CUDA
// context and evaluation batches are not planned: a run that passes can still run out.)
std::string device_memory_shortfall(const Experiment& e, std::size_t free_bytes, std::size_t total_bytes) {
    const TrainConfig& c = e.train;
    const int B = (c.batch_size + c.gradient_accumulation - 1) / c.gradient_accumulation * rows_per_unit(e);
    const int T = e.task.is_toy() ? std::min(c.max_seq_length, e.task.toy.max_length) : c.max_seq_length;
    const MemoryPlanResult plan = plan_memory(experiment_model_config(e), e.method, e.dtype, B, T);
    const MemoryReport& m = plan.report;
    if (m.peak() <= free_bytes) return "";
    return "CUDA out of memory: the run plans " + size_text(m.peak()) + " (weights " +
           size_text(m.frozen_weights + m.trainable_weights) + ", gradients " + size_text(m.gradients) +
           ", optimizer state " + size_text(m.optimizer_state) + ", activations " + size_text(m.activation_peak) +
           " for a micro-batch of " + std::to_string(B) + " x " + std::to_string(T) + " tokens) but the device has " +
           size_text(free_bytes) + " free of " + size_text(total_bytes) +
           "; lower training.batch_size or training.max_seq_length, raise training.gradient_accumulation_steps, "
           "or pick a method that keeps fewer activations (meft plan --all-methods compares them)";
}

}  // namespace

RunOutcome execute_run(const Experiment& e, ExperimentDb& db, const RunOptions& o) {
    RunOutcome out;
    out.backend = make_backend(e.backend, backend_options(e));
    std::size_t free_bytes = 0, total_bytes = 0;
    if (out.backend->device_memory(&free_bytes, &total_bytes)) {
        // Checked before the model takes its share; a run that cannot fit is recorded as failed.
        const std::string shortfall = device_memory_shortfall(e, free_bytes, total_bytes);
        if (!shortfall.empty()) {
            const std::int64_t run = o.resume_run > 0 ? o.resume_run
                                                      : db.add_run(o.experiment_id ? o.experiment_id() : 0, resolved_config(e),
                                                                   environment(*out.backend, o.environment_extra));
            db.add_event(run, "error", shortfall);
            db.finish(run, "failed", nlohmann::json::object(), shortfall);
            throw Error(shortfall);
        }
    }
    out.model = build_model(e, *out.backend, task_num_labels(e), o.notice);
    Model& model = *out.model;
    const TaskData data = build_task(e, model.config(), o.notice);

    TrainHooks hooks;
    TrainState resume_state;
    if (o.resume_run > 0) {
        resume_state = load_training_checkpoint(db.checkpoint_path(o.resume_run), model, &hooks.adam_steps);
        hooks.resume = &resume_state;
    }
    RunStart start;
    start.run_id = o.resume_run > 0 ? o.resume_run
                                    : db.add_run(o.experiment_id ? o.experiment_id() : 0, resolved_config(e),
                                                 environment(*out.backend, o.environment_extra));
    out.run_id = start.run_id;
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
    try {
        out.result = train(model, data, e.train, &recorder, &hooks);
        recorder.flush();
    } catch (const std::exception& ex) {
        try {
            recorder.flush();
        } catch (...) {
            // the original error is the one to report
        }
        db.add_event(start.run_id, "error", ex.what());
        db.finish(start.run_id, "failed", nlohmann::json::object(), ex.what());
        throw;
    }
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
    return out;
}

}  // namespace meft
