// runs_browser.h — every run in the experiment database as a sortable, filterable table: id,
// experiment, method, task, status (coloured), steps, main score, activation memory, trainable
// share, tags, notes, created. Filters: free text (any column), a tag, a status. Tags and notes
// are edited in place (double-click the cell, or "Tags & notes…"), runs are deleted after a
// confirmation, and the selection is opened, compared, resumed or run again. The table follows the
// database: runs that other processes add or finish appear within a second, and running runs' step
// counts move (a cheap poll, see poll()). The numbers come from the engine's summarize_run
// (store/run_table.h); this file only lays them out.
#pragma once
#include <cstdint>
#include <vector>

#include <QString>
#include <QStringList>
#include <QWidget>

class QComboBox;
class QLabel;
class QLineEdit;
class QModelIndex;
class QPushButton;
class QTableView;
class QTimer;

namespace meft {
class ExperimentDb;
}

namespace meft::ui {

class RunsModel;   // the table model (runs_browser.cpp)
class RunsFilter;  // text / tag / status filter with numeric sorting (runs_browser.cpp)

class RunsBrowser : public QWidget {
    Q_OBJECT
public:
    enum Column { kId, kExperiment, kMethod, kTask, kStatus, kSteps, kScore, kMemory, kTrainable, kTags, kNotes, kCreated, kColumnCount };

    explicit RunsBrowser(ExperimentDb* db, QWidget* parent = nullptr);
    ~RunsBrowser() override;

    void set_database(ExperimentDb* db);  // may be null: an empty table
    // Reloads every run from the database, keeping the filters and the selected runs.
    void refresh();
    // What the timer does every poll_interval(): nothing when no other connection committed since
    // the last look (PRAGMA data_version); refresh() when a run was added, deleted, or changed
    // status, tags or notes; else only the running runs' rows. Emits database_changed when another
    // connection committed. Returns whether it did.
    bool poll();
    int poll_interval() const;    // milliseconds; 1000 by default
    void set_poll_interval(int ms);  // 0 stops polling (Refresh still works)

    QTableView* table() const { return table_; }
    int visible_rows() const;  // after filtering
    int total_rows() const;
    std::int64_t run_at(int visible_row) const;  // the run shown in that row (0 when out of range)

    // Filters (the widgets follow): "" clears. Text matches any column, case-insensitively; a tag
    // matches whole tags; a status matches exactly.
    void set_text_filter(const QString& text);
    void set_tag_filter(const QString& tag);
    void set_status_filter(const QString& status);
    QStringList tags() const;  // the tags the runs carry, sorted (the tag filter's choices)

    void select_runs(const std::vector<std::int64_t>& runs);
    std::vector<std::int64_t> selected_runs() const;  // in the order shown
    std::vector<std::int64_t> visible_runs() const;   // every row the filters let through, in the order shown

    // Without dialogs, for tests and scripts. edit_tags takes one tag per line; a tag with a comma
    // (or any database error) changes nothing and returns false with the reason in *error.
    bool edit_tags(std::int64_t run, const QString& tags, const QString& notes, QString* error = nullptr);
    // With confirm, asks first (a dialog); returns whether the runs were deleted.
    bool delete_runs(const std::vector<std::int64_t>& runs, bool confirm);

    QPushButton* open_button() const { return open_; }
    QPushButton* compare_button() const { return compare_; }
    QPushButton* resume_button() const { return resume_; }
    QPushButton* rerun_button() const { return rerun_; }
    QPushButton* table_button() const { return table_button_; }
    QPushButton* timeline_button() const { return timeline_; }
    // Whether a run with this status can continue from its checkpoint (as `meft resume`).
    static bool resumable(const std::string& status);

signals:
    void open_run(std::int64_t run);
    void compare_runs(const std::vector<std::int64_t>& runs);
    void config_to_form(std::int64_t run);  // "To form": edit the run's configuration and run it again
    void resume_run(std::int64_t run);      // continue a cancelled, interrupted or failed run
    void rerun_runs(const std::vector<std::int64_t>& runs);  // each run's configuration again, as new runs
    // "Table": the paper table of the selected runs (two or more), else of every run shown.
    void table_runs(const std::vector<std::int64_t>& runs);
    void timeline_runs(const std::vector<std::int64_t>& runs);  // "Timeline": one or two selected runs
    void database_changed();  // another connection committed (see poll)
    void runs_changed();  // tags, notes or runs were changed or deleted from here

private:
    void build_ui();
    void rebuild_tag_choices();
    void update_buttons();
    void on_double_click(const QModelIndex& index);
    void edit_with_dialog(std::int64_t run);
    void emit_open();
    void emit_compare();

    ExperimentDb* db_ = nullptr;
    RunsModel* model_ = nullptr;
    RunsFilter* filter_ = nullptr;
    QTableView* table_ = nullptr;
    QLineEdit* text_ = nullptr;
    QComboBox* tag_ = nullptr;
    QComboBox* status_ = nullptr;
    QLabel* count_ = nullptr;
    QPushButton* open_ = nullptr;
    QPushButton* compare_ = nullptr;
    QPushButton* to_form_ = nullptr;
    QPushButton* resume_ = nullptr;
    QPushButton* rerun_ = nullptr;
    QPushButton* table_button_ = nullptr;
    QPushButton* timeline_ = nullptr;
    QPushButton* edit_ = nullptr;
    QPushButton* delete_ = nullptr;
    QTimer* poll_timer_ = nullptr;
    std::int64_t data_version_ = -1;  // as of the last refresh or poll
    std::string runs_stamp_;
};

}  // namespace meft::ui
