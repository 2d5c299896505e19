#include "store/run_table.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>

#include "core/error.h"

namespace meft {

namespace {

std::string printf_string(const char* format, double a, double b = 0) {
    char buf[64];
    std::snprintf(buf, sizeof buf, format, a, b);
    return buf;
}

bool ends_with(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string json_string_or(const nlohmann::json& config, const char* section, const char* key, const std::string& fallback) {
    if (!config.is_object() || !config.contains(section) || !config[section].is_object()) return fallback;
    const nlohmann::json& s = config[section];
    return s.contains(key) && s[key].is_string() ? s[key].get<std::string>() : fallback;
}

std::optional<double> number_at(const nlohmann::json& j, const char* key) {
    if (!j.is_object() || !j.contains(key) || !j[key].is_number()) return std::nullopt;
    return j[key].get<double>();
}

// ---- renderers ----

std::string csv_field(const std::string& s) {
    if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
    std::string out = "\"";
    for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
    return out + "\"";
}

std::string markdown_escape(const std::string& s) {
    std::string out;
    for (char c : s) {
        if (c == '|') out += "\\|";
        else if (c == '\n') out += ' ';
        else out += c;
    }
    return out;
}

std::string latex_escape(const std::string& s) {
    static const std::vector<std::pair<std::string, std::string>> special = {
        {"\\", "\\textbackslash{}"}, {"&", "\\&"}, {"%", "\\%"}, {"$", "\\$"}, {"#", "\\#"}, {"_", "\\_"},
        {"{", "\\{"}, {"}", "\\}"}, {"~", "\\textasciitilde{}"}, {"^", "\\textasciicircum{}"},
        {"±", "$\\pm$"}, {"—", "---"}, {"·", "\\textperiodcentered{}"}, {"×", "$\\times$"}, {"\n", " "}};
    std::string out;
    for (std::size_t i = 0; i < s.size();) {
        bool replaced = false;
        for (const auto& [from, to] : special)
            if (s.compare(i, from.size(), from) == 0) {
                out += to;
                i += from.size();
                replaced = true;
                break;
            }
        if (!replaced) out += s[i++];
    }
    return out;
}

std::string render_csv(const TextTable& t) {
    std::string out;
    auto line = [&](const std::vector<std::string>& fields) {
        for (std::size_t i = 0; i < fields.size(); ++i) out += (i ? "," : "") + csv_field(fields[i]);
        out += "\n";
    };
    line(t.header);
    for (const auto& row : t.rows) {
        std::vector<std::string> fields;
        for (const TableCell& c : row) fields.push_back(c.missing ? "" : c.text);
        line(fields);
    }
    return out;
}

nlohmann::json table_json(const TextTable& t) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& row : t.rows) {
        nlohmann::json o = nlohmann::json::object();
        for (std::size_t i = 0; i < row.size() && i < t.header.size(); ++i)
            o[t.header[i]] = row[i].missing ? nlohmann::json() : nlohmann::json(row[i].text);
        out.push_back(o);
    }
    return out;
}

std::string render_markdown(const TextTable& t) {
    std::string out = "|";
    for (const std::string& h : t.header) out += " " + markdown_escape(h) + " |";
    out += "\n|";
    for (std::size_t i = 0; i < t.header.size(); ++i) out += "---|";
    out += "\n";
    for (const auto& row : t.rows) {
        out += "|";
        for (const TableCell& c : row) {
            const std::string text = c.missing ? "—" : markdown_escape(c.text);
            out += " " + (c.best && !c.missing ? "**" + text + "**" : text) + " |";
        }
        out += "\n";
    }
    return out;
}

std::string render_latex(const TextTable& t) {
    std::string out = "\\begin{tabular}{l" + std::string(t.header.empty() ? 0 : t.header.size() - 1, 'c') + "}\n\\toprule\n";
    for (std::size_t i = 0; i < t.header.size(); ++i) out += (i ? " & " : "") + latex_escape(t.header[i]);
    out += " \\\\\n\\midrule\n";
    for (const auto& row : t.rows) {
        for (std::size_t i = 0; i < row.size(); ++i) {
            const TableCell& c = row[i];
            const std::string text = c.missing ? "--" : latex_escape(c.text);
            out += (i ? " & " : "") + (c.best && !c.missing ? "\\textbf{" + text + "}" : text);
        }
        out += " \\\\\n";
    }
    return out + "\\bottomrule\n\\end{tabular}\n";
}

TableCell optional_cell(const std::optional<std::string>& v, bool best = false) {
    return v ? TableCell{*v, best, false} : TableCell{"", false, true};
}

}  // namespace

// ---- rendering ---------------------------------------------------------------------------------

TableFormat table_format(const std::string& name) {
    if (name == "csv") return TableFormat::csv;
    if (name == "json") return TableFormat::json;
    if (name == "markdown" || name == "md") return TableFormat::markdown;
    if (name == "latex" || name == "tex") return TableFormat::latex;
    throw Error("unknown table format \"" + name + "\" (expected csv, json, markdown or latex)");
}

std::string format_name(TableFormat f) {
    switch (f) {
        case TableFormat::csv: return "csv";
        case TableFormat::json: return "json";
        case TableFormat::markdown: return "markdown";
        case TableFormat::latex: return "latex";
    }
    return "markdown";
}

std::string render_table(const TextTable& table, TableFormat format) {
    switch (format) {
        case TableFormat::csv: return render_csv(table);
        case TableFormat::json: return table_json(table).dump(2) + "\n";
        case TableFormat::markdown: return render_markdown(table);
        case TableFormat::latex: return render_latex(table);
    }
    return render_markdown(table);
}

// ---- one run, one line -------------------------------------------------------------------------

std::string headline_metric_key(const std::string& task) {
    if (task == "cola") return "matthews";
    if (task == "stsb") return "pearson";
    if (task == "mrpc" || task == "qqp") return "f1";
    if (task == "mnli") return "accuracy_matched";
    return "accuracy";
}

std::optional<std::pair<std::string, double>> main_score(const nlohmann::json& config, const nlohmann::json& final_metrics) {
    const std::string task = json_string_or(config, "task", "name", "");
    if (!task.empty()) {
        const std::string key = headline_metric_key(task);
        if (auto v = number_at(final_metrics, key.c_str())) return std::pair{key, *v};
    }
    for (const char* key : {"accuracy", "accuracy_matched", "matthews", "f1", "pearson"})
        if (auto v = number_at(final_metrics, key)) return std::pair{std::string(key), *v};
    return std::nullopt;
}

RunSummary summarize_run(const RunInfo& run) {
    RunSummary s;
    s.id = run.id;
    s.experiment = run.experiment;
    s.method = json_string_or(run.config, "method", "name", "");
    s.task = json_string_or(run.config, "task", "name", "");
    s.status = run.status;
    s.tags = run.tags;
    s.notes = run.notes;
    s.created_at = run.created_at;
    s.steps = run.steps;
    if (auto score = main_score(run.config, run.final_metrics)) {
        s.score_key = score->first;
        s.score = score->second;
    }
    if (auto bytes = number_at(run.final_metrics, "activation_peak_bytes")) s.activation_mib = *bytes / (1024.0 * 1024.0);
    const auto trainable = number_at(run.final_metrics, "trainable_parameters");
    const auto all = number_at(run.final_metrics, "all_parameters");
    if (trainable && all && *all > 0) s.trainable_percent = 100.0 * *trainable / *all;
    return s;
}

// ---- runs side by side -------------------------------------------------------------------------

namespace {
void flatten_into(const nlohmann::json& j, const std::string& prefix, std::map<std::string, std::string>& out) {
    if (j.is_object()) {
        for (auto it = j.begin(); it != j.end(); ++it) flatten_into(it.value(), prefix.empty() ? it.key() : prefix + "." + it.key(), out);
    } else {
        out[prefix] = j.is_string() ? j.get<std::string>() : j.dump();
    }
}
}  // namespace

std::map<std::string, std::string> flatten_config(const nlohmann::json& config) {
    std::map<std::string, std::string> out;
    if (!config.is_null()) flatten_into(config, "", out);
    return out;
}

std::vector<DiffRow> config_rows(const std::vector<nlohmann::json>& configs, bool only_differing) {
    std::vector<std::map<std::string, std::string>> flat;
    std::set<std::string> keys;
    for (const nlohmann::json& c : configs) {
        flat.push_back(flatten_config(c));
        for (const auto& [k, v] : flat.back()) keys.insert(k);
    }
    std::vector<DiffRow> rows;
    for (const std::string& k : keys) {
        DiffRow row{k, {}, false};
        for (const auto& f : flat) {
            const auto it = f.find(k);
            row.values.push_back(it == f.end() ? std::nullopt : std::optional<std::string>(it->second));
        }
        for (const auto& v : row.values) row.differs |= v != row.values.front();
        if (row.differs || !only_differing) rows.push_back(std::move(row));
    }
    return rows;
}

std::vector<DiffRow> config_diff(const std::vector<RunInfo>& runs) {
    std::vector<nlohmann::json> configs;
    for (const RunInfo& r : runs) configs.push_back(r.config);
    return config_rows(configs, true);
}

// ---- runs that differ in the seed alone --------------------------------------------------------

std::vector<SeedGroup> seed_groups(const std::vector<nlohmann::json>& configs, const std::vector<std::string>& rows_by,
                                   const std::vector<std::string>& columns_by) {
    using Flat = std::map<std::string, std::string>;
    using Values = std::vector<std::optional<std::string>>;
    std::vector<SeedGroup> groups;
    std::vector<Flat> flat;  // per group: its config without the seed
    std::map<Flat, std::size_t> index;
    for (std::size_t i = 0; i < configs.size(); ++i) {
        Flat f = flatten_config(configs[i]);
        f.erase(kSeedKey);
        const auto [it, added] = index.emplace(f, groups.size());
        if (added) {
            groups.emplace_back();
            flat.push_back(std::move(f));
        }
        groups[it->second].members.push_back(i);
    }
    const auto value = [&](std::size_t g, const std::string& k) -> std::optional<std::string> {
        const auto it = flat[g].find(k);
        return it == flat[g].end() ? std::nullopt : std::optional<std::string>(it->second);
    };
    const auto values = [&](std::size_t g, const std::vector<std::string>& keys) {
        Values v;
        for (const std::string& k : keys) v.push_back(value(g, k));
        return v;
    };
    std::set<std::string> shown(rows_by.begin(), rows_by.end());
    shown.insert(columns_by.begin(), columns_by.end());
    // Groups in one cell (the same rows_by and columns_by values): the keys that differ among them.
    std::map<std::pair<Values, Values>, std::vector<std::size_t>> cells;
    for (std::size_t g = 0; g < groups.size(); ++g) cells[{values(g, rows_by), values(g, columns_by)}].push_back(g);
    std::vector<std::set<std::string>> differ_in_cell(groups.size());
    std::map<Values, std::set<std::string>> row_keys;  // rows_by values -> the keys differing in any of its cells
    for (const auto& [at, members] : cells) {
        std::set<std::string> keys, differing;
        for (std::size_t g : members)
            for (const auto& [k, v] : flat[g]) keys.insert(k);
        for (const std::string& k : keys) {
            if (shown.count(k)) continue;
            for (std::size_t g : members)
                if (value(g, k) != value(members.front(), k)) {
                    differing.insert(k);
                    break;
                }
        }
        row_keys[at.first].insert(differing.begin(), differing.end());
        for (std::size_t g : members) differ_in_cell[g] = differing;
    }
    for (std::size_t g = 0; g < groups.size(); ++g) {
        for (const std::string& k : row_keys[values(g, rows_by)]) {
            const auto v = value(g, k);
            // A key the group lacks is named only where it tells the group from another in its cell.
            if (v) groups[g].keys.emplace_back(k, *v);
            else if (differ_in_cell[g].count(k)) groups[g].keys.emplace_back(k, "(unset)");
        }
        for (const auto& [k, v] : groups[g].keys) groups[g].label += (groups[g].label.empty() ? "" : ", ") + k + "=" + v;
    }
    return groups;
}

MetricGoal metric_goal(const std::string& key) {
    std::string k = key;
    if (k.rfind("best_", 0) == 0) k = k.substr(5);  // best_accuracy ranks as accuracy
    if (k.find("loss") != std::string::npos || ends_with(k, "_bytes") || ends_with(k, "_mib") ||
        k == "elapsed_s" || k == "trainable_parameters" || k == "perplexity" || k == "starting_point_deviation")
        return MetricGoal::lower;
    static const std::set<std::string> higher = {"accuracy", "accuracy_matched", "accuracy_mismatched", "matthews", "f1",
                                                 "pearson", "spearman", "exact_match", "tokens_per_s"};
    if (higher.count(k) || k.rfind("accuracy", 0) == 0) return MetricGoal::higher;
    return MetricGoal::none;
}

std::optional<std::string> versus_baseline(const MetricRow& row, std::size_t run, std::size_t baseline) {
    if (run == baseline || run >= row.values.size() || baseline >= row.values.size()) return std::nullopt;
    const std::optional<double> v = row.values[run], b = row.values[baseline];
    if (!v || !b) return std::nullopt;
    if (metric_goal(row.key) == MetricGoal::higher && std::abs(*v) <= 1 && std::abs(*b) <= 1)
        return printf_string("%+.1f pt", 100 * (*v - *b));
    if (*b == 0) return std::nullopt;
    return printf_string("×%.3g", *v / *b);
}

namespace {
MetricRow metric_row(const std::string& key, const std::vector<std::map<std::string, std::string>>& text,
                     const std::vector<nlohmann::json>& metrics) {
    MetricRow row;
    row.key = key;
    for (std::size_t i = 0; i < metrics.size(); ++i) {
        const auto it = text[i].find(key);
        row.text.push_back(it == text[i].end() ? std::nullopt : std::optional<std::string>(it->second));
        // Only top-level numbers rank; a nested metric ("dev_metrics.accuracy") shows as text.
        row.values.push_back(number_at(metrics[i], key.c_str()));
    }
    row.best.assign(metrics.size(), false);
    const MetricGoal goal = metric_goal(key);
    std::vector<double> numbers;
    for (const auto& v : row.values)
        if (v && std::isfinite(*v)) numbers.push_back(*v);
    if (goal == MetricGoal::none || numbers.size() < 2) return row;
    const auto [lo, hi] = std::minmax_element(numbers.begin(), numbers.end());
    if (*lo == *hi) return row;
    const double target = goal == MetricGoal::higher ? *hi : *lo;
    for (std::size_t i = 0; i < row.values.size(); ++i) row.best[i] = row.values[i] && *row.values[i] == target;
    return row;
}
}  // namespace

Comparison compare_runs(const std::vector<RunInfo>& runs) {
    Comparison c;
    std::vector<nlohmann::json> metrics;
    std::vector<std::map<std::string, std::string>> text;
    std::set<std::string> keys;
    for (const RunInfo& r : runs) {
        c.ids.push_back(r.id);
        c.columns.push_back("run " + std::to_string(r.id));
        metrics.push_back(r.final_metrics);
        text.push_back(flatten_config(r.final_metrics));
        for (const auto& [k, v] : text.back()) keys.insert(k);
    }
    c.config = config_diff(runs);
    MetricRow status;
    status.key = "status";
    for (const RunInfo& r : runs) {
        status.text.push_back(r.status);
        status.values.push_back(std::nullopt);
        status.best.push_back(false);
    }
    c.metrics.push_back(std::move(status));
    for (const std::string& k : keys) c.metrics.push_back(metric_row(k, text, metrics));
    return c;
}

std::string format_number(double v, int digits) {
    char buf[64];
    if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 1e15) std::snprintf(buf, sizeof buf, "%.0f", v);
    else std::snprintf(buf, sizeof buf, "%.*g", digits, v);
    return buf;
}

Comparison round_metrics(Comparison c, int digits) {
    for (MetricRow& m : c.metrics)
        for (std::size_t i = 0; i < m.values.size(); ++i)
            if (m.values[i]) m.text[i] = format_number(*m.values[i], digits);
    return c;
}

TextTable config_text_table(const Comparison& c, const std::string& first_column) {
    TextTable t;
    t.header.push_back(first_column);
    t.header.insert(t.header.end(), c.columns.begin(), c.columns.end());
    for (const DiffRow& d : c.config) {
        std::vector<TableCell> row{{d.key}};
        for (const auto& v : d.values) row.push_back(optional_cell(v));
        t.rows.push_back(std::move(row));
    }
    return t;
}

TextTable metrics_text_table(const Comparison& c, bool mark_best, const std::string& first_column) {
    TextTable t;
    t.header.push_back(first_column);
    t.header.insert(t.header.end(), c.columns.begin(), c.columns.end());
    for (const MetricRow& m : c.metrics) {
        std::vector<TableCell> row{{m.key}};
        for (std::size_t i = 0; i < m.text.size(); ++i) row.push_back(optional_cell(m.text[i], mark_best && m.best[i]));
        t.rows.push_back(std::move(row));
    }
    return t;
}

std::string render_comparison(const Comparison& c, TableFormat format, bool mark_best) {
    const TextTable config = config_text_table(c), metrics = metrics_text_table(c, mark_best);
    if (format == TableFormat::markdown || format == TableFormat::latex)
        return render_table(config, format) + "\n" + render_table(metrics, format);
    if (format == TableFormat::csv) {
        TextTable all;
        all.header = {"section", "key"};
        all.header.insert(all.header.end(), c.columns.begin(), c.columns.end());
        for (const auto& [section, table] : {std::pair{"config", &config}, std::pair{"metric", &metrics}})
            for (const auto& row : table->rows) {
                std::vector<TableCell> r{{section}};
                r.insert(r.end(), row.begin(), row.end());
                all.rows.push_back(std::move(r));
            }
        return render_table(all, TableFormat::csv);
    }
    nlohmann::json out;
    out["runs"] = c.ids;
    out["config"] = table_json(config);
    out["metrics"] = table_json(metrics);
    if (mark_best) {
        nlohmann::json best = nlohmann::json::object();
        for (const MetricRow& m : c.metrics)
            for (std::size_t i = 0; i < m.best.size(); ++i)
                if (m.best[i]) best[m.key].push_back(c.columns[i]);
        out["best"] = best;
    }
    return out.dump(2) + "\n";
}

// ---- the paper-style table ---------------------------------------------------------------------

const PaperCell* PaperTable::cell(const std::string& row_label, const std::string& task) const {
    const auto m = cells.find(row_label);
    if (m == cells.end()) return nullptr;
    const auto t = m->second.find(task);
    return t == m->second.end() ? nullptr : &t->second;
}

std::optional<double> PaperTable::points_over(const std::string& row_label, const std::string& baseline_label,
                                              const std::string& task) const {
    const PaperCell* c = cell(row_label, task);
    const PaperCell* b = cell(baseline_label, task);
    if (!c || !b) return std::nullopt;
    return 100 * (c->mean - b->mean);
}

std::string paper_table_refusal(const RunInfo& r) {
    if (r.status != "finished") return r.status + ", not finished";
    const std::string key = headline_metric_key(json_string_or(r.config, "task", "name", "?"));
    if (!number_at(r.final_metrics, key.c_str())) return "has no '" + key + "' metric";
    return {};
}

std::string paper_cell_text(const PaperCell& c) {
    // One run has no spread to show: its value alone, not "± 0.0".
    return c.sd ? printf_string("%.1f ± %.1f", 100 * c.mean, 100 * *c.sd) : printf_string("%.1f", 100 * c.mean);
}

PaperTable paper_table(const std::vector<RunInfo>& runs) {
    PaperTable p;
    std::vector<double> values;
    std::vector<nlohmann::json> configs;
    for (const RunInfo& r : runs) {
        if (const std::string why = paper_table_refusal(r); !why.empty())
            throw Error("run " + std::to_string(r.id) + (r.status != "finished" ? " is " : " ") + why);
        const std::string key = headline_metric_key(json_string_or(r.config, "task", "name", "?"));
        values.push_back(*number_at(r.final_metrics, key.c_str()));
        configs.push_back(r.config);
    }
    // Rows are methods, columns tasks: the groups' labels need only tell apart what those do not.
    for (const SeedGroup& g : seed_groups(configs, {"method.name"}, {"task.name"})) {
        const RunInfo& first = runs[g.members.front()];
        const PaperRow row{json_string_or(first.config, "method", "name", "?"), g.label};
        const std::string task = json_string_or(first.config, "task", "name", "?");
        if (!p.cells.count(row.label())) p.rows.push_back(row);
        if (std::find(p.tasks.begin(), p.tasks.end(), task) == p.tasks.end()) p.tasks.push_back(task);
        PaperCell& c = p.cells[row.label()][task];
        MEFT_CHECK(c.values.empty(), "paper_table: two configurations in one cell (" + row.label() + ", " + task + ")");
        for (std::size_t i : g.members) {
            c.runs.push_back(runs[i].id);
            c.values.push_back(values[i]);
        }
    }
    std::map<std::string, double> best;  // task -> best mean
    for (auto& [label, row] : p.cells)
        for (auto& [task, c] : row) {
            for (double x : c.values) c.mean += x;
            c.mean /= double(c.values.size());
            if (c.values.size() > 1) {
                double ss = 0;
                for (double x : c.values) ss += (x - c.mean) * (x - c.mean);
                c.sd = std::sqrt(ss / double(c.values.size() - 1));
            }
            if (!best.count(task) || c.mean > best[task]) best[task] = c.mean;
        }
    for (auto& [label, row] : p.cells)
        for (auto& [task, c] : row) c.best = c.mean == best[task];
    return p;
}

std::string render_paper_table(const PaperTable& p, TableFormat format) {
    if (format == TableFormat::csv || format == TableFormat::json) {
        TextTable t{{"method", "config", "task", "metric", "runs", "mean", "std", "best"}, {}};
        nlohmann::json out = nlohmann::json::array();
        for (const PaperRow& r : p.rows)
            for (const auto& task : p.tasks)
                if (const PaperCell* c = p.cell(r.label(), task)) {
                    const TableCell sd = c->sd ? TableCell{printf_string("%.6f", *c->sd)} : TableCell{"", false, true};
                    t.rows.push_back({{r.method}, {r.config}, {task}, {headline_metric_key(task)},
                                      {std::to_string(c->values.size())}, {printf_string("%.6f", c->mean)}, sd,
                                      {c->best ? "1" : "0"}});
                    out.push_back({{"method", r.method}, {"config", r.config}, {"task", task},
                                   {"metric", headline_metric_key(task)}, {"runs", c->values.size()}, {"mean", c->mean},
                                   {"std", c->sd ? nlohmann::json(*c->sd) : nlohmann::json()}, {"best", c->best}});
                }
        return format == TableFormat::csv ? render_table(t, format) : out.dump(2) + "\n";
    }
    // markdown names each task's metric in its column; latex keeps the header short for papers.
    TextTable t;
    t.header.push_back(format == TableFormat::latex ? "Method" : "method");
    for (const auto& task : p.tasks)
        t.header.push_back(format == TableFormat::latex ? task : task + " (" + headline_metric_key(task) + ")");
    for (const PaperRow& r : p.rows) {
        std::vector<TableCell> row{{r.label()}};
        for (const auto& task : p.tasks) {
            const PaperCell* c = p.cell(r.label(), task);
            if (!c) {
                row.push_back(TableCell{"", false, true});
                continue;
            }
            row.push_back(TableCell{paper_cell_text(*c), c->best, false});
        }
        t.rows.push_back(std::move(row));
    }
    return render_table(t, format);
}

}  // namespace meft
