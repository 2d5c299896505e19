// main_window.h — the workbench window: configure an experiment (form + live plan), run and
// watch it (worker thread, live plots, log), browse stored runs and compare them.
#pragma once
#include <filesystem>
#include <memory>

#include <QElapsedTimer>
#include <QMainWindow>
#include <QSettings>

#include "ui/runs/run_data.h"
#include "store/database.h"
#include "run/sweep.h"

class QDockWidget;
class QLabel;
class QPlainTextEdit;
class QProgressBar;
class QPushButton;
class QTabWidget;

namespace meft::ui {

class CompareView;
class PaperTableView;
class TimelineView;
class ExperimentForm;
class PlanPanel;
class RunController;
class RunPlots;
class RunOverview;
class RunsBrowser;
class SlurmDialog;
class SweepsView;

class MainWindow : public QMainWindow {
    Q_OBJECT
public:
    // read_only: browse and compare the database without writing it (also what a database whose
    // file or folder is not writable gets).
    explicit MainWindow(const std::filesystem::path& db_file, QWidget* parent = nullptr, bool read_only = false);
    ~MainWindow() override;

    // The parts, for tests and screenshots.
    ExperimentForm* form() const { return form_; }
    PlanPanel* plan() const { return plan_; }
    RunPlots* live_plots() const { return live_plots_; }
    RunPlots* stored_plots() const { return stored_plots_; }
    RunsBrowser* browser() const { return browser_; }
    RunOverview* overview() const { return overview_; }
    CompareView* compare() const { return compare_; }
    PaperTableView* paper_table() const { return paper_; }
    TimelineView* timeline() const { return timeline_; }
    SweepsView* sweeps() const { return sweeps_; }
    const std::filesystem::path& database_file() const { return db_file_; }
    RunController* controller() const { return controller_; }
    QTabWidget* tabs() const { return tabs_; }
    QPushButton* run_button() const { return run_; }
    QString run_blocked_reason() const;  // "" when Run is enabled for the form's experiment
    QString log_text() const;
    std::int64_t current_run() const { return current_run_; }

    // Window geometry, splitter and dock state and the current tab as last closed; from then on the
    // window remembers them, its database and the last experiment opened or saved (QSettings).
    void restore_settings();
    static QString remembered_database();    // "" when none
    static QString remembered_experiment();  // "" when none

    // The `meft run` line that reproduces the form: its file, this database, and a --set for every
    // value the form changed. Empty, with the reason in *why, when the form has no file or drops a
    // key its file sets.
    QString command_for_form(QString* why = nullptr) const;

    bool open_experiment(const QString& path, QString* error = nullptr);
    bool save_experiment(const QString& path, QString* error = nullptr);
    void open_stored_run(std::int64_t run);
    // The run's recorded configuration into the form (unsaved; its folders are absolute), Experiment tab.
    void config_to_form(std::int64_t run);
    void compare_runs(const std::vector<std::int64_t>& runs);
    void table_runs(const std::vector<std::int64_t>& runs);  // the paper table of these runs, Table tab
    void timeline_runs(const std::vector<std::int64_t>& runs);  // one or two runs' step timelines, Timeline tab
    // Stored runs into the worker (the Runs tab's Resume and Rerun): resume continues a cancelled,
    // interrupted or failed run from its checkpoint; rerun records each configuration again as a
    // new run. Progress shows on the Experiment tab as for the form's runs. False (and logged) when
    // a run is in progress or the database is read-only.
    bool resume_stored_run(std::int64_t run);
    bool rerun_stored_runs(const std::vector<std::int64_t>& runs);
    std::int64_t followed_run() const { return followed_run_; }  // the opened run while it is running, else 0

    // Submit to Slurm: the dialog for the form's experiment (script shown before submitting), and
    // what follows a submission (the Sweeps tab, showing it). The tasks run meft_program():
    // $MEFT_PROGRAM, else meft beside the workbench, else meft on PATH ("" when none).
    SlurmDialog* make_slurm_dialog();
    void sweep_submitted(const Sweep& sweep);
    static std::filesystem::path meft_program();

public slots:
    void start_run();
    void submit_to_slurm();

signals:
    void run_completed(qint64 run, const QString& status);  // each run of a start (for tests)
    void runs_done();                                       // the whole start is over

protected:
    void closeEvent(QCloseEvent* event) override;
    void showEvent(QShowEvent* event) override;

private:
    static QSettings settings();
    void save_settings() const;
    void build_menus();
    void log(const QString& line, bool error = false);
    void update_buttons(bool busy);
    void on_steps(qint64 run, const std::vector<StepRow>& rows);
    bool start_stored(const std::vector<std::int64_t>& runs, bool resume);
    void show_stored_run(const RunData& d);
    void follow_stored_run();  // the opened run is running: add what it recorded since

    std::filesystem::path db_file_;
    std::unique_ptr<ExperimentDb> db_;  // the GUI thread's connection (browser, stored plots)
    QTabWidget* tabs_ = nullptr;
    ExperimentForm* form_ = nullptr;
    PlanPanel* plan_ = nullptr;
    RunPlots* live_plots_ = nullptr;
    RunPlots* stored_plots_ = nullptr;
    RunsBrowser* browser_ = nullptr;
    RunOverview* overview_ = nullptr;
    CompareView* compare_ = nullptr;
    PaperTableView* paper_ = nullptr;
    TimelineView* timeline_ = nullptr;
    SweepsView* sweeps_ = nullptr;
    QPushButton* slurm_ = nullptr;
    RunController* controller_ = nullptr;
    QPlainTextEdit* log_ = nullptr;
    QDockWidget* log_dock_ = nullptr;  // collapsible (View ▸ Log, Ctrl+L), movable, floatable
    bool remembers_ = false;           // restore_settings() was called: save them on close
    bool restore_splitters_ = false;   // at the next show
    QProgressBar* progress_ = nullptr;
    QLabel* status_ = nullptr;
    QLabel* blocked_ = nullptr;  // why Run is disabled
    QPushButton *run_ = nullptr, *pause_ = nullptr, *stop_ = nullptr;
    QElapsedTimer clock_;
    std::int64_t current_run_ = 0;
    int total_steps_ = 0, first_step_ = 0, last_step_ = 0;
    // The opened stored run while it runs (elsewhere or here), and the last points its plots show.
    std::int64_t followed_run_ = 0;
    int followed_step_ = 0, followed_eval_ = 0, followed_reconstruction_ = 0;
};

}  // namespace meft::ui
