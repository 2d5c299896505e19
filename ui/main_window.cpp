#include "ui/main_window.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>

#include <QAction>
#include <QApplication>
#include <QClipboard>
#include <QCloseEvent>
#include <QDockWidget>
#include <QFileDialog>
#include <QFileInfo>
#include <QGuiApplication>
#include <QHBoxLayout>
#include <QLabel>
#include <QLayout>
#include <QMenuBar>
#include <QMessageBox>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QScreen>
#include <QScrollArea>
#include <QStandardPaths>
#include <QSplitter>
#include <QStatusBar>
#include <QTabWidget>
#include <QTime>
#include <QVBoxLayout>

#include "core/build_info.h"
#include "core/error.h"
#include "core/file_io.h"
#include "store/run_command.h"
#include "ui/app_resources.h"
#include "ui/scrolling.h"
#include "ui/runs/compare_view.h"
#include "ui/runs/paper_table_view.h"
#include "ui/runs/timeline_view.h"
#include "ui/runs/sweeps_view.h"
#include "ui/forms/slurm_dialog.h"
#include "ui/runs/run_overview.h"
#include "ui/forms/experiment_form.h"
#include "ui/forms/plan_panel.h"
#include "ui/run/run_controller.h"
#include "ui/plots/run_plots.h"
#include "ui/runs/runs_browser.h"
#include "store/experiment.h"
#include "store/model_discovery.h"

namespace meft::ui {

namespace {
QString eta_text(double seconds) {
    if (seconds < 0 || !std::isfinite(seconds)) return "—";
    const int s = static_cast<int>(seconds + 0.5);
    return s >= 3600 ? QString("%1 h %2 min").arg(s / 3600).arg((s % 3600) / 60)
           : s >= 60 ? QString("%1 min %2 s").arg(s / 60).arg(s % 60)
                     : QString("%1 s").arg(s);
}

std::vector<std::filesystem::path> model_search_paths() {
    std::vector<std::filesystem::path> paths;
    if (const char* env = std::getenv("MEFT_MODEL_PATH"))  // colon-separated, like PATH
        for (const QString& p : QString(env).split(':', Qt::SkipEmptyParts)) paths.push_back(p.toStdString());
    if (const char* home = std::getenv("HOME")) paths.push_back(std::filesystem::path(home) / "models");
    paths.push_back(std::filesystem::current_path() / "models");
    return paths;
}
}  // namespace

MainWindow::MainWindow(const std::filesystem::path& db_file, QWidget* parent, bool read_only)
    : QMainWindow(parent), db_file_(db_file) {
    setWindowTitle(tr("MEFT Workbench"));
    setWindowIcon(application_icon());
    db_ = std::make_unique<ExperimentDb>(db_file_, read_only ? DbAccess::ReadOnly : DbAccess::Reading);  // read-only: browse, compare
    controller_ = new RunController(this);
    qApp->installEventFilter(new WheelGuard(this));  // scrolling the form never changes a field

    // Experiment tab: form | run + live plots | plan
    form_ = new ExperimentForm;
    form_->set_models(discover_models(model_search_paths()));
    QScrollArea* form_scroll = scrolling(form_);
    form_scroll->setMinimumWidth(300);
    plan_ = new PlanPanel;
    plan_->setMinimumWidth(230);

    run_ = new QPushButton(tr("▶ Run"));
    run_->setToolTip(tr("Train and evaluate the experiment; every run is recorded in the database"));
    pause_ = new QPushButton(tr("Pause"));
    pause_->setCheckable(true);
    stop_ = new QPushButton(tr("■ Stop"));
    stop_->setToolTip(tr("Stop after the current step; the run is saved and marked cancelled"));
    slurm_ = new QPushButton(tr("Submit to Slurm…"));
    slurm_->setToolTip(tr("Run every expansion of this experiment as a task of a Slurm job array; the script is shown "
                          "before anything is submitted, and the Sweeps tab follows it"));
    progress_ = new QProgressBar;
    progress_->setFormat(tr("idle"));
    progress_->setValue(0);
    status_ = new QLabel;
    blocked_ = new QLabel;  // why Run is disabled (the plan panel's preflight), shown under the buttons
    blocked_->setWordWrap(true);
    blocked_->setStyleSheet("color: #b00020;");
    blocked_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    blocked_->hide();
    auto* controls = new QHBoxLayout;
    for (QWidget* w : std::initializer_list<QWidget*>{run_, pause_, stop_}) controls->addWidget(w);
    controls->addWidget(progress_, 1);
    controls->addWidget(slurm_);
    live_plots_ = new RunPlots;
    auto* center = new QWidget;
    auto* cv = new QVBoxLayout(center);
    cv->addLayout(controls);
    cv->addWidget(blocked_);
    cv->addWidget(status_);
    cv->addWidget(scrolling(live_plots_), 1);
    // Three resizable panes; each scrolls when the window is smaller than its content.
    auto* exp_split = new QSplitter(Qt::Horizontal);
    exp_split->setObjectName("experiment_split");
    exp_split->setChildrenCollapsible(false);
    exp_split->addWidget(form_scroll);
    exp_split->addWidget(center);
    exp_split->addWidget(scrolling(plan_));
    exp_split->setStretchFactor(1, 1);
    exp_split->setSizes({360, 800, 280});

    // Runs tab: browser | the opened run's plots
    browser_ = new RunsBrowser(db_.get());
    stored_plots_ = new RunPlots;
    overview_ = new RunOverview;
    auto* run_split = new QSplitter(Qt::Horizontal);  // the opened run: overview | plots
    run_split->setObjectName("run_split");
    run_split->setChildrenCollapsible(false);
    run_split->addWidget(overview_);
    run_split->addWidget(scrolling(stored_plots_));
    run_split->setStretchFactor(1, 1);
    run_split->setSizes({320, 900});
    auto* runs_split = new QSplitter(Qt::Vertical);
    runs_split->setObjectName("runs_split");
    runs_split->setChildrenCollapsible(false);
    runs_split->addWidget(browser_);
    runs_split->addWidget(run_split);
    runs_split->setSizes({400, 600});

    compare_ = new CompareView;
    paper_ = new PaperTableView;
    timeline_ = new TimelineView;
    sweeps_ = new SweepsView(db_.get());
    sweeps_->set_meft_program(meft_program());

    tabs_ = new QTabWidget;
    tabs_->addTab(exp_split, tr("Experiment"));
    tabs_->addTab(runs_split, tr("Runs"));
    tabs_->addTab(compare_, tr("Compare"));
    tabs_->addTab(paper_, tr("Table"));
    tabs_->addTab(timeline_, tr("Timeline"));
    tabs_->addTab(sweeps_, tr("Sweeps"));
    setCentralWidget(tabs_);

    log_ = new QPlainTextEdit;
    log_->setReadOnly(true);
    log_->setMaximumBlockCount(5000);
    log_dock_ = new QDockWidget(tr("Log"));
    log_dock_->setObjectName("log");
    log_dock_->setWidget(log_);
    addDockWidget(Qt::BottomDockWidgetArea, log_dock_);
    resizeDocks({log_dock_}, {110}, Qt::Vertical);  // a few lines; drag it taller, or hide it (View ▸ Log)
    statusBar()->showMessage(tr("database: %1%2").arg(QString::fromStdString(db_file_.string()),
                                                      db_->read_only() ? tr(" (read-only)") : QString()));
    build_menus();

    // Wiring
    connect(form_, &ExperimentForm::changed, this, [this] { plan_->set_experiment(form_->to_json(), form_->file()); });
    connect(plan_, &PlanPanel::planned, this, [this] { update_buttons(controller_->busy()); });
    plan_->set_experiment(form_->to_json(), form_->file(), true);
    connect(run_, &QPushButton::clicked, this, &MainWindow::start_run);
    connect(slurm_, &QPushButton::clicked, this, &MainWindow::submit_to_slurm);
    connect(sweeps_, &SweepsView::message, this, [this](const QString& m, bool error) { log(m, error); });
    connect(sweeps_, &SweepsView::gathered, this, [this] { browser_->refresh(); });
    connect(pause_, &QPushButton::toggled, this, [this](bool on) {
        if (on) controller_->pause();
        else controller_->resume();
        pause_->setText(on ? tr("Resume") : tr("Pause"));
        log(on ? tr("paused between two steps") : tr("resumed"));
    });
    connect(stop_, &QPushButton::clicked, this, [this] {
        controller_->stop();
        log(tr("stopping after the current step…"));
    });
    connect(controller_, &RunController::busy_changed, this, &MainWindow::update_buttons);
    connect(controller_, &RunController::run_started, this,
            [this](qint64 run, int total, int first, int steps_per_epoch, double share, const QString& label) {
                current_run_ = run;
                total_steps_ = total;
                first_step_ = last_step_ = first;
                clock_.start();
                live_plots_->clear();
                if (first > 0) {  // resumed: the steps recorded before, then the new ones as they come
                    try {
                        RunData earlier = RunData::load(*db_, run);
                        earlier.keep_until(first);
                        live_plots_->show_run(earlier);
                    } catch (const std::exception& ex) {
                        log(ex.what(), true);
                    }
                }
                live_plots_->set_steps_per_epoch(steps_per_epoch);
                live_plots_->set_title(label);
                progress_->setRange(0, std::max(total, 1));
                progress_->setValue(first);
                status_->setText(tr("%1 — trainable %2%").arg(label).arg(100.0 * share, 0, 'f', 2));
                browser_->refresh();
            });
    connect(controller_, &RunController::steps_ready, this, &MainWindow::on_steps);
    connect(controller_, &RunController::eval_ready, this, [this](qint64, int step, const MetricMap& m) {
        live_plots_->append_eval(step, m);
        QStringList parts;
        for (const auto& [k, v] : m) parts << QString("%1 %2").arg(QString::fromStdString(k)).arg(v, 0, 'f', 4);
        log(tr("step %1 eval: %2").arg(step).arg(parts.join(", ")));
    });
    connect(controller_, &RunController::reconstruction_ready, this, [this](qint64, int step, const std::vector<double>& e) {
        live_plots_->append_reconstruction(step, e);
    });
    connect(controller_, &RunController::notice, this, [this](const QString& n) { log(n); });
    connect(controller_, &RunController::run_finished, this, [this](qint64 run, const QString& status) {
        const RunData d = RunData::load(*db_, run);
        live_plots_->set_layer_memory(d.layer_memory);
        live_plots_->set_step_memory(d.step_memory);
        progress_->setFormat(tr("run %1 %2").arg(run).arg(status));
        log(tr("run %1 %2").arg(run).arg(status));
        browser_->refresh();
        emit run_completed(run, status);
    });
    connect(controller_, &RunController::failed, this, [this](const QString& message) {
        const QString error = ExperimentForm::readable(message);
        log(error, true);
        browser_->refresh();
        progress_->setFormat(tr("failed"));
        if (!property("quiet_errors").toBool()) QMessageBox::critical(this, tr("Run failed"), error);
    });
    connect(controller_, &RunController::all_done, this, &MainWindow::runs_done);
    connect(browser_, &RunsBrowser::open_run, this, &MainWindow::open_stored_run);
    connect(browser_, &RunsBrowser::config_to_form, this, &MainWindow::config_to_form);
    connect(browser_, &RunsBrowser::resume_run, this, &MainWindow::resume_stored_run);
    connect(browser_, &RunsBrowser::rerun_runs, this, &MainWindow::rerun_stored_runs);
    connect(browser_, &RunsBrowser::database_changed, this, &MainWindow::follow_stored_run);
    connect(browser_, &RunsBrowser::compare_runs, this, &MainWindow::compare_runs);
    connect(browser_, &RunsBrowser::table_runs, this, &MainWindow::table_runs);
    connect(browser_, &RunsBrowser::timeline_runs, this, &MainWindow::timeline_runs);
    update_buttons(false);
    // The default size: 1600 × 1000, or 90% of a smaller screen.
    const QRect screen = QGuiApplication::primaryScreen() ? QGuiApplication::primaryScreen()->availableGeometry() : QRect();
    resize(screen.isEmpty() ? 1600 : std::min(1600, screen.width() * 9 / 10),
           screen.isEmpty() ? 1000 : std::min(1000, screen.height() * 9 / 10));
}

MainWindow::~MainWindow() = default;

QSettings MainWindow::settings() { return QSettings(QSettings::NativeFormat, QSettings::UserScope, "meft", "meft-workbench"); }

QString MainWindow::remembered_database() { return settings().value("database/last").toString(); }

QString MainWindow::remembered_experiment() { return settings().value("experiment/last").toString(); }

void MainWindow::restore_settings() {
    QSettings s = settings();
    remembers_ = true;
    s.setValue("database/last", QString::fromStdString(db_file_.string()));
    if (s.contains("window/geometry")) restoreGeometry(s.value("window/geometry").toByteArray());
    if (s.contains("window/state")) restoreState(s.value("window/state").toByteArray());
    tabs_->setCurrentIndex(std::clamp(s.value("window/tab", 0).toInt(), 0, tabs_->count() - 1));
    restore_splitters_ = true;  // once the window has its size (showEvent), or they would be rescaled
    if (isVisible()) showEvent(nullptr);
}

void MainWindow::showEvent(QShowEvent* event) {
    if (event) QMainWindow::showEvent(event);
    if (!restore_splitters_) return;
    restore_splitters_ = false;
    // A tab's page is laid out only while it is shown: give every page the current one's geometry
    // first, so each splitter restores into the width it will have.
    for (int i = 0; i < tabs_->count(); ++i) {
        QWidget* page = tabs_->widget(i);
        page->setGeometry(tabs_->currentWidget()->geometry());
        if (page->layout()) page->layout()->activate();
    }
    const QSettings s = settings();
    for (QSplitter* split : findChildren<QSplitter*>())
        if (!split->objectName().isEmpty() && s.contains("window/" + split->objectName()))
            split->restoreState(s.value("window/" + split->objectName()).toByteArray());
}

void MainWindow::save_settings() const {
    QSettings s = settings();
    s.setValue("window/geometry", saveGeometry());
    s.setValue("window/state", saveState());
    for (const QSplitter* split : findChildren<QSplitter*>())
        if (!split->objectName().isEmpty()) s.setValue("window/" + split->objectName(), split->saveState());
    s.setValue("window/tab", tabs_->currentIndex());
}

void MainWindow::closeEvent(QCloseEvent* event) {
    if (remembers_) save_settings();
    QMainWindow::closeEvent(event);
}

void MainWindow::build_menus() {
    QMenu* file = menuBar()->addMenu(tr("&File"));
    file->addAction(tr("&New experiment"), QKeySequence::New, this, [this] { form_->set_json(ExperimentForm::default_experiment()); });
    file->addAction(tr("&Open experiment…"), QKeySequence::Open, this, [this] {
        const QString p = QFileDialog::getOpenFileName(this, tr("Open experiment"), {}, tr("Experiments (*.json)"));
        QString err;
        if (!p.isEmpty() && !open_experiment(p, &err)) QMessageBox::critical(this, tr("Cannot open"), err);
    });
    file->addAction(tr("&Save experiment as…"), QKeySequence::SaveAs, this, [this] {
        const QString p = QFileDialog::getSaveFileName(this, tr("Save experiment"), {}, tr("Experiments (*.json)"));
        QString err;
        if (!p.isEmpty() && !save_experiment(p, &err)) QMessageBox::critical(this, tr("Cannot save"), err);
    });
    file->addAction(tr("&Copy as command"), QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_C), this, [this] {
        QString why;
        const QString cmd = command_for_form(&why);
        if (cmd.isEmpty()) {
            log(tr("cannot copy as command: %1").arg(why), true);
            if (!property("quiet_errors").toBool()) QMessageBox::information(this, tr("Copy as command"), why);
            return;
        }
        QGuiApplication::clipboard()->setText(cmd);
        log(tr("copied: %1").arg(cmd));
    });
    file->addAction(tr("Submit to S&lurm…"), this, &MainWindow::submit_to_slurm);
    file->addSeparator();
    file->addAction(tr("&Quit"), QKeySequence::Quit, this, &QWidget::close);
    QMenu* view = menuBar()->addMenu(tr("&View"));
    QAction* show_log = log_dock_->toggleViewAction();
    show_log->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_L));
    view->addAction(show_log);
    QMenu* help = menuBar()->addMenu(tr("&Help"));
    help->addAction(tr("&About"), this, [this] {
        QMessageBox box(QMessageBox::NoIcon, tr("About MEFT Workbench"),
                        tr("MEFT Workbench %1 — memory-efficient fine-tuning experiments.\nGPL-3.0-or-later.\n"
                           "Commit %2").arg(QString::fromLatin1(version()), QString::fromLatin1(git_commit())),
                        QMessageBox::Ok, this);
        box.setIconPixmap(application_icon().pixmap(64, 64));
        box.exec();
    });
}

QString MainWindow::log_text() const { return log_->toPlainText(); }

QString MainWindow::run_blocked_reason() const { return blocked_->isVisible() || !blocked_->text().isEmpty() ? blocked_->text() : QString(); }

void MainWindow::log(const QString& line, bool error) {
    const QString stamp = QTime::currentTime().toString("HH:mm:ss");
    log_->appendHtml(QString("<span style='color:%1'>%2 %3</span>")
                         .arg(error ? "#b00020" : "palette(text)", stamp, line.toHtmlEscaped()));
}

void MainWindow::update_buttons(bool busy) {
    // Run stays disabled while the experiment is invalid or a run of it would be refused, saying why.
    QString why = plan_->error();
    if (why.isEmpty() && !plan_->problems().isEmpty()) why = plan_->problems().join("\n");
    if (why.isEmpty() && db_->read_only())
        why = tr("the experiment database %1 is read-only: runs can be browsed and compared, not recorded (start the "
                 "workbench with --db on a writable file)")
                  .arg(QString::fromStdString(db_file_.string()));
    run_->setEnabled(!busy && why.isEmpty());
    slurm_->setEnabled(plan_->error().isEmpty() && !db_->read_only());
    slurm_->setToolTip(slurm_->isEnabled() ? tr("Run every expansion of this experiment as a task of a Slurm job array; the "
                                                "script is shown before anything is submitted, and the Sweeps tab follows it")
                                           : tr("Cannot submit: %1").arg(why));
    run_->setToolTip(why.isEmpty() ? tr("Train and evaluate the experiment; every run is recorded in the database")
                                   : tr("Cannot run: %1").arg(why));
    blocked_->setText(why.isEmpty() ? QString() : tr("Cannot run: %1").arg(why));
    blocked_->setVisible(!why.isEmpty());
    pause_->setEnabled(busy);
    stop_->setEnabled(busy);
    if (!busy) {
        const QSignalBlocker b(pause_);
        pause_->setChecked(false);
        pause_->setText(tr("Pause"));
    }
}

void MainWindow::on_steps(qint64, const std::vector<StepRow>& rows) {
    if (rows.empty()) return;
    live_plots_->append_steps(rows);
    last_step_ = rows.back().step;
    progress_->setValue(last_step_);
    const double done = double(last_step_ - first_step_);
    const double eta = done > 0 ? clock_.elapsed() / 1000.0 / done * double(total_steps_ - last_step_) : -1;
    progress_->setFormat(tr("step %1 / %2 — loss %3 — ETA %4")
                             .arg(last_step_).arg(total_steps_).arg(rows.back().loss, 0, 'f', 4).arg(eta_text(eta)));
}

void MainWindow::start_run() {
    if (controller_->busy()) return;
    const nlohmann::json j = form_->to_json();
    const std::filesystem::path file = form_->resolving_file();
    try {
        const auto exps = experiments_from_json(j, file);  // report a bad setting before the thread starts
        log(tr("starting %1 run(s) of '%2'").arg(exps.size()).arg(QString::fromStdString(exps.front().name)));
    } catch (const std::exception& ex) {
        const QString why = ExperimentForm::readable(QString::fromUtf8(ex.what()));
        log(why, true);
        if (!property("quiet_errors").toBool()) QMessageBox::critical(this, tr("Invalid experiment"), why);
        return;
    }
    progress_->setFormat(tr("loading…"));
    controller_->start(j, file, db_file_);
}

QString MainWindow::command_for_form(QString* why) const {
    const auto fail = [&](const QString& reason) {
        if (why) *why = reason;
        return QString();
    };
    if (form_->file().empty()) return fail(tr("the experiment is not saved yet: save it (File ▸ Save experiment as…), then copy"));
    try {
        const std::filesystem::path file = form_->file();
        const std::vector<std::string> sets = overrides_between(read_experiment_json(file), form_->to_json());
        const bool default_db = db_file_ == ExperimentDb::default_path();
        return QString::fromStdString(run_command(file, sets, default_db ? std::filesystem::path() : db_file_));
    } catch (const std::exception& ex) {
        return fail(QString::fromStdString(ex.what()) + tr(" (save the experiment, then copy)"));
    }
}

bool MainWindow::open_experiment(const QString& path, QString* error) {
    try {
        form_->set_json(read_experiment_json(path.toStdString()), path.toStdString());
        if (remembers_) settings().setValue("experiment/last", QFileInfo(path).absoluteFilePath());
        log(tr("opened %1").arg(path));
        return true;
    } catch (const std::exception& ex) {
        if (error) *error = ex.what();
        log(ex.what(), true);
        return false;
    }
}

bool MainWindow::save_experiment(const QString& path, QString* error) {
    try {
        // Relative folders are rewritten to name the same places from the new file's folder.
        const std::filesystem::path from = form_->resolving_file();
        const nlohmann::json j = rebase_paths(form_->to_json(), from, path.toStdString());
        write_file_atomically(path.toStdString(), j.dump(2) + "\n");
        if (j != form_->to_json()) form_->set_json(j, path.toStdString());
        else form_->set_file(path.toStdString());
        if (remembers_) settings().setValue("experiment/last", QFileInfo(path).absoluteFilePath());
        log(tr("saved %1").arg(path));
        return true;
    } catch (const std::exception& ex) {
        if (error) *error = ex.what();
        log(ex.what(), true);
        return false;
    }
}

void MainWindow::open_stored_run(std::int64_t run) {
    try {
        show_stored_run(RunData::load(*db_, run));
        tabs_->setCurrentIndex(1);
    } catch (const std::exception& ex) {
        log(ex.what(), true);
    }
}

void MainWindow::show_stored_run(const RunData& d) {
    stored_plots_->show_run(d);
    overview_->show_run(d);
    followed_run_ = d.status == "running" ? d.id : 0;
    followed_step_ = d.steps.empty() ? 0 : d.steps.back().step;
    followed_eval_ = d.evals.empty() ? 0 : d.evals.back().first;
    followed_reconstruction_ = d.reconstruction.empty() ? 0 : d.reconstruction.back().first;
}

void MainWindow::follow_stored_run() {
    if (followed_run_ == 0) return;
    try {
        const RunTail t = RunTail::read(*db_, followed_run_, followed_step_, followed_eval_, followed_reconstruction_);
        if (t.status != "running") {  // finished, failed, cancelled, or gone: everything it left, once
            const std::int64_t run = followed_run_;
            followed_run_ = 0;
            if (!t.status.empty()) show_stored_run(RunData::load(*db_, run));
            return;
        }
        if (!t.steps.empty()) {
            stored_plots_->append_steps(t.steps);
            followed_step_ = t.steps.back().step;
        }
        for (const auto& [step, metrics] : t.evals) {
            stored_plots_->append_eval(step, metrics);
            followed_eval_ = step;
        }
        for (const auto& [step, errors] : t.reconstruction) {
            stored_plots_->append_reconstruction(step, errors);
            followed_reconstruction_ = step;
        }
    } catch (const std::exception& ex) {
        log(ex.what(), true);
        followed_run_ = 0;
    }
}

void MainWindow::table_runs(const std::vector<std::int64_t>& runs) {
    std::vector<RunInfo> infos;
    try {
        std::map<std::int64_t, RunInfo> all;  // one read of the table, however many runs are chosen
        for (RunInfo& r : db_->runs()) all.emplace(r.id, std::move(r));
        for (std::int64_t r : runs)
            if (auto it = all.find(r); it != all.end()) infos.push_back(std::move(it->second));
        paper_->set_runs(infos);
    } catch (const std::exception& ex) {
        log(ex.what(), true);
        return;
    }
    tabs_->setCurrentIndex(3);
}

void MainWindow::timeline_runs(const std::vector<std::int64_t>& runs) {
    std::vector<RunInfo> infos;
    try {
        for (std::int64_t r : runs)
            if (auto info = db_->run(r)) infos.push_back(std::move(*info));
    } catch (const std::exception& ex) {
        log(ex.what(), true);
        return;
    }
    timeline_->set_runs(infos);
    if (!timeline_->error().isEmpty()) log(timeline_->error(), true);
    tabs_->setCurrentIndex(4);
}

bool MainWindow::resume_stored_run(std::int64_t run) { return start_stored({run}, true); }

bool MainWindow::rerun_stored_runs(const std::vector<std::int64_t>& runs) { return start_stored(runs, false); }

bool MainWindow::start_stored(const std::vector<std::int64_t>& runs, bool resume) {
    const QString what = resume ? tr("resume") : tr("run again");
    QString why;
    if (runs.empty()) why = tr("no run is selected");
    else if (controller_->busy()) why = tr("a run is in progress: stop it or wait for it to end");
    else if (db_->read_only()) why = tr("the experiment database %1 is read-only").arg(QString::fromStdString(db_file_.string()));
    if (!why.isEmpty()) {
        log(tr("cannot %1: %2").arg(what, why), true);
        return false;
    }
    QStringList ids;
    for (std::int64_t r : runs) ids << QString("#%1").arg(r);
    log(resume ? tr("resuming run %1 from its checkpoint").arg(ids.join(", "))
               : tr("running %1 again as new run(s)").arg(ids.join(", ")));
    progress_->setFormat(tr("loading…"));
    tabs_->setCurrentIndex(0);  // the live plots
    controller_->start_stored(runs, resume, db_file_);
    return true;
}

void MainWindow::config_to_form(std::int64_t run) {
    const auto info = db_->run(run);
    if (!info) {
        log(tr("no run %1 in the database").arg(run), true);
        return;
    }
    form_->set_json(info->config);
    tabs_->setCurrentIndex(0);
    log(tr("the form holds run %1's configuration (unsaved): change it and press Run").arg(run));
}

void MainWindow::compare_runs(const std::vector<std::int64_t>& runs) {
    std::vector<RunData> data;
    try {
        for (std::int64_t r : runs) data.push_back(RunData::load(*db_, r));
    } catch (const std::exception& ex) {
        log(ex.what(), true);
        return;
    }
    compare_->set_runs(data);
    tabs_->setCurrentIndex(2);
}

std::filesystem::path MainWindow::meft_program() {
    if (const char* env = std::getenv("MEFT_PROGRAM"); env && *env) return env;
    const QString beside = QCoreApplication::applicationDirPath() + "/meft";
    if (QFileInfo(beside).isExecutable()) return beside.toStdString();
    return QStandardPaths::findExecutable("meft").toStdString();
}

SlurmDialog* MainWindow::make_slurm_dialog() {
    return new SlurmDialog(form_->to_json(), form_->resolving_file(), meft_program(), db_.get(), this);
}

void MainWindow::submit_to_slurm() {
    SlurmDialog* d = make_slurm_dialog();
    d->setAttribute(Qt::WA_DeleteOnClose);
    if (d->exec() == QDialog::Accepted && d->submitted()) sweep_submitted(*d->submitted());
}

void MainWindow::sweep_submitted(const Sweep& sweep) {
    log(tr("submitted %1: Slurm job %2, %3 array task(s); the Sweeps tab follows it")
            .arg(QString::fromStdString(sweep.dir.string()), QString::fromStdString(sweep.job_id))
            .arg(sweep.expansions()));
    sweeps_->reload();
    sweeps_->select_sweep(QString::fromStdString(sweep.dir.string()));
    tabs_->setCurrentWidget(sweeps_);
}

}  // namespace meft::ui
