// The workbench end to end on the offscreen platform: configure through the form (the method's
// generated knobs, the live plan), run the toy experiment in the worker thread (plots receive
// points, the window keeps processing events), find the run in the browser, run a second method
// and compare the two; stop cancels; files round-trip without losing keys or sweeps.
#include <QApplication>
#include <QComboBox>
#include <QDir>
#include <QFileInfo>
#include <QLineEdit>
#include <QPointer>
#include <QPushButton>
#include <QScrollArea>
#include <QScrollBar>
#include <QSettings>
#include <QSplitter>
#include <QTabWidget>
#include <QTableView>
#include <QSignalSpy>
#include <QSpinBox>
#include <QTemporaryDir>
#include <QWheelEvent>
#include <QtTest>
#include <qcustomplot.h>

#include <fstream>

#include "ui/runs/compare_view.h"
#include "ui/runs/paper_table_view.h"
#include "ui/runs/timeline_view.h"
#include "store/step_memory.h"
#include "ui/plots/plot_panel.h"
#include "ui/app_resources.h"
#include "ui/database_choice.h"
#include "ui/forms/experiment_form.h"
#include "ui/main_window.h"
#include "ui/forms/method_form.h"
#include "ui/forms/plan_panel.h"
#include "ui/run/run_controller.h"
#include "ui/plots/run_plots.h"
#include "ui/runs/run_overview.h"
#include "ui/runs/runs_browser.h"

using namespace meft::ui;
using nlohmann::json;

class WorkbenchTest : public QObject {
    Q_OBJECT
    QTemporaryDir dir_;
    std::unique_ptr<MainWindow> w_;

    static json quick(const std::string& method, int steps) {
        json j = ExperimentForm::default_experiment();
        j["backbone"]["preset"] = "tiny";
        j["task"]["train_examples"] = 400;
        j["task"]["dev_examples"] = 80;
        j["method"] = {{"name", method}};
        j["training"]["max_steps"] = steps;
        j["training"]["batch_size"] = 16;
        j["training"]["eval_every"] = 10;
        return j;
    }
    // Runs what the form holds; returns the statuses of the runs (waiting in the event loop).
    QStringList run_form(int timeout_ms = 180000) {
        QSignalSpy done(w_.get(), &MainWindow::runs_done);
        QSignalSpy completed(w_.get(), &MainWindow::run_completed);
        w_->start_run();
        if (!done.wait(timeout_ms)) return {"timeout"};
        QStringList statuses;
        for (const auto& args : completed) statuses << args.at(1).toString();
        return statuses;
    }

private slots:
    void initTestCase() {
        QVERIFY(dir_.isValid());
        // The window's remembered layout goes to this test's folder, never the user's settings.
        QSettings::setPath(QSettings::NativeFormat, QSettings::UserScope, dir_.path() + "/settings");
        w_ = std::make_unique<MainWindow>((dir_.path() + "/runs.sqlite").toStdString());
        w_->setProperty("quiet_errors", true);
        w_->show();
    }

    void opensWithARunnableDefault() {
        const json j = w_->form()->to_json();
        QCOMPARE(QString::fromStdString(j["backbone"]["preset"]), QString("toy"));
        QCOMPARE(QString::fromStdString(j["task"]["name"]), QString("toy"));
        QTRY_VERIFY(w_->plan()->trainable() > 0);
        QVERIFY(w_->plan()->error().isEmpty());
        QCOMPARE(w_->plan()->layer_bars(), 4 + 2);  // toy: 4 layers + embeddings + head
        QVERIFY(w_->run_button()->isEnabled());
    }

    void usesTheResources() {
        // The window carries the application icon (the SVG and its six PNG sizes, from the .qrc),
        // and the form starts from resources/default-experiment.json.
        QVERIFY(!w_->windowIcon().isNull());
        for (int size : {16, 32, 48, 64, 128, 256}) {
            const QPixmap png(QString(":/meft/icons/meft-workbench-%1.png").arg(size));
            QCOMPARE(png.size(), QSize(size, size));
        }
        QCOMPARE(application_icon().pixmap(64, 64).size(), QSize(64, 64));
        std::ifstream f(MEFT_RESOURCES_DIR "/default-experiment.json");
        QVERIFY(f.good());
        QCOMPARE(QString::fromStdString(ExperimentForm::default_experiment().dump()),
                 QString::fromStdString(json::parse(f).dump()));
    }

    void methodKnobsAreAGeneratedForm() {
        w_->form()->method_combo()->setCurrentText("lora");
        MethodForm* mf = w_->form()->method_form();
        QCOMPARE(QString::fromStdString(mf->method()), QString("lora"));
        QVERIFY(mf->knob_count() >= 4);
        auto* r = qobject_cast<QSpinBox*>(mf->editor("lora.r"));
        QVERIFY(r);
        QCOMPARE(r->value(), 8);
        QVERIFY(!r->toolTip().isEmpty());
        const std::int64_t before = (QTest::qWait(250), w_->plan()->trainable());
        r->setValue(32);
        QCOMPARE(w_->form()->to_json()["method"]["lora"]["r"].get<int>(), 32);
        QTRY_VERIFY(w_->plan()->trainable() > before);  // the plan follows the settings
        w_->form()->method_combo()->setCurrentText("meft1");
        QVERIFY(mf->editor("meft.lambda") != nullptr);
        QVERIFY(mf->editor("lora.r") == nullptr);
    }

    // Wheeling over a field of the scrolled form that does not have the focus scrolls the form;
    // the field keeps its value (ui/scrolling.h WheelGuard).
    void wheelingOverAnUnfocusedFieldChangesNothing() {
        w_->form()->set_json(quick("lora", 5));
        w_->run_button()->setFocus();
        const auto wheel = [](QWidget* field) {
            for (int delta : {-120, 120, -120}) {
                QWheelEvent ev(QPointF(5, 5), field->mapToGlobal(QPointF(5, 5)), QPoint(), QPoint(0, delta), Qt::NoButton,
                               Qt::NoModifier, Qt::NoScrollPhase, false);
                QApplication::sendEvent(field, &ev);
            }
        };
        QComboBox* method = w_->form()->method_combo();
        QVERIFY(!method->hasFocus());
        wheel(method);
        QCOMPARE(method->currentText(), QString("lora"));  // (a changed method would rebuild the knobs)
        QPointer<QSpinBox> r = qobject_cast<QSpinBox*>(w_->form()->method_form()->editor("lora.r"));
        QVERIFY(r);
        QVERIFY(!r->hasFocus());
        const int r_before = r->value();
        wheel(r);
        QVERIFY(r);
        QCOMPARE(r->value(), r_before);
    }

    void aBadSettingIsReportedAndNothingRuns() {
        json j = quick("lora", 5);
        j["training"]["lerning_rate"] = 1;  // a typo the form keeps as loaded
        w_->form()->set_json(j);
        QTRY_VERIFY(!w_->plan()->error().isEmpty());
        QVERIFY(w_->plan()->error().contains("training.lerning_rate"));
        w_->start_run();
        QVERIFY(!w_->controller()->busy());
        QVERIFY(w_->log_text().contains("lerning_rate"));
        w_->browser()->refresh();
        QCOMPARE(w_->browser()->visible_rows(), 0);
    }

    void runsTheToyExperimentLive() {
        w_->form()->set_json(quick("lora", 30));
        const QStringList statuses = run_form();
        QCOMPARE(statuses, QStringList{"finished"});
        QCOMPARE(w_->live_plots()->loss_points(), 30);
        QVERIFY(w_->live_plots()->eval_points() >= 3);
        QVERIFY(w_->run_button()->isEnabled());
        w_->browser()->refresh();
        QCOMPARE(w_->browser()->visible_rows(), 1);
    }

    void secondMethodThenCompare() {
        w_->form()->set_json(quick("full", 30));
        QCOMPARE(run_form(), QStringList{"finished"});
        w_->browser()->refresh();
        QCOMPARE(w_->browser()->visible_rows(), 2);
        const std::int64_t b = w_->current_run();
        w_->open_stored_run(b);
        QCOMPARE(w_->stored_plots()->loss_points(), 30);
        w_->compare_runs({b - 1, b});
        QCOMPARE(w_->tabs()->currentIndex(), 2);
        QVERIFY(w_->compare()->diff_rows() >= 1);  // method.name differs (lora vs full)
    }

    void stopCancelsTheRunAfterAStep() {
        w_->form()->set_json(quick("lora", 100000));
        QSignalSpy done(w_.get(), &MainWindow::runs_done);
        QSignalSpy completed(w_.get(), &MainWindow::run_completed);
        w_->start_run();
        QTRY_VERIFY_WITH_TIMEOUT(w_->live_plots()->loss_points() > 3, 60000);
        w_->controller()->pause();
        QTest::qWait(300);
        const int paused_at = w_->live_plots()->loss_points();
        QTest::qWait(500);
        QVERIFY(w_->live_plots()->loss_points() <= paused_at + 1);  // held between two steps
        w_->controller()->stop();
        QVERIFY(done.wait(60000));
        QCOMPARE(completed.size(), 1);
        QCOMPARE(completed.at(0).at(1).toString(), QString("cancelled"));
    }

    void filesRoundTripWithoutLosingKeys() {
        json j = quick("lora", 5);
        j["training"]["seed"] = json::array({1, 2, 3});         // a sweep the form cannot show
        j["output"] = {{"dir", "runs/x"}, {"save_model", false}};  // a section the form does not show
        j["method"]["lora"] = {{"r", 4}, {"targets", {"query", "key"}}};
        w_->form()->set_json(j);
        const QString path = dir_.path() + "/saved.json";
        QVERIFY(w_->save_experiment(path));
        QVERIFY(w_->open_experiment(path));
        const json back = w_->form()->to_json();
        QCOMPARE(back["training"]["seed"].dump(), std::string("[1,2,3]"));
        QCOMPARE(back["output"]["dir"].get<std::string>(), std::string("runs/x"));
        QCOMPARE(back["method"]["lora"]["r"].get<int>(), 4);
        QCOMPARE(back["method"]["lora"]["targets"].dump(), std::string("[\"query\",\"key\"]"));
        QString err;
        QVERIFY(!w_->open_experiment(dir_.path() + "/missing.json", &err));
        QVERIFY(err.contains("missing.json"));
    }

    void aKnownFailureDisablesRunWithTheReason() {
        json j = quick("lora", 5);
        j["task"]["max_length"] = 1000;
        j["training"]["max_seq_length"] = 1000;  // beyond the 512 positions
        w_->form()->set_json(j);
        QTRY_VERIFY(!w_->plan()->problems().isEmpty());
        QVERIFY(!w_->run_button()->isEnabled());
        QVERIFY(w_->run_button()->toolTip().contains("training.max_seq_length is 1000"));
        QVERIFY(w_->run_blocked_reason().contains("at most 512"));
        w_->form()->set_json(quick("lora", 5));
        QTRY_VERIFY(w_->plan()->problems().isEmpty());
        QTRY_VERIFY(w_->run_button()->isEnabled());
        QVERIFY(w_->run_blocked_reason().isEmpty());
    }

    // An exception inside the engine's worker threads (a diverged MEFT stream, thrown in a pool
    // task) ends the run as failed with its message; the window stays and can run again.
    void aRunFailingInAWorkerThreadIsShownAndTheWindowStays() {
        json j = quick("meft1", 60);
        j["task"]["train_examples"] = 64;
        j["training"]["batch_size"] = 8;
        j["training"]["learning_rate"] = 10;
        j["training"]["max_grad_norm"] = 0;
        w_->form()->set_json(j);
        QTRY_VERIFY(w_->run_button()->isEnabled());
        QCOMPARE(run_form(), QStringList{});  // no run completed: it failed
        QVERIFY(w_->log_text().contains("the run diverged"));
        QVERIFY(w_->isVisible());
        QVERIFY(w_->run_button()->isEnabled());
        const auto runs = meft::ExperimentDb((dir_.path() + "/runs.sqlite").toStdString()).runs("failed");
        QCOMPARE(runs.size(), std::size_t(1));
        QVERIFY(QString::fromStdString(runs[0].message).contains("outside the exact fixed-point range"));
        // Opened in the Runs tab, its overview says it failed and why, next to its config and environment.
        w_->open_stored_run(runs[0].id);
        const QString overview = w_->overview()->toPlainText();
        QVERIFY2(overview.contains("failed") && overview.contains("outside the exact fixed-point range") &&
                     overview.contains("method.name") && overview.contains("meft1") && overview.contains("git_commit"),
                 qPrintable(overview));
    }

    // A file that is not a database: the chooser is told which file and why, and what it picks is used.
    void aDatabaseThatCannotBeUsedIsNamedAndAnotherOffered() {
        const std::filesystem::path bad = (dir_.path() + "/not-a-db.sqlite").toStdString();
        {
            std::ofstream(bad) << "this is not an SQLite database, just text that is long enough to have a header";
        }
        const std::filesystem::path good = (dir_.path() + "/fresh.sqlite").toStdString();
        QStringList asked;
        const auto chosen = usable_database(bad, [&](const std::filesystem::path& f, const QString& why) {
            asked << QString::fromStdString(f.string()) + ": " + why;
            return std::optional<std::filesystem::path>(good);
        });
        QVERIFY(chosen.has_value());
        QCOMPARE(QString::fromStdString(chosen->string()), QString::fromStdString(good.string()));
        QCOMPARE(asked.size(), 1);
        QVERIFY(asked[0].contains("not-a-db.sqlite"));
        QVERIFY(asked[0].contains("not an experiment database"));
        const auto gave_up = usable_database(bad, [](const std::filesystem::path&, const QString&) {
            return std::optional<std::filesystem::path>();
        });
        QVERIFY(!gave_up.has_value());
    }

    // A database opened read-only (as one whose file or folder is not writable is) is browsed, and
    // Run is disabled with the reason. (test_runs_cli checks real file permissions.)
    void aReadOnlyDatabaseIsBrowsedNotWritten() {
        const std::filesystem::path file = (dir_.path() + "/ro.sqlite").toStdString();
        {
            meft::ExperimentDb db(file);
            meft::NewExperiment x{"kept"};
            db.add_run(x, json::object(), json::object());
        }
        MainWindow ro(file, nullptr, true);
        ro.browser()->refresh();
        QCOMPARE(ro.browser()->visible_rows(), 1);
        QTRY_VERIFY(!ro.run_button()->isEnabled());
        QVERIFY(ro.run_blocked_reason().contains("read-only"));
    }

    // The window fits a 1280 × 720 screen on every tab, and the form then needs no sideways scroll
    // (no field cut off at the right edge).
    void fitsASmallScreen() {
        const QSize most(1280, 720);
        QVERIFY2(w_->minimumSizeHint().width() <= most.width() && w_->minimumSizeHint().height() <= most.height(),
                 qPrintable(QString("minimum %1 x %2").arg(w_->minimumSizeHint().width()).arg(w_->minimumSizeHint().height())));
        w_->resize(most);
        for (int tab = 0; tab < w_->tabs()->count(); ++tab) {
            w_->tabs()->setCurrentIndex(tab);
            QCoreApplication::processEvents();
            QVERIFY2(w_->minimumSizeHint().width() <= most.width() && w_->minimumSizeHint().height() <= most.height(),
                     qPrintable(QString("tab %1: minimum %2 x %3").arg(tab).arg(w_->minimumSizeHint().width())
                                    .arg(w_->minimumSizeHint().height())));
        }
        w_->tabs()->setCurrentIndex(0);
        QCoreApplication::processEvents();
        auto* form_scroll = qobject_cast<QScrollArea*>(w_->form()->parentWidget()->parentWidget());
        QVERIFY(form_scroll);
        QTRY_VERIFY(!form_scroll->horizontalScrollBar()->isVisible());
        QVERIFY(w_->form()->width() >= w_->form()->minimumSizeHint().width());
        w_->resize(1600, 1000);
    }

    // Geometry, splitters and the tab come back in the next session, with the database and the
    // last experiment saved.
    void remembersTheLayout() {
        const QString db = dir_.path() + "/runs.sqlite";
        const QString exp = dir_.path() + "/remembered.json";
        {
            MainWindow a(db.toStdString());
            a.restore_settings();
            a.resize(1300, 800);
            a.show();
            auto* split = a.findChild<QSplitter*>("experiment_split");
            QVERIFY(split);
            split->setSizes({350, 600, 300});
            QCoreApplication::processEvents();
            const QList<int> sizes = split->sizes();
            a.tabs()->setCurrentIndex(1);
            QVERIFY(a.save_experiment(exp));
            a.close();
            MainWindow b(db.toStdString());
            b.restore_settings();
            b.show();
            QCoreApplication::processEvents();
            QCOMPARE(b.tabs()->currentIndex(), 1);
            QCOMPARE(b.size(), a.size());
            b.tabs()->setCurrentIndex(0);
            QCoreApplication::processEvents();
            QCOMPARE(b.findChild<QSplitter*>("experiment_split")->sizes(), sizes);
        }
        QCOMPARE(MainWindow::remembered_database(), QString::fromStdString(db.toStdString()));
        QCOMPARE(MainWindow::remembered_experiment(), QFileInfo(exp).absoluteFilePath());
    }

    // Copy as command: the saved file, this database and a --set per changed value.
    void copiesTheFormAsACommand() {
        const QString file = dir_.path() + "/as command.json";
        json j = quick("lora", 5);
        w_->form()->set_json(j);
        QString why;
        QVERIFY(w_->command_for_form(&why).isEmpty());
        QVERIFY(why.contains("not saved"));
        QVERIFY(w_->save_experiment(file));
        QCOMPARE(w_->command_for_form(), QString("meft run '%1' --db %2").arg(file, dir_.path() + "/runs.sqlite"));
        j["training"]["learning_rate"] = 0.0003;
        j["method"] = {{"name", "lora"}, {"lora", {{"r", 4}}}};
        w_->form()->set_json(j, file.toStdString());
        const QString cmd = w_->command_for_form(&why);
        // The saved file had no "lora" section (its knobs were at their defaults): the section is set whole.
        QVERIFY2(cmd.contains(R"( --set 'method.lora={"r":4}')") && cmd.contains(" --set training.learning_rate=0.0003"),
                 qPrintable(cmd + " / " + why));
    }

    // Save as… into another folder: the saved file's relative folders still name the same places.
    void saveAsKeepsRelativeFoldersReachable() {
        QDir(dir_.path()).mkpath("tok");
        QDir(dir_.path()).mkpath("sub/deeper");
        json j = quick("lora", 5);
        j["backbone"]["tokenizer"] = "tok";
        const QString first = dir_.path() + "/first.json", second = dir_.path() + "/sub/deeper/second.json";
        w_->form()->set_json(j, first.toStdString());
        QVERIFY(w_->save_experiment(first));
        QVERIFY(w_->save_experiment(second));
        std::ifstream in(second.toStdString());
        const json saved = json::parse(in);
        QCOMPARE(QString::fromStdString(saved["backbone"]["tokenizer"]), QString("../../tok"));
        QCOMPARE(QString::fromStdString(w_->form()->to_json()["backbone"]["tokenizer"]), QString("../../tok"));
        QVERIFY(QFileInfo(QFileInfo(second).dir(), "../../tok").isDir());
    }

    // To form: a stored run's configuration comes back into the form, ready to change and run again.
    void aRunsConfigGoesBackIntoTheForm() {
        const auto runs = meft::ExperimentDb((dir_.path() + "/runs.sqlite").toStdString()).runs("finished");
        QVERIFY(!runs.empty());
        const meft::RunInfo& r = runs.front();
        w_->form()->set_json(quick("bitfit", 3));
        emit w_->browser()->config_to_form(r.id);
        QCOMPARE(w_->tabs()->currentIndex(), 0);
        const json form = w_->form()->to_json();
        QCOMPARE(form["method"]["name"], r.config["method"]["name"]);
        QCOMPARE(form["training"]["learning_rate"], r.config["training"]["learning_rate"]);
        QCOMPARE(form["training"]["max_steps"], r.config["training"]["max_steps"]);
        QVERIFY(w_->form()->file().empty());
        QTRY_VERIFY(w_->run_button()->isEnabled());
    }

    // Resume: a run stopped half-way continues from its checkpoint, from the Runs tab, to the end;
    // the live plots show its earlier steps and the new ones, and the run keeps its id.
    void aCancelledRunResumesFromTheRunsTab() {
        w_->form()->set_json(quick("lora", 120));
        QSignalSpy done(w_.get(), &MainWindow::runs_done);
        QSignalSpy started(w_->controller(), &RunController::run_started);
        w_->start_run();
        // This run's own steps (the live plots still hold the last run's until it starts).
        QTRY_VERIFY_WITH_TIMEOUT(started.size() == 1 && w_->live_plots()->loss_points() > 3, 60000);
        w_->controller()->pause();  // held between two steps, then stopped there
        w_->controller()->stop();
        QVERIFY(done.wait(60000));
        const std::int64_t run = w_->current_run();
        meft::ExperimentDb reader((dir_.path() + "/runs.sqlite").toStdString());
        QVERIFY2(reader.run(run)->status == "cancelled", reader.run(run)->message.c_str());
        const int stopped_at = int(reader.steps(run).size());
        QVERIFY(stopped_at > 0 && stopped_at < 120);

        RunsBrowser* b = w_->browser();
        b->refresh();
        b->select_runs({run});
        QVERIFY(b->resume_button()->isEnabled());
        QSignalSpy completed(w_.get(), &MainWindow::run_completed);
        b->resume_button()->click();
        QCOMPARE(w_->tabs()->currentIndex(), 0);  // progress shows with the live plots
        QVERIFY(done.wait(120000));
        QCOMPARE(completed.size(), 1);
        QCOMPARE(completed.at(0).at(0).toLongLong(), qint64(run));
        QCOMPARE(completed.at(0).at(1).toString(), QString("finished"));
        const auto steps = reader.steps(run);
        QCOMPARE(int(steps.size()), 120);
        for (std::size_t i = 0; i < steps.size(); ++i) QCOMPARE(steps[i].step, int(i) + 1);
        QCOMPARE(w_->live_plots()->loss_points(), 120);  // the earlier steps, then the resumed ones
        b->refresh();
        b->select_runs({run});
        QVERIFY(!b->resume_button()->isEnabled());  // finished runs do not resume
    }

    // Rerun: the selected run's recorded configuration again, as a new run of the same experiment.
    void rerunRecordsTheSameConfigurationAsANewRun() {
        meft::ExperimentDb reader((dir_.path() + "/runs.sqlite").toStdString());
        const auto finished = reader.runs("finished");
        QVERIFY(!finished.empty());
        const meft::RunInfo& old = finished.front();
        RunsBrowser* b = w_->browser();
        b->refresh();
        b->select_runs({old.id});
        QVERIFY(b->rerun_button()->isEnabled());
        QSignalSpy done(w_.get(), &MainWindow::runs_done);
        QSignalSpy completed(w_.get(), &MainWindow::run_completed);
        b->rerun_button()->click();
        QVERIFY(done.wait(120000));
        QCOMPARE(completed.size(), 1);
        const std::int64_t fresh = completed.at(0).at(0).toLongLong();
        QVERIFY(fresh > old.id);
        const auto again = reader.run(fresh);
        QCOMPARE(QString::fromStdString(again->status), QString("finished"));
        QCOMPARE(again->experiment_id, old.experiment_id);
        QVERIFY(again->config == old.config);
        QVERIFY(again->uuid != old.uuid);
        // While a run is in progress neither starts another.
        w_->form()->set_json(quick("lora", 100000));
        w_->start_run();
        QTRY_VERIFY_WITH_TIMEOUT(w_->controller()->busy(), 10000);
        QVERIFY(!w_->rerun_stored_runs({old.id}));
        QVERIFY(w_->log_text().contains("a run is in progress"));
        w_->controller()->stop();
        QVERIFY(done.wait(60000));
    }

    // Runs recorded by another process appear without Refresh, and an opened running run follows
    // its steps live until it ends, then shows everything it left.
    void runsRecordedElsewhereAppearAndARunningRunIsFollowed() {
        RunsBrowser* b = w_->browser();
        b->refresh();
        const int before = b->total_rows();
        meft::ExperimentDb other((dir_.path() + "/runs.sqlite").toStdString());  // as `meft run` would
        meft::NewExperiment e{"elsewhere"};
        json config = quick("lora", 50);
        const std::int64_t run = other.add_run(e, config, json::object());
        other.set_status(run, "running");
        QTRY_COMPARE_WITH_TIMEOUT(b->total_rows(), before + 1, 5000);  // the browser's timer, no Refresh
        w_->open_stored_run(run);
        QCOMPARE(w_->followed_run(), run);
        std::vector<meft::StepRow> rows;
        for (int s = 1; s <= 20; ++s) rows.push_back(meft::StepRow{s, 1.0 / s, 1e-3, 1.0, 100.0, 0.1 * s});
        other.add_steps(run, rows);
        QTRY_COMPARE_WITH_TIMEOUT(w_->stored_plots()->loss_points(), 20, 5000);
        QTRY_VERIFY_WITH_TIMEOUT(b->visible_rows() > 0 &&
                                     b->table()->model()->index(0, RunsBrowser::kSteps).data().toString() == "20",
                                 5000);  // newest first: the running run's step count moves
        other.add_eval(run, 20, {{"accuracy", 0.75}}, 0.5);
        QTRY_COMPARE_WITH_TIMEOUT(w_->stored_plots()->eval_points(), 1, 5000);
        other.finish(run, "finished", json{{"accuracy", 0.75}});
        QTRY_COMPARE_WITH_TIMEOUT(w_->followed_run(), std::int64_t{0}, 5000);
        QVERIFY(w_->overview()->toPlainText().contains("finished"));
        other.delete_run(run);
        QTRY_COMPARE_WITH_TIMEOUT(b->total_rows(), before, 5000);
    }

    // Table: the browser's runs go to the paper table tab; the unfinished ones are named as left out.
    void theTableTabShowsTheRunsAsAPaperTable() {
        RunsBrowser* b = w_->browser();
        b->refresh();
        b->select_runs({});
        b->table_button()->click();
        QCOMPARE(w_->tabs()->currentIndex(), 3);
        const auto all = meft::ExperimentDb((dir_.path() + "/runs.sqlite").toStdString()).runs();
        std::size_t finished = 0;
        for (const auto& r : all) finished += r.status == "finished" ? 1 : 0;
        QCOMPARE(w_->paper_table()->left_out().size(), all.size() - finished);
        QVERIFY(!w_->paper_table()->table().rows.empty());
        QVERIFY(w_->paper_table()->text("markdown").contains("| method |"));
    }

    // A typed path replans (not only the … button), and an unsaved form's messages name what the
    // relative path resolved from, never a placeholder file that does not exist.
    void aTypedPathReplansAndMessagesNameRealPlaces() {
        json j = quick("lora", 5);
        j["task"] = {{"name", "sst2"}, {"data_dir", "glue/SST-2"}};
        w_->form()->set_json(j);  // unsaved: no file
        QLineEdit* data_dir = nullptr;
        for (QLineEdit* e : w_->form()->findChildren<QLineEdit*>())
            if (e->placeholderText().contains("GLUE root")) data_dir = e;
        QVERIFY(data_dir);
        QSignalSpy planned(w_->plan(), &PlanPanel::planned);
        data_dir->selectAll();
        QTest::keyClicks(data_dir, "no-such-glue-dir");
        QTRY_VERIFY(planned.size() > 0 && (w_->plan()->error() + w_->plan()->problems().join('\n')).contains("no-such-glue-dir"));
        const QString error = w_->plan()->error() + w_->plan()->problems().join('\n');
        QVERIFY2(error.contains("no-such-glue-dir"), qPrintable(error));
        QVERIFY2(!error.contains("unsaved.json"), qPrintable(error));
        QVERIFY2(error.contains("the unsaved form (relative paths from " + QDir::currentPath() + ")"), qPrintable(error));
    }

    // The plan shows what makes up MEFT's activations: held by layers, streams and the backward's
    // transient, per layer stacked in the bars.
    void thePlanSplitsTheActivationsIntoTheirParts() {
        json j = quick("meft1", 5);
        w_->form()->set_json(j);
        QTRY_VERIFY(w_->plan()->error().isEmpty() && w_->plan()->memory_text().contains("streams"));
        const QString text = w_->plan()->memory_text();
        QVERIFY2(text.contains("held by layers") && text.contains("backward transient"), qPrintable(text));
        QCOMPARE(w_->plan()->plot()->plottableCount(), 2);  // held, transient stacked on it
    }

    // Timeline: a run's step over time, stacked by layer and kind; its peak is the plan's recorded
    // for the run; measured on the CPU it is the same; a second run overlays its total.
    void theTimelineTabShowsAStepOverTime() {
        meft::ExperimentDb reader((dir_.path() + "/runs.sqlite").toStdString());
        const auto finished = reader.runs("finished");
        QVERIFY(finished.size() >= 2);
        const meft::RunInfo& a = finished.back();
        const auto planned = meft::step_memory_of(reader.step_memory(a.id), "planned");
        QVERIFY(planned);
        RunsBrowser* b = w_->browser();
        b->refresh();
        b->select_runs({a.id});
        QVERIFY(b->timeline_button()->isEnabled());
        b->timeline_button()->click();
        QCOMPARE(w_->tabs()->currentIndex(), 4);
        TimelineView* t = w_->timeline();
        QVERIFY2(t->error().isEmpty(), qPrintable(t->error()));
        QCOMPARE(t->timelines().size(), std::size_t(1));
        QCOMPARE(t->timelines().front().peak, planned->activation_peak);
        QVERIFY(t->stacked_lanes() >= 3);
        QCOMPARE(t->panel()->plot()->graphCount(), t->stacked_lanes());
        t->set_source(TimelineView::Source::cpu);
        QVERIFY2(t->error().isEmpty(), qPrintable(t->error()));
        QCOMPARE(t->timelines().front().peak, planned->activation_peak);
        t->set_source(TimelineView::Source::plan);
        w_->timeline_runs({a.id, finished.front().id});
        QCOMPARE(t->timelines().size(), std::size_t(2));
        QCOMPARE(t->panel()->plot()->graphCount(), t->stacked_lanes() + 1);  // the second run's total
        b->select_runs({a.id, finished[1].id, finished.front().id});
        QVERIFY(!b->timeline_button()->isEnabled());  // one or two
    }

    void cleanupTestCase() { w_.reset(); }
};

QTEST_MAIN(WorkbenchTest)
#include "test_workbench.moc"
