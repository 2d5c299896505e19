// run_plots.h — the plots of ONE run, stored or live: training loss (raw + EMA-smoothed),
// learning rate, evaluation scores, memory over time, activation memory per layer (held and backward
// transient, planned vs measured), the step's memory as the parts that add up to its peak (planned
// vs measured, with which step and batch shape each is of) and MEFT reconstruction error per
// layer, as a grid of PlotPanels. The curves over time take
// their x from a chosen axis: step, epoch, wall-clock time or tokens seen (store/step_axis.h).
//
// Live runs append: every append adds only the new points (QCPGraph::addData, sorted keys) and
// carries the smoothing state forward, so a 100,000-step run costs no more per step than a short one;
// the panels redraw on their own 40 ms timers.
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <QMap>
#include <QString>
#include <QWidget>

#include "store/step_axis.h"
#include "ui/plots/plot_panel.h"
#include "ui/runs/run_data.h"

class QCPBars;
class QCPGraph;

class QComboBox;
class QLabel;
class QSlider;

namespace meft::ui {

class ReflowGrid;

// The x tick label of a layer: "emb", "L3", "head" (short, so 26 of them fit under a plot).
QString layer_tick_label(int layer, const std::string& label);

class RunPlots : public QWidget {
    Q_OBJECT
public:
    explicit RunPlots(QWidget* parent = nullptr);

    void clear();
    void set_title(const QString& title);
    // Replaces everything with a stored (or reloaded) run.
    void show_run(const RunData& run);

    // Live updates; steps must arrive in increasing order.
    void append_steps(const std::vector<StepRow>& rows);
    void append_eval(int step, const std::map<std::string, double>& metrics);
    void set_layer_memory(const std::vector<LayerMemoryRow>& rows);
    void set_step_memory(const std::vector<StepMemoryRow>& rows);
    void append_reconstruction(int step, const std::vector<double>& per_layer);

    double smoothing() const;
    void set_smoothing(double weight);  // 0 … 0.999, TensorBoard's slider

    // The x of the loss, learning-rate, memory-over-time and evaluation plots; changing it redraws
    // what is shown. Epochs need the epoch length (show_run takes the run's; 0: unknown, epochs
    // are then steps, and the axis title says so).
    StepAxis x_axis() const { return axis_; }
    void set_x_axis(StepAxis axis);
    void set_steps_per_epoch(int steps);

    // For tests and exports.
    int loss_points() const;
    int eval_points() const { return eval_points_; }
    // "loss", "learning rate", "evaluation", "memory", "layer memory", "step memory",
    // "reconstruction"; else nullptr.
    PlotPanel* panel(const QString& name) const;
    QStringList panel_names() const;
    // A PNG per panel into `dir` (created if missing), named after the panel.
    bool save_all(const QString& dir);
    // Draw everything pending now (screenshots, tests).
    void flush();

private:
    PlotPanel* add_panel(const QString& name, const QString& x_label, const QString& y_label);  // the next in reading order
    void resmooth();
    void replot_over_steps();  // every step and evaluation again, on the current axis
    void update_axis_titles();
    QCPGraph* eval_graph(const std::string& metric);

    QLabel* title_ = nullptr;
    ReflowGrid* grid_ = nullptr;
    QSlider* smoothing_slider_ = nullptr;
    QLabel* smoothing_label_ = nullptr;
    QMap<QString, PlotPanel*> panels_;

    QCPGraph* loss_raw_ = nullptr;
    QCPGraph* loss_smooth_ = nullptr;
    QCPGraph* learning_rate_ = nullptr;
    QCPGraph* resident_ = nullptr;
    QCPGraph* activation_ = nullptr;
    QCPBars* planned_ = nullptr;             // held, per layer
    QCPBars* planned_transient_ = nullptr;   // stacked on it
    QCPBars* measured_ = nullptr;
    QCPBars* measured_transient_ = nullptr;
    std::vector<QCPBars*> step_parts_;       // the step memory's stack, bottom to top
    QCPBars* reconstruction_ = nullptr;
    std::map<std::string, QCPGraph*> eval_graphs_;
    Ema ema_{0.6};
    int eval_points_ = 0;
    QComboBox* axis_box_ = nullptr;
    StepAxis axis_ = StepAxis::step;
    StepClock clock_;  // the x of every step shown
    std::vector<StepRow> steps_;  // what is shown, to redraw on another axis
    std::vector<std::pair<int, std::map<std::string, double>>> evals_;
};

}  // namespace meft::ui
