#include "store/database.h"

#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include <signal.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cstdlib>

#include "core/error.h"
#include "core/file_io.h"
#include "store/sqlite_statement.h"

namespace meft {

namespace {


nlohmann::json parse_or_null(const std::string& s) {
    if (s.empty()) return nullptr;
    try {
        return nlohmann::json::parse(s);
    } catch (const nlohmann::json::exception&) {
        return s;
    }
}

// Schema version 1. Later versions append migrations; never edit a shipped one.
const char* kMigrations[] = {
    R"sql(
    CREATE TABLE experiments (
        id INTEGER PRIMARY KEY, name TEXT NOT NULL, file TEXT, spec TEXT NOT NULL,
        tags TEXT NOT NULL DEFAULT '', notes TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')));
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY, experiment_id INTEGER NOT NULL REFERENCES experiments(id) ON DELETE CASCADE,
        status TEXT NOT NULL CHECK (status IN ('queued','running','finished','failed','interrupted','cancelled')),
        config TEXT NOT NULL, environment TEXT NOT NULL, pid INTEGER, host TEXT,
        message TEXT NOT NULL DEFAULT '', final_metrics TEXT,
        created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')), finished_at TEXT);
    CREATE TABLE steps (
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE, step INTEGER NOT NULL,
        loss REAL, learning_rate REAL, grad_norm REAL, tokens_per_s REAL, elapsed_s REAL, activation_bytes INTEGER,
        PRIMARY KEY (run_id, step));
    CREATE TABLE evals (
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE, step INTEGER NOT NULL,
        metric TEXT NOT NULL, value REAL, PRIMARY KEY (run_id, step, metric));
    CREATE TABLE layer_memory (
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE, kind TEXT NOT NULL,
        layer INTEGER NOT NULL, label TEXT NOT NULL, held INTEGER NOT NULL, transient INTEGER NOT NULL);
    CREATE TABLE reconstruction (
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE, step INTEGER NOT NULL,
        layer INTEGER NOT NULL, relative_error REAL NOT NULL);
    CREATE TABLE events (
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE, kind TEXT NOT NULL, message TEXT NOT NULL,
        at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')));
    CREATE INDEX runs_by_status ON runs(status);
    )sql",
    // Version 2: tags and notes per run (the workbench edits them run by run; existing runs take
    // their experiment's), and the resident bytes (weights, gradients, optimizer state) per step.
    R"sql(
    ALTER TABLE runs ADD COLUMN tags TEXT NOT NULL DEFAULT '';
    ALTER TABLE runs ADD COLUMN notes TEXT NOT NULL DEFAULT '';
    UPDATE runs SET tags = (SELECT tags FROM experiments e WHERE e.id = runs.experiment_id),
                    notes = (SELECT notes FROM experiments e WHERE e.id = runs.experiment_id);
    ALTER TABLE steps ADD COLUMN resident_bytes INTEGER;
    )sql",
    // Version 3: every run has a UUID (its checkpoint is named by it) and the identity of the
    // process running it (boot and start time: a reused pid is not mistaken for it); each step
    // the micro-batch shape of its activation peak. Existing runs get UUIDs in migrate().
    R"sql(
    ALTER TABLE runs ADD COLUMN uuid TEXT;
    ALTER TABLE runs ADD COLUMN process TEXT NOT NULL DEFAULT '';
    ALTER TABLE steps ADD COLUMN activation_rows INTEGER;
    ALTER TABLE steps ADD COLUMN activation_seq INTEGER;
    )sql",
    // Version 4: the parts of a step's activation memory, planned and measured, with the step and
    // batch shape they are of (store/step_memory.h); per-layer memory read by run without a scan.
    R"sql(
    CREATE TABLE step_memory (
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE, kind TEXT NOT NULL,
        part TEXT NOT NULL, value INTEGER NOT NULL, PRIMARY KEY (run_id, kind, part));
    CREATE INDEX layer_memory_by_run ON layer_memory(run_id);
    )sql",
    // Version 5: the sweeps submitted into this database (run/sweep.h): their folder, how they run
    // (Slurm job array or local processes), the Slurm job id and the sweep's record (sweep.json).
    R"sql(
    CREATE TABLE sweeps (
        id INTEGER PRIMARY KEY, dir TEXT NOT NULL UNIQUE, name TEXT NOT NULL, mode TEXT NOT NULL,
        job_id TEXT NOT NULL DEFAULT '', expansions INTEGER NOT NULL, record TEXT NOT NULL,
        created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')));
    )sql",
};

}  // namespace

std::filesystem::path ExperimentDb::default_path() {
    if (const char* p = std::getenv("MEFT_DB"); p && *p) return p;
    std::filesystem::path base;
    if (const char* x = std::getenv("XDG_DATA_HOME"); x && *x) base = x;
    else if (const char* h = std::getenv("HOME"); h && *h) base = std::filesystem::path(h) / ".local" / "share";
    else base = ".";
    return base / "meft-workbench" / "experiments.sqlite";
}

namespace {
bool writable(const std::filesystem::path& file) {
    const std::filesystem::path dir = file.has_parent_path() ? file.parent_path() : std::filesystem::path(".");
    return ::access(dir.c_str(), W_OK) == 0 && (::access(file.c_str(), F_OK) != 0 || ::access(file.c_str(), W_OK) == 0);
}

// "file:<path>?<query>" with the path's URI-special characters escaped.
std::string sqlite_uri(const std::string& path, const char* query) {
    std::string u = "file:";
    for (const char c : path) {
        if (c == '?' || c == '#' || c == '%') {
            char buf[4];
            std::snprintf(buf, sizeof buf, "%%%02X", static_cast<unsigned char>(c));
            u += buf;
        } else {
            u += c;
        }
    }
    return u + "?" + query;
}
}  // namespace

ExperimentDb::ExperimentDb(const std::filesystem::path& file, DbAccess access) : path_(file.string()) {
    if (std::error_code ec; std::filesystem::is_directory(file, ec))
        throw Error(path_ + ": is a folder; the experiment database is a file in it, e.g. " +
                    (file / "experiments.sqlite").string());
    if (access == DbAccess::Reading) access = writable(file) ? DbAccess::ReadWrite : DbAccess::ReadOnly;
    read_only_ = access == DbAccess::ReadOnly;
    if (read_only_) {
        std::error_code ec;
        if (!std::filesystem::exists(file, ec)) throw Error(path_ + ": no experiment database here");
        // A WAL database opens read-only when its -shm file can be created or exists; in a
        // read-only folder without one (closed cleanly), only as immutable: nobody can write there.
        for (const char* query : {"mode=ro", "immutable=1"}) {
            sqlite3_close(db_);
            db_ = nullptr;
            if (sqlite3_open_v2(sqlite_uri(path_, query).c_str(), &db_,
                                SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_FULLMUTEX, nullptr) != SQLITE_OK)
                continue;
            if (sqlite3_exec(db_, "SELECT count(*) FROM sqlite_master", nullptr, nullptr, nullptr) == SQLITE_OK) break;
        }
        const int rc = db_ ? sqlite3_exec(db_, "SELECT count(*) FROM sqlite_master", nullptr, nullptr, nullptr) : SQLITE_CANTOPEN;
        if (rc != SQLITE_OK) {
            const std::string msg = db_ ? sqlite3_errmsg(db_) : "cannot open";
            sqlite3_close(db_);
            db_ = nullptr;
            throw Error(path_ + ": cannot open the experiment database (read-only): " + msg);
        }
        sqlite3_busy_timeout(db_, 10000);
        const int have = schema_version();
        if (have != kSchemaVersion)
            throw Error(path_ + ": the database has schema version " + std::to_string(have) + " and this program reads version " +
                        std::to_string(kSchemaVersion) + (have < kSchemaVersion ? "; it needs a migration, which a read-only database cannot "
                                                                                 "take: open it once with write access (any meft runs command does)"
                                                                               : " (upgrade meft)"));
        return;
    }
    std::error_code ec;
    if (file.has_parent_path()) std::filesystem::create_directories(file.parent_path(), ec);
    if (sqlite3_open_v2(path_.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                        nullptr) != SQLITE_OK) {
        const std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
        sqlite3_close(db_);
        db_ = nullptr;
        throw Error(path_ + ": cannot open the experiment database: " + msg);
    }
    sqlite3_busy_timeout(db_, 10000);  // wait for a writer instead of failing with "database is locked"
    // Switching a new file to WAL takes a lock the busy handler does not wait for: retry while
    // another program is creating the same database.
    for (int attempt = 0;; ++attempt) {
        try {
            exec("PRAGMA journal_mode=WAL");
            break;
        } catch (const Error& e) {
            // Not a database at all, or a damaged one: no retry helps.
            if (sqlite3_errcode(db_) == SQLITE_NOTADB || sqlite3_errcode(db_) == SQLITE_CORRUPT)
                throw Error(path_ + ": not an experiment database (" + sqlite3_errmsg(db_) + ")");
            if (attempt >= 200) throw;
            std::this_thread::sleep_for(std::chrono::milliseconds(10 + attempt % 20));
        }
    }
    exec("PRAGMA synchronous=NORMAL");
    exec("PRAGMA foreign_keys=ON");
    migrate();
    mark_dead_runs_interrupted();
}

ExperimentDb::~ExperimentDb() { sqlite3_close(db_); }

void ExperimentDb::require_writable(const char* what) const {
    if (read_only_) throw Error(path_ + ": opened read-only; cannot " + what);
}

void ExperimentDb::exec(const std::string& sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
        const std::string msg = err ? err : "unknown error";
        sqlite3_free(err);
        throw Error(path_ + ": " + msg);
    }
}

int ExperimentDb::schema_version() const {
    Stmt s(db_, "PRAGMA user_version", path_);
    s.step();
    return static_cast<int>(s.i64(0));
}

void ExperimentDb::migrate() {
    const int have = schema_version();
    if (have > kSchemaVersion)
        throw Error(path_ + ": the database has schema version " + std::to_string(have) + ", newer than this program's " +
                    std::to_string(kSchemaVersion) + " (upgrade meft)");
    for (int v = have; v < kSchemaVersion; ++v) {
        Transaction t(db_);
        if (schema_version() > v) continue;  // another program migrated it while we waited for the lock
        exec(kMigrations[v]);
        if (v + 1 == 3) {  // a UUID for every existing run, then make them unique
            std::vector<std::int64_t> ids;
            {
                Stmt q(db_, "SELECT id FROM runs", path_);
                while (q.step()) ids.push_back(q.i64(0));
            }
            Stmt u(db_, "UPDATE runs SET uuid = ? WHERE id = ?", path_);
            for (std::int64_t id : ids) u.bind(1, new_uuid()).bind(2, id).run();
            exec("CREATE UNIQUE INDEX runs_by_uuid ON runs(uuid)");
        }
        exec("PRAGMA user_version=" + std::to_string(v + 1));
        t.commit();
    }
}

std::string new_uuid() {
    std::random_device rd;  // the system's random source (getrandom / /dev/urandom)
    unsigned char b[16];
    for (int i = 0; i < 16; i += 4) {
        const unsigned v = rd();
        for (int k = 0; k < 4; ++k) b[i + k] = static_cast<unsigned char>(v >> (8 * k));
    }
    b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);  // version 4
    b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);  // RFC 4122 variant
    char out[37];
    std::snprintf(out, sizeof out, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2],
                  b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
    return out;
}

std::string process_identity(long pid) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(stat, line)) return "";
    // "pid (comm) state ppid ... starttime ...": fields after the last ')', state is field 3,
    // starttime field 22 (clock ticks after boot).
    const std::size_t close = line.rfind(')');
    if (close == std::string::npos) return "";
    std::istringstream rest(line.substr(close + 1));
    std::vector<std::string> f;
    for (std::string t; rest >> t;) f.push_back(t);
    if (f.size() < 20 || f[0] == "Z" || f[0] == "X") return "";  // gone, or a zombie nobody reaped
    static const std::string boot = [] {
        std::ifstream b("/proc/sys/kernel/random/boot_id");
        std::string id;
        std::getline(b, id);
        return id;
    }();
    return boot + "/" + f[19];
}

std::string host_name() {
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    return host;
}

void ExperimentDb::mark_dead_runs_interrupted() {
    const std::string host = host_name();
    std::vector<std::int64_t> dead;
    {
        Stmt s(db_, "SELECT id, pid, host, process FROM runs WHERE status IN ('running','queued')", path_);
        while (s.step()) {
            const auto pid = static_cast<pid_t>(s.i64(1));
            if (s.text(2) != host) continue;  // another machine's run: nothing to tell from here
            // Alive: the pid exists, is not a zombie, and is the process that recorded it (same
            // boot, same start time); a reused pid is another process. Rows from before schema 3
            // have no identity: the pid alone decides, as it did then.
            const std::string recorded = s.text(3);
            const std::string now = pid > 0 ? process_identity(pid) : "";
            const bool alive = pid > 0 && !now.empty() && (recorded.empty() || recorded == now);
            if (!alive) dead.push_back(s.i64(0));
        }
    }
    for (std::int64_t id : dead) {
        set_status(id, "interrupted", "the process running it stopped without finishing");
        add_event(id, "interrupted", "found running with no live process when the database was opened");
    }
}

std::int64_t ExperimentDb::add_experiment(const std::string& name, const std::string& file, const nlohmann::json& spec,
                                          const std::string& tags, const std::string& notes) {
    Stmt s(db_, "INSERT INTO experiments(name, file, spec, tags, notes) VALUES (?,?,?,?,?)", path_);
    s.bind(1, name).bind(2, file).bind(3, spec.dump()).bind(4, tags).bind(5, notes).run();
    return sqlite3_last_insert_rowid(db_);
}

std::int64_t ExperimentDb::insert_run(std::int64_t experiment_id, const nlohmann::json& config,
                                      const nlohmann::json& environment) {
    require_writable("record a run");
    const std::string host = host_name();
    Stmt s(db_,
           "INSERT INTO runs(experiment_id, status, config, environment, pid, host, tags, notes, uuid, process) "
           "SELECT ?1, 'queued', ?2, ?3, ?4, ?5, IFNULL(e.tags, ''), IFNULL(e.notes, ''), ?6, ?7 "
           "FROM (SELECT ?1 AS id) x LEFT JOIN experiments e ON e.id = x.id",
           path_);
    s.bind(1, experiment_id).bind(2, config.dump()).bind(3, environment.dump()).bind(4, std::int64_t{getpid()})
        .bind(5, std::string(host)).bind(6, new_uuid()).bind(7, process_identity(getpid())).run();
    return sqlite3_last_insert_rowid(db_);
}

std::int64_t ExperimentDb::add_run(std::int64_t experiment_id, const nlohmann::json& config,
                                   const nlohmann::json& environment) {
    return insert_run(experiment_id, config, environment);
}

std::int64_t ExperimentDb::add_run(NewExperiment& experiment, const nlohmann::json& config,
                                   const nlohmann::json& environment) {
    Transaction t(db_);
    std::int64_t exp_id = experiment.id;
    if (exp_id == 0) exp_id = add_experiment(experiment.name, experiment.file, experiment.spec, experiment.tags, experiment.notes);
    const std::int64_t run = insert_run(exp_id, config, environment);
    t.commit();
    experiment.id = exp_id;  // only once both rows exist
    return run;
}

std::string ExperimentDb::run_uuid(std::int64_t run) const {
    Stmt s(db_, "SELECT IFNULL(uuid, '') FROM runs WHERE id = ?", path_);
    s.bind(1, run);
    return s.step() ? s.text(0) : "";
}

void ExperimentDb::set_status(std::int64_t run, const std::string& status, const std::string& message) {
    require_writable("change a run's status");
    Stmt s(db_, "UPDATE runs SET status = ?, message = ?, pid = ?, process = ? WHERE id = ?", path_);
    s.bind(1, status).bind(2, message).bind(3, std::int64_t{getpid()}).bind(4, process_identity(getpid())).bind(5, run).run();
}

void ExperimentDb::add_steps(std::int64_t run, const std::vector<StepRow>& rows) {
    if (rows.empty()) return;
    Transaction t(db_);
    Stmt s(db_,
           "INSERT OR REPLACE INTO steps(run_id, step, loss, learning_rate, grad_norm, tokens_per_s, elapsed_s, "
           "activation_bytes, resident_bytes, activation_rows, activation_seq) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
           path_);
    for (const StepRow& r : rows)
        s.bind(1, run).bind(2, r.step).bind(3, r.loss).bind(4, r.learning_rate).bind(5, r.grad_norm)
            .bind(6, r.tokens_per_s).bind(7, r.elapsed_s).bind(8, r.activation_bytes).bind(9, r.resident_bytes)
            .bind(10, r.activation_rows).bind(11, r.activation_seq).run();
    t.commit();
}

void ExperimentDb::add_eval(std::int64_t run, int step, const std::map<std::string, double>& metrics, double loss) {
    Transaction t(db_);
    Stmt s(db_, "INSERT OR REPLACE INTO evals(run_id, step, metric, value) VALUES (?,?,?,?)", path_);
    s.bind(1, run).bind(2, step).bind(3, std::string("loss")).bind(4, loss).run();
    for (const auto& [k, v] : metrics) s.bind(1, run).bind(2, step).bind(3, k).bind(4, v).run();
    t.commit();
}

void ExperimentDb::add_layer_memory(std::int64_t run, const std::string& kind, int layer, const std::string& label,
                                    std::int64_t held, std::int64_t transient) {
    Stmt s(db_, "INSERT INTO layer_memory(run_id, kind, layer, label, held, transient) VALUES (?,?,?,?,?,?)", path_);
    s.bind(1, run).bind(2, kind).bind(3, layer).bind(4, label).bind(5, held).bind(6, transient).run();
}

void ExperimentDb::add_reconstruction(std::int64_t run, int step, const std::vector<double>& per_layer) {
    Transaction t(db_);
    Stmt s(db_, "INSERT INTO reconstruction(run_id, step, layer, relative_error) VALUES (?,?,?,?)", path_);
    for (std::size_t l = 0; l < per_layer.size(); ++l)
        s.bind(1, run).bind(2, step).bind(3, static_cast<int>(l)).bind(4, per_layer[l]).run();
    t.commit();
}

void ExperimentDb::add_event(std::int64_t run, const std::string& kind, const std::string& message) {
    Stmt s(db_, "INSERT INTO events(run_id, kind, message) VALUES (?,?,?)", path_);
    s.bind(1, run).bind(2, kind).bind(3, message).run();
}

void ExperimentDb::finish(std::int64_t run, const std::string& status, const nlohmann::json& final_metrics,
                          const std::string& message) {
    Stmt s(db_,
           "UPDATE runs SET status = ?, final_metrics = ?, message = ?, "
           "finished_at = strftime('%Y-%m-%dT%H:%M:%fZ','now') WHERE id = ?",
           path_);
    s.bind(1, status).bind(2, final_metrics.dump()).bind(3, message).bind(4, run).run();
}

void ExperimentDb::finish_with_memory(std::int64_t run, const std::string& status, const nlohmann::json& final_metrics,
                                      const std::string& message, const std::vector<LayerMemoryRow>& layers,
                                      const std::vector<StepMemoryRow>& parts) {
    Transaction t(db_);
    Stmt del(db_, "DELETE FROM layer_memory WHERE run_id = ?", path_);
    del.bind(1, run).run();
    for (const LayerMemoryRow& l : layers) add_layer_memory(run, l.kind, l.layer, l.label, l.held, l.transient);
    Stmt del_parts(db_, "DELETE FROM step_memory WHERE run_id = ?", path_);
    del_parts.bind(1, run).run();
    Stmt add(db_, "INSERT INTO step_memory(run_id, kind, part, value) VALUES (?,?,?,?)", path_);
    for (const StepMemoryRow& p : parts) add.bind(1, run).bind(2, p.kind).bind(3, p.part).bind(4, p.value).run();
    finish(run, status, final_metrics, message);
    t.commit();
}

namespace {
// What runs() and run() read of a run, in the order read_run() takes the columns; a WHERE follows.
const char* const kSelectRuns =
    "SELECT r.id, r.experiment_id, e.name, r.status, r.message, r.created_at, IFNULL(r.finished_at,''), r.tags, "
    "r.config, r.environment, IFNULL(r.final_metrics,''), (SELECT COUNT(*) FROM steps WHERE run_id = r.id), "
    "r.notes, IFNULL(r.uuid, ''), IFNULL(r.host, '') FROM runs r JOIN experiments e ON e.id = r.experiment_id ";

RunInfo read_run(const Stmt& s) {
    RunInfo r;
    r.id = s.i64(0);
    r.experiment_id = s.i64(1);
    r.experiment = s.text(2);
    r.status = s.text(3);
    r.message = s.text(4);
    r.created_at = s.text(5);
    r.finished_at = s.text(6);
    r.tags = s.text(7);
    r.config = parse_or_null(s.text(8));
    r.environment = parse_or_null(s.text(9));
    r.final_metrics = parse_or_null(s.text(10));
    r.steps = static_cast<int>(s.i64(11));
    r.notes = s.text(12);
    r.uuid = s.text(13);
    r.host = s.text(14);
    return r;
}
}  // namespace

std::vector<RunInfo> ExperimentDb::runs(const std::string& status, const std::string& tag) const {
    Stmt s(db_,
           std::string(kSelectRuns) +
               "WHERE (?1 = '' OR r.status = ?1) AND (?2 = '' OR (',' || r.tags || ',') LIKE ('%,' || ?2 || ',%')) "
               "ORDER BY r.id",
           path_);
    s.bind(1, status).bind(2, tag);
    std::vector<RunInfo> out;
    while (s.step()) out.push_back(read_run(s));
    return out;
}

// One run by its id: a lookup by primary key, not a read of every run.
std::optional<RunInfo> ExperimentDb::run(std::int64_t id) const {
    Stmt s(db_, std::string(kSelectRuns) + "WHERE r.id = ?1", path_);
    s.bind(1, id);
    if (!s.step()) return std::nullopt;
    return read_run(s);
}

std::int64_t ExperimentDb::data_version() const {
    Stmt s(db_, "PRAGMA data_version", path_);
    return s.step() ? s.i64(0) : 0;
}

std::string ExperimentDb::runs_stamp() const {
    // What a runs table shows of each run, except its step count: the id, status, tags and notes
    // exactly, and the final metrics' length (they are written with the final status).
    Stmt s(db_,
           "SELECT IFNULL(GROUP_CONCAT(id || char(31) || status || char(31) || tags || char(31) || notes || char(31) || "
           "IFNULL(LENGTH(final_metrics), 0), char(30)), '') FROM (SELECT id, status, tags, notes, final_metrics FROM runs ORDER BY id)",
           path_);
    return s.step() ? s.text(0) : std::string();
}

std::vector<StepRow> ExperimentDb::steps(std::int64_t run, int after_step) const {
    Stmt s(db_,
           "SELECT step, loss, learning_rate, grad_norm, tokens_per_s, elapsed_s, activation_bytes, "
           "IFNULL(resident_bytes, 0), IFNULL(activation_rows, 0), IFNULL(activation_seq, 0) FROM steps "
           "WHERE run_id = ? AND step > ? ORDER BY step",
           path_);
    s.bind(1, run).bind(2, after_step);
    std::vector<StepRow> out;
    while (s.step())
        out.push_back(StepRow{static_cast<int>(s.i64(0)), s.f64(1), s.f64(2), s.f64(3), s.f64(4), s.f64(5), s.i64(6), s.i64(7),
                              static_cast<int>(s.i64(8)), static_cast<int>(s.i64(9))});
    return out;
}

std::vector<LayerMemoryRow> ExperimentDb::layer_memory(std::int64_t run) const {
    Stmt s(db_, "SELECT kind, layer, label, held, transient FROM layer_memory WHERE run_id = ? ORDER BY kind, layer", path_);
    s.bind(1, run);
    std::vector<LayerMemoryRow> out;
    while (s.step()) out.push_back(LayerMemoryRow{s.text(0), static_cast<int>(s.i64(1)), s.text(2), s.i64(3), s.i64(4)});
    return out;
}

std::vector<StepMemoryRow> ExperimentDb::step_memory(std::int64_t run) const {
    Stmt s(db_, "SELECT kind, part, value FROM step_memory WHERE run_id = ? ORDER BY kind, part", path_);
    s.bind(1, run);
    std::vector<StepMemoryRow> out;
    while (s.step()) out.push_back(StepMemoryRow{s.text(0), s.text(1), s.i64(2)});
    return out;
}

std::vector<std::pair<int, std::vector<double>>> ExperimentDb::reconstruction(std::int64_t run) const {
    Stmt s(db_, "SELECT step, layer, relative_error FROM reconstruction WHERE run_id = ? ORDER BY step, layer", path_);
    s.bind(1, run);
    std::vector<std::pair<int, std::vector<double>>> out;
    while (s.step()) {
        const int step = static_cast<int>(s.i64(0));
        if (out.empty() || out.back().first != step) out.push_back({step, {}});
        out.back().second.push_back(s.f64(2));
    }
    return out;
}

std::vector<EventRow> ExperimentDb::events(std::int64_t run) const {
    Stmt s(db_, "SELECT at, kind, message FROM events WHERE run_id = ? ORDER BY rowid", path_);
    s.bind(1, run);
    std::vector<EventRow> out;
    while (s.step()) out.push_back(EventRow{s.text(0), s.text(1), s.text(2)});
    return out;
}

void ExperimentDb::set_tags(std::int64_t run, const std::vector<std::string>& tags) {
    std::string joined;
    for (const std::string& t : tags) {
        if (t.empty() || t.find(',') != std::string::npos)
            throw Error("tag \"" + t + "\" must be non-empty and have no comma");
        joined += (joined.empty() ? "" : ",") + t;
    }
    Stmt s(db_, "UPDATE runs SET tags = ? WHERE id = ?", path_);
    s.bind(1, joined).bind(2, run).run();
}

void ExperimentDb::set_notes(std::int64_t run, const std::string& notes) {
    Stmt s(db_, "UPDATE runs SET notes = ? WHERE id = ?", path_);
    s.bind(1, notes).bind(2, run).run();
}

void ExperimentDb::record_sweep(const SweepRow& sweep) {
    require_writable("record a sweep");
    Stmt s(db_,
           "INSERT INTO sweeps(dir, name, mode, job_id, expansions, record) VALUES (?1,?2,?3,?4,?5,?6) "
           "ON CONFLICT(dir) DO UPDATE SET name = ?2, mode = ?3, job_id = ?4, expansions = ?5, record = ?6",
           path_);
    s.bind(1, sweep.dir).bind(2, sweep.name).bind(3, sweep.mode).bind(4, sweep.job_id).bind(5, sweep.expansions);
    s.bind(6, sweep.record.dump()).run();
}

std::vector<SweepRow> ExperimentDb::sweeps() const {
    Stmt s(db_, "SELECT id, dir, name, mode, job_id, expansions, record, created_at FROM sweeps ORDER BY id", path_);
    std::vector<SweepRow> out;
    while (s.step())
        out.push_back({s.i64(0), s.text(1), s.text(2), s.text(3), s.text(4), static_cast<int>(s.i64(5)),
                       parse_or_null(s.text(6)), s.text(7)});
    return out;
}

void ExperimentDb::forget_sweep(const std::string& dir) {
    require_writable("forget a sweep");
    Stmt s(db_, "DELETE FROM sweeps WHERE dir = ?", path_);
    s.bind(1, dir).run();
}

bool ExperimentDb::has_run_uuid(const std::string& uuid) const {
    Stmt s(db_, "SELECT 1 FROM runs WHERE uuid = ?", path_);
    s.bind(1, uuid);
    return s.step();
}

std::vector<std::pair<int, std::map<std::string, double>>> ExperimentDb::evals(std::int64_t run) const {
    Stmt s(db_, "SELECT step, metric, value FROM evals WHERE run_id = ? ORDER BY step, metric", path_);
    s.bind(1, run);
    std::vector<std::pair<int, std::map<std::string, double>>> out;
    while (s.step()) {
        const int step = static_cast<int>(s.i64(0));
        if (out.empty() || out.back().first != step) out.push_back({step, {}});
        out.back().second[s.text(1)] = s.f64(2);
    }
    return out;
}

void ExperimentDb::delete_run(std::int64_t run) {
    require_writable("delete a run");
    const std::filesystem::path cp = checkpoint_path(run);
    Stmt s(db_, "DELETE FROM runs WHERE id = ?", path_);
    s.bind(1, run).run();
    std::error_code ec;
    std::filesystem::remove(cp, ec);
    remove_stale_checkpoint_files(cp);
}

void ExperimentDb::remove_stale_checkpoint_files(std::int64_t run) const { remove_stale_checkpoint_files(checkpoint_path(run)); }

void ExperimentDb::remove_stale_checkpoint_files(const std::filesystem::path& cp) const {
    // A process killed while writing a checkpoint leaves its temporary file (".<uuid>.safetensors.tmp.*").
    const std::string prefix = temporary_prefix(cp);
    std::error_code ec;
    for (const auto& f : std::filesystem::directory_iterator(cp.parent_path(), ec))
        if (f.path().filename().string().rfind(prefix, 0) == 0) std::filesystem::remove(f.path(), ec);
}

std::filesystem::path ExperimentDb::checkpoint_path(std::int64_t run) const {
    const std::string uuid = run_uuid(run);
    if (uuid.empty()) throw Error(path_ + ": no run " + std::to_string(run));
    return std::filesystem::path(path_).parent_path() / "checkpoints" / (uuid + ".safetensors");
}

std::filesystem::path ExperimentDb::legacy_checkpoint_path(std::int64_t run) const {
    return std::filesystem::path(path_).parent_path() / "checkpoints" / ("run-" + std::to_string(run) + ".safetensors");
}

}  // namespace meft
