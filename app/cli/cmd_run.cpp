// meft run EXPERIMENT.json — train and evaluate; progress on stderr, final metrics on stdout.
#include <cstdio>
#include <iostream>

#include "peft/method_edit.h"
#include "cli/commands.h"
#include "run/run_setup.h"
#include "cli/progress.h"
#include "core/backend_select.h"
#include "core/file_io.h"
#include "model/checkpoint.h"
#include "store/database.h"
#include "store/run_table.h"
#include "run/run_outputs.h"
#include "run/runner.h"
#include "run/preflight.h"
#include "train/memory_plan.h"
#include "store/experiment.h"
#include "run/sweep.h"

#include <atomic>
#include <cmath>
#include <csignal>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <thread>

#include <unistd.h>

namespace meft::cli {

namespace {
struct RunArgs {
    std::string experiment, db;
    bool quiet = false;
    bool dry_run = false;
    std::string json_out;
    std::string backend;            // overrides training.backend
    std::vector<std::string> sets;  // KEY.PATH=VALUE overrides
    int only = 0;                   // > 0: run that expansion alone (1-based, as --dry-run numbers them)
    bool continue_runs = false;     // an expansion the database already holds is continued or skipped
};

void print_table(const Experiment& e, const Model& m, const TrainResult& r) {
    const auto& c = m.config();
    std::printf("\n| %-26s | %-30s |\n", "result", "value");
    std::printf("|%s|%s|\n", std::string(28, '-').c_str(), std::string(32, '-').c_str());
    auto row = [](const std::string& k, const std::string& v) { std::printf("| %-26s | %-30s |\n", k.c_str(), v.c_str()); };
    char buf[64];
    row("experiment", e.name);
    row("backbone", arch_name(c.arch) + " " + (e.backbone.preset.empty() ? e.backbone.path.filename().string() : e.backbone.preset) +
                        " (" + c.shape_summary() + ")");
    std::snprintf(buf, sizeof buf, "%.3f M / %.2f M (%.2f%%)", double(m.params().count(true)) / 1e6,
                  double(m.params().count(false)) / 1e6,
                  100.0 * double(m.params().count(true)) / double(m.params().count(false)));
    row("trainable / all params", buf);
    row("method", meft::method_of(m).name() + (meft::method_of(m).gradient_checkpointing ? " + checkpointing" : ""));
    std::snprintf(buf, sizeof buf, "%.3g", r.start_deviation);
    row("starting-point deviation", buf);
    row("task", e.task.name + (c.masked_lm            ? " (masked-LM pre-training)"
                               : c.multiple_choice      ? " (multiple choice)"
                               : e.task.qa           ? " (choices scored by LM)"
                               : c.num_labels() == 1 ? " (regression)"
                                                     : " (" + std::to_string(c.num_labels()) + " labels)"));
    row("steps", std::to_string(r.steps) + (r.stopped ? " (stopped)" : ""));
    std::snprintf(buf, sizeof buf, "%.4f -> %.4f", r.first_loss, r.final_loss);
    row("train loss (first->last)", buf);
    std::snprintf(buf, sizeof buf, "%.4f", r.final_eval.loss);
    row("dev loss", buf);
    for (const auto& [k, v] : r.final_eval.metrics) {
        std::snprintf(buf, sizeof buf, "%.4f", v);
        row("dev " + k, buf);
    }
    for (const auto& [k, v] : r.best_eval.metrics) {
        std::snprintf(buf, sizeof buf, "%.4f (step %d)", v, r.best_eval.step);
        row("best dev " + k, buf);
    }
    if (r.early_stopped) row("early stopping", "stopped after step " + std::to_string(r.steps));
    std::snprintf(buf, sizeof buf, "%.1f MiB (held %.1f MiB)", double(r.activation_peak.bytes) / 1048576.0,
                  double(r.memory.held_total) / 1048576.0);
    row("activation memory", buf);
    if (r.activation_peak.step > 0)
        row("  at its peak", "step " + std::to_string(r.activation_peak.step) + ", micro-batch " +
                                 std::to_string(r.activation_peak.rows) + " x " + std::to_string(r.activation_peak.seq));
    std::snprintf(buf, sizeof buf, "%.1f s (%.0f tok/s)", r.elapsed_s, r.tokens_per_s);
    row("time", buf);
}

std::string db_path_for_message(const RunArgs& a) {
    return a.db.empty() ? ExperimentDb::default_path().string() : a.db;
}

nlohmann::json read_source(const std::string& file) {
    std::ifstream in(file);
    return nlohmann::json::parse(in, nullptr, false);
}

// Ctrl-C / SIGTERM: stop after the current step; the run is saved and marked cancelled.
std::atomic<bool> g_interrupted{false};
extern "C" void on_interrupt(int) { g_interrupted.store(true); }
void install_interrupt_handler() {
    std::signal(SIGINT, on_interrupt);
    std::signal(SIGTERM, on_interrupt);
}

class InterruptibleProgress : public ProgressPrinter {
public:
    using ProgressPrinter::ProgressPrinter;
    bool should_stop() override { return g_interrupted.load(); }
};

// One expansion of the experiment: load, record, train. Returns its final metrics. With
// resume_run > 0 the run continues from its checkpoint instead of starting.
nlohmann::json run_one(const Experiment& e, ExperimentDb& db, NewExperiment* experiment, const RunArgs& a,
                       std::int64_t resume_run = 0) {
    InterruptibleProgress progress(a.quiet);
    RunOptions o;
    o.observer = &progress;
    o.experiment = experiment;
    o.resume_run = resume_run;
    o.on_start = [&](const RunStart& s) {
        if (!a.quiet)
            std::fprintf(stderr, "meft run: %s%s — run %lld — %s, %zu train / %zu dev %s, %d steps, backend %s\n",
                         e.name.c_str(), e.sweep_label.empty() ? "" : (" [" + e.sweep_label + "]").c_str(),
                         static_cast<long long>(s.run_id), e.task.name.c_str(), s.train_examples, s.dev_examples,
                         s.unit.c_str(), s.total_steps, s.backend.c_str());
    };
    const RunOutcome out = execute_run(e, db, o);
    const TrainResult& r = out.result;
    progress.finish();
    print_table(e, *out.model, r);
    std::fprintf(stderr, "run %lld %s in %s\n", static_cast<long long>(out.run_id), r.stopped ? "cancelled" : "recorded",
                 db_path_for_message(a).c_str());
    if (!e.output_dir.empty()) std::fprintf(stderr, "outputs written to %s\n", e.output_dir.string().c_str());  // by execute_run
    if (!a.json_out.empty()) write_file_atomically(a.json_out, results_json(e, r, db.run_uuid(out.run_id)).dump(2) + "\n");
    return out.metrics;
}

// Sweeps: one row per configuration — runs whose resolved configs differ in training.seed alone,
// the rule `meft runs export` follows (seed_groups) — labelled with the keys that differ between
// configurations, each dev metric as mean ± std over its seeds (one run: its value alone).
// metrics[i] belongs to exps[i]; a sweep cut short by Ctrl-C has fewer metrics than expansions.
void print_aggregate(const std::vector<Experiment>& exps, const std::vector<nlohmann::json>& metrics) {
    std::vector<nlohmann::json> configs;
    for (std::size_t i = 0; i < metrics.size() && i < exps.size(); ++i) configs.push_back(resolved_config(exps[i]));
    std::printf("\n| configuration | runs | metric | mean ± std |\n|---|---|---|---|\n");
    for (const SeedGroup& g : seed_groups(configs)) {
        const std::string label = g.label.empty() ? "(all)" : g.label;
        std::map<std::string, std::vector<double>> values;
        for (std::size_t i : g.members)
            for (auto it = metrics[i].begin(); it != metrics[i].end(); ++it) {
                static const std::set<std::string> not_scores = {"train_loss_first", "train_loss_last", "steps",
                                                                 "starting_point_deviation", "activation_peak_bytes",
                                                                 "tokens_per_s", "early_stopped", "best_step", "resident_bytes",
                                                                 "trainable_parameters", "all_parameters", "steps_per_epoch"};
                if (it.key().rfind("best_", 0) == 0 || not_scores.count(it.key()) || !it.value().is_number()) continue;
                values[it.key()].push_back(it.value().get<double>());
            }
        for (const auto& [k, v] : values) {
            double mean = 0, var = 0;
            for (double x : v) mean += x;
            mean /= double(v.size());
            for (double x : v) var += (x - mean) * (x - mean);
            if (v.size() > 1)
                std::printf("| %s | %zu | %s | %.4f ± %.4f |\n", label.c_str(), v.size(), k.c_str(), mean,
                            std::sqrt(var / double(v.size() - 1)));
            else
                std::printf("| %s | 1 | %s | %.4f |\n", label.c_str(), k.c_str(), mean);
        }
    }
}

// A backend that cannot run here fails now, before anything is recorded. "auto" falling back to
// the CPU says why when a CUDA plugin is there but unusable (a user who built CUDA expects a GPU).
void check_backends(const std::vector<Experiment>& exps, bool quiet) {
    bool told = false;
    for (const Experiment& e : exps) {
        const std::string chosen = resolve_backend(e.backend, backend_options(e));
        const CudaPluginStatus& cuda = cuda_plugin_status();
        if (e.backend == "auto" && chosen == "cpu" && cuda.found && !quiet && !told) {
            std::fprintf(stderr, "meft: backend auto uses the CPU: %s\n", cuda.why.c_str());
            told = true;
        }
    }
}

int resume(const std::string& db_file, std::int64_t id, bool quiet, const std::string& backend) {
    ExperimentDb db(db_file.empty() ? ExperimentDb::default_path() : std::filesystem::path(db_file));
    const auto info = db.run(id);
    if (!info) throw Error("no run " + std::to_string(id) + " in " + (db_file.empty() ? ExperimentDb::default_path().string() : db_file));
    if (info->status == "finished" || info->status == "running")
        throw Error("run " + std::to_string(id) + " is " + info->status + "; only cancelled, interrupted or failed runs resume");
    nlohmann::json config = info->config;
    if (!backend.empty() && config.is_object()) config["training"]["backend"] = backend;  // as recorded, else
    Experiment e = parse_experiment(config, "run " + std::to_string(id) + " config");
    check_backends({e}, quiet);
    RunArgs a;
    a.db = db_file;
    a.quiet = quiet;
    install_interrupt_handler();
    run_one(e, db, nullptr, a, id);
    return 0;
}

// --continue (a sweep's task, run again after a requeue): what to do with an expansion the
// database already holds. Finished: nothing. Failed: nothing, and say so (it would fail again;
// delete the run to retry). Cancelled or interrupted with a checkpoint: resume it. Running: the
// task's earlier attempt, killed without a word (a requeued task owns its shard), unless its
// process is alive on this machine.
struct Continuation {
    std::int64_t resume = 0;
    std::optional<RunInfo> done;
    bool refuse = false;
    std::string what;
};

Continuation continuation(ExperimentDb& db, const Experiment& e) {
    Continuation c;
    std::optional<RunInfo> r = expansion_run(db, resolved_config(e));
    if (!r) {
        c.what = "no earlier run of this expansion; starting one";
        return c;
    }
    const std::string run = "run " + std::to_string(r->id);
    if (r->status == "finished") {
        c.what = run + " of this expansion already finished; nothing to do";
        c.done = r;
        return c;
    }
    if (r->status == "failed") {
        c.what = run + " of this expansion failed (" + r->message + "); not run again (meft runs delete " +
                 std::to_string(r->id) + " to retry)";
        c.refuse = true;
        return c;
    }
    if (r->status == "running" || r->status == "queued") {
        // Opening the database marked this machine's dead runs interrupted: one still running here is alive.
        if (r->host == host_name())
            throw Error(run + " of this expansion is running in another process on this machine; not started twice");
        db.set_status(r->id, "interrupted", "its task ended without finishing; continued by a later attempt");
        db.add_event(r->id, "interrupted", "found running by meft run --continue (the task's earlier attempt was killed)");
    }
    std::error_code ec;
    if (std::filesystem::exists(db.checkpoint_path(r->id), ec)) {
        c.what = run + " of this expansion stopped at step " + std::to_string(r->steps) + "; resuming it from its checkpoint";
        c.resume = r->id;
    } else {
        c.what = run + " of this expansion stopped before its first checkpoint; starting it again as a new run";
    }
    return c;
}

// --dry-run: what would run, one line per expansion, and nothing recorded.
void print_plan(const std::vector<Experiment>& exps) {
    std::printf("| # | run | method | task | lr | batch | steps/epochs | backend |\n|---|---|---|---|---|---|---|---|\n");
    for (std::size_t i = 0; i < exps.size(); ++i) {
        const Experiment& e = exps[i];
        const std::string len = e.train.max_steps > 0 ? std::to_string(e.train.max_steps) + " steps"
                                                      : std::to_string(e.train.epochs) + " epochs";
        std::printf("| %zu | %s | %s | %s | %g | %d | %s | %s |\n", i + 1,
                    e.sweep_label.empty() ? e.name.c_str() : e.sweep_label.c_str(), e.method.name().c_str(),
                    e.task.name.c_str(), e.train.learning_rate, e.train.batch_size, len.c_str(), e.backend.c_str());
    }
    std::printf("\n%zu run%s; every one validated, nothing recorded (--dry-run)\n", exps.size(), exps.size() == 1 ? "" : "s");
}

int run(const RunArgs& a) {
    // Every expansion is validated, and the database opened, before anything runs.
    std::vector<std::string> overrides = a.sets;
    if (!a.backend.empty()) overrides.push_back("training.backend=" + a.backend);
    std::vector<Experiment> exps = load_experiments(a.experiment, overrides);
    if (a.only > 0) {  // one expansion of the grid: what a sweep's array task runs
        if (a.only > static_cast<int>(exps.size()))
            throw Error("--only " + std::to_string(a.only) + ": " + a.experiment + " expands into " +
                        std::to_string(exps.size()) + " run" + (exps.size() == 1 ? "" : "s") + " (1.." +
                        std::to_string(exps.size()) + "; meft run --dry-run lists them)");
        exps = {exps[static_cast<std::size_t>(a.only - 1)]};
    }
    if (a.dry_run) {
        print_plan(exps);
        const std::string problems = grid_problems(exps, a.only > 0 ? a.only : 1);
        if (!problems.empty()) throw Error(a.experiment + ": would fail when it starts:" + problems);
        return 0;
    }
    check_backends(exps, a.quiet);
    ExperimentDb db(a.db.empty() ? ExperimentDb::default_path() : std::filesystem::path(a.db));
    const Experiment& first = exps.front();
    std::string tags;
    for (const std::string& t : first.tags) tags += (tags.empty() ? "" : ",") + t;
    if (exps.size() > 1 && !a.quiet)
        std::fprintf(stderr, "meft run: %s expands into %zu runs\n", a.experiment.c_str(), exps.size());
    install_interrupt_handler();
    // The experiment row is created with the first run, in one transaction, once its model and data loaded.
    NewExperiment experiment{first.name, first.file.string(), read_source(a.experiment), tags, first.notes};
    std::vector<nlohmann::json> metrics;
    int refused = 0;
    for (const Experiment& e : exps) {
        if (g_interrupted.load()) break;
        if (!a.continue_runs) {
            metrics.push_back(run_one(e, db, &experiment, a));
            continue;
        }
        const Continuation c = continuation(db, e);
        std::fprintf(stderr, "meft run --continue: %s%s\n", e.sweep_label.empty() ? "" : ("[" + e.sweep_label + "] ").c_str(),
                     c.what.c_str());
        if (c.refuse) {
            ++refused;
            continue;
        }
        if (c.done) {
            metrics.push_back(c.done->final_metrics);
            continue;
        }
        metrics.push_back(run_one(e, db, &experiment, a, c.resume));
    }
    if (exps.size() > 1 && refused == 0) print_aggregate(exps, metrics);
    return refused == 0 ? 0 : 1;
}
}  // namespace

Runner add_resume(CLI::App& app) {
    struct ResumeArgs {
        std::int64_t run = 0;
        std::string db;
        bool quiet = false;
        std::string backend;
    };
    auto a = std::make_shared<ResumeArgs>();
    app.add_option("run", a->run, "the run to continue (cancelled, interrupted or failed)")->required();
    app.add_option("--db", a->db, "experiment database");
    app.add_flag("-q,--quiet", a->quiet, "no progress bar");
    app.add_option("--backend", a->backend, "cpu, cuda or auto (default: the run's training.backend)")
        ->check(CLI::IsMember({"cpu", "cuda", "auto"}));
    return [a] { return resume(a->db, a->run, a->quiet, a->backend); };
}

Runner add_run(CLI::App& app) {
    auto a = std::make_shared<RunArgs>();
    app.add_option("experiment", a->experiment, "experiment file (JSON; see docs/experiment-format.md)")
        ->required()
        ->check(CLI::ExistingFile);
    app.add_flag("-q,--quiet", a->quiet, "no progress bar");
    app.add_option("--db", a->db, "experiment database (default: $MEFT_DB or ~/.local/share/meft-workbench/experiments.sqlite)");
    app.add_option("--results-json", a->json_out, "also write the final results as JSON to this file");
    app.add_option("--set", a->sets,
                   "override a key of the file before sweeps expand: KEY.PATH=VALUE (JSON value, else a string), "
                   "e.g. --set training.learning_rate=3e-4 --set backbone.path=/models/bert-base-uncased; repeatable")
        ->allow_extra_args(false);
    app.add_option("--backend", a->backend, "cpu, cuda or auto (overrides training.backend)")
        ->check(CLI::IsMember({"cpu", "cuda", "auto"}));
    app.add_flag("-n,--dry-run", a->dry_run, "validate the file and list the runs it expands into; run nothing");
    app.add_flag("--continue", a->continue_runs,
                 "continue what the database already holds of each expansion: skip a finished run, resume a "
                 "cancelled or interrupted one from its checkpoint, refuse a failed one (what a requeued sweep task runs)");
    app.add_option("--only", a->only, "run only expansion N of the file's sweep (1-based, as --dry-run numbers them)")
        ->check(CLI::PositiveNumber);
    return [a] { return run(*a); };
}

}  // namespace meft::cli
