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

// ---- runs that differ in the seed alone --------------------------------------------------------

// The one key whose runs pool into mean ± std: a configuration's repetitions.
inline constexpr const char* kSeedKey = "training.seed";

// Runs whose resolved configs are equal once training.seed is removed: one configuration, its seeds.
struct SeedGroup {
    std::vector<std::size_t> members;  // indices into the configs given, in their order
    // The keys that tell this group from the others (see seed_groups) with this group's values, by
    // key; "(unset)" for a key the group lacks where that is what tells it apart.
    std::vector<std::pair<std::string, std::string>> keys;
    std::string label;  // "method.lora.r=16, training.learning_rate=0.001"; "" when no key differs
};

// Groups configs (flattened as flatten_config does) that differ in training.seed alone, in the
// order their first run comes, and labels them with the keys whose values differ between groups
// (a missing key counts as a value). Without `rows_by` and `columns_by` (a list of configurations,
// as `meft run` prints after a sweep) that is every key whose value is not the same in all groups.
// A table whose rows and columns already show some keys (the paper table: method.name and
// task.name) names them here: they are never in a label, only groups that agree on all of them
// are compared, and the keys found differing are shared by every group with the same `rows_by`
// values, so that one row's cells line up across the columns. Two groups that agree on `rows_by`
// and `columns_by` always have different labels.
std::vector<SeedGroup> seed_groups(const std::vector<nlohmann::json>& configs,
                                   const std::vector<std::string>& rows_by = {},
                                   const std::vector<std::string>& columns_by = {});

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

// A run's value of one final metric against a pinned baseline run's, for people: scores (a metric
// whose goal is higher, both values within [-1, 1]) as a difference in percentage points
// ("+1.2 pt"), other numbers as a ratio ("×0.42"; none when the baseline is 0); nullopt where either
// value is missing or the run is the baseline itself.
std::optional<std::string> versus_baseline(const MetricRow& row, std::size_t run, std::size_t baseline);

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

// Configurations x tasks: each task's headline metric as mean ± sample std over the runs of one
// configuration — runs whose resolved configs differ in training.seed alone (seed_groups). Runs
// that differ in anything else are separate rows: one per method, and where a method's runs of
// one task differ in other keys (learning rate, LoRA rank, ...), one per value, the differing keys
// in the row's label. The best mean per task is marked.
struct PaperCell {
    std::vector<std::int64_t> runs;  // the runs pooled, one per seed
    std::vector<double> values;      // their headline metric
    double mean = 0;
    std::optional<double> sd;        // sample std; none for a single run (shown as the value alone)
    bool best = false;
};
struct PaperRow {
    std::string method;
    std::string config;  // what tells the row from the method's others: "training.learning_rate=0.001"; "" when nothing
    std::string label() const { return config.empty() ? method : method + " (" + config + ")"; }
};
struct PaperTable {
    std::vector<PaperRow> rows;      // in the order the runs first name them
    std::vector<std::string> tasks;  // likewise
    std::map<std::string, std::map<std::string, PaperCell>> cells;  // row label -> task -> cell
    const PaperCell* cell(const std::string& row_label, const std::string& task) const;
    // A row's mean minus the baseline row's on one task, in percentage points; none when either
    // row lacks the task.
    std::optional<double> points_over(const std::string& row_label, const std::string& baseline_label,
                                      const std::string& task) const;
};
// Every run must be finished and have its task's headline metric, else Error naming the run.
PaperTable paper_table(const std::vector<RunInfo>& runs);
// Why a run cannot be in a paper table ("failed, not finished", "has no 'matthews' metric"); ""
// when it can. A front end that offers whatever runs are listed leaves those out, saying why.
std::string paper_table_refusal(const RunInfo& run);
// A cell as the markdown and latex tables show it: percent "mean ± std", a single run's value alone.
std::string paper_cell_text(const PaperCell& cell);

// csv: method,config,task,metric,runs,mean,std,best (one line per cell, raw fractions; std empty for
// a single run); json: the same as objects (std null for a single run); markdown/latex: one row per
// configuration (its label), one column per task, percent "mean ± std" (a single run's value alone),
// best bold.
std::string render_paper_table(const PaperTable& table, TableFormat format);

}  // namespace meft
