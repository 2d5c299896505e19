// run_controller.h — runs experiments in a worker thread so the window never freezes. The
// controller lives in the GUI thread and is the window's only handle on a run: start, pause,
// resume, stop, and the run's progress as signals (forwarded from the worker, queued across
// threads). Stop ends the run after the current step (saved, marked cancelled); pause holds it
// between two steps.
#pragma once
#include <filesystem>
#include <memory>
#include <vector>

#include <QObject>
#include <QThread>
#include <nlohmann/json.hpp>

#include "ui/run/run_worker.h"

namespace meft::ui {

class RunController : public QObject {
    Q_OBJECT
public:
    explicit RunController(QObject* parent = nullptr);
    ~RunController() override;

    bool busy() const { return busy_; }
    bool paused() const { return flags_->paused.load(); }

public slots:
    void start(const nlohmann::json& experiment, const std::filesystem::path& file, const std::filesystem::path& db);
    // Stored runs of db: resumed from their checkpoints, or their configurations run again as new runs.
    void start_stored(const std::vector<std::int64_t>& runs, bool resume, const std::filesystem::path& db);
    void pause();
    void resume();
    void stop();

signals:
    void busy_changed(bool busy);
    // The worker's progress, in the GUI thread.
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
    std::shared_ptr<RunFlags> flags_ = std::make_shared<RunFlags>();
    QThread thread_;
    RunWorker* worker_ = nullptr;
    bool busy_ = false;
};

}  // namespace meft::ui
