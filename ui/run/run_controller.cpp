#include "ui/run/run_controller.h"

namespace meft::ui {

RunController::RunController(QObject* parent) : QObject(parent) {
    qRegisterMetaType<std::vector<meft::StepRow>>();
    qRegisterMetaType<std::vector<double>>();
    qRegisterMetaType<MetricMap>();
    qRegisterMetaType<QList<qint64>>();
    worker_ = new RunWorker(flags_);
    worker_->moveToThread(&thread_);
    connect(&thread_, &QThread::finished, worker_, &QObject::deleteLater);
    // Every worker signal is re-emitted by the controller (queued: they cross threads).
    connect(worker_, &RunWorker::run_started, this, &RunController::run_started);
    connect(worker_, &RunWorker::steps_ready, this, &RunController::steps_ready);
    connect(worker_, &RunWorker::eval_ready, this, &RunController::eval_ready);
    connect(worker_, &RunWorker::reconstruction_ready, this, &RunController::reconstruction_ready);
    connect(worker_, &RunWorker::run_finished, this, &RunController::run_finished);
    connect(worker_, &RunWorker::notice, this, &RunController::notice);
    connect(worker_, &RunWorker::failed, this, &RunController::failed);
    connect(worker_, &RunWorker::all_done, this, [this] {
        busy_ = false;
        emit busy_changed(false);
        emit all_done();
    });
    thread_.start();
}

RunController::~RunController() {
    flags_->stop.store(true);
    flags_->paused.store(false);
    thread_.quit();
    thread_.wait();
}

void RunController::start(const nlohmann::json& experiment, const std::filesystem::path& file,
                          const std::filesystem::path& db) {
    if (busy_) return;
    flags_->stop.store(false);
    flags_->paused.store(false);
    busy_ = true;
    emit busy_changed(true);
    QMetaObject::invokeMethod(worker_, "run", Qt::QueuedConnection, Q_ARG(QString, QString::fromStdString(experiment.dump())),
                              Q_ARG(QString, QString::fromStdString(file.string())),
                              Q_ARG(QString, QString::fromStdString(db.string())));
}

void RunController::start_stored(const std::vector<std::int64_t>& runs, bool resume, const std::filesystem::path& db) {
    if (busy_ || runs.empty()) return;
    flags_->stop.store(false);
    flags_->paused.store(false);
    busy_ = true;
    emit busy_changed(true);
    const QList<qint64> ids(runs.begin(), runs.end());
    QMetaObject::invokeMethod(worker_, "run_stored", Qt::QueuedConnection, Q_ARG(QList<qint64>, ids), Q_ARG(bool, resume),
                              Q_ARG(QString, QString::fromStdString(db.string())));
}

void RunController::pause() { flags_->paused.store(true); }
void RunController::resume() { flags_->paused.store(false); }
void RunController::stop() {
    flags_->stop.store(true);
    flags_->paused.store(false);
}

}  // namespace meft::ui
