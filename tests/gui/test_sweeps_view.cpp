// The workbench's sweeps on the offscreen platform: the Sweeps tab follows a sweep recorded in the
// database — each expansion's state from its shard, finished runs gathered into the database as
// they finish (the Runs tab shows them), a failed expansion's log lines, Forget; and Submit to
// Slurm from the form shows the generated script (rebuilt as fields change, refused with the
// field named when one is invalid), submits it with sbatch, records the sweep and follows it,
// Cancel runs scancel, and Resume submits the script again once Slurm has no task of it left.
// sbatch, squeue, sacct and scancel are stand-ins on PATH here; tests/test_sweep_slurm.sh submits
// to a real Slurm.
#include <QPushButton>
#include <QSpinBox>
#include <QLineEdit>
#include <QProcess>
#include <QSettings>
#include <QTabWidget>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QtTest>

#include <fstream>

#include "run/sweep.h"
#include "run/sweep_submit.h"
#include "store/database.h"
#include "store/experiment.h"
#include "ui/forms/experiment_form.h"
#include "ui/forms/slurm_dialog.h"
#include "ui/main_window.h"
#include "ui/runs/runs_browser.h"
#include "ui/runs/sweeps_view.h"

using namespace meft;
using namespace meft::ui;
using nlohmann::json;

namespace {
const char* kGrid = R"({"name": "guigrid", "backbone": {"arch": "bert", "preset": "tiny"},
 "task": {"name": "toy", "train_examples": 32, "dev_examples": 8, "max_length": 16},
 "method": {"name": "lora"},
 "training": {"max_steps": 3, "batch_size": 4, "max_seq_length": 16, "learning_rate": [0.001, 0.002]}})";

void write(const QString& file, const std::string& text, bool executable = false) {
    std::ofstream(file.toStdString()) << text;
    if (executable) QFile(file).setPermissions(QFile::ReadOwner | QFile::WriteOwner | QFile::ExeOwner);
}

QString cell(QTableWidget* t, int row, int col) { return t->item(row, col) ? t->item(row, col)->text() : QString(); }

QString read(const QString& file) {
    QFile f(file);
    return f.open(QIODevice::ReadOnly) ? QString::fromUtf8(f.readAll()) : QString();
}
}  // namespace

class SweepsViewTest : public QObject {
    Q_OBJECT
    QTemporaryDir dir_;
    QString path(const QString& name) const { return dir_.path() + "/" + name; }

private slots:
    void initTestCase() {
        QVERIFY(dir_.isValid());
        QSettings::setPath(QSettings::NativeFormat, QSettings::UserScope, path("settings"));
        write(path("grid.json"), kGrid);
        // Stand-ins for Slurm's commands: each records its arguments.
        QDir().mkpath(path("bin"));
        write(path("bin/sbatch"), "#!/bin/sh\necho \"$@\" > '" + path("sbatch.args").toStdString() + "'\ncat '" +
                                      path("next_job").toStdString() + "'\n", true);
        write(path("next_job"), "4242\n");
        write(path("bin/squeue"), "#!/bin/sh\ncat '" + path("squeue.out").toStdString() + "'\n", true);
        write(path("squeue.out"), "4242_1 PENDING\n4242_2 RUNNING\n");
        write(path("bin/sacct"), "#!/bin/sh\necho 'Slurm accounting storage is disabled' >&2\nexit 1\n", true);
        write(path("bin/scancel"), "#!/bin/sh\necho \"$@\" > '" + path("scancel.args").toStdString() + "'\n", true);
        qputenv("PATH", (path("bin") + ":" + qgetenv("PATH")).toUtf8());
        qputenv("MEFT_PROGRAM", MEFT_CLI);
    }

    void followsALocalSweepAndGathersRunsAsTheyFinish() {
        const QString db_file = path("local.sqlite");
        Sweep s = plan_sweep(json::parse(kGrid), path("grid.json").toStdString(), {}, path("local-sweep").toStdString(), "local", MEFT_CLI);
        s.parallel = 2;
        s.db = db_file.toStdString();
        create_sweep(s);
        {
            ExperimentDb db(db_file.toStdString());
            db.record_sweep(sweep_row(s));
        }
        // Expansion 1 runs for real (meft run --only 1 into its shard); expansion 2 failed.
        QStringList args;
        for (const std::string& a : s.task_command(1)) args << QString::fromStdString(a);
        QCOMPARE(QProcess::execute(args.takeFirst(), args), 0);
        {
            ExperimentDb shard(s.shard(2));
            NewExperiment e{"guigrid", "grid.json", json::object()};
            const std::int64_t r = shard.add_run(e, {{"x", 1}}, {});
            shard.finish(r, "failed", nullptr, "the run diverged at step 2");
        }
        write(QString::fromStdString(s.log(2).string()), "loading\nstep 1\nerror: the run diverged at step 2\n");

        MainWindow w(db_file.toStdString());
        w.setProperty("quiet_errors", true);
        w.show();
        SweepsView* v = w.sweeps();
        v->set_poll_interval(100);
        QCOMPARE(v->sweeps_table()->rowCount(), 1);
        QCOMPARE(cell(v->sweeps_table(), 0, 0), QString("guigrid"));
        QCOMPARE(cell(v->sweeps_table(), 0, 1), QString("local"));
        QCOMPARE(v->selected_sweep(), QString::fromStdString(s.dir.string()));
        QTRY_COMPARE(v->expansions_table()->rowCount(), 2);
        QTRY_COMPARE(cell(v->expansions_table(), 0, 3), QString("yes"));  // gathered as it finished
        QCOMPARE(cell(v->expansions_table(), 0, 1), QString("finished"));
        QCOMPARE(cell(v->expansions_table(), 1, 1), QString("failed"));
        QCOMPARE(cell(v->expansions_table(), 1, 2), QString("the run diverged at step 2"));
        QCOMPARE(cell(v->expansions_table(), 1, 4), QString("training.learning_rate=0.002"));
        QVERIFY2(v->log_text().contains("error: the run diverged at step 2"), qPrintable(v->log_text()));
        QVERIFY2(v->summary().contains("1 failed, 1 finished") && v->summary().contains("1 gathered"), qPrintable(v->summary()));
        {
            ExperimentDb db(db_file.toStdString(), DbAccess::ReadOnly);
            const auto runs = db.runs();
            QCOMPARE(runs.size(), std::size_t(1));
            QCOMPARE(runs[0].status, std::string("finished"));
            QCOMPARE(runs[0].config["training"]["learning_rate"].get<double>(), 0.001);
        }
        QTRY_COMPARE(w.browser()->total_rows(), 1);  // the Runs tab shows the gathered run
        // Asked again, nothing is gathered twice.
        v->refresh_status();
        QTRY_VERIFY(!v->asking());
        QCOMPARE(v->gather_finished(), 0);
        // Choosing an expansion shows its log.
        v->expansions_table()->selectRow(0);
        QVERIFY2(v->log_text().contains("expansion 1"), qPrintable(v->log_text()));
        // Forget: the list forgets it; the folder and the gathered run stay.
        QVERIFY(v->forget_sweep(false));
        QCOMPARE(v->sweeps_table()->rowCount(), 0);
        QVERIFY(QFileInfo::exists(QString::fromStdString(s.record_file().string())));
        ExperimentDb db(db_file.toStdString(), DbAccess::ReadOnly);
        QVERIFY(db.sweeps().empty());
        QCOMPARE(db.runs().size(), std::size_t(1));
    }

    void submitToSlurmShowsTheScriptThenFollowsTheSweep() {
        MainWindow w(path("slurm.sqlite").toStdString());
        w.setProperty("quiet_errors", true);
        w.show();
        w.sweeps()->set_poll_interval(100);
        w.form()->set_json(json::parse(kGrid), path("grid.json").toStdString());
        std::unique_ptr<SlurmDialog> d(w.make_slurm_dialog());
        QCOMPARE(d->expansions(), 2);
        QVERIFY2(d->problem().isEmpty(), qPrintable(d->problem()));
        QVERIFY(d->script().contains("#SBATCH --array=1-2\n"));
        QVERIFY(d->script().contains(QString(MEFT_CLI) + " run "));
        QVERIFY(!d->script().contains("--partition"));
        d->partition()->setText("gpu");
        QVERIFY(d->script().contains("#SBATCH --partition=gpu\n"));
        d->time_limit()->setText("1h");  // not a time Slurm reads: refused, naming the field
        QVERIFY2(d->problem().contains("time limit '1h'"), qPrintable(d->problem()));
        QVERIFY(d->script().isEmpty());
        QVERIFY(!d->submit());
        QVERIFY(!QFileInfo::exists(path("sbatch.args")));
        d->time_limit()->setText("01:30:00");
        d->cpus()->setValue(4);
        d->max_parallel()->setValue(1);
        d->sbatch_args()->setText("--account=abc  --qos=low");
        for (const char* line : {"#SBATCH --time=01:30:00\n", "#SBATCH --cpus-per-task=4\n", "#SBATCH --array=1-2%1\n",
                                 "#SBATCH --account=abc\n", "#SBATCH --qos=low\n"})
            QVERIFY2(d->script().contains(line), line);
        d->folder()->setText(path("slurm-sweep"));
        const QString shown = d->script();
        QVERIFY(d->submit());
        QCOMPARE(read(path("sbatch.args")).trimmed(), "--parsable " + path("slurm-sweep/sweep.sbatch"));
        const Sweep s = read_sweep(path("slurm-sweep").toStdString());
        QCOMPARE(QString::fromStdString(s.job_id), QString("4242"));
        QCOMPARE(QString::fromStdString(s.slurm.partition), QString("gpu"));
        // What was submitted is what was shown (but for the time it was written).
        const QString written = read(path("slurm-sweep/sweep.sbatch"));
        QCOMPARE(written.section('\n', 3), shown.section('\n', 3));
        w.sweep_submitted(*d->submitted());
        QCOMPARE(w.tabs()->currentWidget(), static_cast<QWidget*>(w.sweeps()));
        QCOMPARE(cell(w.sweeps()->sweeps_table(), 0, 2), QString("4242"));
        QTRY_COMPARE(w.sweeps()->expansions_table()->rowCount(), 2);
        QCOMPARE(cell(w.sweeps()->expansions_table(), 0, 1), QString("queued"));
        QCOMPARE(cell(w.sweeps()->expansions_table(), 1, 1), QString("running"));
        QVERIFY2(w.sweeps()->summary().contains("accounting storage is disabled"), qPrintable(w.sweeps()->summary()));
        // Cancel: scancel on the job; the record says when.
        QVERIFY(w.sweeps()->cancel_sweep(false));
        QCOMPARE(read(path("scancel.args")).trimmed(), QString("4242"));
        QVERIFY(!read_sweep(path("slurm-sweep").toStdString()).cancelled_at.empty());
        {
            ExperimentDb db(path("slurm.sqlite").toStdString(), DbAccess::ReadOnly);
            QCOMPARE(db.sweeps().size(), std::size_t(1));
            QVERIFY(db.sweeps()[0].record.contains("cancelled_at"));
        }
        // Resume: refused while Slurm still lists the job's tasks; then the script is submitted again.
        QSignalSpy messages(w.sweeps(), &SweepsView::message);
        QVERIFY(!w.sweeps()->resume_sweep());
        QVERIFY(!messages.isEmpty() && messages.last().at(0).toString().contains("still has 2 task(s) queued or running"));
        write(path("squeue.out"), "");
        write(path("next_job"), "4343\n");
        QVERIFY(w.sweeps()->resume_sweep());
        const Sweep resumed = read_sweep(path("slurm-sweep").toStdString());
        QCOMPARE(QString::fromStdString(resumed.job_id), QString("4343"));
        QVERIFY(resumed.cancelled_at.empty());
        QCOMPARE(read(path("sbatch.args")).trimmed(), "--parsable " + path("slurm-sweep/sweep.sbatch"));
        ExperimentDb db(path("slurm.sqlite").toStdString(), DbAccess::ReadOnly);
        QCOMPARE(QString::fromStdString(db.sweeps()[0].job_id), QString("4343"));
        // Without sbatch the submission fails, saying so, and the script stays for submitting by hand.
        qputenv("PATH", "/nonexistent");
        std::unique_ptr<SlurmDialog> again(w.make_slurm_dialog());
        again->folder()->setText(path("no-sbatch"));
        QVERIFY(!again->submit());
        QVERIFY2(again->problem().contains("sbatch: not found on PATH") && again->problem().contains("no-sbatch/sweep.sbatch"),
                 qPrintable(again->problem()));
        qputenv("PATH", (path("bin") + ":/usr/bin:/bin").toUtf8());
    }
};

QTEST_MAIN(SweepsViewTest)
#include "test_sweeps_view.moc"
