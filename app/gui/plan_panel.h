// plan_panel.h — what the configured experiment will need, updated as the settings change:
// trainable parameters (count and share), planned activation memory per layer (bars) and in
// total, and whether weights + optimizer state + activations fit the chosen device. The numbers
// come from the engine's shape-only plan (train/memory_plan.h), which equals what a run measures.
#pragma once
#include <filesystem>

#include <QWidget>
#include <nlohmann/json.hpp>

class QComboBox;
class QLabel;
class QCustomPlot;
class QTimer;

namespace meft::gui {

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
    QString error() const { return error_; }
    bool fits() const { return fits_; }

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
    bool fits_ = false;
};

}  // namespace meft::gui
