#include "ui/plots/run_plots.h"

#include "store/step_memory.h"
#include "ui/plots/reflow_grid.h"

#include <algorithm>
#include <map>
#include <optional>

#include <QComboBox>
#include <QDir>
#include <QHBoxLayout>
#include <QLabel>
#include <QSlider>
#include <QVBoxLayout>
#include <qcustomplot.h>

namespace meft::ui {

QString layer_tick_label(int layer, const std::string& label) {
    if (layer < 0) return QStringLiteral("emb");
    if (label == "head") return QStringLiteral("head");
    return QStringLiteral("L%1").arg(layer);
}

namespace {

constexpr int kSliderSteps = 1000;  // slider 0..999 -> weight 0..0.999 (1.0 would flatten the curve)
constexpr int kRotateLabelsAbove = 14;  // more layer labels than this no longer fit side by side

// Pen width 1: a wider pen makes QPainter stroke every sampled segment with joins, which took a
// 100,000-point curve from ~1 ms to ~130 ms per redraw here.
QCPGraph* add_graph(QCustomPlot* plot, const QString& name, const QColor& colour, QCPAxis* value_axis = nullptr) {
    QCPGraph* g = plot->addGraph(plot->xAxis, value_axis ? value_axis : plot->yAxis);
    g->setName(name);
    g->setPen(QPen(colour, 1));
    return g;
}

QCPBars* add_bars(QCustomPlot* plot, const QString& name, const QColor& colour) {
    auto* bars = new QCPBars(plot->xAxis, plot->yAxis);
    bars->setName(name);
    bars->setPen(QPen(colour.darker(130)));
    bars->setBrush(colour);
    return bars;
}

// Text ticks at 0, 1, 2, … for layer names; rotated when there are many.
void set_text_ticks(QCPAxis* axis, const QVector<QString>& labels) {
    auto ticker = QSharedPointer<QCPAxisTickerText>::create();
    for (int i = 0; i < labels.size(); ++i) ticker->addTick(i, labels[i]);
    axis->setTicker(ticker);
    axis->setTickLabelRotation(labels.size() > kRotateLabelsAbove ? 60 : 0);
    axis->setSubTicks(false);
    axis->grid()->setVisible(false);
}

}  // namespace

RunPlots::RunPlots(QWidget* parent) : QWidget(parent) {
    title_ = new QLabel(this);
    QFont f = title_->font();
    f.setBold(true);
    f.setPointSizeF(f.pointSizeF() + 2);
    title_->setFont(f);

    axis_box_ = new QComboBox(this);
    for (StepAxis a : all_step_axes()) axis_box_->addItem(tr(step_axis_name(a).c_str()), int(a));
    axis_box_->setToolTip(tr("x axis of the curves over time: step, epoch, wall-clock time of training, or padded "
                             "tokens seen (a resumed run's attempts add up)"));
    connect(axis_box_, &QComboBox::currentIndexChanged, this,
            [this] { set_x_axis(static_cast<StepAxis>(axis_box_->currentData().toInt())); });
    auto* top = new QHBoxLayout;
    top->addWidget(title_);
    top->addStretch(1);  // the axis choice stays compact at the right, with or without a title
    top->addWidget(new QLabel(tr("x axis:"), this));
    top->addWidget(axis_box_);

    grid_ = new ReflowGrid(this);
    auto* layout = new QVBoxLayout(this);
    layout->addLayout(top);
    layout->addWidget(grid_, 1);

    PlotPanel* loss = add_panel(QStringLiteral("loss"), tr("step"), tr("training loss"));
    loss->set_title(tr("training loss"));
    // Raw first (drawn below), faint and without antialiasing: it is the dense, noisy one.
    loss_raw_ = add_graph(loss->plot(), tr("raw"), QColor(0xae, 0xc7, 0xe8));
    loss_raw_->setPen(QPen(QColor(0xae, 0xc7, 0xe8), 1));
    loss_raw_->setAntialiased(false);
    loss_smooth_ = add_graph(loss->plot(), tr("smoothed"), palette_color(0));

    smoothing_label_ = new QLabel(this);
    smoothing_slider_ = new QSlider(Qt::Horizontal, this);
    smoothing_slider_->setRange(0, kSliderSteps - 1);
    smoothing_slider_->setFixedWidth(90);
    smoothing_slider_->setToolTip(tr("EMA smoothing of the loss, debiased like TensorBoard's"));
    loss->add_tool(smoothing_label_);
    loss->add_tool(smoothing_slider_);
    connect(smoothing_slider_, &QSlider::valueChanged, this, [this](int v) {
        smoothing_label_->setText(tr("smoothing %1").arg(v / double(kSliderSteps), 0, 'f', 3));
        resmooth();
    });
    smoothing_slider_->setValue(600);

    PlotPanel* lr = add_panel(QStringLiteral("learning rate"), tr("step"), tr("learning rate"));
    learning_rate_ = add_graph(lr->plot(), tr("learning rate"), palette_color(2));

    PlotPanel* eval = add_panel(QStringLiteral("evaluation"), tr("step"), tr("score"));
    eval->set_title(tr("evaluation"));
    eval->plot()->yAxis2->setLabel(tr("eval loss"));
    eval->plot()->yAxis2->setTickLabels(true);
    eval->set_padding(0.03, 0.05);  // evaluation markers sit on the first and last step
    eval->set_legend_headroom(true);  // scores climb into the top right corner

    PlotPanel* memory = add_panel(QStringLiteral("memory"), tr("step"), tr("MiB"));
    memory->set_title(tr("memory over time"));
    resident_ = add_graph(memory->plot(), tr("resident (weights, grads, optimizer)"), palette_color(4));
    activation_ = add_graph(memory->plot(), tr("activation peak"), palette_color(1));
    memory->set_include_zero(true);
    memory->set_legend_headroom(true);

    PlotPanel* layers = add_panel(QStringLiteral("layer memory"), tr("layer"), tr("MiB"));
    layers->set_title(tr("activation memory per layer"));
    layers->plot()->yAxis->setLabel(tr("held + backward transient, MiB"));
    planned_ = add_bars(layers->plot(), tr("planned: held"), QColor(0xff, 0xbb, 0x78));
    planned_transient_ = add_bars(layers->plot(), tr("planned: transient"), QColor(0xff, 0xbb, 0x78));
    planned_transient_->setBrush(QBrush(QColor(0xff, 0xbb, 0x78), Qt::BDiagPattern));
    measured_ = add_bars(layers->plot(), tr("measured: held"), palette_color(0));
    measured_transient_ = add_bars(layers->plot(), tr("measured: transient"), palette_color(0));
    measured_transient_->setBrush(QBrush(palette_color(0), Qt::BDiagPattern));
    planned_transient_->moveAbove(planned_);
    measured_transient_->moveAbove(measured_);
    layers->set_legend_headroom(true);
    auto* group = new QCPBarsGroup(layers->plot());
    group->setSpacingType(QCPBarsGroup::stPlotCoords);  // in layer units, so the fit can include it
    group->setSpacing(0.04);
    for (QCPBars* b : {planned_, planned_transient_, measured_, measured_transient_}) {  // stacks keep their base's place
        b->setWidth(0.4);
        b->setBarsGroup(group);
    }

    // The step: what adds up to each peak. Parameter gradients (resident) sit on top, hatched.
    PlotPanel* step = add_panel(QStringLiteral("step memory"), QString(), tr("MiB"));
    step->set_title(tr("a training step's memory"));
    step->set_include_zero(true);
    step->set_legend_headroom(true);
    const std::pair<QString, QColor> parts[] = {{tr("held by layers"), palette_color(0)},
                                                {tr("MEFT remainders"), palette_color(3)},
                                                {tr("stored streams"), palette_color(2)},
                                                {tr("backward transient at the peak"), palette_color(1)},
                                                {tr("parameter gradients (resident)"), QColor(0x99, 0x99, 0x99)}};
    for (const auto& [name, colour] : parts) {
        QCPBars* b = add_bars(step->plot(), name, colour);
        b->setWidth(0.55);
        if (!step_parts_.empty()) b->moveAbove(step_parts_.back());
        step_parts_.push_back(b);
    }
    step_parts_.back()->setBrush(QBrush(QColor(0x99, 0x99, 0x99), Qt::BDiagPattern));

    PlotPanel* rec = add_panel(QStringLiteral("reconstruction"), tr("layer"), tr("relative error"));
    reconstruction_ = add_bars(rec->plot(), tr("relative error"), palette_color(4));
    reconstruction_->setWidth(0.7);
    rec->set_log_y(true);  // errors span decades (1e-7 … 1e-2): linear would hide all but the worst
    clear();
}

PlotPanel* RunPlots::add_panel(const QString& name, const QString& x_label, const QString& y_label) {
    auto* p = new PlotPanel(name, this);
    p->set_axis_labels(x_label, y_label);
    grid_->add(p);  // in reading order: row by row, two to a row when there is room
    panels_.insert(name, p);
    return p;
}

PlotPanel* RunPlots::panel(const QString& name) const { return panels_.value(name, nullptr); }
QStringList RunPlots::panel_names() const { return panels_.keys(); }

void RunPlots::set_title(const QString& title) {
    title_->setText(title);
    title_->setVisible(!title.isEmpty());
}

void RunPlots::clear() {
    steps_.clear();
    evals_.clear();
    clock_ = StepClock(clock_.steps_per_epoch());
    for (QCPGraph* g : {loss_raw_, loss_smooth_, learning_rate_, resident_, activation_}) g->data()->clear();
    for (QCPBars* b : {planned_, planned_transient_, measured_, measured_transient_, reconstruction_}) b->data()->clear();
    for (QCPBars* b : step_parts_) b->data()->clear();
    set_text_ticks(panel(QStringLiteral("step memory"))->plot()->xAxis, {});
    panel(QStringLiteral("step memory"))->set_message(tr("no memory report yet"));
    panel(QStringLiteral("step memory"))->set_note({});
    QCustomPlot* eval = panel(QStringLiteral("evaluation"))->plot();
    for (auto& [metric, graph] : eval_graphs_) eval->removePlottable(graph);
    eval_graphs_.clear();
    eval_points_ = 0;
    ema_ = Ema(smoothing());
    set_text_ticks(panel(QStringLiteral("layer memory"))->plot()->xAxis, {});
    set_text_ticks(panel(QStringLiteral("reconstruction"))->plot()->xAxis, {});
    panel(QStringLiteral("reconstruction"))->set_title(tr("reconstruction error per layer"));
    panel(QStringLiteral("reconstruction"))->set_message(tr("no reconstruction checks in this run"));
    panel(QStringLiteral("layer memory"))->set_message(tr("no memory report yet"));
    panel(QStringLiteral("evaluation"))->set_message(tr("no evaluations yet"));
    for (PlotPanel* p : panels_) p->rescale();  // follow the new data even if the last run was zoomed
    set_title({});
}

void RunPlots::set_x_axis(StepAxis axis) {
    if (axis_box_->currentData().toInt() != int(axis)) {
        axis_box_->setCurrentIndex(axis_box_->findData(int(axis)));  // comes back here
        return;
    }
    if (axis == axis_) return;
    axis_ = axis;
    replot_over_steps();
}

void RunPlots::set_steps_per_epoch(int steps) {
    if (steps == clock_.steps_per_epoch()) return;
    clock_ = StepClock(steps);
    replot_over_steps();
}

void RunPlots::replot_over_steps() {
    std::vector<StepRow> rows = std::move(steps_);
    auto evals = std::move(evals_);
    steps_.clear();
    evals_.clear();
    clock_ = StepClock(clock_.steps_per_epoch());
    ema_ = Ema(smoothing());
    for (QCPGraph* g : {loss_raw_, loss_smooth_, learning_rate_, resident_, activation_}) g->data()->clear();
    for (auto& [metric, graph] : eval_graphs_) graph->data()->clear();
    eval_points_ = 0;
    append_steps(rows);
    for (const auto& [step, metrics] : evals) append_eval(step, metrics);
    update_axis_titles();
    for (const char* name : {"loss", "learning rate", "memory", "evaluation"}) panel(QString::fromLatin1(name))->rescale();
}

void RunPlots::update_axis_titles() {
    QString title = tr(step_axis_label(axis_).c_str());
    if (axis_ == StepAxis::epoch && clock_.steps_per_epoch() <= 0) title = tr("epoch (length unknown: steps)");
    for (const char* name : {"loss", "learning rate", "memory", "evaluation"})
        panel(QString::fromLatin1(name))->plot()->xAxis->setLabel(title);
}

void RunPlots::show_run(const RunData& run) {
    clear();
    if (run.steps_per_epoch != clock_.steps_per_epoch()) {
        clock_ = StepClock(run.steps_per_epoch);
        update_axis_titles();
    }
    set_title(run.status.empty() ? run.label : QStringLiteral("%1 — %2").arg(run.label, QString::fromStdString(run.status)));
    append_steps(run.steps);
    for (const auto& [step, metrics] : run.evals) append_eval(step, metrics);
    set_layer_memory(run.layer_memory);
    set_step_memory(run.step_memory);
    for (const auto& [step, per_layer] : run.reconstruction) append_reconstruction(step, per_layer);
}

double RunPlots::smoothing() const { return smoothing_slider_->value() / double(kSliderSteps); }

void RunPlots::set_smoothing(double weight) {
    smoothing_slider_->setValue(std::clamp(static_cast<int>(weight * kSliderSteps + 0.5), 0, kSliderSteps - 1));
}

void RunPlots::append_steps(const std::vector<StepRow>& rows) {
    if (rows.empty()) return;
    const auto n = static_cast<qsizetype>(rows.size());
    QVector<double> keys(n), loss(n), smooth(n), lr(n), resident(n), activation(n);
    for (qsizetype i = 0; i < n; ++i) {
        const StepRow& r = rows[static_cast<std::size_t>(i)];
        keys[i] = clock_.add(r).on(axis_);
        loss[i] = r.loss;
        smooth[i] = ema_.add(r.loss);  // carries the EMA state across appends
        lr[i] = r.learning_rate;
        resident[i] = to_mib(static_cast<double>(r.resident_bytes));
        activation[i] = to_mib(static_cast<double>(r.activation_bytes));
    }
    // Sorted keys appended after the last one: QCustomPlot's cheap path (no re-sort, no merge).
    loss_raw_->addData(keys, loss, true);
    loss_smooth_->addData(keys, smooth, true);
    learning_rate_->addData(keys, lr, true);
    resident_->addData(keys, resident, true);
    activation_->addData(keys, activation, true);
    steps_.insert(steps_.end(), rows.begin(), rows.end());
    for (const char* name : {"loss", "learning rate", "memory"}) panel(QString::fromLatin1(name))->mark_dirty();
}

void RunPlots::resmooth() {
    ema_ = Ema(smoothing());
    if (!loss_raw_ || !loss_smooth_) return;
    const auto raw = loss_raw_->data();
    QVector<double> keys, values;
    keys.reserve(raw->size());
    values.reserve(raw->size());
    for (auto it = raw->constBegin(); it != raw->constEnd(); ++it) {
        keys.push_back(it->key);
        values.push_back(ema_.add(it->value));
    }
    loss_smooth_->setData(keys, values, true);
    panel(QStringLiteral("loss"))->mark_dirty();
}

int RunPlots::loss_points() const { return loss_raw_->dataCount(); }

QCPGraph* RunPlots::eval_graph(const std::string& metric) {
    if (auto it = eval_graphs_.find(metric); it != eval_graphs_.end()) return it->second;
    QCustomPlot* plot = panel(QStringLiteral("evaluation"))->plot();
    // Loss lives on the right axis: 0..1 scores and a loss of 0.3..2 on one axis squash each other.
    const bool is_loss = metric == "loss";
    const int colour = is_loss ? 7 : static_cast<int>(std::count_if(eval_graphs_.begin(), eval_graphs_.end(),
                                                                    [](const auto& e) { return e.first != "loss"; }));
    QCPGraph* g = add_graph(plot, is_loss ? tr("eval loss") : QString::fromStdString(metric), palette_color(colour),
                            is_loss ? plot->yAxis2 : plot->yAxis);
    // Evaluations are few (tens to hundreds of points): a thicker pen and markers cost nothing.
    g->setPen(QPen(palette_color(colour), 1.5, is_loss ? Qt::DashLine : Qt::SolidLine));
    g->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, 5));
    eval_graphs_.emplace(metric, g);
    return g;
}

void RunPlots::append_eval(int step, const std::map<std::string, double>& metrics) {
    if (metrics.empty()) return;
    const double x = clock_.at(step, axis_);
    for (const auto& [metric, value] : metrics) eval_graph(metric)->addData(x, value);
    evals_.emplace_back(step, metrics);
    ++eval_points_;
    PlotPanel* p = panel(QStringLiteral("evaluation"));
    p->set_message({});
    p->mark_dirty();
}

void RunPlots::set_layer_memory(const std::vector<LayerMemoryRow>& rows) {
    // One slot per layer seen in either the plan or the measurement, embeddings first, head last.
    std::map<int, QString> names;
    for (const LayerMemoryRow& r : rows) names.emplace(r.layer, layer_tick_label(r.layer, r.label));
    std::map<int, int> slot;
    QVector<QString> labels;
    for (const auto& [layer, name] : names) {
        slot[layer] = static_cast<int>(labels.size());
        labels.push_back(name);
    }
    QVector<double> pk, pv, pt, mk, mv, mt;
    for (const LayerMemoryRow& r : rows) {
        const bool planned = r.kind == "planned";
        (planned ? pk : mk).push_back(slot[r.layer]);
        (planned ? pv : mv).push_back(to_mib(static_cast<double>(r.held)));
        (planned ? pt : mt).push_back(to_mib(static_cast<double>(r.transient)));
    }
    planned_->setData(pk, pv);
    planned_transient_->setData(pk, pt);
    measured_->setData(mk, mv);
    measured_transient_->setData(mk, mt);
    PlotPanel* p = panel(QStringLiteral("layer memory"));
    set_text_ticks(p->plot()->xAxis, labels);
    p->set_message(rows.empty() ? tr("no memory report yet") : QString());
}

void RunPlots::set_step_memory(const std::vector<StepMemoryRow>& rows) {
    PlotPanel* p = panel(QStringLiteral("step memory"));
    const std::optional<StepMemory> planned = step_memory_of(rows, "planned");
    const std::optional<StepMemory> measured = step_memory_of(rows, "measured");
    QVector<QString> ticks;
    std::vector<const StepMemory*> bars;
    if (planned) {
        ticks.push_back(tr("planned\n%1 × %2").arg(planned->rows).arg(planned->seq));
        bars.push_back(&*planned);
    }
    if (measured) {
        ticks.push_back(tr("measured, step %1\n%2 × %3").arg(measured->step).arg(measured->rows).arg(measured->seq));
        bars.push_back(&*measured);
    }
    for (std::size_t part = 0; part < step_parts_.size(); ++part) {
        QVector<double> keys, values;
        for (std::size_t i = 0; i < bars.size(); ++i) {
            const StepMemory& m = *bars[i];
            const std::int64_t bytes[] = {m.held_layers, m.remainders, m.streams, m.transient, m.parameter_gradients};
            keys.push_back(double(i));
            values.push_back(to_mib(static_cast<double>(bytes[part])));
        }
        step_parts_[part]->setData(keys, values, true);
        // A part no bar has (remainders outside MEFT's exact streams) stays out of the legend.
        const bool any = std::any_of(values.begin(), values.end(), [](double v) { return v > 0; });
        if (any) step_parts_[part]->addToLegend();
        else step_parts_[part]->removeFromLegend();
    }
    set_text_ticks(p->plot()->xAxis, ticks);
    p->set_message(bars.empty() ? tr("no memory report yet") : QString());
    QString note;
    const auto mib = [](std::int64_t b) { return QString::number(to_mib(static_cast<double>(b)), 'f', 2); };
    if (planned && measured) note = QString::fromStdString(explain_step_memory(*planned, *measured));
    else if (planned) note = tr("Planned for a full-length %1 × %2 batch: %3 MiB; nothing measured (no training step recorded its report).")
                                 .arg(planned->rows).arg(planned->seq).arg(mib(planned->activation_peak));
    if (!note.isEmpty())
        note += " " + tr("The solid parts add up to the activation peak; parameter gradients, hatched, are resident memory.");
    p->set_note(note);
    p->mark_dirty();
}

void RunPlots::append_reconstruction(int step, const std::vector<double>& per_layer) {
    // The latest check per layer: one bar each, on a log axis (see the constructor).
    QVector<double> keys, values;
    QVector<QString> labels;
    for (std::size_t i = 0; i < per_layer.size(); ++i) {
        keys.push_back(static_cast<double>(i));
        values.push_back(per_layer[i]);
        labels.push_back(QStringLiteral("L%1").arg(i));
    }
    reconstruction_->setData(keys, values, true);
    PlotPanel* p = panel(QStringLiteral("reconstruction"));
    set_text_ticks(p->plot()->xAxis, labels);
    p->set_title(tr("reconstruction error per layer (step %1)").arg(step));
    const bool exact = !per_layer.empty() && std::all_of(per_layer.begin(), per_layer.end(), [](double e) { return e == 0.0; });
    p->set_message(per_layer.empty() ? tr("no reconstruction checks in this run")
                   : exact ? tr("exact: error 0 in all %1 layers (bit for bit)").arg(per_layer.size())
                           : QString());
}

void RunPlots::flush() {
    for (PlotPanel* p : panels_) p->flush();
}

bool RunPlots::save_all(const QString& dir) { return save_panels(panels_, dir); }

}  // namespace meft::ui
