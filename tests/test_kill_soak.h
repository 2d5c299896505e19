// test_kill_soak.h — helpers of the experiment-database reliability suites (test_kill_soak and
// test_live_reader): start `meft` as a child process with its stderr in a file, read the commit
// trace that MEFT_TRACE_COMMITS makes it print (app/cli/run_recorder.cpp), and check step rows.
#pragma once
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "store/database.h"

extern char** environ;

namespace meft::reliability {

namespace fs = std::filesystem;

// The meft executable: $MEFT_EXE, else the path CMake compiled in.
inline std::string meft_exe() {
    if (const char* e = std::getenv("MEFT_EXE"); e && *e) return e;
    return MEFT_EXE;
}

// Starts `meft ARGS...` with stdout to /dev/null, stderr to `err_file` and MEFT_TRACE_COMMITS=1.
inline pid_t spawn_meft(const std::vector<std::string>& args, const fs::path& err_file) {
    std::vector<std::string> argv_s{meft_exe()};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<std::string> env_s{"MEFT_TRACE_COMMITS=1"};
    for (char** e = environ; *e; ++e)
        if (std::string(*e).rfind("MEFT_TRACE_COMMITS=", 0) != 0) env_s.emplace_back(*e);
    std::vector<char*> envp;
    for (std::string& e : env_s) envp.push_back(e.data());
    envp.push_back(nullptr);

    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
    pid_t pid = -1;
    const int rc = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) throw std::runtime_error("cannot start " + argv_s[0] + ": " + std::strerror(rc));
    return pid;
}

// waitpid status in words, for messages.
inline std::string describe_status(int status) {
    if (WIFEXITED(status)) return "exited with " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status)) return std::string("killed by signal ") + std::to_string(WTERMSIG(status));
    return "status " + std::to_string(status);
}

inline std::string read_text(const fs::path& file) {
    std::ifstream in(file, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// What the trace of one process says was committed, per run.
struct Trace {
    std::map<long long, int> last_step;                // highest step committed
    std::map<long long, std::vector<int>> batch_ends;  // every committed batch's last step, in order
    std::map<long long, std::set<int>> evals;          // steps whose evaluation committed
    int lines = 0;                                     // trace lines (commits) in all
};

// Parses the whole lines of `err_file` (a line cut by a kill is ignored).
inline Trace read_trace(const fs::path& err_file) {
    Trace t;
    const std::string text = read_text(err_file);
    std::size_t start = 0;
    for (std::size_t nl; (nl = text.find('\n', start)) != std::string::npos; start = nl + 1) {
        const std::string line = text.substr(start, nl - start);
        long long run = 0;
        int step = 0;
        if (std::sscanf(line.c_str(), "meft-trace: committed run %lld steps <= %d", &run, &step) == 2) {
            t.last_step[run] = std::max(t.last_step[run], step);
            t.batch_ends[run].push_back(step);
            ++t.lines;
        } else if (std::sscanf(line.c_str(), "meft-trace: committed run %lld eval at step %d", &run, &step) == 2) {
            t.evals[run].insert(step);
            ++t.lines;
        }
    }
    return t;
}

// "" when `rows` are exactly steps 1..rows.size() with every value finite and in range; else what is wrong.
inline std::string check_step_rows(const std::vector<StepRow>& rows) {
    for (std::size_t i = 0; i < rows.size(); ++i) {
        const StepRow& r = rows[i];
        const std::string at = "step row " + std::to_string(i) + " (step " + std::to_string(r.step) + ")";
        if (r.step != static_cast<int>(i) + 1)
            return "steps are not contiguous from 1: row " + std::to_string(i) + " is step " + std::to_string(r.step);
        for (double v : {r.loss, r.learning_rate, r.grad_norm, r.tokens_per_s, r.elapsed_s})
            if (!std::isfinite(v)) return at + " has a non-finite value";
        if (!(r.loss > 0) || r.learning_rate < 0 || r.grad_norm < 0 || r.tokens_per_s < 0 || r.elapsed_s < 0)
            return at + " has an out-of-range value (loss " + std::to_string(r.loss) + ", lr " +
                   std::to_string(r.learning_rate) + ", grad_norm " + std::to_string(r.grad_norm) + ")";
    }
    return {};
}

// A statement's single integer / text result over a raw connection; throws with SQLite's message.
inline std::string query_text(sqlite3* db, const std::string& sql) {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr) != SQLITE_OK)
        throw std::runtime_error(sql + ": " + sqlite3_errmsg(db));
    std::string out;
    const int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        const unsigned char* t = sqlite3_column_text(s, 0);
        out = t ? reinterpret_cast<const char*>(t) : "";
        // integrity_check returns one row per problem; collect them all
        while (sqlite3_step(s) == SQLITE_ROW) {
            const unsigned char* u = sqlite3_column_text(s, 0);
            out += std::string("\n") + (u ? reinterpret_cast<const char*>(u) : "");
        }
    } else if (rc != SQLITE_DONE) {
        const std::string msg = sqlite3_errmsg(db);
        sqlite3_finalize(s);
        throw std::runtime_error(sql + ": " + msg);
    }
    sqlite3_finalize(s);
    return out;
}

// Step rows of `run` with a NULL in any reported column (a half-written row).
inline long long null_step_fields(sqlite3* db, long long run) {
    return std::stoll(query_text(db, "SELECT COUNT(*) FROM steps WHERE run_id = " + std::to_string(run) +
                                         " AND (loss IS NULL OR learning_rate IS NULL OR grad_norm IS NULL OR "
                                         "tokens_per_s IS NULL OR elapsed_s IS NULL OR activation_bytes IS NULL)"));
}

// Writes an experiment file: tiny BERT, toy task, batch 8, sequences of 32.
inline void write_experiment(const fs::path& file, const std::string& name, const std::string& method, int train_examples,
                             int max_steps, int checkpoint_every, int eval_every) {
    std::ofstream out(file);
    out << R"({"name": ")" << name << R"(", "tags": ["reliability"],
 "backbone": {"arch": "bert", "preset": "tiny"}, "method": {"name": ")" << method << R"("},
 "task": {"name": "toy", "train_examples": )" << train_examples << R"(, "dev_examples": 50},
 "training": {"max_steps": )" << max_steps << R"(, "batch_size": 8, "max_seq_length": 32,
              "checkpoint_every": )" << checkpoint_every << R"(, "eval_every": )" << eval_every << "}}\n";
    if (!out) throw std::runtime_error("cannot write " + file.string());
}

}  // namespace meft::reliability
