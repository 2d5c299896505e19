// plot_panel.h — one titled plot of the workbench: a QCustomPlot with a small tool row
// (log y, save…), a hover read-out, horizontal drag/zoom, double-click to rescale, and a throttled
// redraw so live runs can append thousands of points a second without repainting each time.
//
// Data setters elsewhere change the QCustomPlot's plottables and then call mark_dirty(); a 40 ms
// single-shot timer (PlotJuggler's figure: at most 25 redraws a second) rescales and replots once
// for however many changes arrived meanwhile. flush() does it now (screenshots, tests).
#pragma once
#include <QColor>
#include <QString>
#include <QTimer>
#include <QMap>
#include <QWidget>

class QCheckBox;
class QCustomPlot;
class QCPAbstractPlottable;
class QCPAxis;
class QCPRange;
class QCPItemText;
class QCPItemTracer;
class QHBoxLayout;
class QLabel;

namespace meft::ui {

// ---- plotting transforms the views share (no other math lives in the GUI) ----

// TensorBoard's smoothing: an exponential moving average debiased by 1 - w^n, so the first points
// are not dragged towards zero. Incremental: feed points one by one and keep the state.
class Ema {
public:
    explicit Ema(double weight = 0.6) : weight_(weight) {}
    double weight() const { return weight_; }
    // Non-finite values pass through and leave the state alone (as TensorBoard does).
    double add(double y);

private:
    double weight_ = 0.6, last_ = 0, weight_pow_ = 1;  // weight_pow_ = w^n after n finite points
};

constexpr double kMiB = 1024.0 * 1024.0;
inline double to_mib(double bytes) { return bytes / kMiB; }

// A fixed palette (Tableau 10): one colour per run or per metric, stable across views.
QColor palette_color(int i);

class PlotPanel;
// Each panel as DIR/<name with _ for spaces>.png; false if any could not be written.
bool save_panels(const QMap<QString, PlotPanel*>& panels, const QString& dir);

// ---- the panel ----

class PlotPanel : public QWidget {
    Q_OBJECT
public:
    explicit PlotPanel(const QString& title, QWidget* parent = nullptr);

    QCustomPlot* plot() const { return plot_; }
    QString title() const;
    void set_title(const QString& title);
    void set_axis_labels(const QString& x, const QString& y);
    // Puts a widget (a slider, a combo) into the tool row, left of "log y".
    void add_tool(QWidget* tool);

    bool log_y() const;
    void set_log_y(bool on);

    // A centred note over the plot ("no reconstruction checks in this run"); empty hides it.
    void set_message(const QString& text);
    QString message() const;
    // A line or two under the plot that explains it (what was measured where); "" hides it.
    void set_note(const QString& text);
    QString note() const;

    // The legend shows itself when more than one named series is plotted, unless forced off.
    void set_legend_allowed(bool allowed);

    // Extra room around the data when fitting, as fractions of the data's span: keys (x) and
    // values (y). Default (0, 0.05); a labelled scatter needs room for its labels.
    void set_padding(double key_fraction, double value_fraction);
    // Reserve room above the data for the legend (panels whose curves or bars reach the top right).
    void set_legend_headroom(bool on);
    // Keep 0 inside the linear value range (memory in MiB: proportions matter more than wiggles).
    void set_include_zero(bool on);

    // The plottable named `name` (nullptr when none): for views and tests.
    QCPAbstractPlottable* series(const QString& name) const;

    // After changing data: rescale (unless the user zoomed or dragged) and redraw on the next tick.
    void mark_dirty();
    // Rescale (if following the data) and replot immediately.
    void flush();
    // Forget the user's zoom and follow the data again (what double-click does).
    void rescale();
    // Replots this panel has done (timer ticks that found it dirty, flushes, saves).
    int replot_count() const { return replot_count_; }

    // Writes the plot as PNG, PDF or SVG, chosen by the path's extension; false on failure.
    // width/height 0: the widget's size (800×500 while it is not shown).
    bool save(const QString& path, int width = 0, int height = 0);

    // The read-out for a mouse position in widget pixels: "series: x=…, y=…" of the nearest point
    // of the visible series, or empty. Also moves the tracer; the mouse handler calls it.
    QString hover_at(const QPointF& pos);

protected:
    void showEvent(QShowEvent* event) override;
    bool eventFilter(QObject* watched, QEvent* event) override;

private:
    void on_tick();
    QString find_nearest(const QPointF& pos);  // hover_at without the repaint
    void prepare_redraw();  // fit the axes, update the legend, count the redraw
    void fit_axes(bool keys_too);
    void fit_log(QCPAxis* axis, const QCPRange& data);
    void update_legend();
    void save_dialog();
    void hide_hover();

    QLabel* title_ = nullptr;
    QHBoxLayout* tools_ = nullptr;
    QCheckBox* log_box_ = nullptr;
    QCustomPlot* plot_ = nullptr;
    QCPItemTracer* tracer_ = nullptr;
    QCPItemText* readout_ = nullptr;
    QCPItemText* message_ = nullptr;
    QLabel* note_ = nullptr;
    QTimer timer_;
    bool dirty_ = false;
    bool follow_ = true;  // rescale to the data on each redraw until the user zooms or drags
    bool legend_allowed_ = true;
    bool legend_headroom_ = false;
    bool include_zero_ = false;
    double key_padding_ = 0, value_padding_ = 0.05;
    int replot_count_ = 0;
};

}  // namespace meft::ui
