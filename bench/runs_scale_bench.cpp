// meft-runs-scale-bench — the workbench's runs browser and compare view on a large experiment
// database (issue 19, "Scale"): 2,000 runs of 500 steps each by default. Prints how long it
// takes to open the browser, to filter and sort its table and to draw a comparison of 20 runs,
// as a Markdown table against the targets (open < 1 s, filter and sort < 100 ms, compare < 1 s).
//
//   meft-runs-scale-bench [--db FILE [--reuse] [--keep]] [--runs 2000] [--steps 500] [--repeat 5]
//
// The database is written through the engine's store API (ExperimentDb), as `meft run` records
// runs: the paper's BERT-base GLUE recipes (experiments/paper) resolved into real configs, every
// method and task, varied by learning rate, batch size, epochs and seed; steps, an evaluation
// every 50 steps, per-layer memory (measured and planned) and final metrics. Most runs finish;
// some failed, were cancelled or interrupted part-way. The widgets are the workbench's own, on
// Qt's offscreen platform unless QT_QPA_PLATFORM names another. A benchmark, not a test: it exits
// 0 whether or not the targets are met, non-zero only on bad arguments or errors.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <QApplication>
#include <QEvent>
#include <QTableView>
#include <QTableWidget>

#include "core/build_info.h"
#include "core/error.h"
#include "data/glue.h"
#include "store/database.h"
#include "store/experiment.h"
#include "store/run_table.h"
#include "train/metrics.h"
#include "ui/plots/compare_plots.h"
#include "ui/runs/compare_view.h"
#include "ui/runs/paper_table_view.h"
#include "ui/runs/run_data.h"
#include "ui/runs/runs_browser.h"

#ifndef MEFT_PAPER_EXPERIMENTS
#define MEFT_PAPER_EXPERIMENTS "experiments/paper"
#endif

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace meft;

namespace {

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

// ---- the database ------------------------------------------------------------------------------

// A method's paper recipe (experiments/paper/bert-base-glue-<method>.json) expanded into its grid
// (task x learning rate x batch size x epochs), with the method's activation memory and trainable
// parameters for BERT-base at batch 32, sequence 512 (docs/benchmarks.md, `meft plan`).
struct Recipe {
    std::string method;
    double activation_mib = 0;
    double trainable = 0;
    fs::path file;
    std::vector<nlohmann::json> points;  // one experiment object per grid point, paths resolved
    std::vector<std::string> tags;
    NewExperiment experiment;            // its row, created with its first run
};

constexpr double kAllParameters = 109483778;  // BERT-base with a two-class head
constexpr double kMiB = 1024.0 * 1024.0;

struct MethodFacts {
    const char* method;
    double activation_mib, trainable;
};
const MethodFacts kMethods[] = {
    {"full", 14451.9, 109483778}, {"bitfit", 11571.9, 104450},  {"lora", 11776.8, 296450},  {"houlsby", 12931.9, 2419202},
    {"pfeiffer", 12251.9, 1229570}, {"prefix", 12952.6, 370178}, {"ia3", 14931.8, 56834},   {"meft1", 1368.9, 315074},
    {"meft2", 1368.9, 315074},    {"meft3", 1394.9, 315074},
};

// What a run of the file records as its config: relative paths resolved against the file's folder
// and a GLUE data_dir down to the task's folder, as load_experiments() does (without requiring
// that the model and data exist on this machine).
nlohmann::json resolve_paths(nlohmann::json j, const fs::path& folder) {
    const auto absolute = [&](nlohmann::json& v) {
        if (v.is_string() && fs::path(v.get<std::string>()).is_relative())
            v = (folder / v.get<std::string>()).lexically_normal().string();
    };
    if (j.contains("backbone") && j["backbone"].contains("path")) absolute(j["backbone"]["path"]);
    if (j.contains("task") && j["task"].contains("data_dir")) {
        absolute(j["task"]["data_dir"]);
        const std::string task = j["task"].value("name", "");
        j["task"]["data_dir"] = (fs::path(j["task"]["data_dir"].get<std::string>()) / glue_task(task).dir_name).string();
    }
    return j;
}

std::vector<Recipe> read_recipes(const fs::path& folder) {
    std::vector<Recipe> out;
    for (const MethodFacts& m : kMethods) {
        Recipe r;
        r.method = m.method;
        r.activation_mib = m.activation_mib;
        r.trainable = m.trainable;
        r.file = fs::absolute(folder / ("bert-base-glue-" + r.method + ".json"));
        const nlohmann::json source = read_experiment_json(r.file);
        for (const SweepPoint& p : expand_sweeps(source)) r.points.push_back(resolve_paths(p.config, r.file.parent_path()));
        for (const auto& t : source.value("tags", nlohmann::json::array())) r.tags.push_back(t.get<std::string>());
        std::string tags;
        for (const std::string& t : r.tags) tags += (tags.empty() ? "" : ",") + t;
        r.experiment = NewExperiment{source.value("name", r.method), r.file.string(), source, tags, source.value("notes", "")};
        out.push_back(std::move(r));
    }
    return out;
}

// The metrics an evaluation of the task reports, as the trainer names them (MNLI: both dev sets).
std::vector<std::string> eval_metric_names(const std::string& task) {
    const GlueTaskInfo& g = glue_task(task);
    const int K = g.num_labels();
    const std::vector<double> logits(static_cast<std::size_t>(2 * K), 0.0);
    std::vector<std::string> names;
    for (const auto& [k, v] : glue_metrics(task, logits, K, {0, K > 1 ? 1 : 0}, {0.0, 1.0})) {
        if (task == "mnli") {
            names.push_back(k + "_matched");
            names.push_back(k + "_mismatched");
        } else {
            names.push_back(k);
        }
    }
    return names;
}

double task_score(const std::string& task) {  // a good BERT-base dev score, roughly
    if (task == "cola") return 0.60;
    if (task == "mrpc") return 0.90;
    if (task == "stsb") return 0.89;
    if (task == "qqp") return 0.88;
    if (task == "mnli") return 0.84;
    if (task == "qnli") return 0.91;
    if (task == "rte") return 0.70;
    return 0.93;  // sst2
}

// A metric's value at `progress` (0..1) of a run whose final score is `score`.
double metric_value(const std::string& name, double score, double progress) {
    const double p = 1.0 - std::exp(-4.0 * progress);
    if (name.rfind("mse", 0) == 0) return 2.5 - (2.5 - (1.0 - score) * 4.0) * p;
    const double start = name.rfind("matthews", 0) == 0 ? 0.0 : 0.5;
    return start + (score - start) * p;
}

struct BuildStats {
    std::size_t runs = 0, steps = 0, evals = 0, layer_rows = 0;
    std::size_t by_status[4] = {};  // finished, failed, cancelled, interrupted
};

BuildStats build_database(ExperimentDb& db, std::vector<Recipe>& recipes, int n_runs, int n_steps) {
    BuildStats st;
    std::mt19937_64 rng(20261124);
    std::uniform_real_distribution<double> uni(0.0, 1.0);
    std::normal_distribution<double> noise(0.0, 1.0);
    const int seeds[] = {3407, 42, 1};
    const int layers = 12;
    for (int i = 0; i < n_runs; ++i) {
        Recipe& r = recipes[std::size_t(i) % recipes.size()];
        const int k = i / int(recipes.size());
        // Seeds fastest, then the grid in a stride that visits every task early.
        nlohmann::json point = r.points[std::size_t(k / 3 * 37) % r.points.size()];
        point["training"]["seed"] = seeds[k % 3];
        const Experiment e = parse_experiment(point, r.file.string());
        const nlohmann::json config = resolved_config(e);
        const std::string task = e.task.name;
        const bool cuda = uni(rng) < 0.7;
        const nlohmann::json environment = {{"program", std::string("meft ") + version()}, {"git_commit", git_commit()},
                                            {"backend", cuda ? "cuda" : "cpu"}, {"device", cuda ? "cuda" : "cpu"},
                                            {"threads", cuda ? 16 : 2}, {"host", cuda ? "gpu-node-07" : "laptop"}};

        const double u = uni(rng);
        const int status = u < 0.90 ? 0 : u < 0.95 ? 1 : u < 0.98 ? 2 : 3;
        const int last = status == 0 ? n_steps : std::max(1, n_steps / 5 + int(uni(rng) * (n_steps - n_steps / 5)));

        const std::int64_t run = db.add_run(r.experiment, config, environment);
        db.set_status(run, "running");

        // Steps: a warm-up then linear decay of the learning rate, a noisy falling loss.
        const double lr = e.train.learning_rate;
        const int batch = e.train.batch_size;
        const double quality = std::clamp(1.0 - std::abs(std::log10(lr / 6e-4)) * 0.3 + 0.02 * noise(rng), 0.5, 1.0);
        const double score = task_score(task) * (r.method == "full" ? 1.0 : 0.985) * quality;
        const double loss0 = task == "stsb" ? 2.5 : task == "mnli" ? 1.1 : 0.69;
        const double tokens_per_s = (cuda ? 21000.0 : 310.0) * (r.method.rfind("meft", 0) == 0 ? 0.75 : 1.0) * (1 + 0.05 * noise(rng));
        const std::int64_t resident = std::int64_t(4 * kAllParameters + 12 * r.trainable);
        std::vector<StepRow> steps;
        double elapsed = 0;
        for (int s = 1; s <= last; ++s) {
            const double f = double(s) / n_steps;
            const int warm = std::max(1, n_steps * 6 / 100);
            const double rate = s <= warm ? lr * s / warm : lr * double(n_steps - s) / double(n_steps - warm);
            const int seq = 128 + int(uni(rng) * 384);
            const double tokens = double(batch) * seq;
            elapsed += tokens / tokens_per_s;
            StepRow row;
            row.step = s;
            row.loss = std::max(0.01, loss0 * (0.25 + 0.75 * std::exp(-5 * f)) * (1 - 0.5 * (quality - 0.5)) + 0.05 * noise(rng));
            row.learning_rate = rate;
            row.grad_norm = std::abs(2.0 * std::exp(-2 * f) + 0.3 * noise(rng));
            row.tokens_per_s = tokens_per_s * (1 + 0.02 * noise(rng));
            row.elapsed_s = elapsed;
            row.activation_bytes = std::int64_t(r.activation_mib * kMiB * batch / 32.0 * seq / 512.0);
            row.resident_bytes = resident;
            row.activation_rows = batch;
            row.activation_seq = seq;
            steps.push_back(row);
        }
        db.add_steps(run, steps);  // one transaction for the run's steps
        st.steps += steps.size();

        // An evaluation every 50 steps, the last one at the run's end.
        std::map<std::string, double> final_eval;
        double final_loss = 0;
        int best_step = 0;
        std::map<std::string, double> best;
        for (int s = 50; s <= last; s += 50) {
            std::map<std::string, double> m;
            const double progress = double(s) / n_steps;
            for (const std::string& name : eval_metric_names(task))
                m[name] = metric_value(name, score, progress) + 0.005 * noise(rng);
            const double loss = loss0 * (0.35 + 0.65 * std::exp(-4 * progress)) + 0.02 * noise(rng);
            db.add_eval(run, s, m, loss);
            ++st.evals;
            final_eval = m;
            final_loss = loss;
            const std::string head = headline_metric_key(task);
            if (best.empty() || m[head] > best[head]) {
                best = m;
                best_step = s;
            }
        }

        std::vector<std::string> tags = r.tags;
        if (uni(rng) < 0.06) tags.push_back("best");
        if (uni(rng) < 0.04) tags.push_back("rerun");
        if (tags != r.tags) db.set_tags(run, tags);
        if (uni(rng) < 0.03) db.set_notes(run, "looks good; check against the paper's table (lr " + std::to_string(lr) + ")");

        if (status == 1) {
            const std::string why = "the loss is nan at step " + std::to_string(last + 1) + " (try a lower training.learning_rate)";
            db.add_event(run, "error", why);
            db.finish(run, "failed", nlohmann::json::object(), why);
        } else if (status == 3) {
            db.set_status(run, "interrupted", "the process running it stopped without finishing");
            db.add_event(run, "interrupted", "found running with no live process when the database was opened");
        } else {
            // The final metrics as runner.cpp records them.
            nlohmann::json m = nlohmann::json(final_eval);
            m["dev_loss"] = final_loss;
            m["train_loss_first"] = steps.front().loss;
            m["train_loss_last"] = steps.back().loss;
            m["steps"] = last;
            m["early_stopped"] = false;
            m["best_step"] = best_step;
            for (const auto& [key, v] : best) m["best_" + key] = v;
            m["starting_point_deviation"] = r.method.rfind("meft", 0) == 0 ? 0.0 : 1e-7;
            const auto peak = std::max_element(steps.begin(), steps.end(),
                                               [](const StepRow& a, const StepRow& b) { return a.activation_bytes < b.activation_bytes; });
            m["activation_peak_bytes"] = peak->activation_bytes;
            m["activation_peak_step"] = peak->step;
            m["activation_peak_batch"] = std::to_string(peak->activation_rows) + " x " + std::to_string(peak->activation_seq);
            m["resident_bytes"] = resident;
            m["tokens_per_s"] = tokens_per_s;
            m["trainable_parameters"] = r.trainable;
            m["all_parameters"] = kAllParameters;
            m["steps_per_epoch"] = std::max(1, n_steps / std::max(1, e.train.epochs));
            // Per-layer memory, measured at the peak and planned for a full-length batch.
            std::vector<LayerMemoryRow> rows;
            for (const char* kind : {"measured", "planned"}) {
                const double bytes = r.activation_mib * kMiB * batch / 32.0 * (kind[0] == 'm' ? peak->activation_seq / 512.0 : 1.0);
                for (int l = -1; l <= layers; ++l) {
                    const std::string label = l < 0 ? "embeddings" : l == layers ? "head" : "layer " + std::to_string(l);
                    const double share = l < 0 ? 0.02 : l == layers ? 0.001 : 0.979 / layers;
                    rows.push_back({kind, l, label, std::int64_t(bytes * share * 0.8), std::int64_t(bytes * share * 0.2)});
                }
            }
            st.layer_rows += rows.size();
            db.finish_with_memory(run, status == 0 ? "finished" : "cancelled", m,
                                  status == 0 ? "" : "stopped by the user after step " + std::to_string(last), rows);
        }
        ++st.runs;
        ++st.by_status[status];
        if ((i + 1) % 250 == 0) std::fprintf(stderr, "  %d of %d runs written\n", i + 1, n_runs);
    }
    return st;
}

// ---- timing the widgets ------------------------------------------------------------------------

// Counts the paint events a widget receives: a measurement ends once the change is on screen.
class PaintCounter : public QObject {
public:
    explicit PaintCounter(QWidget* w) : QObject(w) { w->installEventFilter(this); }
    int count = 0;

protected:
    bool eventFilter(QObject* o, QEvent* e) override {
        if (e->type() == QEvent::Paint) ++count;
        return QObject::eventFilter(o, e);
    }
};

// Runs the event loop until `counter` has seen a paint after `before` (layout, expose and update
// requests are all posted events), then once more for whatever that posted.
void settle(const PaintCounter& counter, int before) {
    for (int i = 0; i < 1000 && counter.count == before; ++i) QApplication::processEvents();
    if (counter.count == before) std::fprintf(stderr, "warning: no repaint seen after a change; its time is without painting\n");
    QApplication::processEvents();
}

struct Measurement {
    std::string what;
    std::vector<double> ms;
    double target_ms = 0;  // 0: no target (a part of another row, shown to explain it)
};

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

void print_table(const std::vector<Measurement>& rows) {
    std::printf("| what | median ms | max ms | target | met |\n|---|---|---|---|---|\n");
    for (const Measurement& m : rows) {
        const double max = *std::max_element(m.ms.begin(), m.ms.end());
        if (m.target_ms > 0)
            std::printf("| %s | %.1f | %.1f | < %.0f ms | %s |\n", m.what.c_str(), median(m.ms), max, m.target_ms,
                        max < m.target_ms ? "yes" : "no");
        else
            std::printf("| %s | %.1f | %.1f | — | — |\n", m.what.c_str(), median(m.ms), max);
    }
}

// The temporary database's folder, removed at the end (on errors too) unless kept.
struct TempDir {
    fs::path path;
    bool keep = false;
    ~TempDir() {
        std::error_code ec;
        if (!path.empty() && !keep) fs::remove_all(path, ec);
    }
};

std::string column_name(int c) {
    static const char* const names[] = {"id", "experiment", "method", "task", "status", "steps", "main score",
                                        "act. MiB", "trainable %", "tags", "notes", "created"};
    return names[c];
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App cli{"meft-runs-scale-bench: the runs browser and compare view on a large experiment database"};
    std::string db_arg, experiments = MEFT_PAPER_EXPERIMENTS;
    int n_runs = 2000, n_steps = 500, repeat = 5, compare_n = 20;
    bool reuse = false, keep = false;
    cli.add_option("--db", db_arg, "the experiment database to create (default: a temporary file, removed at the end)");
    cli.add_flag("--reuse", reuse, "time an existing database (--db) instead of creating one");
    cli.add_flag("--keep", keep, "keep the temporary database (its path is printed)");
    cli.add_option("--runs", n_runs, "runs to create")->capture_default_str()->check(CLI::Range(2, 1000000));
    cli.add_option("--steps", n_steps, "steps per run")->capture_default_str()->check(CLI::Range(50, 1000000));
    cli.add_option("--repeat", repeat, "times each measurement is taken")->capture_default_str()->check(CLI::Range(1, 1000));
    cli.add_option("--compare", compare_n, "runs in the comparison")->capture_default_str()->check(CLI::Range(2, 1000));
    cli.add_option("--experiments", experiments, "the folder of the paper's experiment files (bert-base-glue-<method>.json)")
        ->capture_default_str();
    CLI11_PARSE(cli, argc, argv);
    if (reuse && db_arg.empty()) {
        std::fprintf(stderr, "error: --reuse needs --db FILE (the database to time)\n");
        return 2;
    }

    fs::path db_file;
    TempDir temp;
    temp.keep = keep;
    try {
        if (db_arg.empty()) {
            temp.path = fs::temp_directory_path() / ("meft-runs-scale-" + std::to_string(::getpid()));
            fs::create_directories(temp.path);
            db_file = temp.path / "experiments.sqlite";
        } else {
            db_file = db_arg;
        }
        if (reuse && !fs::exists(db_file)) throw Error(db_file.string() + ": no such file (drop --reuse to create it)");
        if (!reuse && fs::exists(db_file))
            throw Error(db_file.string() + ": already exists; pass --reuse to time it, or remove it to create a new one");

        std::printf("<!-- meft-runs-scale-bench %s (%s): %s -->\n", version(), git_commit(), db_file.c_str());
        if (!reuse) {
            std::vector<Recipe> recipes = read_recipes(experiments);
            const auto t0 = Clock::now();
            BuildStats st;
            {
                ExperimentDb db(db_file);
                st = build_database(db, recipes, n_runs, n_steps);
            }
            std::printf("Created %zu runs (%zu finished, %zu failed, %zu cancelled, %zu interrupted): %zu steps, %zu evaluations, "
                        "%zu layer-memory rows in %.1f s; %.1f MiB on disk.\n\n",
                        st.runs, st.by_status[0], st.by_status[1], st.by_status[2], st.by_status[3], st.steps, st.evals,
                        st.layer_rows, ms_since(t0) / 1000, double(fs::file_size(db_file)) / kMiB);
        }

        if (qEnvironmentVariableIsEmpty("QT_QPA_PLATFORM")) qputenv("QT_QPA_PLATFORM", "offscreen");
        int qt_argc = 1;
        char* qt_argv[] = {argv[0], nullptr};
        QApplication app(qt_argc, qt_argv);
        std::vector<Measurement> rows;

        // (a) Opening the browser: the database (as the workbench opens it), every run summarized
        // into the table, columns sized, laid out and painted at 1366 x 768.
        Measurement open{"open the runs browser (open the database, load, lay out, paint)", {}, 1000};
        Measurement load_runs{"— of which ExperimentDb::runs()", {}, 0};
        std::unique_ptr<ExperimentDb> db;
        std::unique_ptr<ui::RunsBrowser> browser;
        for (int r = 0; r < repeat; ++r) {
            browser.reset();
            db.reset();
            const auto t0 = Clock::now();
            db = std::make_unique<ExperimentDb>(db_file, DbAccess::Reading);
            browser = std::make_unique<ui::RunsBrowser>(db.get());
            browser->resize(1366, 768);
            const PaintCounter* painted = new PaintCounter(browser->table()->viewport());
            browser->show();
            settle(*painted, 0);
            open.ms.push_back(ms_since(t0));
            const auto t1 = Clock::now();
            const std::size_t n = db->runs().size();
            load_runs.ms.push_back(ms_since(t1));
            if (n != std::size_t(browser->total_rows())) throw Error("the browser shows " + std::to_string(browser->total_rows()) +
                                                                      " runs of " + std::to_string(n));
        }
        const int total = browser->total_rows();
        rows.push_back(open);
        rows.push_back(load_runs);
        const PaintCounter* painted = new PaintCounter(browser->table()->viewport());
        const auto timed = [&](Measurement& m, const std::function<void()>& change) {
            const int before = painted->count;
            const auto t0 = Clock::now();
            change();
            settle(*painted, before);
            m.ms.push_back(ms_since(t0));
        };

        // (b) Text filters: a method, a task, a status, a tag, text no run has (every cell is
        // looked at), and clearing the filter (every row comes back).
        const std::vector<QString> filters = {"lora", "mrpc", "failed", "best", "no-such-run", ""};
        std::vector<Measurement> filter_rows(filters.size());
        for (int r = 0; r < repeat; ++r)
            for (std::size_t f = 0; f < filters.size(); ++f) {
                timed(filter_rows[f], [&] { browser->set_text_filter(filters[f]); });
                const std::string shown = std::to_string(browser->visible_rows()) + " of " + std::to_string(total) + " rows";
                filter_rows[f].what = filters[f].isEmpty() ? "clear the text filter (" + shown + ")"
                                                           : "text filter \"" + filters[f].toStdString() + "\" (" + shown + ")";
                filter_rows[f].target_ms = 100;
            }
        rows.insert(rows.end(), filter_rows.begin(), filter_rows.end());

        // (c) Sorting every row by a few columns, each way.
        const std::vector<int> columns = {ui::RunsBrowser::kId, ui::RunsBrowser::kMethod, ui::RunsBrowser::kTask,
                                          ui::RunsBrowser::kScore, ui::RunsBrowser::kMemory, ui::RunsBrowser::kCreated};
        std::vector<Measurement> sort_rows(columns.size() * 2);
        for (int r = 0; r < repeat; ++r)
            for (std::size_t c = 0; c < columns.size(); ++c)
                for (int o = 0; o < 2; ++o) {
                    const auto order = o == 0 ? Qt::AscendingOrder : Qt::DescendingOrder;
                    Measurement& m = sort_rows[2 * c + std::size_t(o)];
                    timed(m, [&] { browser->table()->sortByColumn(columns[c], order); });
                    m.what = "sort by " + column_name(columns[c]) + (o == 0 ? " ascending" : " descending") + " (" +
                             std::to_string(browser->visible_rows()) + " rows)";
                    m.target_ms = 100;
                }
        rows.insert(rows.end(), sort_rows.begin(), sort_rows.end());

        // (d) Comparing runs as the main window does (MainWindow::compare_runs): load each from the
        // database, hand them to the compare view (shown, as its tab is), draw every plot. The runs
        // are finished ones spread over the database: every method and task, the widest config diff.
        std::vector<std::int64_t> ids;
        {
            std::vector<std::int64_t> finished;
            for (const RunInfo& r : db->runs("finished")) finished.push_back(r.id);
            const std::size_t want = std::min<std::size_t>(std::size_t(compare_n), finished.size());
            if (want < 2) throw Error("the database has fewer than two finished runs to compare");
            for (std::size_t k = 0; k < want; ++k) ids.push_back(finished[k * finished.size() / want]);
        }
        browser->hide();
        ui::CompareView compare;
        compare.resize(1366, 768);
        compare.show();
        QApplication::processEvents();
        const PaintCounter* compare_painted = new PaintCounter(compare.diff_table()->viewport());
        const std::string n_compared = std::to_string(ids.size());
        Measurement compare_row{"compare " + n_compared + " runs (load, fill the tables, draw the plots)", {}, 1000};
        Measurement compare_load{"— of which RunData::load × " + n_compared, {}, 0};
        for (int r = 0; r < repeat; ++r) {
            compare.set_runs(std::vector<ui::RunData>{});  // as after another comparison: everything is refilled
            QApplication::processEvents();
            const int before = compare_painted->count;
            const auto t0 = Clock::now();
            std::vector<ui::RunData> data;
            for (std::int64_t id : ids) data.push_back(ui::RunData::load(*db, id));
            compare_load.ms.push_back(ms_since(t0));
            compare.set_runs(data);
            compare.plots()->flush();  // replots every panel now
            settle(*compare_painted, before);
            compare_row.ms.push_back(ms_since(t0));
        }
        rows.push_back(compare_row);
        rows.push_back(compare_load);

        // (e) Following the database: the browser polls every second. With nothing committed by
        // another connection the poll reads PRAGMA data_version only; after another connection's
        // commit it compares runs_stamp() and, with no run added or changed, refreshes only the
        // running runs' rows; a new run reloads the table.
        Measurement poll_idle{"poll, nothing committed elsewhere", {}, 100};
        Measurement stamp{"— runs_stamp() alone", {}, 0};
        Measurement poll_steps{"poll after another connection recorded steps", {}, 100};
        Measurement poll_new{"poll after another connection added a run (full reload)", {}, 1000};
        {
            ExperimentDb other(db_file);
            const RunInfo some = db->runs().front();
            NewExperiment same{some.experiment};
            same.id = some.experiment_id;
            const std::int64_t live = other.add_run(same, some.config, some.environment);
            other.set_status(live, "running");
            browser->show();
            browser->poll();
            int step = 0;
            for (int r = 0; r < repeat; ++r) {
                auto t0 = Clock::now();
                browser->poll();
                poll_idle.ms.push_back(ms_since(t0));
                t0 = Clock::now();
                (void)db->runs_stamp();
                stamp.ms.push_back(ms_since(t0));
                StepRow row;
                row.step = ++step;
                row.loss = 1;
                other.add_steps(live, {row});
                t0 = Clock::now();
                if (!browser->poll()) throw Error("a poll after another connection's commit saw nothing");
                poll_steps.ms.push_back(ms_since(t0));
            }
            for (int r = 0; r < repeat; ++r) {
                const std::int64_t added = other.add_run(same, some.config, some.environment);
                const int before = browser->total_rows();
                const auto t0 = Clock::now();
                browser->poll();
                poll_new.ms.push_back(ms_since(t0));
                if (browser->total_rows() != before + 1) throw Error("a poll did not show the run another connection added");
                other.delete_run(added);
                browser->poll();
            }
            other.delete_run(live);
            browser->poll();
            browser->hide();
        }
        for (Measurement* m : {&poll_idle, &stamp, &poll_steps, &poll_new}) rows.push_back(*m);

        // (f) The paper table of every run the browser shows (its Table button with no selection):
        // read once, the unfinished left out, seeds pooled, laid out.
        Measurement paper{"paper table of every run (" + std::to_string(total) + ")", {}, 1000};
        {
            ui::PaperTableView view;
            view.resize(1366, 768);
            view.show();
            for (int r = 0; r < repeat; ++r) {
                const auto t0 = Clock::now();
                view.set_runs(db->runs());
                QApplication::processEvents();
                paper.ms.push_back(ms_since(t0));
            }
            if (view.table().rows.empty()) throw Error("the paper table of every run is empty");
        }
        rows.push_back(paper);

        std::printf("%d runs in the table; %d repeats of each measurement; platform %s; 1366 x 768.\n\n", total, repeat,
                    qPrintable(QApplication::platformName()));
        print_table(rows);
        std::printf("\n\"met\": every repeat (the max) under the target.\n");
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
    if (!temp.path.empty() && keep) std::printf("The database is kept: %s\n", db_file.c_str());
    return 0;
}
