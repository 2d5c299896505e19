// sweeps_view.h — the Sweeps tab: the sweeps submitted into the experiment database (`meft sweep
// submit`, or the form's Submit to Slurm), and for the chosen one each expansion's state — queued,
// running, finished, failed, cancelled — from Slurm (or the local sweep's process) and its shard,
// asked again every few seconds off the GUI thread (run/sweep_status.h). Finished runs are gathered
// into the database as they finish (they appear in the Runs tab); a failed expansion shows its
// log's last lines. Gather now, Cancel sweep and Forget act on the chosen sweep.
#pragma once
#include <filesystem>
#include <future>
#include <optional>

#include <QString>
#include <QWidget>

#include "run/sweep.h"
#include "run/sweep_status.h"
#include "store/database.h"

class QCheckBox;
class QLabel;
class QPlainTextEdit;
class QPushButton;
class QTableWidget;
class QTimer;

namespace meft::ui {

class SweepsView : public QWidget {
    Q_OBJECT
public:
    explicit SweepsView(ExperimentDb* db, QWidget* parent = nullptr);
    ~SweepsView() override;

    void reload();                           // the database's sweeps (keeps the chosen one)
    bool select_sweep(const QString& dir);   // false when the database has no such sweep
    QString selected_sweep() const;          // its folder, "" when none
    void refresh_status();                   // ask about the chosen sweep now (off the GUI thread)
    int gather_finished();                   // merge the chosen sweep's finished shards now; runs added
    // With confirm, ask first (a dialog). Cancel: every task not ended (scancel; a local sweep
    // stops). Forget: the database's row only (the folder and gathered runs stay).
    bool cancel_sweep(bool confirm);
    bool forget_sweep(bool confirm);
    // Runs a stopped sweep again, each task continuing its expansion: a Slurm sweep's script is
    // submitted again; a local sweep's tasks run in `meft sweep resume` started here (detached:
    // it outlives the window). False, with a message, when it still runs.
    bool resume_sweep();
    void set_meft_program(const std::filesystem::path& meft) { meft_ = meft; }
    void set_poll_interval(int ms);          // default 5000; a sweep whose tasks all ended: once a minute

    // For tests and screenshots.
    QTableWidget* sweeps_table() const { return sweeps_; }
    QTableWidget* expansions_table() const { return expansions_; }
    QString summary() const;
    QString log_text() const;
    QCheckBox* auto_gather() const { return auto_gather_; }
    bool asking() const { return pending_.valid(); }  // a status request is out
    const std::optional<SweepStatus>& status() const { return status_; }

signals:
    void gathered(int runs);                          // runs added to the database
    void message(const QString& text, bool error);    // for the window's log
    void status_shown();                              // a status arrived and is shown

private:
    struct Answer {
        std::optional<Sweep> sweep;
        SweepStatus status;
        QString error;
    };
    void poll();
    void show_status(Answer a);
    void show_log_of_selected();
    void update_buttons();

    ExperimentDb* db_;
    QTableWidget* sweeps_ = nullptr;
    QTableWidget* expansions_ = nullptr;
    QLabel* summary_ = nullptr;
    QPlainTextEdit* log_ = nullptr;
    QCheckBox* auto_gather_ = nullptr;
    QPushButton *refresh_ = nullptr, *gather_ = nullptr, *cancel_ = nullptr, *forget_ = nullptr, *resume_ = nullptr;
    std::filesystem::path meft_;
    QTimer* timer_ = nullptr;
    std::future<Answer> pending_;
    QString pending_dir_;
    std::optional<Sweep> sweep_;             // the chosen sweep, as its folder last said
    std::optional<SweepStatus> status_;
};

}  // namespace meft::ui
