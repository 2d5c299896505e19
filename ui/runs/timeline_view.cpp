#include "ui/runs/timeline_view.h"

#include <algorithm>

#include <QApplication>
#include <QComboBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QVBoxLayout>
#include <qcustomplot.h>

#include "core/backend_select.h"
#include "run/run_setup.h"
#include "store/experiment.h"
#include "ui/plots/plot_panel.h"
#include "ui/runs/run_data.h"

namespace meft::ui {

namespace {

// Held lanes shade from light (embeddings) to dark (head); the other kinds have their own colour.
QColor lane_colour(const TimelineLane& lane, int layers) {
    if (lane.kind == "held") {
        const double t = layers > 1 ? double(lane.layer + 1) / double(layers - 1) : 0.0;
        return QColor::fromHsvF(0.58, 0.25 + 0.6 * t, 0.95 - 0.35 * t);
    }
    if (lane.kind == "streams") return palette_color(2);
    if (lane.kind == "activation gradients") return palette_color(1);
    if (lane.kind == "temporaries") return QColor(0xe6, 0xc2, 0x29);
    return palette_color(4);  // recomputed
}

}  // namespace

TimelineView::TimelineView(QWidget* parent) : QWidget(parent) {
    source_ = new QComboBox;
    source_->addItem(tr("planned (shape-only, instant)"));
    source_->addItem(tr("measured on this computer's CPU"));
    source_->setToolTip(tr("The plan and a CPU measurement run the same allocations: equal for the same shape"));
    summary_ = new QLabel;
    summary_->setWordWrap(true);
    summary_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    panel_ = new PlotPanel(tr("a training step's memory over time"), this);
    panel_->set_axis_labels(tr("through the step: allocations and frees, in order (0 = start, 1 = end)"), tr("MiB alive"));
    panel_->set_include_zero(true);
    panel_->set_legend_headroom(true);
    auto* top = new QHBoxLayout;
    top->addWidget(new QLabel(tr("source:")));
    top->addWidget(source_);
    top->addStretch(1);
    auto* v = new QVBoxLayout(this);
    v->addLayout(top);
    v->addWidget(summary_);
    v->addWidget(panel_, 1);
    connect(source_, &QComboBox::currentIndexChanged, this, &TimelineView::rebuild);
    draw();
}

void TimelineView::set_runs(const std::vector<RunInfo>& runs) {
    runs_ = runs;
    if (runs_.size() > 2) runs_.resize(2);
    rebuild();
}

void TimelineView::set_source(Source source) { source_->setCurrentIndex(source == Source::cpu ? 1 : 0); }
TimelineView::Source TimelineView::source() const { return source_->currentIndex() == 1 ? Source::cpu : Source::plan; }

void TimelineView::rebuild() {
    timelines_.clear();
    error_.clear();
    QApplication::setOverrideCursor(Qt::WaitCursor);  // a CPU measurement of a large model takes seconds
    try {
        std::unique_ptr<Backend> cpu = source() == Source::cpu ? make_backend("cpu") : nullptr;
        for (const RunInfo& r : runs_) {
            const Experiment e = parse_experiment(r.config, "run " + std::to_string(r.id) + " config");
            timelines_.push_back(experiment_step_timeline(e, cpu.get()));
        }
    } catch (const std::exception& ex) {
        timelines_.clear();
        error_ = QString::fromUtf8(ex.what());
    }
    QApplication::restoreOverrideCursor();
    draw();
}

void TimelineView::draw() {
    QCustomPlot* plot = panel_->plot();
    plot->clearPlottables();
    for (QCPAbstractItem* item : items_) plot->removeItem(item);  // ours only: the panel has its own
    items_.clear();
    stacked_ = 0;
    if (timelines_.empty()) {
        summary_->setText(error_.isEmpty() ? tr("Select one run (or two, to overlay the second) in the Runs tab and press "
                                                "Timeline.")
                                           : tr("Cannot build the step: %1").arg(error_));
        panel_->set_message(tr("no timeline"));
        panel_->rescale();
        return;
    }
    const StepTimeline& t = timelines_.front();
    const double n = std::max<double>(1, double(t.events.size()) - 1);
    QVector<double> x(qsizetype(t.events.size()));
    for (qsizetype i = 0; i < x.size(); ++i) x[i] = double(i) / n;
    int layers = 0;
    for (const TimelineLane& l : t.lanes) layers += l.kind == "held" ? 1 : 0;
    // Stacked areas: graph k is the sum of lanes 0..k, filled down to graph k-1.
    QVector<double> sum(x.size(), 0.0);
    QCPGraph* below = nullptr;
    for (const TimelineLane& lane : t.lanes) {
        if (std::all_of(lane.alive.begin(), lane.alive.end(), [](std::int64_t b) { return b == 0; })) continue;
        for (qsizetype i = 0; i < sum.size(); ++i) sum[i] += to_mib(double(lane.alive[std::size_t(i)]));
        QCPGraph* g = plot->addGraph();
        const QColor c = lane_colour(lane, layers);
        g->setName(QString::fromStdString(lane.label));
        g->setPen(QPen(c.darker(115), 1));
        g->setBrush(c);
        g->setLineStyle(QCPGraph::lsStepLeft);
        g->setData(x, sum, true);
        if (below) g->setChannelFillGraph(below);
        below = g;
        ++stacked_;
    }
    const double peak_x = double(t.peak_at) / n;
    if (timelines_.size() > 1) {  // the second run's total, as a line over its own step
        const StepTimeline& o = timelines_[1];
        const std::vector<std::int64_t> total = o.total();
        const double m = std::max<double>(1, double(total.size()) - 1);
        QVector<double> ox, oy;
        for (std::size_t i = 0; i < total.size(); ++i) {
            ox.push_back(double(i) / m);
            oy.push_back(to_mib(double(total[i])));
        }
        QCPGraph* g = plot->addGraph();
        g->setName(tr("total of %1").arg(RunData::label_for(runs_[1].id, runs_[1].config)));
        g->setPen(QPen(Qt::black, 1.5, Qt::DashLine));
        g->setLineStyle(QCPGraph::lsStepLeft);
        g->setData(ox, oy, true);
    }
    auto* backward = new QCPItemStraightLine(plot);
    const double bx = t.backward_from >= 0 ? double(t.backward_from) / n : 0;
    backward->point1->setCoords(bx, 0);
    backward->point2->setCoords(bx, 1);
    backward->setPen(QPen(Qt::gray, 1, Qt::DashDotLine));
    auto* label = new QCPItemText(plot);
    label->position->setType(QCPItemPosition::ptPlotCoords);
    label->position->setCoords(bx, to_mib(double(t.peak)));
    label->setPositionAlignment(Qt::AlignLeft | Qt::AlignTop);
    label->setText(tr(" backward →"));
    auto* peak = new QCPItemText(plot);
    peak->position->setCoords(peak_x, to_mib(double(t.peak)));
    peak->setPositionAlignment(Qt::AlignHCenter | Qt::AlignBottom);
    peak->setText(tr("peak %1 MiB").arg(to_mib(double(t.peak)), 0, 'f', 1));
    peak->setFont(QFont(plot->font().family(), -1, QFont::Bold));
    for (QCPItemText* item : {label, peak}) item->setClipToAxisRect(false);
    items_ = {backward, label, peak};
    const QString first = RunData::label_for(runs_.front().id, runs_.front().config);
    QString text = tr("%1: one training step of %2 × %3, %4 allocations and frees; peak %5 MiB %6 the backward starts.")
                       .arg(first)
                       .arg(t.rows)
                       .arg(t.seq)
                       .arg(t.events.size())
                       .arg(to_mib(double(t.peak)), 0, 'f', 1)
                       .arg(t.peak_at >= t.backward_from ? tr("after") : tr("before"));
    if (timelines_.size() > 1)
        text += " " + tr("Dashed: %1's total (peak %2 MiB), over its own step.")
                          .arg(RunData::label_for(runs_[1].id, runs_[1].config))
                          .arg(to_mib(double(timelines_[1].peak)), 0, 'f', 1);
    summary_->setText(text);
    panel_->set_message({});
    panel_->rescale();
}

}  // namespace meft::ui
