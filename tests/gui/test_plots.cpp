// test_plots.cpp — Qt Test suite of the plot widgets: PlotPanel (throttled redraw, log y, export,
// hover), RunPlots (live appends, smoothing, memory bars, reconstruction) and ComparePlots.
// Runs offscreen (QT_QPA_PLATFORM=offscreen). Set MEFT_PLOT_SHOTS=/some/dir to also write PNGs of
// every panel there for a look by eye.
#include <cmath>
#include <functional>
#include <random>

#include <QCheckBox>
#include <QElapsedTimer>
#include <QFile>
#include <QTemporaryDir>
#include <QtTest>
#include <qcustomplot.h>

#include "ui/plots/compare_plots.h"
#include "ui/plots/plot_panel.h"
#include "store/step_memory.h"
#include "ui/plots/run_plots.h"

using meft::LayerMemoryRow;
using meft::StepRow;
using namespace meft::ui;

namespace {

// A plausible fine-tuning curve: exponential decay to 0.35 with seeded noise, warm-up + linear decay.
std::vector<StepRow> make_steps(int first, int n, unsigned seed = 7) {
    std::mt19937 rng(seed + static_cast<unsigned>(first));
    std::normal_distribution<double> noise(0.0, 0.08);
    std::vector<StepRow> rows;
    for (int s = first; s < first + n; ++s) {
        StepRow r;
        r.step = s;
        r.loss = 0.35 + 0.9 * std::exp(-s / 250.0) + noise(rng);
        r.learning_rate = s < 100 ? 2e-4 * s / 100 : 2e-4 * std::max(0.0, 1 - (s - 100) / 100000.0);
        r.grad_norm = 1;
        r.elapsed_s = 0.05 * s;   // 20 steps a second
        r.tokens_per_s = 4096;    // 16 x 128 padded tokens a step, 20 steps a second → 40,960 a second
        r.activation_bytes = static_cast<std::int64_t>((300 + 20 * std::sin(s / 30.0)) * kMiB);
        r.resident_bytes = static_cast<std::int64_t>(420 * kMiB);
        rows.push_back(r);
    }
    return rows;
}

std::map<std::string, double> make_eval(int step, double shift = 0) {
    const double t = 1 - std::exp(-step / 300.0);
    return {{"accuracy", 0.5 + 0.4 * t + shift}, {"f1", 0.45 + 0.4 * t + shift}, {"loss", 1.2 - 0.8 * t}};
}

// Embeddings, L encoder layers and the head, planned and measured.
std::vector<LayerMemoryRow> make_layers(int L, double scale = 1) {
    std::vector<LayerMemoryRow> rows;
    for (const char* kind : {"planned", "measured"})
        for (int l = -1; l <= L; ++l) {
            const std::string label = l < 0 ? "embeddings" : l == L ? "head" : "layer " + std::to_string(l);
            const double mib = (l < 0 ? 12 : l == L ? 2 : 30) * scale * (kind[0] == 'm' ? 0.93 : 1.0);
            rows.push_back({kind, l, label, static_cast<std::int64_t>(mib * kMiB), static_cast<std::int64_t>(mib / 3 * kMiB)});
        }
    return rows;
}

RunData make_run(std::int64_t id, const QString& method, int steps, int steps_per_epoch, double share, double mem_scale) {
    RunData r;
    r.id = id;
    r.label = QStringLiteral("#%1 %2 · sst2").arg(id).arg(method);
    r.status = "finished";
    r.steps = make_steps(1, steps, static_cast<unsigned>(id));
    for (auto& s : r.steps) s.activation_bytes = static_cast<std::int64_t>(s.activation_bytes * mem_scale);
    for (int s = 100; s <= steps; s += 100) r.evals.emplace_back(s, make_eval(s, 0.02 * static_cast<double>(id)));
    r.layer_memory = make_layers(6, mem_scale);
    r.steps_per_epoch = steps_per_epoch;
    r.trainable_share = share;
    return r;
}

int count(const PlotPanel* panel, const QString& series) {
    const QCPAbstractPlottable* p = panel->series(series);
    return p ? const_cast<QCPAbstractPlottable*>(p)->interface1D()->dataCount() : -1;
}

QByteArray head(const QString& path, int n) {
    QFile f(path);
    return f.open(QIODevice::ReadOnly) ? f.read(n) : QByteArray();
}

void show_and_settle(QWidget& w) {
    w.resize(1400, 1000);
    w.show();
    QVERIFY(QTest::qWaitForWindowExposed(&w));
    QTest::qWait(100);  // first layout and resize-triggered replots are over
}

// For a look by eye: MEFT_PLOT_SHOTS=/tmp/plots writes every panel and the whole widget there.
void maybe_shoot(QWidget& w, const QString& name, const std::function<bool(const QString&)>& save_all) {
    const QString dir = qEnvironmentVariable("MEFT_PLOT_SHOTS");
    if (dir.isEmpty()) return;
    QVERIFY(QDir().mkpath(dir));
    QVERIFY(w.grab().save(dir + QLatin1Char('/') + name + QStringLiteral("_widget.png")));  // first: saving hides the hover
    QVERIFY(save_all(dir + QLatin1Char('/') + name));
}

}  // namespace

class TestPlots : public QObject {
    Q_OBJECT
private slots:
    void testEmaMatchesTensorBoard();
    void testRunPlotsAppends();
    void testShowRunReplacesEverything();
    void testAppendsDoNotReplotSynchronously();
    void testRedrawsAreThrottled();
    void testHundredThousandPoints();
    void testSmoothingSliderRecomputes();
    void testReconstructionEmptyMessage();
    void testLogYToggle();
    void testLogYWithNonPositiveValues();
    void testSaveFormats();
    void testHoverReadout();
    void testCompareRuns();
    void testCompareAlignByEpoch();
    void testRunPlotsXAxis();
    void testCompareGroupsIntoBands();
    void testStepMemoryStacksTheParts();
    void testCompareMarksTheParetoFront();
};

void TestPlots::testEmaMatchesTensorBoard() {
    // TensorBoard: last = last*w + (1-w)*y; smoothed = last / (1 - w^n).
    Ema ema(0.5);
    QCOMPARE(ema.add(1), 1.0);
    QVERIFY(std::abs(ema.add(2) - 1.25 / 0.75) < 1e-12);
    QVERIFY(std::isnan(ema.add(std::nan(""))));  // passes through, state untouched
    QVERIFY(std::abs(ema.add(3) - 2.125 / 0.875) < 1e-12);
    Ema none(0);
    QCOMPARE(none.add(4), 4.0);
    QCOMPARE(none.add(5), 5.0);
}

void TestPlots::testRunPlotsAppends() {
    RunPlots plots;
    for (int chunk = 0; chunk < 10; ++chunk) plots.append_steps(make_steps(1 + chunk * 100, 100));
    for (int s = 100; s <= 1000; s += 100) plots.append_eval(s, make_eval(s));
    plots.set_layer_memory(make_layers(6));
    plots.append_reconstruction(500, {1e-7, 3e-7, 1e-6, 4e-6, 2e-5, 1e-4});
    plots.append_reconstruction(1000, {2e-7, 5e-7, 2e-6, 8e-6, 3e-5, 2e-4});
    plots.flush();

    QCOMPARE(plots.loss_points(), 1000);
    PlotPanel* loss = plots.panel(QStringLiteral("loss"));
    QCOMPARE(count(loss, QStringLiteral("smoothed")), 1000);
    QCOMPARE(count(plots.panel(QStringLiteral("learning rate")), QStringLiteral("learning rate")), 1000);
    QCOMPARE(count(plots.panel(QStringLiteral("memory")), QStringLiteral("activation peak")), 1000);

    // The incremental EMA ends inside the raw curve's range (and is the smoothed curve).
    auto* raw = static_cast<QCPGraph*>(loss->series(QStringLiteral("raw")));
    auto* smooth = static_cast<QCPGraph*>(loss->series(QStringLiteral("smoothed")));
    bool found = false;
    const QCPRange raw_range = raw->getValueRange(found);
    QVERIFY(found);
    const double last = (smooth->data()->constEnd() - 1)->value;
    QVERIFY2(last > raw_range.lower && last < raw_range.upper, qPrintable(QString::number(last)));
    QCOMPARE((smooth->data()->constEnd() - 1)->key, 1000.0);

    QCOMPARE(plots.eval_points(), 10);
    PlotPanel* eval = plots.panel(QStringLiteral("evaluation"));
    QCOMPARE(count(eval, QStringLiteral("accuracy")), 10);
    QCOMPARE(count(eval, QStringLiteral("f1")), 10);
    QCOMPARE(count(eval, QStringLiteral("eval loss")), 10);
    // Scores and loss never share an axis.
    QCOMPARE(eval->series(QStringLiteral("eval loss"))->valueAxis(), eval->plot()->yAxis2);
    QCOMPARE(eval->series(QStringLiteral("accuracy"))->valueAxis(), eval->plot()->yAxis);
    QVERIFY(eval->plot()->yAxis2->visible());

    PlotPanel* layers = plots.panel(QStringLiteral("layer memory"));
    QCOMPARE(count(layers, QStringLiteral("planned: held")), 8);  // embeddings + 6 layers + head
    QCOMPARE(count(layers, QStringLiteral("measured: held")), 8);
    QCOMPARE(count(layers, QStringLiteral("planned: transient")), 8);  // stacked on the held bars
    QCOMPARE(count(layers, QStringLiteral("measured: transient")), 8);
    auto* transient = static_cast<QCPBars*>(layers->series(QStringLiteral("measured: transient")));
    QCOMPARE(transient->barBelow(), static_cast<QCPBars*>(layers->series(QStringLiteral("measured: held"))));
    auto ticker = layers->plot()->xAxis->ticker().dynamicCast<QCPAxisTickerText>();
    QVERIFY(ticker);
    QCOMPARE(ticker->ticks().size(), 8);
    QCOMPARE(ticker->ticks().value(0), QStringLiteral("emb"));
    QCOMPARE(ticker->ticks().value(7), QStringLiteral("head"));

    PlotPanel* rec = plots.panel(QStringLiteral("reconstruction"));
    QCOMPARE(count(rec, QStringLiteral("relative error")), 6);
    QVERIFY(rec->message().isEmpty());
    QVERIFY(rec->log_y());
    QVERIFY(rec->plot()->yAxis->ticker().dynamicCast<QCPAxisTickerLog>());  // errors span decades
    QVERIFY(rec->plot()->yAxis->range().lower < 2e-7);                        // the smallest bar shows
    QVERIFY(rec->title().contains(QStringLiteral("1000")));  // the latest check is the one shown

    QVERIFY(loss->plot()->legend->visible());                                   // raw + smoothed
    QVERIFY(!plots.panel(QStringLiteral("learning rate"))->plot()->legend->visible());  // one series
    for (const char* name : {"loss", "learning rate", "evaluation", "layer memory", "step memory", "memory", "reconstruction"})
        QVERIFY2(plots.panel(QString::fromLatin1(name)), name);
}

void TestPlots::testShowRunReplacesEverything() {
    RunPlots plots;
    plots.append_steps(make_steps(1, 50));
    plots.append_eval(50, make_eval(50));
    RunData run = make_run(3, QStringLiteral("meft"), 400, 100, 0.01, 0.2);
    run.reconstruction = {{200, {1e-6, 2e-6}}, {400, {2e-6, 3e-6}}};
    plots.show_run(run);
    plots.flush();
    QCOMPARE(plots.loss_points(), 400);
    QCOMPARE(plots.eval_points(), 4);
    QCOMPARE(count(plots.panel(QStringLiteral("evaluation")), QStringLiteral("accuracy")), 4);
    QCOMPARE(count(plots.panel(QStringLiteral("reconstruction")), QStringLiteral("relative error")), 2);
    plots.clear();
    QCOMPARE(plots.loss_points(), 0);
    QCOMPARE(plots.eval_points(), 0);
    QVERIFY(!plots.panel(QStringLiteral("evaluation"))->series(QStringLiteral("accuracy")));
}

void TestPlots::testAppendsDoNotReplotSynchronously() {
    RunPlots plots;
    show_and_settle(plots);
    PlotPanel* loss = plots.panel(QStringLiteral("loss"));
    const int before = loss->replot_count();
    for (int i = 0; i < 100; ++i) plots.append_steps(make_steps(1 + 10 * i, 10));
    QVERIFY(loss->replot_count() - before <= 1);
    QCOMPARE(plots.loss_points(), 1000);
    // …and the pending change is drawn on the next tick.
    QTRY_VERIFY_WITH_TIMEOUT(loss->replot_count() > before, 1000);
}

void TestPlots::testRedrawsAreThrottled() {
    RunPlots plots;
    show_and_settle(plots);
    PlotPanel* loss = plots.panel(QStringLiteral("loss"));
    const int before = loss->replot_count();
    QElapsedTimer clock;
    clock.start();
    for (int i = 0; i < 60; ++i) {  // a live run reporting every ~5 ms
        plots.append_steps(make_steps(1 + 10 * i, 10));
        QTest::qWait(5);
    }
    QTest::qWait(60);
    const qint64 ticks = clock.elapsed() / 40;
    const int redraws = loss->replot_count() - before;
    QVERIFY2(redraws >= 1, "appends were never drawn");
    QVERIFY2(redraws <= ticks + 2, qPrintable(QStringLiteral("%1 redraws in %2 ticks").arg(redraws).arg(ticks)));
}

void TestPlots::testHundredThousandPoints() {
    RunPlots plots;
    show_and_settle(plots);
    QElapsedTimer clock;
    clock.start();
    for (int chunk = 0; chunk < 100; ++chunk) plots.append_steps(make_steps(1 + chunk * 1000, 1000));
    const qint64 append_ms = clock.elapsed();
    plots.flush();
    QCOMPARE(plots.loss_points(), 100000);
    QCOMPARE(count(plots.panel(QStringLiteral("loss")), QStringLiteral("smoothed")), 100000);
    auto* raw = static_cast<QCPGraph*>(plots.panel(QStringLiteral("loss"))->series(QStringLiteral("raw")));
    QVERIFY(raw->adaptiveSampling());
    QCOMPARE(raw->scatterStyle().shape(), QCPScatterStyle::ssNone);
    qInfo("100k steps: appends %lld ms, appends + flush %lld ms", append_ms, clock.elapsed());
    // One live tick at this size: an append and a redraw of the loss panel (200k points).
    clock.restart();
    plots.append_steps(make_steps(100001, 10));
    plots.panel(QStringLiteral("loss"))->flush();
    qInfo("one more append + loss redraw at 100k points: %lld ms", clock.elapsed());
    plots.set_smoothing(0.95);  // full recompute over 100k points
    plots.flush();
    QCOMPARE(count(plots.panel(QStringLiteral("loss")), QStringLiteral("smoothed")), 100010);
    maybe_shoot(plots, QStringLiteral("run_100k"), [&](const QString& d) { return plots.save_all(d); });
}

void TestPlots::testSmoothingSliderRecomputes() {
    RunPlots plots;
    QCOMPARE(plots.smoothing(), 0.6);
    plots.append_steps(make_steps(1, 200));
    auto* raw = static_cast<QCPGraph*>(plots.panel(QStringLiteral("loss"))->series(QStringLiteral("raw")));
    auto* smooth = static_cast<QCPGraph*>(plots.panel(QStringLiteral("loss"))->series(QStringLiteral("smoothed")));
    plots.set_smoothing(0);  // no smoothing: the curves coincide
    QCOMPARE(smooth->dataCount(), 200);
    for (int i = 0; i < 200; i += 37) QCOMPARE(smooth->data()->at(i)->value, raw->data()->at(i)->value);
    plots.set_smoothing(0.9);
    QVERIFY(smooth->data()->at(150)->value != raw->data()->at(150)->value);
    // Appending after a change continues the same EMA as a full recompute would give.
    plots.append_steps(make_steps(201, 50));
    const double incremental = (smooth->data()->constEnd() - 1)->value;
    plots.set_smoothing(0.8);
    plots.set_smoothing(0.9);
    QVERIFY(std::abs((smooth->data()->constEnd() - 1)->value - incremental) < 1e-12);
}

void TestPlots::testReconstructionEmptyMessage() {
    RunPlots plots;
    plots.show_run(make_run(1, QStringLiteral("lora"), 100, 0, 0.01, 1));
    PlotPanel* rec = plots.panel(QStringLiteral("reconstruction"));
    QCOMPARE(rec->message(), QStringLiteral("no reconstruction checks in this run"));
    plots.append_reconstruction(100, {1e-6});
    QVERIFY(rec->message().isEmpty());
}

void TestPlots::testLogYToggle() {
    RunPlots plots;
    plots.append_steps(make_steps(1, 300));
    PlotPanel* loss = plots.panel(QStringLiteral("loss"));
    QVERIFY(!loss->log_y());
    QCOMPARE(loss->plot()->yAxis->scaleType(), QCPAxis::stLinear);
    // Through the checkbox, as a user would.
    QCheckBox* box = nullptr;
    for (QCheckBox* b : loss->findChildren<QCheckBox*>())
        if (b->text() == QStringLiteral("log y")) box = b;
    QVERIFY(box);
    box->click();
    QVERIFY(loss->log_y());
    QCOMPARE(loss->plot()->yAxis->scaleType(), QCPAxis::stLogarithmic);
    loss->flush();
    const QCPRange r = loss->plot()->yAxis->range();
    QVERIFY(r.lower > 0 && r.upper > r.lower);
    // The loss stays within one decade: ordinary labelled ticks rather than only 0.1 and 1.
    QVERIFY(!loss->plot()->yAxis->ticker().dynamicCast<QCPAxisTickerLog>());
    QVERIFY(r.upper / r.lower < 10);
    loss->set_log_y(false);
    QVERIFY(!box->isChecked());
    QCOMPARE(loss->plot()->yAxis->scaleType(), QCPAxis::stLinear);
    QVERIFY(!loss->plot()->yAxis->ticker().dynamicCast<QCPAxisTickerLog>());
}

void TestPlots::testLogYWithNonPositiveValues() {
    PlotPanel panel(QStringLiteral("mixed"));
    QCPGraph* g = panel.plot()->addGraph();
    g->setData({1, 2, 3, 4}, {-1, 0, 0.5, 20});
    panel.set_log_y(true);
    panel.flush();
    QCPRange r = panel.plot()->yAxis->range();
    QVERIFY2(r.lower > 0 && r.lower <= 0.5 && r.upper >= 20, qPrintable(QStringLiteral("%1..%2").arg(r.lower).arg(r.upper)));
    g->setData({1, 2}, {-3, 0});  // nothing positive at all: still a valid range
    panel.mark_dirty();
    panel.flush();
    r = panel.plot()->yAxis->range();
    QVERIFY(r.lower > 0 && r.upper > r.lower && std::isfinite(r.upper));
}

void TestPlots::testSaveFormats() {
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    RunPlots plots;
    plots.show_run(make_run(1, QStringLiteral("lora"), 500, 100, 0.02, 1));
    PlotPanel* loss = plots.panel(QStringLiteral("loss"));

    const QString png = dir.filePath(QStringLiteral("loss.png"));
    QVERIFY(loss->save(png));
    QCOMPARE(head(png, 4), QByteArray("\x89PNG"));
    QImage image(png);
    QCOMPARE(image.size(), QSize(800, 500));  // not laid out yet: the default export size

    const QString svg = dir.filePath(QStringLiteral("loss.svg"));
    QVERIFY(loss->save(svg));
    const QByteArray svg_head = head(svg, 4096);
    QVERIFY(svg_head.startsWith("<?xml") || svg_head.contains("<svg"));

    const QString pdf = dir.filePath(QStringLiteral("loss.pdf"));
    QVERIFY(loss->save(pdf));
    QCOMPARE(head(pdf, 4), QByteArray("%PDF"));

    QVERIFY(!loss->save(dir.filePath(QStringLiteral("loss.xyz"))));  // unknown format

    const QString all = dir.filePath(QStringLiteral("all"));
    QVERIFY(plots.save_all(all));
    for (const char* f : {"loss", "learning_rate", "evaluation", "layer_memory", "memory", "reconstruction"})
        QVERIFY2(QFileInfo(all + QLatin1Char('/') + QString::fromLatin1(f) + QStringLiteral(".png")).size() > 0, f);
    maybe_shoot(plots, QStringLiteral("run"), [&](const QString& d) { return plots.save_all(d); });
}

void TestPlots::testHoverReadout() {
    RunPlots plots;
    RunData run = make_run(4, QStringLiteral("meft"), 1000, 100, 0.01, 1);
    run.reconstruction = {{1000, {1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2}}};
    plots.show_run(run);
    show_and_settle(plots);
    plots.flush();

    PlotPanel* lr = plots.panel(QStringLiteral("learning rate"));
    QCustomPlot* plot = lr->plot();
    const QPointF at(plot->xAxis->coordToPixel(500), plot->yAxis->coordToPixel(run.steps[499].learning_rate));
    const QString text = lr->hover_at(at);
    QVERIFY2(text.startsWith(QStringLiteral("learning rate: x=500, y=")), qPrintable(text));

    // Bars read out the layer's name, not its slot number.
    PlotPanel* layers = plots.panel(QStringLiteral("layer memory"));
    auto* measured = static_cast<QCPBars*>(layers->series(QStringLiteral("measured: held")));
    const QString bar = layers->hover_at(measured->dataPixelPosition(2) + QPointF(0, 2));
    QVERIFY2(bar.startsWith(QStringLiteral("measured: held: x=L1, y=")), qPrintable(bar));

    QVERIFY(lr->hover_at(QPointF(-50, -50)).isEmpty());  // outside the axis rect
    maybe_shoot(plots, QStringLiteral("run_live"), [&](const QString& d) { return plots.save_all(d); });
}

void TestPlots::testCompareRuns() {
    ComparePlots compare;
    std::vector<RunData> runs = {make_run(1, QStringLiteral("full FT"), 1000, 100, 1.0, 3.0),
                                 make_run(2, QStringLiteral("lora"), 1000, 100, 0.02, 1.6),
                                 make_run(3, QStringLiteral("meft"), 1000, 100, 0.01, 0.4)};
    runs[0].final_metrics = {{"activation_peak_bytes", 2000.0 * kMiB}};  // reported peak wins over steps
    compare.set_runs(runs);
    compare.flush();

    QCOMPARE(compare.curve_count(), 3);
    QCOMPARE(compare.scatter_points(), 3);
    QCOMPARE(compare.metric(), QStringLiteral("accuracy"));  // first non-loss metric
    QCOMPARE(compare.metrics(), QStringList({"accuracy", "f1", "loss"}));
    PlotPanel* loss = compare.panel(QStringLiteral("loss"));
    QCOMPARE(loss->plot()->graph(1)->name(), runs[1].label);
    QVERIFY(loss->plot()->legend->visible());
    QVERIFY(loss->plot()->graph(0)->pen().color() != loss->plot()->graph(1)->pen().color());
    QCOMPARE(compare.panel(QStringLiteral("evaluation"))->plot()->graphCount(), 3);
    QCustomPlot* layer_plot = compare.panel(QStringLiteral("layer memory"))->plot();
    QCOMPARE(layer_plot->plottableCount(), 6);  // per run: held, and its backward transient stacked on it
    auto* transient = static_cast<QCPBars*>(compare.panel(QStringLiteral("layer memory"))->series(runs[0].label + ": backward transient"));
    QVERIFY(transient && transient->barBelow());
    QCOMPARE(transient->data()->constBegin()->value, to_mib(double(runs[0].layer_memory[8].transient)));  // measured emb

    // Scatter: x = activation peak in MiB, y = last accuracy, marker grows with the trainable share.
    QCustomPlot* scatter = compare.panel(QStringLiteral("score vs memory"))->plot();
    QCOMPARE(scatter->graph(0)->data()->at(0)->key, 2000.0);
    QVERIFY(std::abs(scatter->graph(1)->data()->at(0)->value - runs[1].evals.back().second.at("accuracy")) < 1e-12);
    QVERIFY(scatter->graph(0)->scatterStyle().size() > scatter->graph(1)->scatterStyle().size());
    QCOMPARE(scatter->itemCount() >= 3, true);  // a label per point

    compare.set_metric(QStringLiteral("f1"));
    QVERIFY(std::abs(scatter->graph(2)->data()->at(0)->value - runs[2].evals.back().second.at("f1")) < 1e-12);
    QCOMPARE(compare.panel(QStringLiteral("evaluation"))->plot()->yAxis->label(), QStringLiteral("f1"));

    compare.set_runs({runs[0]});  // fewer runs: the metric choice survives
    QCOMPARE(compare.metric(), QStringLiteral("f1"));
    QCOMPARE(compare.curve_count(), 1);
    QCOMPARE(compare.scatter_points(), 1);
    compare.set_runs(runs);
    show_and_settle(compare);
    compare.flush();
    maybe_shoot(compare, QStringLiteral("compare"), [&](const QString& d) { return compare.save_all(d); });
}

void TestPlots::testCompareAlignByEpoch() {
    ComparePlots compare;
    compare.set_runs({make_run(1, QStringLiteral("lora"), 1000, 100, 0.02, 1),
                      make_run(2, QStringLiteral("adapter"), 1000, 100, 0.03, 1.2)});
    compare.flush();
    QCPAxis* x = compare.panel(QStringLiteral("loss"))->plot()->xAxis;
    QVERIFY(std::abs(x->range().upper - 1000) < 1);
    compare.set_align(meft::StepAxis::epoch);
    compare.flush();
    QVERIFY2(std::abs(x->range().upper - 10) < 0.1, qPrintable(QString::number(x->range().upper)));
    QCOMPARE(x->label(), QStringLiteral("epoch"));
    QCPAxis* ex = compare.panel(QStringLiteral("evaluation"))->plot()->xAxis;
    QVERIFY(ex->range().upper >= 10 && ex->range().upper < 10.5);  // a little room for the last marker

    // Unknown epoch length: that run stays on steps.
    compare.set_runs({make_run(3, QStringLiteral("lora"), 500, 0, 0.02, 1)});
    compare.flush();
    QVERIFY(std::abs(x->range().upper - 500) < 1);
    compare.set_align(meft::StepAxis::step);
    compare.flush();
    QCOMPARE(x->label(), QStringLiteral("step"));
    // Wall-clock time and tokens seen come from each step's recorded elapsed time and throughput.
    compare.set_align(meft::StepAxis::seconds);
    compare.flush();
    QCOMPARE(x->label(), QStringLiteral("wall-clock time (s)"));
    const RunData r = make_run(3, QStringLiteral("lora"), 500, 0, 0.02, 1);
    QVERIFY2(std::abs(x->range().upper - r.steps.back().elapsed_s) < 1e-6 * r.steps.back().elapsed_s + 1e-9,
             qPrintable(QString::number(x->range().upper)));
    compare.set_align(meft::StepAxis::tokens);
    compare.flush();
    QCOMPARE(x->label(), QStringLiteral("tokens seen (padded)"));
    const double tokens = r.steps.back().elapsed_s * r.steps.back().tokens_per_s;
    QVERIFY2(std::abs(x->range().upper - tokens) < 1e-6 * tokens + 1e-9, qPrintable(QString::number(x->range().upper)));
}

// One run's curves on each x axis: the loss and its evaluations move together, and a resumed run's
// second attempt (elapsed time restarting at 0) continues where the first one ended.
void TestPlots::testRunPlotsXAxis() {
    RunPlots plots;
    RunData run = make_run(1, QStringLiteral("lora"), 400, 100, 0.02, 1);
    for (StepRow& s : run.steps)  // steps 201.. are a resumed attempt: its clock starts again
        if (s.step > 200) s.elapsed_s = 0.05 * (s.step - 200);
    plots.show_run(run);
    plots.flush();
    QCPAxis* x = plots.panel(QStringLiteral("loss"))->plot()->xAxis;
    QCPAxis* ex = plots.panel(QStringLiteral("evaluation"))->plot()->xAxis;
    QVERIFY(std::abs(x->range().upper - 400) < 1);
    const auto last_eval_x = [&] {
        const auto* g = plots.panel(QStringLiteral("evaluation"))->plot()->graph(0);
        return (g->data()->constEnd() - 1)->key;
    };
    QCOMPARE(last_eval_x(), 400.0);
    plots.set_x_axis(meft::StepAxis::epoch);
    plots.flush();
    QVERIFY(std::abs(x->range().upper - 4) < 0.01);
    QCOMPARE(last_eval_x(), 4.0);
    QCOMPARE(x->label(), QStringLiteral("epoch"));
    plots.set_x_axis(meft::StepAxis::seconds);
    plots.flush();
    QVERIFY2(std::abs(x->range().upper - 20.0) < 1e-9, qPrintable(QString::number(x->range().upper)));  // 10 s + 10 s
    QVERIFY(std::abs(last_eval_x() - 20.0) < 1e-9);
    QVERIFY(ex->range().upper >= 20.0);
    QCOMPARE(plots.loss_points(), 400);  // redrawn, not added to
    plots.set_x_axis(meft::StepAxis::tokens);
    plots.flush();
    QVERIFY2(std::abs(x->range().upper - 400 * 0.05 * 4096) < 1e-6, qPrintable(QString::number(x->range().upper)));
    QCOMPARE(x->label(), QStringLiteral("tokens seen (padded)"));
    // A live append continues on the chosen axis.
    plots.append_steps(make_steps(401, 10));
    plots.flush();
    QCOMPARE(plots.loss_points(), 410);
    plots.set_x_axis(meft::StepAxis::step);
    plots.flush();
    QVERIFY(std::abs(x->range().upper - 410) < 1);
    // Without the epoch length epochs are steps, and the title says so.
    run.steps_per_epoch = 0;
    plots.show_run(run);
    plots.set_x_axis(meft::StepAxis::epoch);
    QCOMPARE(x->label(), QStringLiteral("epoch (length unknown: steps)"));
}

// Grouped curves: a configuration's seeds (or one key's values) drawn as the mean with a ± std
// band (or min..max); the mean is the members' mean at each step.
void TestPlots::testCompareGroupsIntoBands() {
    std::vector<RunData> runs;
    const char* methods[] = {"lora", "lora", "full", "full"};
    for (int i = 0; i < 4; ++i) {
        RunData r = make_run(i + 1, QString::fromLatin1(methods[i]), 200, 100, 0.02, 1);
        r.config = {{"method", {{"name", methods[i]}}}, {"training", {{"seed", i % 2}, {"learning_rate", 1e-3}}}};
        runs.push_back(r);
    }
    ComparePlots compare;
    compare.set_runs(runs);
    QCOMPARE(compare.group_keys(), QStringList{"method.name"});  // the seed is pooled, never a grouping key
    QCOMPARE(compare.curve_count(), 4);
    compare.set_smoothing(0);  // raw losses: the mean is checkable by hand
    compare.set_grouping(QString::fromLatin1(ComparePlots::kGroupSeeds));
    QCOMPARE(compare.group_count(), 2);
    QCOMPARE(compare.curve_count(), 2);
    QCustomPlot* plot = compare.panel(QStringLiteral("loss"))->plot();
    QCOMPARE(plot->graphCount(), 6);  // per group: lower edge, upper edge, mean
    const auto y0 = [&](int graph) { return plot->graph(graph)->data()->constBegin()->value; };
    const double a = runs[0].steps[0].loss, b = runs[1].steps[0].loss;
    const double mean = (a + b) / 2, sd = std::abs(a - b) / std::sqrt(2.0);
    QVERIFY(std::abs(y0(2) - mean) < 1e-12);
    QVERIFY(std::abs(y0(0) - (mean - sd)) < 1e-12);
    QVERIFY(std::abs(y0(1) - (mean + sd)) < 1e-12);
    QVERIFY(plot->graph(2)->name().contains("n=2"));
    compare.set_min_max_band(true);
    QVERIFY(std::abs(y0(0) - std::min(a, b)) < 1e-12);
    QVERIFY(std::abs(y0(1) - std::max(a, b)) < 1e-12);
    // Evaluations pool the same way (markers on the mean).
    QCustomPlot* eval = compare.panel(QStringLiteral("evaluation"))->plot();
    QCOMPARE(eval->graphCount(), 6);
    compare.set_grouping(QStringLiteral("method.name"));
    QCOMPARE(compare.group_count(), 2);
    QVERIFY(plot->graph(2)->name().startsWith("method.name=lora"));
    compare.set_grouping(QString());
    QCOMPARE(compare.curve_count(), 4);
    compare.flush();
    maybe_shoot(compare, QStringLiteral("compare-grouped"), [&](const QString& d) { return compare.save_all(d); });
}

// The step's memory: planned and measured bars stacked from the recorded parts (the solid ones add
// up to the activation peak), labelled with their batch shapes, and a note saying where and why
// they differ.
void TestPlots::testStepMemoryStacksTheParts() {
    meft::StepMemory planned, measured;
    planned.held_layers = 10 * kMiB;
    planned.remainders = 1 * kMiB;
    planned.streams = 4 * kMiB;
    planned.transient = 20 * kMiB;
    planned.activation_peak = 35 * kMiB;
    planned.parameter_gradients = 2 * kMiB;
    planned.rows = 32;
    planned.seq = 64;
    measured = planned;
    measured.held_layers = 9 * kMiB;
    measured.transient = 18 * kMiB;
    measured.activation_peak = 32 * kMiB;
    measured.step = 18;
    measured.seq = 58;
    std::vector<meft::StepMemoryRow> rows = meft::step_memory_rows("planned", planned);
    for (auto& r : meft::step_memory_rows("measured", measured)) rows.push_back(r);
    RunPlots plots;
    plots.set_step_memory(rows);
    plots.flush();
    PlotPanel* p = plots.panel(QStringLiteral("step memory"));
    QVERIFY(p->message().isEmpty());
    const auto value = [&](const char* part, int bar) {
        auto* b = static_cast<QCPBars*>(p->series(QString::fromLatin1(part)));
        return b ? (b->data()->constBegin() + bar)->value : -1.0;
    };
    QCOMPARE(value("held by layers", 0), 10.0);
    QCOMPARE(value("held by layers", 1), 9.0);
    QCOMPARE(value("MEFT remainders", 1), 1.0);
    QCOMPARE(value("stored streams", 1), 4.0);
    QCOMPARE(value("backward transient at the peak", 1), 18.0);
    QCOMPARE(value("parameter gradients (resident)", 0), 2.0);
    // Solid parts add up to the peak: held + remainders + streams + transient.
    QCOMPARE(value("held by layers", 1) + value("MEFT remainders", 1) + value("stored streams", 1) +
                 value("backward transient at the peak", 1),
             32.0);
    auto ticker = p->plot()->xAxis->ticker().dynamicCast<QCPAxisTickerText>();
    QVERIFY(ticker);
    QCOMPARE(ticker->ticks().value(0), QString("planned\n32 × 64"));
    QCOMPARE(ticker->ticks().value(1), QString("measured, step 18\n32 × 58"));
    QVERIFY2(p->note().contains("measured at step 18") && p->note().contains("dynamic padding") &&
                 p->note().contains("58 tokens against the plan's 64"),
             qPrintable(p->note()));
    maybe_shoot(plots, QStringLiteral("step_memory"), [&](const QString& d) { return QDir().mkpath(d) && p->save(d + "/step_memory.png", 640, 420); });
    // Nothing recorded (a run that failed before its first step): say so.
    plots.clear();
    QVERIFY(!p->message().isEmpty());
    QVERIFY(p->note().isEmpty());
}

// Score × activation memory × step time: the runs no other run beats on all three are ringed and
// starred on both scatters; the step-time scatter places runs at their median step time.
void TestPlots::testCompareMarksTheParetoFront() {
    // full: best score, most memory; small: least memory; fast: fastest steps; slow: beaten by fast.
    struct Spec { const char* name; double mem_scale, step_s, shift; };
    const Spec specs[] = {{"full", 3.0, 0.05, 0.10}, {"small", 0.5, 0.06, 0.05}, {"fast", 2.0, 0.02, 0.04},
                          {"slow", 2.5, 0.08, 0.00}};
    std::vector<RunData> runs;
    for (int i = 0; i < 4; ++i) {
        RunData r = make_run(i + 1, QString::fromLatin1(specs[i].name), 200, 100, 0.02, specs[i].mem_scale);
        for (StepRow& st : r.steps) st.elapsed_s = specs[i].step_s * st.step;
        for (auto& [step, metrics] : r.evals) metrics["accuracy"] += specs[i].shift;
        runs.push_back(r);
    }
    ComparePlots compare;
    compare.set_runs(runs);
    compare.flush();
    QVERIFY(compare.on_pareto_front(0));
    QVERIFY(compare.on_pareto_front(1));
    QVERIFY(compare.on_pareto_front(2));
    QVERIFY(!compare.on_pareto_front(3));  // "fast" has more score, less memory and shorter steps
    QCustomPlot* speed = compare.panel(QStringLiteral("score vs step time"))->plot();
    QCOMPARE(speed->graphCount(), 4 + 3);  // a marker per run, a ring per run on the front
    int rings = 0;
    for (int i = 0; i < speed->graphCount(); ++i) {
        QCPGraph* g = speed->graph(i);
        if (g->name() == runs[2].label) QVERIFY(std::abs(g->data()->at(0)->key - 20.0) < 1e-6);  // 0.02 s a step, in ms
        if (g->name().isEmpty()) {
            ++rings;
            QCOMPARE(g->scatterStyle().pen().color(), QColor(Qt::black));
            QVERIFY(g->data()->at(0)->key != 80.0);  // never around "slow"
        }
    }
    QCOMPARE(rings, 3);
    QCOMPARE(compare.scatter_points(), 4);
    int starred = 0;
    for (int i = 0; i < speed->itemCount(); ++i)
        if (auto* t = qobject_cast<QCPItemText*>(speed->item(i)); t && t->text().startsWith(QStringLiteral("★ "))) ++starred;
    QCOMPARE(starred, 3);
    maybe_shoot(compare, QStringLiteral("compare_pareto"), [&](const QString& d) { return compare.save_all(d); });
}

QTEST_MAIN(TestPlots)
#include "test_plots.moc"
