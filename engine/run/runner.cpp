#include "run/runner.h"

#include <algorithm>
#include <optional>
#include <cstdio>
#include <new>
#include <thread>

#include "core/backend_select.h"
#include "core/build_info.h"
#include "core/error.h"
#include "core/host_memory.h"
#include "core/thread_pool.h"
#include "data/batching.h"
#include "run/run_recorder.h"
#include "run/preflight.h"
#include "run/run_outputs.h"
#include "run/run_setup.h"
#include "train/memory_plan.h"

namespace meft {

namespace {

nlohmann::json environment(const Backend& backend, const nlohmann::json& extra) {
    nlohmann::json env = {{"program", std::string("meft ") + version()}, {"git_commit", git_commit()}, {"backend", backend.name()},
                          {"device", backend.is_host() ? "cpu" : "cuda"},
                          {"threads", default_thread_pool().size()}};
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
    // The largest activation peak over the run's training steps, where, and on what micro-batch.
    j["activation_peak_bytes"] = r.activation_peak.bytes;
    j["activation_peak_step"] = r.activation_peak.step;
    j["activation_peak_batch"] = std::to_string(r.activation_peak.rows) + " x " + std::to_string(r.activation_peak.seq);
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
    const CheckpointIdentity identity{db.run_uuid(start.run_id), config_hash(db.run(start.run_id)->config)};
    const std::filesystem::path checkpoint_file = db.checkpoint_path(start.run_id);
    hooks.save = [&](const TrainState& s, const AdamW& opt) {
        // Steps up to the checkpoint are committed first: a resume from it never leaves a gap.
        recorder.flush();
        save_training_checkpoint(checkpoint_file, model, opt, s, identity);
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
    const int plan_rows = e.train.batch_size * rows_per_unit(e), plan_seq = e.train.max_seq_length;
    const MemoryPlanResult plan = plan_memory(model.config(), e.method, e.dtype, plan_rows, plan_seq);
    for (const LayerMemory& l : plan.report.layers)
        layers.push_back({"planned", l.layer, l.label, static_cast<std::int64_t>(l.held), static_cast<std::int64_t>(l.transient)});
    // The parts that add up to each peak, and the step and batch shape each is of.
    // A call that took no step (resumed after the last one) measured nothing.
    std::vector<StepMemoryRow> parts;
    if (r.memory_at.step > 0)
        parts = step_memory_rows("measured", StepMemory::from_report(r.memory, r.memory_at.step, r.memory_at.rows, r.memory_at.seq));
    for (StepMemoryRow& p : step_memory_rows("planned", StepMemory::from_report(plan.report, 0, plan_rows, plan_seq)))
        parts.push_back(std::move(p));
    out.metrics = final_metrics(r, start);
    out.status = r.stopped ? "cancelled" : "finished";
    doing = "writing the run's outputs to " + e.output_dir.string();
    write_run_outputs(e, model, r, identity.run_uuid, o.notice);  // results.json and the model, before the run reads finished
    db.finish_with_memory(start.run_id, out.status, out.metrics,
                          r.stopped ? "stopped by the user after step " + std::to_string(r.steps) : "",
                          layers, parts);
}

}  // namespace

// An older database's run-N file is not trusted: another database in the folder may have written it.
std::filesystem::path run_checkpoint(ExperimentDb& db, std::int64_t run) {
    const std::optional<RunInfo> info = db.run(run);
    if (!info) throw Error("no run " + std::to_string(run) + " in " + db.path());
    const std::string which = "run " + std::to_string(run) + " (" + info->uuid + ") of " + db.path();
    const std::filesystem::path file = db.checkpoint_path(run);
    if (!std::filesystem::exists(file)) {
        const std::filesystem::path legacy = db.legacy_checkpoint_path(run);
        throw Error(which + " has no checkpoint (" + file.string() + ")" +
                    (std::filesystem::exists(legacy)
                         ? "; " + legacy.string() + " was written before checkpoints carried their run's identity and may "
                           "belong to another database in this folder, so it is not used"
                         : ""));
    }
    const CheckpointIdentity id = read_checkpoint_identity(file);
    if (id.run_uuid != info->uuid)
        throw Error(file.string() + " belongs to run " + (id.run_uuid.empty() ? std::string("(no identity)") : id.run_uuid) +
                    ", not to " + which);
    if (id.config_hash != config_hash(info->config))
        throw Error(file.string() + " was written for another configuration than the one " + which + " recorded");
    const int step = read_checkpoint_step(file);
    const std::vector<StepRow> steps = db.steps(run);
    const int recorded = steps.empty() ? 0 : steps.back().step;
    if (step > recorded)
        throw Error(file.string() + " is at step " + std::to_string(step) + " but " + which + " recorded " +
                    std::to_string(recorded) + " steps; the checkpoint and the database disagree");
    return file;
}

namespace {
// What a resumed run's results need from its record: the losses up to the checkpoint and its
// best evaluation so far.
void earlier_record(ExperimentDb& db, std::int64_t run, const TrainState& state, TrainHooks& hooks) {
    for (const StepRow& r : db.steps(run))
        if (r.step <= state.step) hooks.earlier_losses.push_back(r.loss);
    for (const auto& [step, metrics] : db.evals(run)) {
        if (step != state.best_step) continue;
        hooks.earlier_best.step = step;
        for (const auto& [k, v] : metrics) {
            if (k == "loss") hooks.earlier_best.loss = v;
            else hooks.earlier_best.metrics[k] = v;
        }
    }
}

}  // namespace

RestoredRun restore_run(ExperimentDb& db, std::int64_t run, Backend& backend) {
    const std::filesystem::path file = run_checkpoint(db, run);
    const RunInfo info = *db.run(run);
    RestoredRun r;
    r.experiment = parse_experiment(info.config, "run " + std::to_string(run) + " config (" + db.path() + ")");
    r.uuid = info.uuid;
    r.model = build_model(r.experiment, backend, task_num_labels(r.experiment), [](const std::string&) {});
    r.step = load_training_checkpoint(file, *r.model, nullptr).step;
    return r;
}

RunOutcome execute_run(const Experiment& e, ExperimentDb& db, const RunOptions& o) {
    RunOutcome out;
    const std::filesystem::path resume_from = o.resume_run > 0 ? run_checkpoint(db, o.resume_run) : std::filesystem::path();
    out.backend = make_backend(e.backend, backend_options(e));
    // What is already known to fail is refused before anything is recorded.
    const Preflight pf = phase("planning the run's memory", [&] {
        try {
            return preflight(e, *out.backend);
        } catch (const Error& ex) {  // e.g. a method the model's layers cannot take: say which experiment
            const std::string what = ex.what(), file = e.file.string();
            if (file.empty() || what.rfind(file, 0) == 0) throw;
            throw Error(file + ": " + what);
        }
    });
    if (!pf.ok()) throw Error(e.file.string() + ": " + pf.message());
    out.model = phase("loading the model", [&] { return build_model(e, *out.backend, task_num_labels(e), o.notice); });
    Model& model = *out.model;
    const TaskData data = phase("reading and tokenizing the task data", [&] { return build_task(e, model.config(), o.notice); });

    TrainHooks hooks;
    TrainState resume_state;
    if (o.resume_run > 0) {
        resume_state = phase("loading the checkpoint", [&] { return load_training_checkpoint(resume_from, model, &hooks.adam_steps); });
        hooks.resume = &resume_state;
        earlier_record(db, o.resume_run, resume_state, hooks);
    }
    RunStart start;
    NewExperiment none;  // a run without an experiment file (tests): an experiment row of its own
    if (o.resume_run == 0 && !o.experiment) none.name = e.name;
    start.run_id = o.resume_run > 0 ? o.resume_run
                                    : db.add_run(o.experiment ? *o.experiment : none, resolved_config(e),
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
