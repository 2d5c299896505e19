// compare_plots.h — several runs overlaid, one colour per run (fixed palette, same colour in every
// panel): smoothed training loss, one evaluation metric, measured activation memory per layer as
// grouped bars, and the trade-off MEFT is about as two labelled scatters — score vs activation
// memory and score vs median step time — whose marker size grows with the run's trainable share;
// the runs on the Pareto front over all three (store/pareto.h) are ringed and starred in both. The loss and
// evaluation curves can be grouped (a configuration's seeds, or one config key's values): one
// colour per group, its mean with a ± std band (or min..max), from store/run_groups.h.
#pragma once
#include <vector>

#include <QMap>
#include <QString>
#include <QStringList>
#include <QWidget>

#include "store/run_groups.h"
#include "store/step_axis.h"
#include "ui/plots/plot_panel.h"
#include "ui/runs/run_data.h"

class QCheckBox;
class QComboBox;
class QCustomPlot;
class QCPBarsGroup;
class QCPItemText;
class QLabel;
class QSlider;

namespace meft::ui {

class ComparePlots : public QWidget {
    Q_OBJECT
public:
    explicit ComparePlots(QWidget* parent = nullptr);

    void set_runs(const std::vector<RunData>& runs);
    void clear() { set_runs({}); }

    // The x of the loss and evaluation plots (store/step_axis.h): epoch = step / steps_per_epoch
    // (step where that is unknown), wall-clock time and tokens summed over a run's attempts.
    StepAxis align() const;
    void set_align(StepAxis axis);
    // The evaluation metric shown (and used as the scatter's y); by default the first non-loss one.
    QString metric() const;
    void set_metric(const QString& metric);
    QStringList metrics() const;  // the metrics any of the runs evaluated
    double smoothing() const;
    void set_smoothing(double weight);

    // Grouping of the loss and evaluation curves: "" each run alone, kGroupSeeds a configuration's
    // seeds, else a flattened config key (runs with the same value pooled). group_keys() lists the
    // keys offered: those whose values differ among the runs.
    static constexpr const char* kGroupSeeds = "(seeds)";
    QString grouping() const;
    void set_grouping(const QString& key);
    QStringList group_keys() const;
    int group_count() const;  // curves drawn per panel: groups, or runs when not grouped
    bool min_max_band() const;
    void set_min_max_band(bool on);  // the band spans min..max instead of mean ± std

    // For tests and exports.
    int curve_count() const;     // loss curves (one per run with steps, or per group)
    int scatter_points() const;  // runs placed on the score-vs-memory scatter
    // Whether run i (in set_runs order) is on the front: no other run has at least its score, at
    // most its activation peak and step time, and is better in one (a run missing one is not).
    bool on_pareto_front(std::size_t run) const;
    // "loss", "evaluation", "layer memory", "score vs memory", "score vs step time"; else nullptr.
    PlotPanel* panel(const QString& name) const;
    bool save_all(const QString& dir);
    void flush();

private:
    double x_of(std::size_t run, int step) const;
    void rebuild_loss();
    void rebuild_eval();
    void rebuild_layers();
    void rebuild_scatter();
    void rebuild_groups();
    // One mean curve with its band per group (grouped), from each member's points on the axis.
    void draw_bands(QCustomPlot* plot, const std::vector<std::vector<CurvePoint>>& per_run, double pen_width, bool markers);

    std::vector<RunData> runs_;
    std::vector<StepClock> clocks_;  // per run: where its steps lie on every axis
    QMap<QString, PlotPanel*> panels_;
    QComboBox* align_box_ = nullptr;
    QComboBox* group_box_ = nullptr;
    QCheckBox* min_max_ = nullptr;
    std::vector<RunGroup> groups_;  // empty: not grouped
    QComboBox* metric_box_ = nullptr;
    QSlider* smoothing_slider_ = nullptr;
    QLabel* smoothing_label_ = nullptr;
    QCPBarsGroup* layer_group_ = nullptr;       // one group, refilled: bars side by side per layer
    std::vector<std::pair<QCustomPlot*, QCPItemText*>> point_labels_;  // the scatters' run labels
    std::vector<bool> on_front_;
};

}  // namespace meft::ui
