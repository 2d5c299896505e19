// run_worker.h — the worker object that runs experiments inside the controller's thread. It owns
// its own database connection and the engine objects; progress leaves it only as queued signals
// (steps batched at most every 50 ms). Stop and pause are atomics it reads between steps.
// Only RunController creates and talks to it.
#pragma once
#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <QObject>

#include "run/runner.h"
#include "store/database.h"

Q_DECLARE_METATYPE(std::vector<meft::StepRow>)
Q_DECLARE_METATYPE(std::vector<double>)
using MetricMap = std::map<std::string, double>;
Q_DECLARE_METATYPE(MetricMap)

namespace meft::ui {

struct RunFlags {
    std::atomic<bool> stop{false};
    std::atomic<bool> paused{false};
};

class RunWorker : public QObject {
    Q_OBJECT
public:
    explicit RunWorker(std::shared_ptr<RunFlags> flags) : flags_(std::move(flags)) {}

public slots:
    // Runs every expansion of the experiment in order, recording into the database at db_path.
    void run(const QString& experiment_json, const QString& file, const QString& db_path);
    // Stored runs of that database, in order: with resume, each continues from its checkpoint (as
    // `meft resume`); else each one's recorded configuration runs again as a new run of its experiment.
    void run_stored(const QList<qint64>& runs, bool resume, const QString& db_path);

signals:
    void run_started(qint64 run, int total_steps, int first_step, int steps_per_epoch, double trainable_share,
                     const QString& label);
    void steps_ready(qint64 run, const std::vector<meft::StepRow>& rows);
    void eval_ready(qint64 run, int step, const MetricMap& metrics);
    void reconstruction_ready(qint64 run, int step, const std::vector<double>& per_layer);
    void run_finished(qint64 run, const QString& status);
    void notice(const QString& text);
    void failed(const QString& error);
    void all_done();

private:
    // One run with progress forwarded as signals; options carry the experiment row or the run resumed.
    void run_one(const Experiment& e, ExperimentDb& db, RunOptions options);

    std::shared_ptr<RunFlags> flags_;
};

}  // namespace meft::ui
