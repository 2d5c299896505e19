// test_browse_compare.cpp — Qt Test suite of the runs browser and the compare view over a real
// experiment database of four runs (two LoRA, one full fine-tuning, one failed MEFT): filters,
// numeric sorting, tags and notes written through to the database, deletion, the Compare signal,
// the config diff with its highlighted cells, the best scores in bold, and the table exports.
// Runs offscreen (QT_QPA_PLATFORM=offscreen). Set MEFT_GUI_SHOTS=/some/dir to also write
// browser.png and compare.png there for a look by eye.
#include <algorithm>
#include <memory>

#include <QApplication>
#include <QDialog>
#include <QDialogButtonBox>
#include <QFile>
#include <QLabel>
#include <QMessageBox>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QTimer>
#include <QSignalSpy>
#include <QTableView>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QtTest>

#include "ui/plots/compare_plots.h"
#include "ui/runs/compare_view.h"
#include "ui/runs/paper_table_view.h"
#include "ui/runs/run_data.h"
#include "ui/runs/runs_browser.h"
#include "store/database.h"

using namespace meft;
using namespace meft::ui;

namespace {

constexpr std::int64_t kMiB = 1024 * 1024;

nlohmann::json config(const std::string& method, double lr, int seed) {
    return {{"name", "sst2-sweep"},
            {"backbone", {{"arch", "bert"}, {"preset", "tiny"}}},
            {"task", {{"name", "sst2"}}},
            {"method", {{"name", method}}},
            {"training", {{"learning_rate", lr}, {"seed", seed}, {"max_steps", 40}, {"batch_size", 8}}}};
}

// One run with 40 steps, two evaluations, per-layer memory, and (when finished) final metrics.
std::int64_t add_run(ExperimentDb& db, std::int64_t experiment, const nlohmann::json& cfg, double accuracy,
                     double activation_mib, double trainable, const std::string& status = "finished") {
    const std::int64_t run = db.add_run(experiment, cfg, {{"backend", "cpu"}});
    db.set_status(run, "running");
    std::vector<StepRow> steps;
    for (int s = 1; s <= 40; ++s)
        steps.push_back(StepRow{s, 0.7 - 0.3 * s / 40.0 * accuracy, 1e-3, 0.5, 1000, 0.1 * s, std::int64_t(activation_mib * kMiB), 0});
    db.add_steps(run, steps);
    db.add_eval(run, 20, {{"accuracy", accuracy - 0.05}}, 0.6);
    db.add_eval(run, 40, {{"accuracy", accuracy}}, 0.5);
    for (int layer = -1; layer <= 2; ++layer)
        db.add_layer_memory(run, "measured", layer, layer < 0 ? "embeddings" : layer == 2 ? "head" : "layer " + std::to_string(layer),
                            std::int64_t(activation_mib * kMiB / 4), 0);
    if (status == "finished")
        db.finish(run, "finished",
                  {{"accuracy", accuracy}, {"dev_loss", 0.5 - accuracy / 10}, {"activation_peak_bytes", std::int64_t(activation_mib * kMiB)},
                   {"trainable_parameters", trainable * 1000}, {"all_parameters", 100000}, {"steps_per_epoch", 10}});
    else
        db.finish(run, status, nullptr, "the loss is nan");
    return run;
}

}  // namespace

class BrowseCompareTest : public QObject {
    Q_OBJECT

private slots:
    void init();
    void cleanup();
    void testShowsEveryRun();
    void testTextFilterMatchesAnyColumn();
    void testTagAndStatusFilters();
    void testSortsNumerically();
    void testEditedTagsAndNotesPersist();
    void testCommaTagIsRejected();
    void testDeleteRemovesFromDatabase();
    void testRefreshKeepsTheSelection();
    void testCompareNeedsTwoRunsAndEmitsThem();
    void testCompareShowsOnlyDifferingKeysHighlighted();
    void testExportsCsvMarkdownLatex();
    void testDialogsEditAndConfirm();
    void testPaperTablePoolsSeedsAndPinsABaseline();
    void testBrowserTableButtonAndLiveButtons();
    void testComparePinsABaselineRun();
    void testScreenshots();

private:
    QString db_path() const { return dir_->filePath("runs.sqlite"); }
    QString read(const QString& path) const {
        QFile f(path);
        return f.open(QIODevice::ReadOnly) ? QString::fromUtf8(f.readAll()) : QString();
    }

    std::unique_ptr<QTemporaryDir> dir_;
    std::unique_ptr<ExperimentDb> db_;
    std::int64_t lora1_ = 0, lora2_ = 0, full_ = 0, meft_ = 0;
};

void BrowseCompareTest::init() {
    dir_ = std::make_unique<QTemporaryDir>();
    QVERIFY(dir_->isValid());
    db_ = std::make_unique<ExperimentDb>(db_path().toStdString());
    const auto lora = db_->add_experiment("lora-sst2", "lora.json", {{"name", "lora-sst2"}}, "paper,lora", "");
    const auto full = db_->add_experiment("full-sst2", "full.json", {{"name", "full-sst2"}}, "paper,baseline", "");
    const auto meft = db_->add_experiment("meft-sst2", "meft.json", {{"name", "meft-sst2"}}, "draft", "");
    lora1_ = add_run(*db_, lora, config("lora", 1e-3, 1), 0.91, 12.5, 0.9);
    lora2_ = add_run(*db_, lora, config("lora", 5e-4, 2), 0.89, 3.0, 0.9);
    full_ = add_run(*db_, full, config("full", 2e-5, 1), 0.93, 100.0, 100);
    meft_ = add_run(*db_, meft, config("meft3", 1e-3, 1), 0.0, 9.0, 1.2, "failed");
}

void BrowseCompareTest::cleanup() {
    db_.reset();
    dir_.reset();
}

void BrowseCompareTest::testShowsEveryRun() {
    RunsBrowser b(db_.get());
    QCOMPARE(b.visible_rows(), 4);
    QCOMPARE(b.total_rows(), 4);
    QCOMPARE(b.table()->model()->columnCount(), int(RunsBrowser::kColumnCount));
    QCOMPARE(b.tags(), (QStringList{"baseline", "draft", "lora", "paper"}));
    // The status cell is coloured: failed red.
    const QModelIndex status = b.table()->model()->index(0, RunsBrowser::kStatus);
    QCOMPARE(status.data().toString(), QString("failed"));  // newest first
    QCOMPARE(status.data(Qt::BackgroundRole).value<QColor>(), QColor("#fbdcdc"));
    // Derived columns come from the engine's summary: MiB and trainable %.
    const QModelIndex full_row = b.table()->model()->index(1, 0);
    QCOMPARE(b.run_at(1), full_);
    QCOMPARE(full_row.siblingAtColumn(RunsBrowser::kMemory).data().toString(), QString("100.0"));
    QCOMPARE(full_row.siblingAtColumn(RunsBrowser::kTrainable).data().toString(), QString("100.00"));
    QCOMPARE(full_row.siblingAtColumn(RunsBrowser::kScore).data().toString(), QString("0.9300"));
}

void BrowseCompareTest::testTextFilterMatchesAnyColumn() {
    RunsBrowser b(db_.get());
    b.set_text_filter("lora");
    QCOMPARE(b.visible_rows(), 2);
    for (int r = 0; r < 2; ++r) QVERIFY(b.run_at(r) == lora1_ || b.run_at(r) == lora2_);
    b.set_text_filter("LORA");  // case-insensitive
    QCOMPARE(b.visible_rows(), 2);
    b.set_text_filter("meft3");
    QCOMPARE(b.visible_rows(), 1);
    QCOMPARE(b.run_at(0), meft_);
    b.set_text_filter("");
    QCOMPARE(b.visible_rows(), 4);
}

void BrowseCompareTest::testTagAndStatusFilters() {
    RunsBrowser b(db_.get());
    b.set_tag_filter("paper");
    QCOMPARE(b.visible_rows(), 3);
    b.set_tag_filter("baseline");
    QCOMPARE(b.visible_rows(), 1);
    QCOMPARE(b.run_at(0), full_);
    b.set_tag_filter("pap");  // whole tags only
    QCOMPARE(b.visible_rows(), 0);
    b.set_tag_filter("");
    b.set_status_filter("finished");
    QCOMPARE(b.visible_rows(), 3);
    b.set_status_filter("failed");
    QCOMPARE(b.visible_rows(), 1);
    QCOMPARE(b.run_at(0), meft_);
    b.set_tag_filter("lora");  // filters combine
    QCOMPARE(b.visible_rows(), 0);
    b.set_status_filter("");
    QCOMPARE(b.visible_rows(), 2);
}

void BrowseCompareTest::testSortsNumerically() {
    RunsBrowser b(db_.get());
    b.table()->sortByColumn(RunsBrowser::kScore, Qt::AscendingOrder);
    QCOMPARE(b.run_at(0), lora2_);  // 0.89
    QCOMPARE(b.run_at(1), lora1_);  // 0.91
    QCOMPARE(b.run_at(2), full_);   // 0.93
    QCOMPARE(b.run_at(3), meft_);   // no score: last
    b.table()->sortByColumn(RunsBrowser::kScore, Qt::DescendingOrder);
    QCOMPARE(b.run_at(0), full_);
    QCOMPARE(b.run_at(3), meft_);  // missing stays last
    // 3.0 < 12.5 < 100.0 as numbers (as text, "100.0" < "12.5" < "3.0").
    b.set_status_filter("finished");
    b.table()->sortByColumn(RunsBrowser::kMemory, Qt::AscendingOrder);
    QCOMPARE(b.run_at(0), lora2_);
    QCOMPARE(b.run_at(1), lora1_);
    QCOMPARE(b.run_at(2), full_);
}

void BrowseCompareTest::testEditedTagsAndNotesPersist() {
    RunsBrowser b(db_.get());
    QSignalSpy changed(&b, &RunsBrowser::runs_changed);
    QString error;
    QVERIFY2(b.edit_tags(lora1_, "paper\n  reviewed \n\n", "best LoRA so far", &error), qPrintable(error));
    QCOMPARE(changed.count(), 1);
    db_.reset();  // re-open the database: the edit is on disk
    ExperimentDb again(db_path().toStdString());
    const auto r = again.run(lora1_);
    QVERIFY(r);
    QCOMPARE(QString::fromStdString(r->tags), QString("paper,reviewed"));
    QCOMPARE(QString::fromStdString(r->notes), QString("best LoRA so far"));
    b.set_database(&again);
    b.set_tag_filter("reviewed");
    QCOMPARE(b.visible_rows(), 1);
    QCOMPARE(b.table()->model()->index(0, RunsBrowser::kNotes).data().toString(), QString("best LoRA so far"));
    b.set_database(nullptr);
}

void BrowseCompareTest::testCommaTagIsRejected() {
    RunsBrowser b(db_.get());
    QString error;
    QVERIFY(!b.edit_tags(lora1_, "paper\nglue,sst2", "changed notes", &error));
    QVERIFY2(error.contains("comma"), qPrintable(error));
    const auto r = db_->run(lora1_);
    QCOMPARE(QString::fromStdString(r->tags), QString("paper,lora"));  // nothing changed, notes neither
    QCOMPARE(QString::fromStdString(r->notes), QString());
}

void BrowseCompareTest::testDeleteRemovesFromDatabase() {
    RunsBrowser b(db_.get());
    QVERIFY(b.delete_runs({meft_, lora2_}, false));
    QVERIFY(!db_->run(meft_));
    QVERIFY(!db_->run(lora2_));
    QVERIFY(db_->run(lora1_));
    QCOMPARE(b.visible_rows(), 2);
    QCOMPARE(b.tags(), (QStringList{"baseline", "lora", "paper"}));  // "draft" left with its run
}

void BrowseCompareTest::testRefreshKeepsTheSelection() {
    RunsBrowser b(db_.get());
    b.select_runs({lora1_, full_});
    const auto before = b.selected_runs();
    QCOMPARE(before.size(), std::size_t(2));
    add_run(*db_, db_->runs().front().experiment_id, config("lora", 2e-3, 3), 0.5, 1.0, 0.9);
    b.refresh();
    QCOMPARE(b.visible_rows(), 5);
    QCOMPARE(b.selected_runs(), before);
}

void BrowseCompareTest::testCompareNeedsTwoRunsAndEmitsThem() {
    RunsBrowser b(db_.get());
    QSignalSpy compare(&b, &RunsBrowser::compare_runs);
    QSignalSpy open(&b, &RunsBrowser::open_run);
    QVERIFY(!b.compare_button()->isEnabled());
    b.select_runs({lora1_});
    QVERIFY(!b.compare_button()->isEnabled());
    QVERIFY(b.open_button()->isEnabled());
    b.open_button()->click();
    QCOMPARE(open.count(), 1);
    QCOMPARE(open.at(0).at(0).value<std::int64_t>(), lora1_);
    b.select_runs({lora1_, full_});
    QVERIFY(b.compare_button()->isEnabled());
    QVERIFY(!b.open_button()->isEnabled());
    b.compare_button()->click();
    QCOMPARE(compare.count(), 1);
    auto ids = compare.at(0).at(0).value<std::vector<std::int64_t>>();
    std::sort(ids.begin(), ids.end());
    QCOMPARE(ids, (std::vector<std::int64_t>{lora1_, full_}));
}

void BrowseCompareTest::testCompareShowsOnlyDifferingKeysHighlighted() {
    CompareView v;
    v.set_runs(*db_, {lora1_, full_});  // differ in method.name and training.learning_rate only
    QCOMPARE(v.diff_rows(), 2);
    QCOMPARE(v.diff_keys(), (QStringList{"method.name", "training.learning_rate"}));
    QTableWidget* t = v.diff_table();
    QCOMPARE(t->rowCount(), 2);
    QCOMPARE(t->columnCount(), 2);
    QCOMPARE(t->verticalHeaderItem(0)->text(), QString("method.name"));
    QCOMPARE(t->item(0, 0)->text(), QString("lora"));
    QCOMPARE(t->item(0, 1)->text(), QString("full"));
    QCOMPARE(t->item(1, 0)->text(), QString("0.001"));
    QCOMPARE(t->item(1, 1)->text(), QString("2e-05"));
    for (int r = 0; r < 2; ++r)
        for (int c = 0; c < 2; ++c) QVERIFY(v.is_highlighted(r, c));
    // "Show all config keys": the same-valued keys appear too, not highlighted.
    v.set_only_differing(false);
    QVERIFY(t->rowCount() > 2);
    QCOMPARE(v.diff_rows(), 2);
    int highlighted_rows = 0;
    for (int r = 0; r < t->rowCount(); ++r) {
        const bool differs = v.diff_keys().contains(t->verticalHeaderItem(r)->text());
        QCOMPARE(v.is_highlighted(r, 0), differs);
        QCOMPARE(v.is_highlighted(r, 1), differs);
        highlighted_rows += differs;
    }
    QCOMPARE(highlighted_rows, 2);
    v.set_only_differing(true);
    QCOMPARE(t->rowCount(), 2);
}

void BrowseCompareTest::testExportsCsvMarkdownLatex() {
    CompareView v;
    v.set_runs(*db_, {lora2_, full_});
    const QString csv = dir_->filePath("c.csv"), md = dir_->filePath("c.md"), tex = dir_->filePath("c.tex");
    QString error;
    QVERIFY2(v.export_table(csv, "csv", &error), qPrintable(error));
    QVERIFY2(v.export_table(md, "markdown", &error), qPrintable(error));
    QVERIFY2(v.export_table(tex, "latex", &error), qPrintable(error));
    QVERIFY(!v.export_table(dir_->filePath("c.xlsx"), "xlsx", &error));
    QVERIFY(error.contains("xlsx"));
    const QString c = read(csv), m = read(md), l = read(tex);
    QVERIFY2(c.contains("config,method.name,lora,full"), qPrintable(c));
    QVERIFY2(c.contains("config,training.learning_rate,0.0005,2e-05"), qPrintable(c));
    QVERIFY2(c.contains("metric,accuracy,0.89,0.93"), qPrintable(c));
    QVERIFY2(m.contains(QString("| method.name | lora | full |")), qPrintable(m));
    QVERIFY2(m.contains(QString("| accuracy | 0.89 | **0.93** |")), qPrintable(m));
    QVERIFY2(l.contains("training.learning\\_rate & 0.0005 & 2e-05"), qPrintable(l));
    QVERIFY2(l.contains("accuracy & 0.89 & \\textbf{0.93}"), qPrintable(l));
}

// The paper table: seeds of one configuration pooled into mean ± std, other learning rates as
// their own rows, the failed run left out by name, the best bold; a pinned baseline adds each
// cell's difference in points; the exports are exactly what `meft runs export` renders.
void BrowseCompareTest::testPaperTablePoolsSeedsAndPinsABaseline() {
    const auto lora = db_->add_experiment("lora-seeds", "lora.json", {{"name", "lora-seeds"}}, "", "");
    const std::int64_t lora_s2 = add_run(*db_, lora, config("lora", 1e-3, 2), 0.95, 12.5, 0.9);
    const std::int64_t lora_s3 = add_run(*db_, lora, config("lora", 1e-3, 3), 0.93, 12.5, 0.9);
    std::vector<RunInfo> runs;
    for (std::int64_t id : {lora1_, lora2_, full_, meft_, lora_s2, lora_s3}) runs.push_back(*db_->run(id));
    PaperTableView v;
    v.set_runs(runs);
    QCOMPARE(v.left_out(), std::vector<std::int64_t>{meft_});
    QVERIFY2(v.note().contains(QString("1 failed, not finished (#%1)").arg(meft_)), qPrintable(v.note()));
    QVERIFY2(v.note().contains("5 runs pooled"), qPrintable(v.note()));
    QTableWidget* g = v.grid();
    QCOMPARE(g->rowCount(), 3);     // lora at 1e-3 (three seeds), lora at 5e-4, full
    QCOMPARE(g->columnCount(), 1);  // sst2
    int pooled = -1, full = -1;
    for (int r = 0; r < g->rowCount(); ++r) {
        if (g->verticalHeaderItem(r)->text().contains("0.001")) pooled = r;
        if (g->verticalHeaderItem(r)->text() == "full") full = r;
    }
    QVERIFY(pooled >= 0 && full >= 0);
    // (0.91 + 0.95 + 0.93) / 3 = 0.93, sample std 0.02: "93.0 ± 2.0"; full's 93.0 ties it for best.
    QCOMPARE(g->item(pooled, 0)->text(), QString("93.0 ± 2.0"));
    QVERIFY(g->item(pooled, 0)->toolTip().contains(QString("#%1: 0.9500").arg(lora_s2)));
    QCOMPARE(g->item(full, 0)->text(), QString("93.0"));
    QVERIFY(g->item(full, 0)->font().bold());
    // The baseline: full. The 5e-4 row (0.89) is 4 points below it; the baseline row shows no delta.
    v.set_baseline("full");
    QCOMPARE(v.baseline(), QString("full"));
    QVERIFY(g->verticalHeaderItem(full)->text().contains("(baseline)"));
    QCOMPARE(g->item(full, 0)->text(), QString("93.0"));
    bool found = false;
    for (int r = 0; r < g->rowCount(); ++r)
        if (g->verticalHeaderItem(r)->text().contains("0.0005")) {
            QCOMPARE(g->item(r, 0)->text(), QString("89.0  (-4.0)"));
            found = true;
        }
    QVERIFY(found);
    // Exports: the engine's rendering of the same runs, byte for byte, whatever the baseline.
    std::vector<RunInfo> usable;
    for (const RunInfo& r : runs)
        if (r.status == "finished") usable.push_back(r);
    const PaperTable expected = paper_table(usable);
    for (const char* format : {"markdown", "latex", "csv"}) {
        const QString path = dir_->filePath(QString("paper.%1").arg(format));
        QString error;
        QVERIFY2(v.export_table(path, format, &error), qPrintable(error));
        QCOMPARE(read(path), QString::fromStdString(render_paper_table(expected, table_format(format))));
    }
    QVERIFY(read(dir_->filePath("paper.markdown")).contains("**93.0 ± 2.0**"));
    QFile blocker(dir_->filePath("a-file"));  // a file where the export's folder would be
    QVERIFY(blocker.open(QIODevice::WriteOnly));
    blocker.close();
    QString error;
    QVERIFY(!v.export_table(dir_->filePath("a-file/p.md"), "markdown", &error));
    QVERIFY2(error.contains("a-file"), qPrintable(error));
}

// The browser's Table button sends the selected runs (two or more) or every run shown; Resume is
// offered for a failed run only, and nothing that writes on a read-only database.
void BrowseCompareTest::testBrowserTableButtonAndLiveButtons() {
    RunsBrowser b(db_.get());
    QSignalSpy table(&b, &RunsBrowser::table_runs);
    b.select_runs({full_});
    b.table_button()->click();
    QCOMPARE(table.size(), 1);
    QCOMPARE(table.at(0).at(0).value<std::vector<std::int64_t>>().size(), std::size_t(4));  // every run shown
    b.select_runs({lora1_, full_});
    b.table_button()->click();
    QCOMPARE(table.at(1).at(0).value<std::vector<std::int64_t>>().size(), std::size_t(2));
    b.select_runs({full_});
    QVERIFY(!b.resume_button()->isEnabled());  // finished
    QVERIFY(b.rerun_button()->isEnabled());
    b.select_runs({meft_});
    QVERIFY(b.resume_button()->isEnabled());  // failed: continues from its checkpoint
    QSignalSpy resume(&b, &RunsBrowser::resume_run);
    b.resume_button()->click();
    QCOMPARE(resume.size(), 1);
    QCOMPARE(resume.at(0).at(0).value<std::int64_t>(), meft_);
    ExperimentDb ro(db_path().toStdString(), DbAccess::ReadOnly);
    RunsBrowser read_only(&ro);
    read_only.select_runs({meft_});
    QVERIFY(!read_only.resume_button()->isEnabled());
    QVERIFY(!read_only.rerun_button()->isEnabled());
    // Another connection adds a run: one poll shows it, and a second poll with nothing new is a no-op.
    ExperimentDb other(db_path().toStdString());
    add_run(other, db_->runs().front().experiment_id, config("lora", 1e-4, 9), 0.5, 1.0, 0.9);
    QVERIFY(b.poll());
    QCOMPARE(b.total_rows(), 5);
    QVERIFY(!b.poll());
}

// A pinned baseline run: the other runs' scores show their difference in points, other numbers a
// ratio; the baseline's own cells and the exports do not change; a new selection keeps the pin.
void BrowseCompareTest::testComparePinsABaselineRun() {
    CompareView v;
    v.set_runs(*db_, {lora2_, full_});
    const auto row_of = [&](const QString& key) {
        for (int r = 0; r < v.scores_table()->rowCount(); ++r)
            if (v.scores_table()->verticalHeaderItem(r)->text() == key) return r;
        return -1;
    };
    const int acc = row_of("accuracy"), mem = row_of("activation_peak_bytes");
    QVERIFY(acc >= 0 && mem >= 0);
    QCOMPARE(v.scores_table()->item(acc, 0)->text(), QString("0.89"));
    v.set_baseline(1);  // full fine-tuning
    QCOMPARE(v.scores_table()->item(acc, 0)->text(), QString("0.89  (-4.0 pt)"));
    QCOMPARE(v.scores_table()->item(acc, 1)->text(), QString("0.93"));
    QVERIFY2(v.scores_table()->item(mem, 0)->text().endsWith("(×0.03)"), qPrintable(v.scores_table()->item(mem, 0)->text()));
    QVERIFY(v.is_best(acc, 1));
    v.set_runs(*db_, {lora1_, lora2_, full_});
    QCOMPARE(v.baseline(), 2);  // still full fine-tuning
    QCOMPARE(v.scores_table()->item(acc, 0)->text(), QString("0.91  (-2.0 pt)"));
    const QString md = dir_->filePath("pinned.md");
    QVERIFY(v.export_table(md, "markdown"));
    QVERIFY(!read(md).contains("pt)"));
    v.set_baseline(-1);
    QCOMPARE(v.scores_table()->item(acc, 0)->text(), QString("0.91"));
}

// The dialogs themselves: a double-click on the tags cell opens "Tags and notes", a comma tag is
// refused inside the dialog (which stays open), a good one is saved; "Delete…" asks, and No keeps.
void BrowseCompareTest::testDialogsEditAndConfirm() {
    RunsBrowser b(db_.get());
    b.show();
    const QByteArray shots = qgetenv("MEFT_GUI_SHOTS");
    bool refused = false, saved = false;
    QTimer::singleShot(0, this, [&] {
        auto* dialog = qobject_cast<QDialog*>(QApplication::activeModalWidget());
        QVERIFY(dialog);
        const auto edits = dialog->findChildren<QPlainTextEdit*>();
        QCOMPARE(edits.size(), 2);
        QCOMPARE(edits[0]->toPlainText(), QString("paper\nlora"));
        auto* save = dialog->findChild<QDialogButtonBox*>()->button(QDialogButtonBox::Save);
        edits[0]->setPlainText("paper\nglue,sst2");
        save->click();
        refused = dialog->isVisible();
        for (QLabel* l : dialog->findChildren<QLabel*>())
            if (l->text().contains("comma")) refused &= l->isVisible();
        if (!shots.isEmpty()) dialog->grab().save(QString::fromLocal8Bit(shots) + "/tags_dialog.png");
        edits[0]->setPlainText("paper\nglue");
        edits[1]->setPlainText("from the dialog");
        save->click();
        saved = !dialog->isVisible();
    });
    const int row = [&] {
        for (int r = 0; r < b.visible_rows(); ++r)
            if (b.run_at(r) == lora1_) return r;
        return -1;
    }();
    emit b.table()->doubleClicked(b.table()->model()->index(row, RunsBrowser::kTags));
    QVERIFY(refused);
    QVERIFY(saved);
    QCOMPARE(QString::fromStdString(db_->run(lora1_)->tags), QString("paper,glue"));
    QCOMPARE(QString::fromStdString(db_->run(lora1_)->notes), QString("from the dialog"));

    b.select_runs({full_});
    QTimer::singleShot(0, this, [&] {
        auto* box = qobject_cast<QMessageBox*>(QApplication::activeModalWidget());
        QVERIFY(box);
        QVERIFY(box->text().contains(QString("#%1").arg(full_)));
        box->button(QMessageBox::No)->click();
    });
    QVERIFY(!b.delete_runs(b.selected_runs(), true));
    QVERIFY(db_->run(full_));
}

void BrowseCompareTest::testScreenshots() {
    db_->set_notes(full_, "baseline for the LoRA sweep; lr from the paper");
    RunsBrowser b(db_.get());
    b.resize(1100, 360);
    b.select_runs({lora1_, full_});
    CompareView v;
    v.set_runs(*db_, {lora2_, full_, meft_});
    v.resize(1200, 900);
    QCOMPARE(v.plots()->curve_count(), 3);
    // The scores: the best accuracy (full, 0.93) is bold, the others not.
    int accuracy = -1;
    for (int r = 0; r < v.scores_table()->rowCount(); ++r)
        if (v.scores_table()->verticalHeaderItem(r)->text() == "accuracy") accuracy = r;
    QVERIFY(accuracy >= 0);
    QVERIFY(v.is_best(accuracy, 1));
    QVERIFY(!v.is_best(accuracy, 0));
    const QByteArray dir = qgetenv("MEFT_GUI_SHOTS");
    if (dir.isEmpty()) return;
    b.show();
    v.show();
    QTest::qWait(50);
    QVERIFY(b.grab().save(QString::fromLocal8Bit(dir) + "/browser.png"));
    QVERIFY(v.grab().save(QString::fromLocal8Bit(dir) + "/compare.png"));
}

QTEST_MAIN(BrowseCompareTest)
#include "test_browse_compare.moc"
