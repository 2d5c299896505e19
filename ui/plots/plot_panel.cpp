#include "ui/plots/plot_panel.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <map>
#include <optional>

#include <QCheckBox>
#include <QDir>
#include <QFileDialog>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QLabel>
#include <QMessageBox>
#include <QPushButton>
#include <QScopeGuard>
#include <QSvgGenerator>
#include <QVBoxLayout>
#include <qcustomplot.h>

namespace meft::ui {

double Ema::add(double y) {
    if (!std::isfinite(y)) return y;
    last_ = last_ * weight_ + (1 - weight_) * y;
    weight_pow_ *= weight_;
    // Debiasing: after n points the weights sum to 1 - w^n; w = 0 leaves the raw value.
    const double debias = 1 - weight_pow_;
    return debias > 0 ? last_ / debias : y;
}

QColor palette_color(int i) {
    static constexpr std::array<QRgb, 10> tableau = {0x1f77b4, 0xff7f0e, 0x2ca02c, 0xd62728, 0x9467bd,
                                                     0x8c564b, 0xe377c2, 0x7f7f7f, 0xbcbd22, 0x17becf};
    return QColor(tableau[static_cast<std::size_t>(std::abs(i)) % tableau.size()]);
}

namespace {

constexpr int kRedrawMs = 40;           // at most 25 redraws a second, PlotJuggler's choice
constexpr double kMinFontPt = 9;        // smallest axis/legend text; some platform defaults go below
constexpr const char* kOverlay = "overlay";  // buffered layer: hover updates repaint only it

QString format_number(double v) {
    // Steps and layer indices read best as integers; everything else with 4 significant digits.
    if (std::isfinite(v) && v == std::round(v) && std::abs(v) < 1e9) return QString::number(static_cast<qint64>(v));
    return QString::number(v, 'g', 4);
}

// The readable name of key `key` when the axis shows text labels (layer names), else the number.
QString key_text(QCPAxis* axis, double key) {
    if (auto text = axis->ticker().dynamicCast<QCPAxisTickerText>(); text && text->ticks().contains(key))
        return text->ticks().value(key);
    return format_number(key);
}

// `r` plus `fraction` of its span on each side, never padded below zero when the data is not
// negative; a single value gets a visible span around it. `top` (0..1) is the share of the height
// kept free above the data for the legend.
QCPRange padded(const QCPRange& r, double fraction, double top) {
    double pad = fraction * r.size();
    if (r.size() == 0) pad = r.upper != 0 ? 0.1 * std::abs(r.upper) : 1;
    const double lower = r.lower >= 0 ? std::max(0.0, r.lower - pad) : r.lower - pad;
    const double upper = r.upper + pad;
    return QCPRange(lower, lower + (upper - lower) / (1 - top));
}

// The smallest positive value of a plottable (bars report their zero base in their value range,
// which a log axis cannot show).
std::optional<double> smallest_positive(QCPAbstractPlottable* p) {
    std::optional<double> out;
    if (QCPPlottableInterface1D* data = p->interface1D())
        for (int i = 0; i < data->dataCount(); ++i)
            if (const double v = data->dataMainValue(i); v > 0 && (!out || v < *out)) out = v;
    return out;
}

// The key extent of a plottable. Bars are measured in plot coordinates here: QCPBars' own key
// range converts its width through the axis' current pixel scale, which is stale before the fit.
// Grouped bars sit side by side, so the group's total width counts.
QCPRange key_extent(QCPAbstractPlottable* p, bool& found) {
    auto* bars = qobject_cast<QCPBars*>(p);
    if (!bars || bars->widthType() != QCPBars::wtPlotCoords) return p->getKeyRange(found);
    found = bars->dataCount() > 0;
    if (!found) return {};
    double width = bars->width();
    if (const QCPBarsGroup* group = bars->barsGroup()) {
        width = 0;
        for (const QCPBars* b : group->bars()) width += b->width();
        if (group->spacingType() == QCPBarsGroup::stPlotCoords) width += group->spacing() * (group->size() - 1);
    }
    const double half = width;  // the bars' half width plus as much air beside the outermost ones
    return QCPRange(bars->dataMainKey(0) - half, bars->dataMainKey(bars->dataCount() - 1) + half);
}

}  // namespace

PlotPanel::PlotPanel(const QString& title, QWidget* parent) : QWidget(parent) {
    title_ = new QLabel(title, this);
    QFont title_font = title_->font();
    title_font.setBold(true);
    title_font.setPointSizeF(std::max(kMinFontPt + 1, title_font.pointSizeF()));
    title_->setFont(title_font);

    log_box_ = new QCheckBox(tr("log y"), this);
    log_box_->setToolTip(tr("Logarithmic value axis (non-positive values are left out of the range)"));
    auto* save_button = new QPushButton(tr("save…"), this);
    save_button->setToolTip(tr("Save this plot as PNG, PDF or SVG"));

    tools_ = new QHBoxLayout;
    tools_->setContentsMargins(0, 0, 0, 0);
    tools_->addWidget(title_);
    tools_->addStretch(1);
    tools_->addWidget(log_box_);
    tools_->addWidget(save_button);

    plot_ = new QCustomPlot(this);
    plot_->setMinimumSize(240, 170);
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(4, 4, 4, 4);
    layout->setSpacing(2);
    layout->addLayout(tools_);
    layout->addWidget(plot_, 1);
    note_ = new QLabel(this);
    note_->setWordWrap(true);
    note_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    note_->hide();
    layout->addWidget(note_);

    // Readable text everywhere: never below 9 pt whatever the platform default is.
    QFont f = font();
    f.setPointSizeF(std::max(kMinFontPt, f.pointSizeF()));
    for (QCPAxis* axis : {plot_->xAxis, plot_->yAxis, plot_->yAxis2}) {
        axis->setTickLabelFont(f);
        axis->setLabelFont(f);
        axis->setNumberFormat("gb");  // 1·10⁻⁵ rather than 1e-05
    }
    plot_->legend->setFont(f);
    plot_->legend->setBrush(QColor(255, 255, 255, 210));
    plot_->legend->setVisible(false);
    plot_->axisRect()->insetLayout()->setInsetAlignment(0, Qt::AlignTop | Qt::AlignRight);

    // Training curves are explored along x: drag and wheel move the steps, y follows the data.
    plot_->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
    plot_->axisRect()->setRangeDrag(Qt::Horizontal);
    plot_->axisRect()->setRangeZoom(Qt::Horizontal);
    plot_->setNoAntialiasingOnDrag(true);

    plot_->layer(QString::fromLatin1(kOverlay))->setMode(QCPLayer::lmBuffered);  // QCustomPlot's own top layer

    tracer_ = new QCPItemTracer(plot_);
    tracer_->setLayer(QString::fromLatin1(kOverlay));
    tracer_->position->setType(QCPItemPosition::ptAbsolute);
    tracer_->setStyle(QCPItemTracer::tsCircle);
    tracer_->setSize(8);
    tracer_->setPen(QPen(Qt::black, 1.5));
    tracer_->setVisible(false);

    readout_ = new QCPItemText(plot_);
    readout_->setLayer(QString::fromLatin1(kOverlay));
    readout_->position->setType(QCPItemPosition::ptAxisRectRatio);
    readout_->position->setCoords(0.01, 0.02);
    readout_->setPositionAlignment(Qt::AlignLeft | Qt::AlignTop);
    readout_->setFont(f);
    readout_->setPadding(QMargins(4, 2, 4, 2));
    readout_->setBrush(QColor(255, 255, 255, 230));
    readout_->setPen(QPen(QColor(120, 120, 120)));
    readout_->setVisible(false);

    message_ = new QCPItemText(plot_);
    message_->setLayer(QString::fromLatin1(kOverlay));
    message_->position->setType(QCPItemPosition::ptAxisRectRatio);
    message_->position->setCoords(0.5, 0.5);
    message_->setPositionAlignment(Qt::AlignCenter);
    QFont message_font = f;
    message_font.setItalic(true);
    message_->setFont(message_font);
    message_->setColor(QColor(90, 90, 90));
    message_->setVisible(false);

    timer_.setSingleShot(true);
    timer_.setInterval(kRedrawMs);
    connect(&timer_, &QTimer::timeout, this, &PlotPanel::on_tick);
    connect(log_box_, &QCheckBox::toggled, this, [this](bool on) { set_log_y(on); });
    connect(save_button, &QPushButton::clicked, this, &PlotPanel::save_dialog);

    connect(plot_, &QCustomPlot::mouseMove, this, [this](QMouseEvent* e) {
        if (e->buttons() & Qt::LeftButton) {
            follow_ = false;  // the user is dragging: stop snapping back to the data
            hide_hover();
            return;
        }
        hover_at(e->position());
    });
    connect(plot_, &QCustomPlot::mouseWheel, this, [this](QWheelEvent*) { follow_ = false; });
    connect(plot_, &QCustomPlot::mouseDoubleClick, this, [this](QMouseEvent*) { rescale(); });
    plot_->installEventFilter(this);
}

QString PlotPanel::title() const { return title_->text(); }
void PlotPanel::set_title(const QString& title) { title_->setText(title); }

void PlotPanel::set_axis_labels(const QString& x, const QString& y) {
    plot_->xAxis->setLabel(x);
    plot_->yAxis->setLabel(y);
    mark_dirty();
}

void PlotPanel::add_tool(QWidget* tool) { tools_->insertWidget(tools_->indexOf(log_box_), tool); }

bool PlotPanel::log_y() const { return plot_->yAxis->scaleType() == QCPAxis::stLogarithmic; }

void PlotPanel::set_log_y(bool on) {
    if (log_box_->isChecked() != on) {
        log_box_->setChecked(on);  // re-enters through toggled()
        return;
    }
    if (on == log_y()) return;
    plot_->yAxis->setScaleType(on ? QCPAxis::stLogarithmic : QCPAxis::stLinear);
    // The log ticker to start with; fit_log keeps ordinary ticks for data within one decade.
    if (on) {
        auto ticker = QSharedPointer<QCPAxisTickerLog>::create();
        ticker->setSubTickCount(8);
        plot_->yAxis->setTicker(ticker);
    } else {
        plot_->yAxis->setTicker(QSharedPointer<QCPAxisTicker>::create());
        plot_->yAxis->setNumberFormat("gb");
        plot_->yAxis->setNumberPrecision(6);
    }
    fit_axes(follow_);  // the value range must change with the scale even when x is zoomed
    mark_dirty();
}

void PlotPanel::set_message(const QString& text) {
    message_->setText(text);
    message_->setVisible(!text.isEmpty());
    mark_dirty();
}

QString PlotPanel::message() const { return message_->visible() ? message_->text() : QString(); }

void PlotPanel::set_note(const QString& text) {
    note_->setText(text);
    note_->setVisible(!text.isEmpty());
}

QString PlotPanel::note() const { return note_->text(); }

void PlotPanel::set_legend_allowed(bool allowed) {
    legend_allowed_ = allowed;
    mark_dirty();
}

void PlotPanel::set_padding(double key_fraction, double value_fraction) {
    key_padding_ = key_fraction;
    value_padding_ = value_fraction;
    mark_dirty();
}

void PlotPanel::set_legend_headroom(bool on) {
    legend_headroom_ = on;
    mark_dirty();
}

void PlotPanel::set_include_zero(bool on) {
    include_zero_ = on;
    mark_dirty();
}

QCPAbstractPlottable* PlotPanel::series(const QString& name) const {
    for (int i = 0; i < plot_->plottableCount(); ++i)
        if (plot_->plottable(i)->name() == name) return plot_->plottable(i);
    return nullptr;
}

void PlotPanel::mark_dirty() {
    dirty_ = true;
    if (!timer_.isActive()) timer_.start();
}

void PlotPanel::on_tick() {
    // A hidden panel (another tab) keeps its changes and draws them when shown.
    if (!dirty_ || !isVisible()) return;
    prepare_redraw();
    plot_->replot(QCustomPlot::rpQueuedReplot);
}

void PlotPanel::flush() {
    timer_.stop();
    prepare_redraw();
    plot_->replot(QCustomPlot::rpImmediateRefresh);
}

void PlotPanel::prepare_redraw() {
    dirty_ = false;
    update_legend();  // first: the legend's size decides the headroom
    if (follow_) fit_axes(true);
    ++replot_count_;
}

void PlotPanel::rescale() {
    follow_ = true;
    mark_dirty();
}

void PlotPanel::showEvent(QShowEvent* event) {
    QWidget::showEvent(event);
    if (dirty_ && !timer_.isActive()) timer_.start();
}

void PlotPanel::fit_axes(bool keys_too) {
    // The data's extent per axis, from the visible plottables (positive values only on log axes).
    std::map<QCPAxis*, std::optional<QCPRange>> extent;
    const auto widen = [&](QCPAxis* axis, const QCPRange& r, bool found) {
        auto& e = extent[axis];
        if (found) e = e ? QCPRange(std::min(e->lower, r.lower), std::max(e->upper, r.upper)) : r;
    };
    for (int i = 0; i < plot_->plottableCount(); ++i) {
        QCPAbstractPlottable* p = plot_->plottable(i);
        if (!p->visible()) continue;
        bool found = false;
        if (keys_too) {
            const QCPRange k = key_extent(p, found);
            widen(p->keyAxis(), k, found);
        }
        const bool log = p->valueAxis()->scaleType() == QCPAxis::stLogarithmic;
        QCPRange v = p->getValueRange(found, log ? QCP::sdPositive : QCP::sdBoth);
        if (log && found && !(v.lower > 0)) {
            const auto low = smallest_positive(p);
            found = low.has_value();
            if (low) v.lower = *low;
        }
        widen(p->valueAxis(), v, found);
    }
    // The share of the plot's height the legend takes (inset, top right) plus a little air.
    double top = 0;
    if (legend_headroom_ && plot_->legend->visible()) {
        const int height = plot_->axisRect()->height() > 50 ? plot_->axisRect()->height() : 300;
        top = std::min(0.5, (plot_->legend->minimumOuterSizeHint().height() + 16.0) / height);
    }
    for (const auto& [axis, range] : extent) {
        const bool is_value = axis->orientation() == Qt::Vertical;
        if (axis->scaleType() == QCPAxis::stLogarithmic) {
            fit_log(axis, range.value_or(QCPRange(1e-3, 1)));  // no positive value: a sane default
        } else if (range) {
            QCPRange r = *range;
            if (is_value && include_zero_) r = QCPRange(std::min(0.0, r.lower), std::max(0.0, r.upper));
            axis->setRange(padded(r, is_value ? value_padding_ : key_padding_, is_value ? top : 0));
        }
    }
    plot_->yAxis2->setVisible(extent.contains(plot_->yAxis2));
}

void PlotPanel::fit_log(QCPAxis* axis, const QCPRange& r) {
    const double decades = std::log10(r.upper / r.lower);
    const bool wide = decades >= 1;
    if (wide) {
        // Whole decades, labelled 10ⁿ. Strictly inside: a value of exactly 1e-7 gets 1e-8 below
        // it, or its bar would be empty.
        const double lo = std::pow(10.0, std::ceil(std::log10(r.lower)) - 1);
        axis->setRange(lo, std::max(std::pow(10.0, std::ceil(std::log10(r.upper))), lo * 10));
    } else {
        // Within a decade (a loss from 1.3 to 0.25) the powers of ten would leave the data
        // unlabelled: pad a little in log space and label with ordinary ticks (0.4, 0.6, …).
        const double pad = std::pow(10.0, 0.05 * std::max(decades, 0.05));
        axis->setRange(r.lower / pad, r.upper * pad);
    }
    if (wide != !axis->ticker().dynamicCast<QCPAxisTickerLog>().isNull()) {
        if (wide) {
            auto ticker = QSharedPointer<QCPAxisTickerLog>::create();
            ticker->setSubTickCount(8);  // 2·10ⁿ … 9·10ⁿ
            axis->setTicker(ticker);
        } else {
            axis->setTicker(QSharedPointer<QCPAxisTicker>::create());
        }
    }
    axis->setNumberFormat(wide ? "eb" : "gb");  // every decade as 10ⁿ, not 0.001 next to 10⁻⁵
    axis->setNumberPrecision(wide ? 0 : 6);
}

void PlotPanel::update_legend() {
    int named = 0;  // named series that show something
    for (int i = 0; i < plot_->plottableCount(); ++i) {
        QCPAbstractPlottable* p = plot_->plottable(i);
        const QCPPlottableInterface1D* data = p->interface1D();
        if (p->visible() && !p->name().isEmpty() && (!data || data->dataCount() > 0)) ++named;
    }
    plot_->legend->setVisible(legend_allowed_ && named > 1);
}

void PlotPanel::hide_hover() {
    tracer_->setVisible(false);
    readout_->setVisible(false);
}

bool PlotPanel::eventFilter(QObject* watched, QEvent* event) {
    if (watched == plot_ && event->type() == QEvent::Leave && readout_->visible()) {
        hide_hover();
        plot_->layer(QString::fromLatin1(kOverlay))->replot();
    }
    return QWidget::eventFilter(watched, event);
}

QString PlotPanel::hover_at(const QPointF& pos) {
    const QString text = find_nearest(pos);
    plot_->layer(QString::fromLatin1(kOverlay))->replot();  // only the buffered overlay repaints
    return text;
}

QString PlotPanel::find_nearest(const QPointF& pos) {
    hide_hover();
    if (!plot_->axisRect()->rect().contains(pos.toPoint())) return {};
    // Nearest point by key in each visible series, then the one closest to the cursor on screen.
    QCPAbstractPlottable* best = nullptr;
    int best_index = -1;
    double best_dist = std::numeric_limits<double>::infinity();
    for (int i = 0; i < plot_->plottableCount(); ++i) {
        QCPAbstractPlottable* p = plot_->plottable(i);
        QCPPlottableInterface1D* data = p->interface1D();
        if (!p->visible() || !data || data->dataCount() == 0) continue;
        const double key = p->keyAxis()->pixelToCoord(p->keyAxis()->orientation() == Qt::Horizontal ? pos.x() : pos.y());
        const int after = std::clamp(data->findBegin(key, false), 0, data->dataCount() - 1);
        for (int j : {after - 1, after}) {
            if (j < 0 || !std::isfinite(data->dataMainValue(j))) continue;
            const QPointF d = data->dataPixelPosition(j) - pos;
            const double dist = d.x() * d.x() + d.y() * d.y();
            if (dist < best_dist) best = p, best_index = j, best_dist = dist;
        }
    }
    if (!best) return {};
    const QCPPlottableInterface1D* data = best->interface1D();
    const QString text = QStringLiteral("%1: x=%2, y=%3")
                             .arg(best->name().isEmpty() ? tr("value") : best->name(),
                                  key_text(best->keyAxis(), data->dataMainKey(best_index)),
                                  format_number(data->dataMainValue(best_index)));
    tracer_->position->setCoords(data->dataPixelPosition(best_index));
    tracer_->setVisible(true);
    readout_->setText(text);
    readout_->setVisible(true);
    return text;
}

bool PlotPanel::save(const QString& path, int width, int height) {
    hide_hover();
    prepare_redraw();  // draw pending data first
    // The exported figure carries its title (in the workbench it sits in the tool row instead).
    plot_->plotLayout()->insertRow(0);
    QFont heading_font = title_->font();
    auto* heading = new QCPTextElement(plot_, title(), heading_font);
    plot_->plotLayout()->addElement(0, 0, heading);
    const auto restore = qScopeGuard([&] {
        plot_->plotLayout()->remove(heading);
        plot_->plotLayout()->simplify();
        plot_->replot(QCustomPlot::rpQueuedReplot);
    });
    // A panel that was never shown has only its minimum size: export at a sensible default instead.
    const int w = width > 0 ? width : plot_->isVisible() ? plot_->width() : 800;
    const int h = height > 0 ? height : plot_->isVisible() ? plot_->height() : 500;
    const QString suffix = QFileInfo(path).suffix().toLower();
    bool ok = false;
    if (suffix == QLatin1String("png")) {
        ok = plot_->savePng(path, w, h);
    } else if (suffix == QLatin1String("pdf")) {
        ok = plot_->savePdf(path, w, h, QCP::epAllowCosmetic, QStringLiteral("MEFT Workbench"), title());
    } else if (suffix == QLatin1String("svg")) {
        QSvgGenerator svg;
        svg.setFileName(path);
        svg.setSize(QSize(w, h));
        svg.setViewBox(QRect(0, 0, w, h));
        svg.setTitle(title());
        svg.setDescription(QStringLiteral("MEFT Workbench plot"));
        QCPPainter painter;
        if (painter.begin(&svg)) {
            plot_->toPainter(&painter, w, h);
            ok = painter.end();
        }
    }
    return ok && QFileInfo(path).size() > 0;
}

void PlotPanel::save_dialog() {
    const QString png = tr("PNG image (*.png)"), pdf = tr("PDF document (*.pdf)"), svg = tr("SVG drawing (*.svg)");
    QString filter = png;
    QString name = title();
    name.replace(QRegularExpression(QStringLiteral("[^A-Za-z0-9_-]+")), QStringLiteral("_"));
    QString path = QFileDialog::getSaveFileName(this, tr("Save plot"), name + QStringLiteral(".png"),
                                                QStringList{png, pdf, svg}.join(QStringLiteral(";;")), &filter);
    if (path.isEmpty()) return;
    if (QFileInfo(path).suffix().isEmpty())
        path += filter == pdf ? QStringLiteral(".pdf") : filter == svg ? QStringLiteral(".svg") : QStringLiteral(".png");
    if (!save(path)) QMessageBox::warning(this, tr("Save plot"), tr("Could not write %1.").arg(path));
}

bool save_panels(const QMap<QString, PlotPanel*>& panels, const QString& dir) {
    if (!QDir().mkpath(dir)) return false;
    bool ok = true;
    for (auto it = panels.begin(); it != panels.end(); ++it) {
        QString file = it.key();
        file.replace(QLatin1Char(' '), QLatin1Char('_'));
        ok = it.value()->save(QDir(dir).filePath(file + QStringLiteral(".png"))) && ok;
    }
    return ok;
}

}  // namespace meft::ui
