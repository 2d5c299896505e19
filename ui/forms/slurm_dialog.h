// slurm_dialog.h — "Submit to Slurm…" from the experiment form: the partition, time limit and
// resources each task asks for, the sweep's folder, and the sbatch script they make, shown (and
// rebuilt as the fields change) before anything is submitted. Submit writes the sweep's folder,
// submits the script with sbatch and records the sweep in the database (run/sweep_submit.h).
#pragma once
#include <filesystem>
#include <optional>

#include <QDialog>

#include <nlohmann/json.hpp>

#include "run/sweep.h"
#include "store/database.h"

class QLabel;
class QLineEdit;
class QPlainTextEdit;
class QPushButton;
class QSpinBox;

namespace meft::ui {

class SlurmDialog : public QDialog {
    Q_OBJECT
public:
    // `experiment` as the form holds it, `source` where it lives (its relative paths), `meft` the
    // program the tasks run; the sweep is recorded in `db`.
    SlurmDialog(nlohmann::json experiment, std::filesystem::path source, std::filesystem::path meft, ExperimentDb* db,
                QWidget* parent = nullptr);

    QString script() const;   // the script as shown ("" while a field is invalid)
    QString problem() const;  // why there is no script, or why submitting failed ("" when none)
    int expansions() const;
    // Writes the folder, runs sbatch, records the sweep; false with problem() when anything refuses.
    bool submit();
    const std::optional<Sweep>& submitted() const { return submitted_; }

    QLineEdit* partition() const { return partition_; }
    QLineEdit* time_limit() const { return time_; }
    QSpinBox* gpus() const { return gpus_; }
    QSpinBox* cpus() const { return cpus_; }
    QSpinBox* max_parallel() const { return parallel_; }
    QLineEdit* sbatch_args() const { return args_; }
    QLineEdit* folder() const { return dir_; }

private:
    std::optional<Sweep> plan();  // the sweep the fields describe (problem() says why not)
    void rebuild();

    nlohmann::json experiment_;
    std::filesystem::path source_, meft_;
    ExperimentDb* db_;
    QLineEdit *partition_ = nullptr, *time_ = nullptr, *args_ = nullptr, *dir_ = nullptr;
    QSpinBox *gpus_ = nullptr, *cpus_ = nullptr, *parallel_ = nullptr;
    QLabel* expansions_ = nullptr;
    QLabel* problem_ = nullptr;
    QPlainTextEdit* script_ = nullptr;
    QPushButton* submit_ = nullptr;
    QString problem_text_;
    int count_ = 0;
    std::optional<Sweep> submitted_;
};

}  // namespace meft::ui
