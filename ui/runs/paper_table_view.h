// paper_table_view.h — the paper's results table in the workbench: configurations × tasks, each
// task's headline dev metric as mean ± std over seeds, the best per task in bold — the table
// `meft runs export` prints, from the runs chosen in the Runs tab. Runs that cannot be in it
// (not finished, no headline metric) are left out and named. One row can be pinned as the
// baseline: every other cell then also shows its difference to it, in points. Export writes
// Markdown, LaTeX or CSV (store/run_table.h renders all three; this file only lays out cells).
#pragma once
#include <cstdint>
#include <vector>

#include <QString>
#include <QWidget>

#include "store/run_table.h"

class QComboBox;
class QLabel;
class QPushButton;
class QTableWidget;

namespace meft::ui {

class PaperTableView : public QWidget {
    Q_OBJECT
public:
    explicit PaperTableView(QWidget* parent = nullptr);

    void set_runs(const std::vector<RunInfo>& runs);
    const PaperTable& table() const { return table_; }
    std::vector<std::int64_t> left_out() const;  // the runs given that are not in the table

    // "" (none) or a row's label; unknown labels are ignored.
    void set_baseline(const QString& row_label);
    QString baseline() const;

    // The table as `meft runs export --format` writes it ("markdown", "latex", "csv", "json").
    QString text(const QString& format) const;
    // Writes text(format) to path; false with the reason in *error.
    bool export_table(const QString& path, const QString& format, QString* error = nullptr);

    QTableWidget* grid() const { return grid_; }
    QString note() const;  // what was left out and why, or how many runs the table pools

signals:
    void exported(const QString& path);

private:
    void fill();
    void export_dialog();

    PaperTable table_;
    std::vector<std::pair<std::int64_t, std::string>> refused_;  // run, why
    std::size_t pooled_ = 0;
    QTableWidget* grid_ = nullptr;
    QComboBox* baseline_ = nullptr;
    QLabel* note_ = nullptr;
    QPushButton* export_ = nullptr;
    QPushButton* copy_ = nullptr;
};

}  // namespace meft::ui
