// plan_panel.h — what the configured experiment will need, updated as the settings change:
// trainable parameters (count and share), planned activation memory per layer (bars) and in
// total, and whether what the run takes from its backend fits the chosen device. The numbers come
// from the engine's shape-only plan (train/memory_plan.h), which equals what a run measures for
// the same batch shape (per layer: held and backward transient stacked; the total split into its
// parts, store/step_memory.h); the
// experiment's own backend is checked as a run would be (run/preflight.h): problems() lists why
// a run would be refused, and the window disables Run with them.
#pragma once
#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include <QStringList>
#include <QWidget>
#include <nlohmann/json.hpp>

#include "core/backend.h"

class QComboBox;
class QLabel;
class QCustomPlot;
class QTimer;

namespace meft::ui {

class PlanPanel : public QWidget {
    Q_OBJECT
public:
    explicit PlanPanel(QWidget* parent = nullptr);

    // Re-plans shortly after the last call (debounced), or at once with `now`.
    void set_experiment(const nlohmann::json& experiment, const std::filesystem::path& file, bool now = false);

    // The last plan, for tests and the window: 0 when the experiment was invalid.
    std::int64_t trainable() const { return trainable_; }
    std::int64_t parameters() const { return parameters_; }
    std::int64_t activation_bytes() const { return activation_; }
    int layer_bars() const { return bars_; }
    QString memory_text() const;  // "activations: … = held by layers … + streams … + backward transient …"
    QCustomPlot* plot() const { return plot_; }
    QString error() const { return error_; }
    bool fits() const { return fits_; }
    // What is already known to fail on the experiment's own backend (run/preflight.h): a run of
    // it would be refused; empty when it can run.
    QStringList problems() const { return problems_; }

signals:
    void planned();  // after each re-plan (valid or not)

private:
    void replan();
    void show_error(const QString& msg);

    nlohmann::json experiment_;
    std::filesystem::path file_;
    QTimer* debounce_ = nullptr;
    QComboBox* device_ = nullptr;
    QLabel* params_ = nullptr;
    QLabel* memory_ = nullptr;
    QLabel* fit_ = nullptr;
    QLabel* error_label_ = nullptr;
    QCustomPlot* plot_ = nullptr;
    std::int64_t trainable_ = 0, parameters_ = 0, activation_ = 0, resident_ = 0;
    int bars_ = 0;
    QString error_;
    QStringList problems_;
    bool fits_ = false;
    // The backends preflight checks against, made once per kind ("cpu", "cuda").
    std::map<std::string, std::unique_ptr<Backend>> backends_;
};

}  // namespace meft::ui
