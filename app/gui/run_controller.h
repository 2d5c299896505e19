// run_controller.h — runs experiments in a worker thread so the window never freezes.
// The controller lives in the GUI thread; the worker owns its own database connection and the
// engine objects. Stop and pause are atomics the worker reads between steps: stop ends the run
// after the current step (saved, marked cancelled); pause holds it between two steps.
// Progress reaches the GUI as queued signals, batched at most every 50 ms.
#pragma once
#include <atomic>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <QObject>
#include <QThread>
#include <nlohmann/json.hpp>

#include "store/database.h"

Q_DECLARE_METATYPE(std::vector<meft::StepRow>)
Q_DECLARE_METATYPE(std::vector<double>)
using MetricMap = std::map<std::string, double>;
Q_DECLARE_METATYPE(MetricMap)

namespace meft::gui {

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
    std::shared_ptr<RunFlags> flags_;
};

class RunController : public QObject {
    Q_OBJECT
public:
    explicit RunController(QObject* parent = nullptr);
    ~RunController() override;

    bool busy() const { return busy_; }
    bool paused() const { return flags_->paused.load(); }
    RunWorker* worker() const { return worker_; }

public slots:
    void start(const nlohmann::json& experiment, const std::filesystem::path& file, const std::filesystem::path& db);
    void pause();
    void resume();
    void stop();

signals:
    void busy_changed(bool busy);

private:
    std::shared_ptr<RunFlags> flags_ = std::make_shared<RunFlags>();
    QThread thread_;
    RunWorker* worker_ = nullptr;
    bool busy_ = false;
};

}  // namespace meft::gui
