// timeline_view.h — a training step's memory over time, per layer, as PyTorch's memory snapshot
// viewer draws it: bytes alive after each allocation and free of the step's forward and backward,
// stacked by layer (what each holds for backward) and kind (MEFT's stored streams, activation
// gradients, temporaries, the recomputed layer), with the backward's start and the peak marked.
// From the shape-only plan or measured on this computer's CPU (equal for the same shape); a second
// run's total is overlaid as a line. The engine computes the timeline (run/run_setup.h
// experiment_step_timeline); this file only draws it.
#pragma once
#include <vector>

#include <QString>
#include <QWidget>

#include "store/database.h"
#include "train/memory_timeline.h"

class QCPAbstractItem;
class QComboBox;
class QLabel;

namespace meft::ui {

class PlotPanel;

class TimelineView : public QWidget {
    Q_OBJECT
public:
    explicit TimelineView(QWidget* parent = nullptr);

    // One run's step, or two (the second's total overlaid). Each is rebuilt from its recorded
    // configuration; a run whose model cannot be built says why on the plot.
    void set_runs(const std::vector<RunInfo>& runs);
    enum class Source { plan, cpu };
    void set_source(Source source);
    Source source() const;

    const std::vector<StepTimeline>& timelines() const { return timelines_; }
    PlotPanel* panel() const { return panel_; }
    QString error() const { return error_; }
    int stacked_lanes() const { return stacked_; }  // lanes drawn (the ones that ever hold bytes)

private:
    void rebuild();
    void draw();

    std::vector<RunInfo> runs_;
    std::vector<StepTimeline> timelines_;
    QString error_;
    int stacked_ = 0;
    std::vector<QCPAbstractItem*> items_;  // the backward line and the labels
    QComboBox* source_ = nullptr;
    QLabel* summary_ = nullptr;
    PlotPanel* panel_ = nullptr;
};

}  // namespace meft::ui
