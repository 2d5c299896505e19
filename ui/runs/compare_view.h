// compare_view.h — two or more runs side by side: the config keys whose values differ (rows =
// keys, columns = runs, differing cells highlighted; "all keys" shows the rest unhighlighted),
// the final metrics with the best per row in bold, the overlaid plots (ComparePlots), and
// "Export table…" (CSV, Markdown, LaTeX, JSON). Which keys differ, which value is best and how a
// table renders are the engine's (store/run_table.h); this file only lays them out.
#pragma once
#include <cstdint>
#include <vector>

#include <QString>
#include <QWidget>

#include "ui/runs/run_data.h"
#include "store/run_table.h"

class QCheckBox;
class QComboBox;
class QGroupBox;
class QLabel;
class QPushButton;
class QTableWidget;

namespace meft::ui {

class ComparePlots;

class CompareView : public QWidget {
    Q_OBJECT
public:
    explicit CompareView(QWidget* parent = nullptr);

    void set_runs(const std::vector<RunData>& runs);
    // Loads the runs from the database (throws meft::Error for a missing run).
    void set_runs(const ExperimentDb& db, const std::vector<std::int64_t>& ids);
    const std::vector<RunData>& runs() const { return runs_; }

    // false: every config key (same-valued ones unhighlighted); true (default): only the differing.
    void set_only_differing(bool only);
    // Pins run `index` (in set_runs order; -1: none) as the baseline: every other run's metrics
    // also show their difference to it (store/run_table.h versus_baseline). A new set of runs
    // keeps the pinned run when it is still there.
    void set_baseline(int index);
    int baseline() const;

    // Writes the config diff and the metrics (best marked) as "csv", "markdown", "latex" or
    // "json"; false with the reason in *error when the format is unknown or the file cannot be
    // written.
    bool export_table(const QString& path, const QString& format, QString* error = nullptr);

    // For tests: the config table's rows are keys (vertical header), its columns the runs.
    QTableWidget* diff_table() const { return diff_; }
    QTableWidget* scores_table() const { return scores_; }
    QComboBox* baseline_box() const { return baseline_; }
    ComparePlots* plots() const { return plots_; }
    int diff_rows() const;                         // config keys that differ
    QStringList diff_keys() const;                 // the differing keys, in table order
    bool is_highlighted(int row, int col) const;   // a config cell with the "differs" background
    bool is_best(int row, int col) const;          // a metrics cell in bold

signals:
    void exported(const QString& path);

private:
    void build_ui();
    void fill_config();
    void fill_scores();
    void export_dialog();

    std::vector<RunData> runs_;
    Comparison comparison_;
    std::vector<DiffRow> config_rows_;  // what the config table shows
    bool only_differing_ = true;
    QLabel* title_ = nullptr;
    QCheckBox* all_keys_ = nullptr;
    QGroupBox* config_box_ = nullptr;
    QPushButton* export_ = nullptr;
    QTableWidget* diff_ = nullptr;
    QTableWidget* scores_ = nullptr;
    ComparePlots* plots_ = nullptr;
    QComboBox* baseline_ = nullptr;
};

}  // namespace meft::ui
