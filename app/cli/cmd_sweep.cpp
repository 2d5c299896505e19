// meft sweep gather — a sweep's runs, recorded one SQLite file per task (shards), into one
// experiment database (store/merge.h): a run is known by its UUID, so gathering twice adds nothing.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "store/database.h"
#include "store/merge.h"

namespace meft::cli {

namespace {

struct SweepArgs {
    std::string db;
    std::vector<std::string> shards;
    bool all = false;
    CLI::App* gather = nullptr;
};

int gather(const SweepArgs& a) {
    std::vector<std::filesystem::path> files;
    for (const std::string& s : a.shards)
        for (const auto& f : shard_files(s)) files.push_back(f);
    const std::filesystem::path target = a.db.empty() ? ExperimentDb::default_path() : std::filesystem::path(a.db);
    ExperimentDb db(target);
    int added = 0, already = 0, left = 0;
    for (const auto& f : files) {
        const MergeReport r = merge_runs(db, f, !a.all);
        std::printf("%s: %zu run%s added%s, %d already there, %d not %s\n", f.string().c_str(), r.added.size(),
                    r.added.size() == 1 ? "" : "s",
                    r.added.empty() ? "" : (" (ids " + std::to_string(r.added.front()) + ".." + std::to_string(r.added.back()) + ")").c_str(),
                    r.already, r.not_finished, a.all ? "ended (still running)" : "finished");
        added += static_cast<int>(r.added.size());
        already += r.already;
        left += r.not_finished;
    }
    std::printf("gathered %d run%s from %zu shard%s into %s; %d already there, %d left out\n", added, added == 1 ? "" : "s",
                files.size(), files.size() == 1 ? "" : "s", target.string().c_str(), already, left);
    return 0;
}

}  // namespace

Runner add_sweep(CLI::App& app) {
    auto a = std::make_shared<SweepArgs>();
    app.require_subcommand(1);
    a->gather = app.add_subcommand("gather", "merge shard databases (files, or sweep folders with shards/) into one");
    a->gather->add_option("shards", a->shards, "shard .sqlite files or folders holding them (and their shards/)")->required();
    a->gather->add_option("--db", a->db, "the database to gather into (default: $MEFT_DB or ~/.local/share/meft-workbench/experiments.sqlite)");
    a->gather->add_flag("--all", a->all, "also gather failed, cancelled and interrupted runs (never a running one)");
    return [a] { return gather(*a); };
}

}  // namespace meft::cli
