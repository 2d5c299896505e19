// meft runs list | show | delete — the runs recorded in the experiment database.
#include <cstdio>

#include "cli/commands.h"
#include "core/error.h"
#include "store/database.h"

namespace meft::cli {

namespace {
struct RunsArgs {
    std::string db, status, tag;
    std::vector<std::int64_t> ids;
    CLI::App *list = nullptr, *show = nullptr, *del = nullptr;
};

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
    a->del = app.add_subcommand("delete", "delete runs and everything recorded for them");
    a->del->add_option("run", a->ids, "run ids")->required();
    return [a] { return run(*a); };
}

}  // namespace meft::cli
