#include "ui/screenshots.h"

#include <QDir>
#include <QEventLoop>
#include <QProcess>
#include <QTemporaryDir>
#include <QTabWidget>
#include <QTimer>

#include <vector>

#include "ui/forms/experiment_form.h"
#include "ui/main_window.h"
#include "ui/plots/compare_plots.h"
#include "ui/plots/run_plots.h"
#include "ui/runs/compare_view.h"
#include "ui/runs/paper_table_view.h"
#include "ui/runs/timeline_view.h"
#include "ui/runs/runs_browser.h"
#include "ui/runs/sweeps_view.h"
#include "ui/forms/slurm_dialog.h"

#include <QLineEdit>
#include <QSpinBox>
#include <memory>

namespace meft::ui {

namespace {

bool run_and_wait(MainWindow& w, const nlohmann::json& experiment) {
    w.form()->set_json(experiment);
    QEventLoop loop;
    bool ok = true;
    QObject::connect(&w, &MainWindow::runs_done, &loop, &QEventLoop::quit);
    QObject::connect(&w, &MainWindow::run_completed, &loop, [&](qint64, const QString& s) { ok = ok && s == "finished"; });
    QTimer::singleShot(600000, &loop, &QEventLoop::quit);
    w.start_run();
    loop.exec();
    return ok;
}

bool grab(QWidget& w, const QString& file) {
    QEventLoop settle;  // let throttled plots redraw
    QTimer::singleShot(300, &settle, &QEventLoop::quit);
    settle.exec();
    const bool ok = w.grab().save(file);
    fprintf(stderr, "%s %s\n", ok ? "wrote" : "FAILED to write", file.toUtf8().constData());
    return ok;
}

// A learning-rate grid of MEFT1 on the toy task through `meft sweep submit --local 2` (the last
// rate diverges), then the Sweeps tab following it.
bool sweep_screenshot(MainWindow& w, const QString& file) {
    QTemporaryDir scratch;
    nlohmann::json grid = ExperimentForm::default_experiment();
    grid["name"] = "meft1-lr-grid";
    grid["method"] = {{"name", "meft1"}};
    grid["training"].update({{"learning_rate", {0.001, 0.003, 0.01, 10}}, {"max_grad_norm", 0}, {"max_steps", 150}});
    const QString exp = scratch.path() + "/grid.json";
    QFile f(exp);
    if (!f.open(QIODevice::WriteOnly)) return false;
    f.write(QByteArray::fromStdString(grid.dump(2)));
    f.close();
    const QString meft = QString::fromStdString(MainWindow::meft_program().string());
    QProcess p;
    p.setProcessChannelMode(QProcess::ForwardedErrorChannel);
    p.start(meft, {"sweep", "submit", exp, "--local", "2", "--dir", scratch.path() + "/sweeps/meft1-lr-grid", "--db",
                   QString::fromStdString(w.database_file().string()), "--no-gather"});
    if (!p.waitForFinished(600000)) return false;
    w.sweeps()->reload();
    QEventLoop loop;
    QObject::connect(w.sweeps(), &SweepsView::status_shown, &loop, &QEventLoop::quit);
    QTimer::singleShot(30000, &loop, &QEventLoop::quit);
    w.tabs()->setCurrentWidget(w.sweeps());
    w.sweeps()->refresh_status();
    loop.exec();
    return grab(w, file);
}

}  // namespace

int render_screenshots(MainWindow& w, const QString& dir) {
    QDir().mkpath(dir);
    w.setProperty("quiet_errors", true);
    w.resize(1366, 768);  // a common laptop screen: what the docs show
    w.show();
    // Two runs that learn the toy task (the quickstart's full fine-tuning; MEFT3 with the settings
    // of experiments/meft3-toy.json, checking its reconstruction every 10 steps).
    nlohmann::json a = ExperimentForm::default_experiment();
    a["name"] = "full-toy";
    a["method"] = {{"name", "full"}};
    a["training"]["epochs"] = 2;
    nlohmann::json b = a;
    b["name"] = "meft3-toy";
    b["method"] = {{"name", "meft3"}};
    b["training"].update({{"learning_rate", 0.01}, {"epochs", 4}, {"warmup_ratio", 0.06}, {"weight_decay", 0.1},
                          {"adam_beta2", 0.98}, {"adam_epsilon", 1e-6}, {"seed", 3407},
                          {"reconstruction_check_every", 10}});
    b["tags"] = {"workbench", "meft"};
    // A second seed of each, for the grouped curves and the paper table's mean ± std.
    nlohmann::json a2 = a, b2 = b;
    a2["training"]["seed"] = 7;
    b2["training"]["seed"] = 11;
    std::vector<std::int64_t> runs;
    for (const nlohmann::json* e : {&a, &a2, &b2, &b}) {  // MEFT3's first seed last: the live view shows it
        if (!run_and_wait(w, *e)) return 1;
        runs.push_back(w.current_run());
    }
    bool ok = true;
    w.tabs()->setCurrentIndex(0);
    ok &= grab(w, dir + "/experiment.png");
    const std::int64_t meft = runs.back();
    w.browser()->refresh();
    w.open_stored_run(meft);
    w.browser()->select_runs({meft});
    ok &= grab(w, dir + "/runs.png");
    w.compare_runs({runs.front(), meft});
    ok &= grab(w, dir + "/compare.png");
    w.compare_runs(runs);
    w.compare()->plots()->set_grouping(QString::fromLatin1(ComparePlots::kGroupSeeds));
    ok &= grab(w, dir + "/compare-grouped.png");
    w.table_runs(runs);
    w.paper_table()->set_baseline("full");
    ok &= grab(w, dir + "/table.png");
    w.timeline_runs({meft, runs.front()});  // MEFT3's step, full fine-tuning's total overlaid
    ok &= grab(w, dir + "/timeline.png");
    ok &= sweep_screenshot(w, dir + "/sweeps.png");
    {  // Submit to Slurm for the form's experiment: the fields and the script they make
        w.tabs()->setCurrentIndex(0);
        std::unique_ptr<SlurmDialog> d(w.make_slurm_dialog());
        d->partition()->setText("gpu");
        d->time_limit()->setText("04:00:00");
        d->gpus()->setValue(1);
        d->cpus()->setValue(8);
        d->max_parallel()->setValue(32);
        d->sbatch_args()->setText("--account=nlp");
        d->folder()->setText("/scratch/me/sweeps/meft3-toy");
        d->show();
        ok &= grab(*d, dir + "/slurm-dialog.png");
    }
    return ok ? 0 : 1;
}

}  // namespace meft::ui
