#include "store/merge.h"

#include <algorithm>

#include <sqlite3.h>

#include "core/error.h"
#include "store/sqlite_statement.h"

namespace meft {

namespace {

// Statements on the target's connection, the shard attached to it as "shard".
constexpr const char* kWhere = "gathering runs";

// The target's experiment for the shard's one: the same name, file and spec, else a new row.
std::int64_t experiment_for(sqlite3* db, std::int64_t shard_experiment) {
    Stmt find(db,
              "SELECT m.id FROM main.experiments m JOIN shard.experiments s ON s.id = ?1 "
              "WHERE m.name = s.name AND IFNULL(m.file, '') = IFNULL(s.file, '') AND m.spec = s.spec ORDER BY m.id LIMIT 1",
              kWhere);
    find.bind(1, shard_experiment);
    if (find.step()) return find.i64(0);
    Stmt add(db,
             "INSERT INTO main.experiments(name, file, spec, tags, notes, created_at) "
             "SELECT name, file, spec, tags, notes, created_at FROM shard.experiments WHERE id = ?1",
             kWhere);
    add.bind(1, shard_experiment).run();
    return sqlite3_last_insert_rowid(db);
}

// Every table keyed by run, with its columns after run_id.
const std::pair<const char*, const char*> kRunTables[] = {
    {"steps", "step, loss, learning_rate, grad_norm, tokens_per_s, elapsed_s, activation_bytes, resident_bytes, "
              "activation_rows, activation_seq"},
    {"evals", "step, metric, value"},
    {"layer_memory", "kind, layer, label, held, transient"},
    {"step_memory", "kind, part, value"},
    {"reconstruction", "step, layer, relative_error"},
    {"events", "kind, message, at"},
};

}  // namespace

MergeReport merge_runs(ExperimentDb& into, const std::filesystem::path& shard, bool finished_only) {
    if (into.read_only()) throw Error(into.path() + ": read-only; gathering runs needs write access");
    std::error_code ec;
    if (!std::filesystem::is_regular_file(shard, ec)) throw Error(shard.string() + ": no such shard database");
    if (std::filesystem::equivalent(shard, into.path(), ec)) throw Error(shard.string() + ": is the target database itself");
    { ExperimentDb check(shard); }  // a damaged or foreign file is refused by name; an older schema is migrated
    sqlite3* db = into.handle();
    {
        Stmt attach(db, "ATTACH DATABASE ?1 AS shard", kWhere);
        attach.bind(1, shard.string()).run();
    }
    MergeReport report;
    try {
        Transaction t(db);  // one per shard: a failure leaves the target as it was
        {
            Stmt runs(db, "SELECT id, IFNULL(uuid, ''), status, experiment_id FROM shard.runs ORDER BY id", kWhere);
            while (runs.step()) {
                const std::int64_t old_id = runs.i64(0);
                const std::string uuid = runs.text(1), status = runs.text(2);
                if (status == "running" || (finished_only && status != "finished")) {
                    ++report.not_finished;
                    continue;
                }
                Stmt seen(db, "SELECT 1 FROM main.runs WHERE uuid = ?1", kWhere);
                seen.bind(1, uuid);
                if (!uuid.empty() && seen.step()) {
                    ++report.already;
                    continue;
                }
                const std::int64_t experiment = experiment_for(db, runs.i64(3));
                Stmt copy(db,
                          "INSERT INTO main.runs(experiment_id, status, config, environment, pid, host, message, final_metrics, "
                          "created_at, finished_at, tags, notes, uuid, process) SELECT ?1, status, config, environment, pid, "
                          "host, message, final_metrics, created_at, finished_at, tags, notes, uuid, process "
                           "FROM shard.runs WHERE id = ?2",
                          kWhere);
                copy.bind(1, experiment).bind(2, old_id).run();
                const std::int64_t new_id = sqlite3_last_insert_rowid(db);
                for (const auto& [table, columns] : kRunTables) {
                    Stmt rows(db, std::string("INSERT INTO main.") + table + "(run_id, " + columns + ") SELECT ?1, " + columns +
                                      " FROM shard." + table + " WHERE run_id = ?2",
                              kWhere);
                    rows.bind(1, new_id).bind(2, old_id).run();
                }
                report.added.push_back(new_id);
            }
        }  // every statement finalized before the commit
        t.commit();
    } catch (const Error& e) {
        sqlite3_exec(db, "DETACH DATABASE shard", nullptr, nullptr, nullptr);
        throw Error(shard.string() + ": " + e.what());
    }
    Stmt(db, "DETACH DATABASE shard", kWhere).run();
    return report;
}

std::vector<std::filesystem::path> shard_files(const std::filesystem::path& path) {
    namespace fs = std::filesystem;
    std::error_code ec;
    std::vector<fs::path> out;
    if (fs::is_regular_file(path, ec)) return {path};
    if (!fs::is_directory(path, ec)) throw Error(path.string() + ": no such shard file or sweep folder");
    for (const fs::path& dir : {path, path / "shards"}) {
        if (!fs::is_directory(dir, ec)) continue;
        for (const auto& entry : fs::directory_iterator(dir, ec))
            if (entry.is_regular_file() && entry.path().extension() == ".sqlite") out.push_back(entry.path());
    }
    std::sort(out.begin(), out.end());
    if (out.empty()) throw Error(path.string() + ": no .sqlite shards in it or in its shards/ folder");
    return out;
}

}  // namespace meft
