#include "ui/plots/compare_plots.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <set>

#include <QCheckBox>
#include <QComboBox>
#include <QDir>
#include <QHBoxLayout>
#include <QLabel>
#include <QSlider>
#include <QVBoxLayout>
#include <qcustomplot.h>

#include "ui/plots/reflow_grid.h"
#include "store/pareto.h"
#include "store/run_table.h"
#include "ui/plots/run_plots.h"

namespace meft::ui {

namespace {

constexpr int kSliderSteps = 1000;  // as in RunPlots: 0..999 -> weight 0..0.999
constexpr double kMarkerMin = 7, kMarkerGrowth = 25;  // px; a full fine-tune (share 1) is 32 px

// The run's activation peak: what it reported at the end, else the largest step seen.
std::optional<double> activation_peak_bytes(const RunData& run) {
    const nlohmann::json& m = run.final_metrics;
    if (m.is_object() && m.contains("activation_peak_bytes") && m["activation_peak_bytes"].is_number())
        return m["activation_peak_bytes"].get<double>();
    if (run.steps.empty()) return std::nullopt;
    const auto it = std::max_element(run.steps.begin(), run.steps.end(),
                                     [](const StepRow& a, const StepRow& b) { return a.activation_bytes < b.activation_bytes; });
    return static_cast<double>(it->activation_bytes);
}

// The last evaluated value of `metric` (evaluations are in step order).
std::optional<double> last_value(const RunData& run, const std::string& metric) {
    for (auto it = run.evals.rbegin(); it != run.evals.rend(); ++it)
        if (auto v = it->second.find(metric); v != it->second.end()) return v->second;
    return std::nullopt;
}

}  // namespace

ComparePlots::ComparePlots(QWidget* parent) : QWidget(parent) {
    align_box_ = new QComboBox(this);
    for (StepAxis a : all_step_axes()) align_box_->addItem(tr(step_axis_name(a).c_str()), int(a));
    align_box_->setToolTip(tr("x axis of the loss and evaluation plots: step, epoch (runs without a known epoch length "
                              "stay on steps), wall-clock time of training, or padded tokens seen"));
    group_box_ = new QComboBox(this);
    group_box_->setToolTip(tr("Pool the loss and evaluation curves: a configuration's seeds, or the runs sharing a "
                              "config key's value — drawn as the mean with a band"));
    group_box_->setSizeAdjustPolicy(QComboBox::AdjustToContents);
    min_max_ = new QCheckBox(tr("min..max"), this);
    min_max_->setToolTip(tr("The band spans the group's min..max instead of mean ± one standard deviation"));
    auto* top = new QHBoxLayout;
    top->addWidget(new QLabel(tr("x axis:"), this));
    top->addWidget(align_box_);
    top->addSpacing(12);
    top->addWidget(new QLabel(tr("group:"), this));
    top->addWidget(group_box_);
    top->addWidget(min_max_);
    top->addStretch(1);

    auto* grid = new ReflowGrid(this);
    auto* layout = new QVBoxLayout(this);
    layout->addLayout(top);
    layout->addWidget(grid, 1);

    const auto add = [&](const QString& name, const QString& title) {  // the next in reading order
        auto* p = new PlotPanel(title, this);
        grid->add(p);
        panels_.insert(name, p);
        return p;
    };
    PlotPanel* loss = add(QStringLiteral("loss"), tr("training loss (smoothed)"));
    PlotPanel* eval = add(QStringLiteral("evaluation"), tr("evaluation"));
    PlotPanel* layers = add(QStringLiteral("layer memory"), tr("measured activation memory per layer: held, backward transient (light)"));
    PlotPanel* scatter = add(QStringLiteral("score vs memory"), tr("score vs activation memory (★ trade-off front)"));
    PlotPanel* speed = add(QStringLiteral("score vs step time"), tr("score vs step time (★ trade-off front)"));
    layers->set_axis_labels(tr("layer"), tr("held activations, MiB"));
    layers->set_legend_headroom(true);
    eval->set_legend_headroom(true);
    eval->set_padding(0.03, 0.05);  // evaluation markers sit on the first and last step
    scatter->set_axis_labels(tr("activation peak, MiB"), tr("score"));
    scatter->set_legend_allowed(false);  // every point carries its run's label
    scatter->set_padding(0.2, 0.2);      // room for those labels inside the plot
    speed->set_legend_allowed(false);
    speed->set_padding(0.2, 0.2);
    layer_group_ = new QCPBarsGroup(layers->plot());
    layer_group_->setSpacingType(QCPBarsGroup::stPlotCoords);  // in layer units, so the fit can include it
    layer_group_->setSpacing(0.03);

    smoothing_label_ = new QLabel(this);
    smoothing_slider_ = new QSlider(Qt::Horizontal, this);
    smoothing_slider_->setRange(0, kSliderSteps - 1);
    smoothing_slider_->setFixedWidth(90);
    loss->add_tool(smoothing_label_);
    loss->add_tool(smoothing_slider_);

    metric_box_ = new QComboBox(this);
    metric_box_->setToolTip(tr("the metric plotted here and used as the scatter's score"));
    eval->add_tool(metric_box_);

    connect(smoothing_slider_, &QSlider::valueChanged, this, [this](int v) {
        smoothing_label_->setText(tr("smoothing %1").arg(v / double(kSliderSteps), 0, 'f', 3));
        rebuild_loss();
    });
    connect(align_box_, &QComboBox::currentIndexChanged, this, [this] {
        rebuild_loss();
        rebuild_eval();
    });
    const auto regroup = [this] {
        rebuild_groups();
        rebuild_loss();
        rebuild_eval();
    };
    connect(group_box_, &QComboBox::currentIndexChanged, this, regroup);
    connect(min_max_, &QCheckBox::toggled, this, regroup);
    connect(metric_box_, &QComboBox::currentTextChanged, this, [this] {
        rebuild_eval();
        rebuild_scatter();
    });
    smoothing_slider_->setValue(600);
    set_runs({});
}

PlotPanel* ComparePlots::panel(const QString& name) const { return panels_.value(name, nullptr); }

void ComparePlots::set_runs(const std::vector<RunData>& runs) {
    runs_ = runs;
    clocks_.clear();
    for (const RunData& r : runs_) {
        StepClock& clock = clocks_.emplace_back(r.steps_per_epoch);
        for (const StepRow& s : r.steps) clock.add(s);
    }
    // The metric choice survives a new selection of runs when the metric is still there.
    const QString previous = metric();
    std::set<std::string> names;
    for (const RunData& r : runs_)
        for (const auto& [step, metrics] : r.evals)
            for (const auto& [name, value] : metrics) names.insert(name);
    {
        const QSignalBlocker block(metric_box_);
        metric_box_->clear();
        for (const std::string& n : names) metric_box_->addItem(QString::fromStdString(n));
        int pick = metric_box_->findText(previous);
        if (pick < 0)
            for (int i = 0; i < metric_box_->count() && pick < 0; ++i)
                if (metric_box_->itemText(i) != QLatin1String("loss")) pick = i;
        metric_box_->setCurrentIndex(pick < 0 ? 0 : pick);
    }
    {  // the grouping survives too when its key still differs
        const QString keep = grouping();
        const QSignalBlocker block(group_box_);
        group_box_->clear();
        group_box_->addItem(tr("each run"), QString());
        group_box_->addItem(tr("seeds pooled"), QString::fromLatin1(kGroupSeeds));
        std::vector<nlohmann::json> configs;
        for (const RunData& r : runs_) configs.push_back(r.config);
        for (const DiffRow& row : config_rows(configs, true))
            if (row.key != kSeedKey) group_box_->addItem(tr("by %1").arg(QString::fromStdString(row.key)), QString::fromStdString(row.key));
        const int at = group_box_->findData(keep);
        group_box_->setCurrentIndex(at < 0 ? 0 : at);
    }
    rebuild_groups();
    rebuild_loss();
    rebuild_eval();
    rebuild_layers();
    rebuild_scatter();
    for (PlotPanel* p : panels_) p->rescale();
}

StepAxis ComparePlots::align() const { return static_cast<StepAxis>(align_box_->currentData().toInt()); }
void ComparePlots::set_align(StepAxis axis) { align_box_->setCurrentIndex(align_box_->findData(int(axis))); }
QString ComparePlots::metric() const { return metric_box_->currentText(); }
void ComparePlots::set_metric(const QString& metric) { metric_box_->setCurrentText(metric); }

QStringList ComparePlots::metrics() const {
    QStringList out;
    for (int i = 0; i < metric_box_->count(); ++i) out << metric_box_->itemText(i);
    return out;
}

double ComparePlots::smoothing() const { return smoothing_slider_->value() / double(kSliderSteps); }

void ComparePlots::set_smoothing(double weight) {
    smoothing_slider_->setValue(std::clamp(static_cast<int>(weight * kSliderSteps + 0.5), 0, kSliderSteps - 1));
}

QString ComparePlots::grouping() const { return group_box_->currentData().toString(); }

void ComparePlots::set_grouping(const QString& key) {
    const int at = group_box_->findData(key);
    group_box_->setCurrentIndex(at < 0 ? 0 : at);
}

QStringList ComparePlots::group_keys() const {
    QStringList out;
    for (int i = 2; i < group_box_->count(); ++i) out << group_box_->itemData(i).toString();
    return out;
}

int ComparePlots::group_count() const { return groups_.empty() ? int(runs_.size()) : int(groups_.size()); }
bool ComparePlots::min_max_band() const { return min_max_->isChecked(); }
void ComparePlots::set_min_max_band(bool on) { min_max_->setChecked(on); }

void ComparePlots::rebuild_groups() {
    groups_.clear();
    const QString key = grouping();
    if (key.isEmpty()) return;
    std::vector<nlohmann::json> configs;
    for (const RunData& r : runs_) configs.push_back(r.config);
    if (key != QLatin1String(kGroupSeeds)) {
        groups_ = group_by_keys(configs, {key.toStdString()});
        return;
    }
    // A configuration's seeds: named like its runs ("meft3 · sst2"), with what tells two groups of
    // the same method and task apart (elided: it can list many keys) only where that happens.
    groups_ = group_seeds(configs);
    std::map<QString, int> uses;
    std::vector<QString> names;
    for (const RunGroup& g : groups_) {
        QString name = RunData::label_for(0, configs[g.members.front()]).section(' ', 1);  // without "#0"
        names.push_back(name);
        ++uses[name];
    }
    for (std::size_t i = 0; i < groups_.size(); ++i) {
        QString name = names[i];
        if (uses[name] > 1) name += " [" + QString::fromStdString(groups_[i].label).left(40) +
                                    (groups_[i].label.size() > 40 ? "…]" : "]");
        groups_[i].label = name.toStdString();
    }
}

void ComparePlots::draw_bands(QCustomPlot* plot, const std::vector<std::vector<CurvePoint>>& per_run, double pen_width,
                              bool markers) {
    for (std::size_t gi = 0; gi < groups_.size(); ++gi) {
        const RunGroup& group = groups_[gi];
        std::vector<std::vector<CurvePoint>> members;
        for (std::size_t i : group.members)
            if (!per_run[i].empty()) members.push_back(per_run[i]);
        const std::vector<BandPoint> band = curve_band(members);
        if (band.empty()) continue;
        QVector<double> x, mean, low, high;
        for (const BandPoint& b : band) {
            x.push_back(b.x);
            mean.push_back(b.mean);
            low.push_back(min_max_band() ? b.min : b.mean - b.sd);
            high.push_back(min_max_band() ? b.max : b.mean + b.sd);
        }
        const QColor c = palette_color(static_cast<int>(gi));
        QCPGraph* lower = plot->addGraph();
        QCPGraph* upper = plot->addGraph();
        for (QCPGraph* edge : {lower, upper}) {
            edge->setPen(Qt::NoPen);
            edge->setName(QString());  // addGraph names it "Graph N"
            edge->removeFromLegend();  // unnamed: the hover and the legend name the mean only
        }
        lower->setData(x, low, true);
        upper->setData(x, high, true);
        QColor fill = c;
        fill.setAlpha(60);
        upper->setBrush(fill);
        upper->setChannelFillGraph(lower);
        QCPGraph* line = plot->addGraph();
        line->setName(QStringLiteral("%1 (n=%2)").arg(QString::fromStdString(group.label)).arg(members.size()));
        line->setPen(QPen(c, pen_width));
        if (markers) line->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, 5));
        line->setData(x, mean, true);
    }
}

double ComparePlots::x_of(std::size_t run, int step) const { return clocks_[run].at(step, align()); }

void ComparePlots::rebuild_loss() {
    PlotPanel* p = panel(QStringLiteral("loss"));
    if (!p) return;  // the slider fires once while the constructor is still building
    QCustomPlot* plot = p->plot();
    plot->clearPlottables();
    if (!groups_.empty()) {
        std::vector<std::vector<CurvePoint>> per_run(runs_.size());
        for (std::size_t i = 0; i < runs_.size(); ++i) {
            Ema ema(smoothing());
            const auto& points = clocks_[i].points();
            for (std::size_t k = 0; k < points.size(); ++k)
                per_run[i].push_back({points[k].step, points[k].on(align()), ema.add(runs_[i].steps[k].loss)});
        }
        draw_bands(plot, per_run, 1.5, false);
        p->set_axis_labels(tr(step_axis_label(align()).c_str()), tr("training loss"));
        p->rescale();
        return;
    }
    for (std::size_t i = 0; i < runs_.size(); ++i) {
        const RunData& run = runs_[i];
        if (run.steps.empty()) continue;
        QVector<double> keys, values;
        keys.reserve(static_cast<qsizetype>(run.steps.size()));
        values.reserve(keys.capacity());
        Ema ema(smoothing());
        for (const StepPoint& s : clocks_[i].points()) keys.push_back(s.on(align()));
        for (const StepRow& s : run.steps) {
            values.push_back(ema.add(s.loss));
        }
        QCPGraph* g = plot->addGraph();
        g->setName(run.label);
        g->setPen(QPen(palette_color(static_cast<int>(i)), 1));  // width 1: long curves stay fast
        g->setData(keys, values, true);
    }
    p->set_axis_labels(tr(step_axis_label(align()).c_str()), tr("training loss"));
    p->rescale();
}

void ComparePlots::rebuild_eval() {
    PlotPanel* p = panel(QStringLiteral("evaluation"));
    if (!p) return;
    QCustomPlot* plot = p->plot();
    plot->clearPlottables();
    const std::string metric = this->metric().toStdString();
    if (!groups_.empty()) {
        std::vector<std::vector<CurvePoint>> per_run(runs_.size());
        for (std::size_t i = 0; i < runs_.size(); ++i)
            for (const auto& [step, metrics] : runs_[i].evals)
                if (auto v = metrics.find(metric); v != metrics.end()) per_run[i].push_back({step, x_of(i, step), v->second});
        draw_bands(plot, per_run, 1.5, true);
        p->set_axis_labels(tr(step_axis_label(align()).c_str()), this->metric());
        p->set_message(plot->plottableCount() == 0 ? tr("no evaluations") : QString());
        p->rescale();
        return;
    }
    for (std::size_t i = 0; i < runs_.size(); ++i) {
        const RunData& run = runs_[i];
        QVector<double> keys, values;
        for (const auto& [step, metrics] : run.evals)
            if (auto v = metrics.find(metric); v != metrics.end()) {
                keys.push_back(x_of(i, step));
                values.push_back(v->second);
            }
        if (keys.isEmpty()) continue;
        QCPGraph* g = plot->addGraph();
        g->setName(run.label);
        g->setPen(QPen(palette_color(static_cast<int>(i)), 1.5));
        g->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, 5));  // evaluations are few
        g->setData(keys, values);
    }
    p->set_axis_labels(tr(step_axis_label(align()).c_str()), this->metric());
    p->set_message(plot->plottableCount() == 0 ? tr("no evaluations") : QString());
    p->rescale();
}

void ComparePlots::rebuild_layers() {
    PlotPanel* p = panel(QStringLiteral("layer memory"));
    if (!p) return;
    QCustomPlot* plot = p->plot();
    plot->clearPlottables();  // also takes the bars out of layer_group_
    // Measured rows; a run that never measured (still running, failed) shows its plan instead.
    const auto rows_of = [](const RunData& run, const char* kind) {
        std::vector<const LayerMemoryRow*> out;
        for (const LayerMemoryRow& r : run.layer_memory)
            if (r.kind == kind) out.push_back(&r);
        return out;
    };
    std::map<int, QString> names;  // every layer of every run, embeddings first, head last
    for (const RunData& run : runs_)
        for (const LayerMemoryRow& r : run.layer_memory) names.emplace(r.layer, layer_tick_label(r.layer, r.label));
    std::map<int, int> slot;
    auto ticker = QSharedPointer<QCPAxisTickerText>::create();
    for (const auto& [layer, name] : names) {
        const int s = static_cast<int>(slot.size());
        slot[layer] = s;
        ticker->addTick(s, name);
    }
    const double width = 0.75 / std::max<std::size_t>(1, runs_.size());  // a group fills ~80% of a layer's slot
    for (std::size_t i = 0; i < runs_.size(); ++i) {
        auto rows = rows_of(runs_[i], "measured");
        const bool planned = rows.empty();
        if (planned) rows = rows_of(runs_[i], "planned");
        if (rows.empty()) continue;
        QVector<double> keys, values, transient;
        for (const LayerMemoryRow* r : rows) {
            keys.push_back(slot[r->layer]);
            values.push_back(to_mib(static_cast<double>(r->held)));
            transient.push_back(to_mib(static_cast<double>(r->transient)));
        }
        auto* bars = new QCPBars(plot->xAxis, plot->yAxis);
        bars->setName(planned ? tr("%1 (planned)").arg(runs_[i].label) : runs_[i].label);
        const QColor c = palette_color(static_cast<int>(i));
        bars->setPen(QPen(c.darker(130)));
        bars->setBrush(planned ? QBrush(c, Qt::BDiagPattern) : QBrush(c));
        bars->setWidth(width);
        bars->setData(keys, values);
        bars->setBarsGroup(layer_group_);
        // The backward transient on top, lighter: MEFT holds little and recomputes much.
        auto* extra = new QCPBars(plot->xAxis, plot->yAxis);
        extra->setName(tr("%1: backward transient").arg(runs_[i].label));
        extra->setPen(QPen(c.darker(130)));
        extra->setBrush(QBrush(c.lighter(165)));
        extra->setWidth(width);
        extra->setData(keys, transient);
        extra->moveAbove(bars);
        extra->setBarsGroup(layer_group_);
        extra->removeFromLegend();  // the title says what the light part is
    }
    plot->xAxis->setTicker(ticker);
    plot->xAxis->setTickLabelRotation(names.size() > 14 ? 60 : 0);
    plot->xAxis->setSubTicks(false);
    plot->xAxis->grid()->setVisible(false);
    p->set_message(plot->plottableCount() == 0 ? tr("no memory reports") : QString());
    p->rescale();
}

void ComparePlots::rebuild_scatter() {
    PlotPanel* by_memory = panel(QStringLiteral("score vs memory"));
    PlotPanel* by_time = panel(QStringLiteral("score vs step time"));
    if (!by_memory || !by_time) return;
    for (auto& [plot, label] : point_labels_) plot->removeItem(label);
    point_labels_.clear();
    const std::string metric = this->metric().toStdString();
    // Each run's score, activation peak (MiB) and typical step time (ms); NaN where it has none.
    const std::size_t n = runs_.size();
    std::vector<std::vector<double>> points(n, std::vector<double>(3, NAN));
    for (std::size_t i = 0; i < n; ++i) {
        if (const auto y = last_value(runs_[i], metric)) points[i][0] = *y;
        if (const auto x = activation_peak_bytes(runs_[i])) points[i][1] = to_mib(*x);
        if (const auto t = median_step_seconds(runs_[i].steps)) points[i][2] = 1000 * *t;
    }
    on_front_ = pareto_front(points, {true, false, false});
    const auto draw = [&](PlotPanel* p, std::size_t axis, const QString& x_label, const QString& none) {
        QCustomPlot* plot = p->plot();
        plot->clearPlottables();
        struct Ring { double x, y, size; };
        std::vector<Ring> rings;  // drawn after every marker: graph i stays run i's
        // Labels point inwards: right of markers in the left half, left of those in the right half.
        double x_min = 0, x_max = 0;
        for (const auto& pt : points)
            if (!std::isnan(pt[axis])) {
                x_min = std::min(x_min, pt[axis]);
                x_max = std::max(x_max, pt[axis]);
            }
        for (std::size_t i = 0; i < n; ++i) {
            const double x = points[i][axis], y = points[i][0];
            if (std::isnan(x) || std::isnan(y)) continue;
            const RunData& run = runs_[i];
            // One graph per run: QCustomPlot's scatter style (size, colour) is per graph.
            const QColor c = palette_color(static_cast<int>(i));
            QCPGraph* g = plot->addGraph();
            g->setName(run.label);
            g->setLineStyle(QCPGraph::lsNone);
            const double size = kMarkerMin + kMarkerGrowth * std::clamp(run.trainable_share, 0.0, 1.0);
            g->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssDisc, c.darker(120), c, size));
            g->addData(x, y);
            if (on_front_[i]) rings.push_back({x, y, size});

            auto* label = new QCPItemText(plot);
            label->position->setCoords(x, y);
            const bool right_half = x > (x_min + x_max) / 2;
            const int gap = static_cast<int>((on_front_[i] ? size + 8 : size) / 2) + 4;  // clear of the marker (and ring)
            label->setPositionAlignment((right_half ? Qt::AlignRight : Qt::AlignLeft) | Qt::AlignVCenter);
            label->setPadding(right_half ? QMargins(0, 0, gap, 0) : QMargins(gap, 0, 0, 0));
            label->setText((on_front_[i] ? QStringLiteral("★ ") : QString()) + run.label);
            QFont f = plot->xAxis->tickLabelFont();
            f.setBold(on_front_[i]);
            label->setFont(f);
            label->setColor(c.darker(140));
            label->setClipToAxisRect(false);
            point_labels_.emplace_back(plot, label);
        }
        for (const Ring& r : rings) {  // the front: a black ring around the run's own marker
            QCPGraph* ring = plot->addGraph();
            ring->setName(QString());
            ring->removeFromLegend();
            ring->setLineStyle(QCPGraph::lsNone);
            ring->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, QPen(Qt::black, 1.5), Qt::NoBrush, r.size + 8));
            ring->addData(r.x, r.y);
        }
        p->set_axis_labels(x_label, this->metric().isEmpty() ? tr("score") : this->metric());
        p->set_message(plot->plottableCount() == 0 ? none : QString());
        p->rescale();
    };
    draw(by_memory, 1, tr("activation peak, MiB"), tr("no run has both a memory peak and this metric"));
    draw(by_time, 2, tr("median step time, ms"), tr("no run has both two recorded steps and this metric"));
}

bool ComparePlots::on_pareto_front(std::size_t run) const { return run < on_front_.size() && on_front_[run]; }

int ComparePlots::curve_count() const {
    const QCustomPlot* plot = panel(QStringLiteral("loss"))->plot();
    int n = 0;
    for (int i = 0; i < plot->graphCount(); ++i) n += plot->graph(i)->name().isEmpty() ? 0 : 1;  // not the band edges
    return n;
}

int ComparePlots::scatter_points() const {
    int n = 0;
    const QCustomPlot* plot = panel(QStringLiteral("score vs memory"))->plot();
    for (int i = 0; i < plot->graphCount(); ++i) n += plot->graph(i)->name().isEmpty() ? 0 : plot->graph(i)->dataCount();  // not the rings
    return n;
}

void ComparePlots::flush() {
    for (PlotPanel* p : panels_) p->flush();
}

bool ComparePlots::save_all(const QString& dir) { return save_panels(panels_, dir); }

}  // namespace meft::ui
