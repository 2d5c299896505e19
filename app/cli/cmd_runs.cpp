// meft runs list | show | compare | export | delete — the runs recorded in the experiment database.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>

#include "cli/commands.h"
#include "core/error.h"
#include "store/database.h"

namespace meft::cli {

namespace {
struct RunsArgs {
    std::string db, status, tag, format = "markdown";
    std::vector<std::int64_t> ids;
    CLI::App *list = nullptr, *show = nullptr, *del = nullptr, *compare = nullptr, *exp = nullptr;
};

// {"a": {"b": 1}} -> {"a.b": "1"}
void flatten(const nlohmann::json& j, const std::string& prefix, std::map<std::string, std::string>& out) {
    if (j.is_object()) {
        for (auto it = j.begin(); it != j.end(); ++it) flatten(it.value(), prefix.empty() ? it.key() : prefix + "." + it.key(), out);
    } else {
        out[prefix] = j.is_string() ? j.get<std::string>() : j.dump();
    }
}

std::string fmt(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.4g", v);
    return buf;
}

// The metric a paper's table shows for a task.
std::string headline_key(const std::string& task) {
    if (task == "cola") return "matthews";
    if (task == "stsb") return "pearson";
    if (task == "mrpc" || task == "qqp") return "f1";
    if (task == "mnli") return "accuracy_matched";
    return "accuracy";
}

void compare(ExperimentDb& db, const std::vector<std::int64_t>& ids) {
    std::vector<RunInfo> runs;
    for (std::int64_t id : ids) {
        auto r = db.run(id);
        if (!r) throw Error("no run " + std::to_string(id));
        runs.push_back(*r);
    }
    std::vector<std::map<std::string, std::string>> cfg(runs.size()), met(runs.size());
    std::set<std::string> keys, mkeys;
    for (std::size_t i = 0; i < runs.size(); ++i) {
        flatten(runs[i].config, "", cfg[i]);
        flatten(runs[i].final_metrics, "", met[i]);
        for (const auto& [k, v] : cfg[i]) keys.insert(k);
        for (const auto& [k, v] : met[i]) mkeys.insert(k);
    }
    auto header = [&](const char* first) {
        std::printf("| %s |", first);
        for (const RunInfo& r : runs) std::printf(" run %lld |", static_cast<long long>(r.id));
        std::printf("\n|---|");
        for (std::size_t i = 0; i < runs.size(); ++i) std::printf("---|");
        std::printf("\n");
    };
    header("config (differing keys)");
    for (const std::string& k : keys) {
        bool differ = false;
        for (std::size_t i = 1; i < runs.size(); ++i) differ |= cfg[i][k] != cfg[0][k];
        if (!differ) continue;
        std::printf("| %s |", k.c_str());
        for (std::size_t i = 0; i < runs.size(); ++i) std::printf(" %s |", cfg[i].count(k) ? cfg[i][k].c_str() : "—");
        std::printf("\n");
    }
    std::printf("\n");
    header("metric");
    std::printf("| status |");
    for (const RunInfo& r : runs) std::printf(" %s |", r.status.c_str());
    std::printf("\n");
    for (const std::string& k : mkeys) {
        std::printf("| %s |", k.c_str());
        for (std::size_t i = 0; i < runs.size(); ++i) std::printf(" %s |", met[i].count(k) ? met[i][k].c_str() : "—");
        std::printf("\n");
    }
}

// A paper-style table: methods x tasks, the task's headline dev metric as mean ± std over the
// runs (seeds) of each (method, task); the best mean per task is marked.
void export_table(ExperimentDb& db, const std::vector<std::int64_t>& ids, const std::string& format) {
    struct Cell { std::vector<double> v; double mean = 0, sd = 0; };
    std::map<std::string, std::map<std::string, Cell>> table;  // method -> task -> cell
    std::vector<std::string> methods, tasks;
    for (std::int64_t id : ids) {
        const auto r = db.run(id);
        if (!r) throw Error("no run " + std::to_string(id));
        if (r->status != "finished") throw Error("run " + std::to_string(id) + " is " + r->status + ", not finished");
        const std::string task = r->config["task"].value("name", "?"), method = r->config["method"].value("name", "?");
        const std::string key = headline_key(task);
        if (!r->final_metrics.contains(key)) throw Error("run " + std::to_string(id) + " has no '" + key + "' metric");
        if (std::find(methods.begin(), methods.end(), method) == methods.end()) methods.push_back(method);
        if (std::find(tasks.begin(), tasks.end(), task) == tasks.end()) tasks.push_back(task);
        table[method][task].v.push_back(r->final_metrics[key].get<double>());
    }
    std::map<std::string, double> best;
    for (auto& [m, row] : table)
        for (auto& [t, c] : row) {
            for (double x : c.v) c.mean += x;
            c.mean /= double(c.v.size());
            for (double x : c.v) c.sd += (x - c.mean) * (x - c.mean);
            c.sd = c.v.size() > 1 ? std::sqrt(c.sd / double(c.v.size() - 1)) : 0.0;
            if (!best.count(t) || c.mean > best[t]) best[t] = c.mean;
        }
    auto cell = [&](const std::string& m, const std::string& t, bool latex) -> std::string {
        if (!table[m].count(t)) return latex ? "--" : "—";
        const Cell& c = table[m][t];
        char buf[64];
        std::snprintf(buf, sizeof buf, latex ? "%.1f $\\pm$ %.1f" : "%.1f ± %.1f", 100 * c.mean, 100 * c.sd);
        const bool top = c.mean == best[t];
        return top ? (latex ? "\\textbf{" + std::string(buf) + "}" : "**" + std::string(buf) + "**") : std::string(buf);
    };
    if (format == "csv") {
        std::printf("method,task,metric,runs,mean,std,best\n");
        for (const auto& m : methods)
            for (const auto& t : tasks)
                if (table[m].count(t)) {
                    const Cell& c = table[m][t];
                    std::printf("%s,%s,%s,%zu,%.6f,%.6f,%d\n", m.c_str(), t.c_str(), headline_key(t).c_str(), c.v.size(),
                                c.mean, c.sd, c.mean == best[t] ? 1 : 0);
                }
    } else if (format == "json") {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& m : methods)
            for (const auto& t : tasks)
                if (table[m].count(t))
                    out.push_back({{"method", m}, {"task", t}, {"metric", headline_key(t)}, {"runs", table[m][t].v.size()},
                                   {"mean", table[m][t].mean}, {"std", table[m][t].sd}, {"best", table[m][t].mean == best[t]}});
        std::printf("%s\n", out.dump(2).c_str());
    } else if (format == "latex") {
        std::printf("\\begin{tabular}{l%s}\n\\toprule\nMethod", std::string(tasks.size(), 'c').c_str());
        for (const auto& t : tasks) std::printf(" & %s", t.c_str());
        std::printf(" \\\\\n\\midrule\n");
        for (const auto& m : methods) {
            std::printf("%s", m.c_str());
            for (const auto& t : tasks) std::printf(" & %s", cell(m, t, true).c_str());
            std::printf(" \\\\\n");
        }
        std::printf("\\bottomrule\n\\end{tabular}\n");
    } else {
        std::printf("| method |");
        for (const auto& t : tasks) std::printf(" %s (%s) |", t.c_str(), headline_key(t).c_str());
        std::printf("\n|---|");
        for (std::size_t i = 0; i < tasks.size(); ++i) std::printf("---|");
        std::printf("\n");
        for (const auto& m : methods) {
            std::printf("| %s |", m.c_str());
            for (const auto& t : tasks) std::printf(" %s |", cell(m, t, false).c_str());
            std::printf("\n");
        }
    }
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
    ExperimentDb db(a.db.empty() ? ExperimentDb::default_path() : std::filesystem::path(a.db));
    if (a.list->parsed()) {
        std::printf("| %-5s | %-20s | %-11s | %-10s | %-14s | %-6s | %-22s | %-24s |\n", "run", "experiment", "status",
                    "task", "method", "steps", "dev", "created");
        std::printf("|-------|----------------------|-------------|------------|----------------|--------|------------------------|--------------------------|\n");
        for (const RunInfo& r : db.runs(a.status, a.tag)) {
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
    a->list->add_option("--tag", a->tag, "only runs of experiments with this tag");
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
