// run_table.h — runs as tables: one line per run, runs side by side, the paper-style export.
//
// What `meft runs compare|export` prints and what the workbench's runs browser and compare view
// show and export. Everything that turns runs into numbers and marks lives here (flattening a
// config, which keys differ, which value is best, mean ± std over seeds); the front ends only lay
// out the cells. Text tables render as csv, json, markdown or latex (docs/database.md).
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "store/database.h"

namespace meft {

// ---- rendering ---------------------------------------------------------------------------------

enum class TableFormat { csv, json, markdown, latex };
TableFormat table_format(const std::string& name);  // "csv" | "json" | "markdown" | "latex", else Error
std::string format_name(TableFormat f);

struct TableCell {
    std::string text;
    bool best = false;     // shown bold (markdown **x**, latex \textbf{x}; a "*" suffix nowhere else)
    bool missing = false;  // no value: "—" in markdown, "--" in latex, empty in csv, null in json
};

// A header row and body rows of plain text; every row has header.size() cells.
struct TextTable {
    std::vector<std::string> header;
    std::vector<std::vector<TableCell>> rows;
};

// csv: RFC 4180 quoting; json: an array of objects keyed by the header; markdown: a pipe table
// (| escaped); latex: a booktabs tabular, first column left-aligned, special characters escaped
// and ± as $\pm$. Every format ends with a newline.
std::string render_table(const TextTable& table, TableFormat format);

// ---- one run, one line -------------------------------------------------------------------------

// The task's headline dev metric, as papers report it: CoLA Matthews, STS-B Pearson, MRPC/QQP F1,
// MNLI matched accuracy, else accuracy.
std::string headline_metric_key(const std::string& task);

// What a runs table shows for one run; values the run does not have are nullopt.
struct RunSummary {
    std::int64_t id = 0;
    std::string experiment, method, task, status, tags, notes, created_at;
    int steps = 0;
    std::string score_key;                  // the headline metric's name (see main_score)
    std::optional<double> score;            // its value
    std::optional<double> activation_mib;   // final_metrics.activation_peak_bytes in MiB
    std::optional<double> trainable_percent;  // 100 * trainable_parameters / all_parameters
};
RunSummary summarize_run(const RunInfo& run);

// The run's main score: the task's headline metric when the run has it, else the first of
// accuracy, accuracy_matched, matthews, f1, pearson that it has; nullopt when none.
std::optional<std::pair<std::string, double>> main_score(const nlohmann::json& config,
                                                         const nlohmann::json& final_metrics);

// ---- runs side by side -------------------------------------------------------------------------

// {"a": {"b": 1}, "c": "x"} -> {"a.b": "1", "c": "x"}: strings as they are, other leaves (numbers,
// booleans, arrays, null) as JSON text; an empty object has no keys, nor has a null config.
std::map<std::string, std::string> flatten_config(const nlohmann::json& config);

// One config key across runs; values[i] is run i's value (nullopt: the run lacks the key).
struct DiffRow {
    std::string key;
    std::vector<std::optional<std::string>> values;
    bool differs = false;  // not every run has the same value (a missing key counts as a value)
};
// Every key of any run, sorted; with only_differing, just the rows that differ.
std::vector<DiffRow> config_rows(const std::vector<nlohmann::json>& configs, bool only_differing);
// The keys whose values differ across the runs, sorted.
std::vector<DiffRow> config_diff(const std::vector<RunInfo>& runs);

// Whether a bigger value of a final metric is better (scores, throughput), a smaller one (losses,
// bytes, time, trainable parameters), or neither (steps, counts).
enum class MetricGoal { higher, lower, none };
MetricGoal metric_goal(const std::string& key);

// One final metric across runs.
struct MetricRow {
    std::string key;
    std::vector<std::optional<std::string>> text;  // as flattened (see flatten_config)
    std::vector<std::optional<double>> values;     // the numeric ones
    std::vector<bool> best;  // the best value(s) by metric_goal; none when the goal is none, fewer
                             // than two runs have a number, or all numbers are equal
};

// Runs side by side: the config keys that differ, then "status" and every final metric.
struct Comparison {
    std::vector<std::int64_t> ids;
    std::vector<std::string> columns;  // "run 12"
    std::vector<DiffRow> config;       // only the keys that differ
    std::vector<MetricRow> metrics;    // "status" first (text only), then the metrics, sorted
};
Comparison compare_runs(const std::vector<RunInfo>& runs);

// The same comparison with every numeric metric shown to `digits` significant digits (integers
// stay whole: 0.41100000000000003 -> "0.411", 104857600 -> "104857600"); for people, not diffs.
Comparison round_metrics(Comparison c, int digits = 6);
std::string format_number(double v, int digits = 6);

// The comparison's two tables; first_column names the key column. mark_best sets TableCell::best.
TextTable config_text_table(const Comparison& c, const std::string& first_column = "config (differing keys)");
TextTable metrics_text_table(const Comparison& c, bool mark_best, const std::string& first_column = "metric");

// Both tables in one document. markdown/latex: the config table, a blank line, the metrics table
// (markdown without marks is what `meft runs compare` prints); csv: one table with a leading
// "section" column (config | metric); json: {"runs": [...], "config": [...], "metrics": [...]}.
std::string render_comparison(const Comparison& c, TableFormat format, bool mark_best);

// ---- the paper-style table ---------------------------------------------------------------------

// Methods x tasks: each task's headline metric as mean ± sample std over the runs (seeds) of each
// (method, task); the best mean per task is marked.
struct PaperCell {
    std::vector<double> values;  // one per run
    double mean = 0, sd = 0;     // sd = 0 for a single run
    bool best = false;
};
struct PaperTable {
    std::vector<std::string> methods, tasks;  // in the order the runs first name them
    std::map<std::string, std::map<std::string, PaperCell>> cells;  // method -> task -> cell
    const PaperCell* cell(const std::string& method, const std::string& task) const;
};
// Every run must be finished and have its task's headline metric, else Error naming the run.
PaperTable paper_table(const std::vector<RunInfo>& runs);

// csv: method,task,metric,runs,mean,std,best (one line per cell, raw fractions); json: the same as
// objects; markdown/latex: one row per method, one column per task, percent "mean ± std", best bold.
std::string render_paper_table(const PaperTable& table, TableFormat format);

}  // namespace meft
