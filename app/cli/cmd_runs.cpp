// meft runs list | show | compare | export | delete — the runs recorded in the experiment database.
#include <cstdio>
#include <optional>

#include "cli/commands.h"
#include "core/error.h"
#include "store/database.h"
#include "store/run_filter.h"
#include "store/run_table.h"

namespace meft::cli {

namespace {
struct RunsArgs {
    std::string db, status, tag, filter, format = "markdown";
    std::vector<std::int64_t> ids;
    CLI::App *list = nullptr, *show = nullptr, *del = nullptr, *compare = nullptr, *exp = nullptr;
};

// The runs named on the command line, in that order; a missing one is an error.
std::vector<RunInfo> load_runs(ExperimentDb& db, const std::vector<std::int64_t>& ids) {
    std::vector<RunInfo> runs;
    for (std::int64_t id : ids) {
        auto r = db.run(id);
        if (!r) throw Error("no run " + std::to_string(id));
        runs.push_back(std::move(*r));
    }
    return runs;
}

// The config keys that differ, then the final metrics side by side (store/run_table.h).
void compare(ExperimentDb& db, const std::vector<std::int64_t>& ids) {
    const std::string out = render_comparison(compare_runs(load_runs(db, ids)), TableFormat::markdown, false);
    std::fwrite(out.data(), 1, out.size(), stdout);
}

// A paper-style table: methods x tasks, the task's headline dev metric as mean ± std over the
// runs (seeds) of each (method, task); the best mean per task is marked (store/run_table.h).
void export_table(ExperimentDb& db, const std::vector<std::int64_t>& ids, const std::string& format) {
    const std::string out = render_paper_table(paper_table(load_runs(db, ids)), table_format(format));
    std::fwrite(out.data(), 1, out.size(), stdout);
}

std::string headline_metric(const nlohmann::json& m) {
    if (!m.is_object()) return "";
    for (const char* k : {"accuracy", "accuracy_matched", "matthews", "f1", "pearson"})
        if (m.contains(k) && m[k].is_number()) {
            char buf[64];
            std::snprintf(buf, sizeof buf, "%s %.4f", k, m[k].get<double>());
            return buf;
        }
    return "";
}

int run(const RunsArgs& a) {
    // Listing, showing, comparing and exporting never write: a read-only database (or folder) is
    // opened read-only; deleting needs write access.
    ExperimentDb db(a.db.empty() ? ExperimentDb::default_path() : std::filesystem::path(a.db),
                    a.del->parsed() ? DbAccess::ReadWrite : DbAccess::Reading);
    if (a.list->parsed()) {
        std::printf("| %-5s | %-20s | %-11s | %-10s | %-14s | %-6s | %-22s | %-24s |\n", "run", "experiment", "status",
                    "task", "method", "steps", "dev", "created");
        std::printf("|-------|----------------------|-------------|------------|----------------|--------|------------------------|--------------------------|\n");
        const std::optional<RunFilter> filter = a.filter.empty() ? std::nullopt : std::optional<RunFilter>(RunFilter(a.filter));
        for (const RunInfo& r : db.runs(a.status, a.tag)) {
            if (filter && !filter->matches(r)) continue;
            const std::string task = r.config.contains("task") ? r.config["task"].value("name", "") : "";
            const std::string method = r.config.contains("method") ? r.config["method"].value("name", "") : "";
            std::printf("| %-5lld | %-20s | %-11s | %-10s | %-14s | %-6d | %-22s | %-24s |\n", static_cast<long long>(r.id),
                        r.experiment.c_str(), r.status.c_str(), task.c_str(), method.c_str(), r.steps,
                        headline_metric(r.final_metrics).c_str(), r.created_at.c_str());
        }
        return 0;
    }
    if (a.compare->parsed()) {
        compare(db, a.ids);
        return 0;
    }
    if (a.exp->parsed()) {
        export_table(db, a.ids, a.format);
        return 0;
    }
    if (a.show->parsed()) {
        for (std::int64_t id : a.ids) {
            const auto r = db.run(id);
            if (!r) throw Error("no run " + std::to_string(id) + " in " + (a.db.empty() ? ExperimentDb::default_path().string() : a.db));
            nlohmann::json j;
            j["run"] = r->id;
            j["uuid"] = r->uuid;
            j["experiment"] = r->experiment;
            j["status"] = r->status;
            if (!r->message.empty()) j["message"] = r->message;
            j["created_at"] = r->created_at;
            j["finished_at"] = r->finished_at;
            j["tags"] = r->tags;
            j["steps_recorded"] = r->steps;
            j["config"] = r->config;
            j["environment"] = r->environment;
            j["final_metrics"] = r->final_metrics;
            nlohmann::json ev = nlohmann::json::array();
            for (const auto& [step, m] : db.evals(id)) ev.push_back({{"step", step}, {"metrics", m}});
            j["evaluations"] = ev;
            std::printf("%s\n", j.dump(2).c_str());
        }
        return 0;
    }
    for (std::int64_t id : a.ids) {
        if (!db.run(id)) throw Error("no run " + std::to_string(id));
        db.delete_run(id);
        std::fprintf(stderr, "deleted run %lld\n", static_cast<long long>(id));
    }
    return 0;
}
}  // namespace

Runner add_runs(CLI::App& app) {
    auto a = std::make_shared<RunsArgs>();
    app.require_subcommand(1);
    app.add_option("--db", a->db, "experiment database (default: $MEFT_DB or ~/.local/share/meft-workbench/experiments.sqlite)");
    a->list = app.add_subcommand("list", "one line per run");
    a->list->add_option("--status", a->status, "only runs with this status")
        ->check(CLI::IsMember({"queued", "running", "finished", "failed", "interrupted", "cancelled"}));
    a->list->add_option("--tag", a->tag, "only runs with this tag");
    a->list->add_option("--filter", a->filter,
                        "conditions joined by 'and': KEY OP VALUE, OP one of = != < <= > >= ~ (contains); keys: id, "
                        "experiment, status, tags, notes, steps, created_at, config.PATH, metrics.NAME, env.NAME "
                        "(e.g. \"metrics.accuracy >= 0.9 and config.method.name = lora\")");
    a->show = app.add_subcommand("show", "a run's resolved config, environment, evaluations and final metrics (JSON)");
    a->show->add_option("run", a->ids, "run ids")->required();
    a->compare = app.add_subcommand("compare", "the config keys that differ, then final metrics side by side");
    a->compare->add_option("run", a->ids, "run ids")->required();
    a->exp = app.add_subcommand("export", "a paper-style table: methods x tasks, mean ± std over seeds, best marked");
    a->exp->add_option("run", a->ids, "run ids")->required();
    a->exp->add_option("--format", a->format, "output format")
        ->check(CLI::IsMember({"csv", "json", "markdown", "latex"}))
        ->capture_default_str();
    a->del = app.add_subcommand("delete", "delete runs and everything recorded for them");
    a->del->add_option("run", a->ids, "run ids")->required();
    return [a] { return run(*a); };
}

}  // namespace meft::cli
