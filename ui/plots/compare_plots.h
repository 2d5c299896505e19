// compare_plots.h — several runs overlaid, one colour per run (fixed palette, same colour in every
// panel): smoothed training loss, one evaluation metric, measured activation memory per layer as
// grouped bars, and "score vs activation memory" — the trade-off MEFT is about — as a labelled
// scatter whose marker size grows with the run's trainable-parameter share.
#pragma once
#include <vector>

#include <QMap>
#include <QString>
#include <QStringList>
#include <QWidget>

#include "ui/plots/plot_panel.h"
#include "ui/runs/run_data.h"

class QComboBox;
class QCPBarsGroup;
class QCPItemText;
class QLabel;
class QSlider;

namespace meft::ui {

class ComparePlots : public QWidget {
    Q_OBJECT
public:
    enum class Align { step, epoch };

    explicit ComparePlots(QWidget* parent = nullptr);

    void set_runs(const std::vector<RunData>& runs);
    void clear() { set_runs({}); }

    Align align() const;
    void set_align(Align align);  // epoch = step / steps_per_epoch, step where that is unknown
    // The evaluation metric shown (and used as the scatter's y); by default the first non-loss one.
    QString metric() const;
    void set_metric(const QString& metric);
    QStringList metrics() const;  // the metrics any of the runs evaluated
    double smoothing() const;
    void set_smoothing(double weight);

    // For tests and exports.
    int curve_count() const;     // loss curves (one per run with steps)
    int scatter_points() const;  // runs placed on the score-vs-memory scatter
    // "loss", "evaluation", "layer memory", "score vs memory"; else nullptr.
    PlotPanel* panel(const QString& name) const;
    bool save_all(const QString& dir);
    void flush();

private:
    double x_of(const RunData& run, int step) const;
    void rebuild_loss();
    void rebuild_eval();
    void rebuild_layers();
    void rebuild_scatter();

    std::vector<RunData> runs_;
    QMap<QString, PlotPanel*> panels_;
    QComboBox* align_box_ = nullptr;
    QComboBox* metric_box_ = nullptr;
    QSlider* smoothing_slider_ = nullptr;
    QLabel* smoothing_label_ = nullptr;
    QCPBarsGroup* layer_group_ = nullptr;       // one group, refilled: bars side by side per layer
    std::vector<QCPItemText*> point_labels_;  // the scatter's run labels
};

}  // namespace meft::ui
