#include "ui/run/run_worker.h"

#include <chrono>
#include <thread>

#include "core/error.h"
#include "core/host_memory.h"
#include "ui/runs/run_data.h"
#include "run/run_recorder.h"
#include "run/runner.h"

namespace meft::ui {

namespace {

// The engine's observer inside the worker: forwards progress as signals (steps batched every
// 50 ms so a fast toy run does not flood the event loop), and holds the run while paused.
class SignalObserver : public TrainObserver {
public:
    SignalObserver(RunWorker* w, RunFlags& flags) : w_(w), flags_(flags) {}
    void set_run(std::int64_t run) { run_ = run; }
    void on_step(const StepReport& r) override {
        pending_.push_back(step_row(r));
        if (!r.reconstruction_error.empty()) emit w_->reconstruction_ready(run_, r.step, r.reconstruction_error);
        if (std::chrono::steady_clock::now() - last_ > std::chrono::milliseconds(50)) flush();
    }
    void on_eval(const EvalReport& r) override {
        flush();
        MetricMap m = r.metrics;
        m["loss"] = r.loss;
        emit w_->eval_ready(run_, r.step, m);
    }
    bool should_stop() override {
        while (flags_.paused.load() && !flags_.stop.load()) {
            flush();
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        return flags_.stop.load();
    }
    void flush() {
        if (!pending_.empty()) emit w_->steps_ready(run_, pending_);
        pending_.clear();
        last_ = std::chrono::steady_clock::now();
    }

private:
    RunWorker* w_;
    RunFlags& flags_;
    std::int64_t run_ = 0;
    std::vector<StepRow> pending_;
    std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

}  // namespace

void RunWorker::run_one(const Experiment& e, ExperimentDb& db, RunOptions o) {
    SignalObserver observer(this, *flags_);
    o.observer = &observer;
    o.notice = [this](const std::string& n) { emit notice(QString::fromStdString(n)); };
    o.environment_extra = {{"frontend", "meft-workbench"}};
    o.on_start = [&](const RunStart& s) {
        observer.set_run(s.run_id);
        emit run_started(s.run_id, s.total_steps, s.first_step, s.steps_per_epoch,
                         double(s.trainable_parameters) / double(std::max<std::int64_t>(s.parameters, 1)),
                         RunData::label_for(s.run_id, resolved_config(e)) +
                             (e.sweep_label.empty() ? QString() : " [" + QString::fromStdString(e.sweep_label) + "]"));
        emit notice(QString("run %1 %2: %3 train / %4 dev %5, %6 steps, backend %7")
                        .arg(s.run_id)
                        .arg(s.first_step > 0 ? QString("resumed at step %1").arg(s.first_step) : QString("started"))
                        .arg(s.train_examples).arg(s.dev_examples)
                        .arg(QString::fromStdString(s.unit)).arg(s.total_steps)
                        .arg(QString::fromStdString(s.backend)));
    };
    RunOutcome out;
    try {
        out = execute_run(e, db, o);
    } catch (...) {
        observer.flush();
        throw;
    }
    observer.flush();
    emit run_finished(out.run_id, QString::fromStdString(out.status));
}

void RunWorker::run(const QString& experiment_json, const QString& file, const QString& db_path) {
    try {
        const nlohmann::json j = nlohmann::json::parse(experiment_json.toStdString());
        const std::vector<Experiment> exps = experiments_from_json(j, file.toStdString());
        ExperimentDb db(db_path.toStdString());
        std::string tags;
        for (const std::string& t : exps.front().tags) tags += (tags.empty() ? "" : ",") + t;
        // Created with the first run, in one transaction.
        NewExperiment experiment{exps.front().name, file.toStdString(), j, tags, exps.front().notes};
        for (const Experiment& e : exps) {
            if (flags_->stop.load()) break;
            RunOptions o;
            o.experiment = &experiment;
            run_one(e, db, o);
        }
    } catch (const std::bad_alloc&) {
        emit failed(QString::fromStdString(out_of_memory_message("running the experiment")));
    } catch (const std::exception& ex) {
        emit failed(QString::fromStdString(ex.what()));
    }
    emit all_done();
}

void RunWorker::run_stored(const QList<qint64>& runs, bool resume, const QString& db_path) {
    try {
        ExperimentDb db(db_path.toStdString());
        for (const qint64 id : runs) {
            if (flags_->stop.load()) break;
            const auto info = db.run(id);
            if (!info) throw Error("run " + std::to_string(id) + " is no longer in " + db.path());
            if (resume && info->status != "cancelled" && info->status != "interrupted" && info->status != "failed")
                throw Error("run " + std::to_string(id) + " is " + info->status +
                            "; only cancelled, interrupted or failed runs resume");
            const Experiment e = parse_experiment(info->config, "run " + std::to_string(id) + " config");
            RunOptions o;
            NewExperiment same{info->experiment};
            same.id = info->experiment_id;  // a rerun belongs to the run's experiment
            if (resume) o.resume_run = id;
            else o.experiment = &same;
            run_one(e, db, o);
        }
    } catch (const std::bad_alloc&) {
        emit failed(QString::fromStdString(out_of_memory_message(resume ? "resuming the run" : "running the runs again")));
    } catch (const std::exception& ex) {
        emit failed(QString::fromStdString(ex.what()));
    }
    emit all_done();
}

}  // namespace meft::ui
