#include "data/glue.h"
#include "data/text_util.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <fstream>
#include <string_view>
#include <system_error>

#include "core/error.h"

namespace meft {

namespace {

// The header names of the columns a task's loader reads.
struct ColumnNames {
    const char* text_a;
    const char* text_b;  // nullptr for single-sentence tasks
    const char* label;
    bool numeric_labels;  // the file writes class ids (0/1), not class names
};

ColumnNames column_names(const std::string& task) {
    if (task == "cola") return {"sentence", nullptr, "label", true};
    if (task == "sst2") return {"sentence", nullptr, "label", true};
    if (task == "mrpc") return {"#1 String", "#2 String", "Quality", true};
    if (task == "stsb") return {"sentence1", "sentence2", "score", false};
    if (task == "qqp") return {"question1", "question2", "is_duplicate", true};
    if (task == "mnli") return {"sentence1", "sentence2", "gold_label", false};
    if (task == "qnli") return {"question", "sentence", "label", false};
    if (task == "rte") return {"sentence1", "sentence2", "label", false};
    if (task == "wnli") return {"sentence1", "sentence2", "label", true};
    MEFT_CHECK(false, "no column names for GLUE task " + task);
    return {};
}

std::vector<std::string_view> split_tabs(std::string_view line) {
    std::vector<std::string_view> out;
    std::size_t start = 0;
    for (;;) {
        const std::size_t tab = line.find('\t', start);
        if (tab == std::string_view::npos) {
            out.push_back(line.substr(start));
            return out;
        }
        out.push_back(line.substr(start, tab - start));
        start = tab + 1;
    }
}

// "lines 3, 17, 20 (and 4 more)"
std::string line_list(const std::vector<long>& lines) {
    std::string out = lines.size() == 1 ? "line " : "lines ";
    const std::size_t shown = std::min<std::size_t>(lines.size(), 10);
    for (std::size_t i = 0; i < shown; ++i) out += (i ? ", " : "") + std::to_string(lines[i]);
    if (lines.size() > shown) out += " (and " + std::to_string(lines.size() - shown) + " more)";
    return out;
}

// Where a column sits; -1 when absent.
int find_column(const std::vector<std::string>& header, const std::string& name) {
    const auto it = std::find(header.begin(), header.end(), name);
    return it == header.end() ? -1 : static_cast<int>(it - header.begin());
}

}  // namespace

const std::vector<GlueTaskInfo>& glue_tasks() {
    static const std::vector<GlueTaskInfo> tasks = {
        {"cola", "CoLA", {"unacceptable", "acceptable"}, false, {"train", "dev", "test"}, {"matthews"}},
        {"sst2", "SST-2", {"negative", "positive"}, false, {"train", "dev", "test"}, {"accuracy"}},
        {"mrpc", "MRPC", {"not_equivalent", "equivalent"}, false, {"train", "dev", "test"}, {"f1", "accuracy"}},
        {"stsb", "STS-B", {}, true, {"train", "dev", "test"}, {"pearson", "spearman"}},
        {"qqp", "QQP", {"not_duplicate", "duplicate"}, false, {"train", "dev", "test"}, {"f1", "accuracy"}},
        {"mnli",
         "MNLI",
         {"entailment", "neutral", "contradiction"},
         false,
         {"train", "dev_matched", "dev_mismatched", "test_matched", "test_mismatched"},
         {"accuracy_matched", "accuracy_mismatched"}},
        {"qnli", "QNLI", {"entailment", "not_entailment"}, false, {"train", "dev", "test"}, {"accuracy"}},
        {"rte", "RTE", {"entailment", "not_entailment"}, false, {"train", "dev", "test"}, {"accuracy"}},
        {"wnli", "WNLI", {"not_entailment", "entailment"}, false, {"train", "dev", "test"}, {"accuracy"}},
    };
    return tasks;
}

const GlueTaskInfo& glue_task(const std::string& name) {
    std::string key = squash(name);
    if (key == "sst") key = "sst2";
    else if (key == "sts") key = "stsb";
    else if (key == "multinli") key = "mnli";
    for (const auto& t : glue_tasks())
        if (t.name == key) return t;
    std::vector<std::string> names;
    for (const auto& t : glue_tasks()) names.push_back(t.name);
    throw Error("unknown GLUE task '" + name + "' (expected one of " + join(names) + ")");
}

std::string glue_split_name(const GlueTaskInfo& task, const std::string& split) {
    std::string key = squash(split);
    if (key.rfind("validation", 0) == 0) key = "dev" + key.substr(10);
    else if (key.rfind("valid", 0) == 0) key = "dev" + key.substr(5);
    else if (key.rfind("val", 0) == 0) key = "dev" + key.substr(3);
    if (task.name == "mnli") {
        if (key == "dev" || key == "devm") key = "devmatched";
        else if (key == "devmm") key = "devmismatched";
        else if (key == "test" || key == "testm") key = "testmatched";
        else if (key == "testmm") key = "testmismatched";
    }
    for (const auto& s : task.splits)
        if (squash(s) == key) return s;
    throw Error("GLUE task " + task.name + " has no split '" + split + "' (expected one of " + join(task.splits) +
                ")");
}

std::filesystem::path glue_split_file(const GlueTaskInfo& task, const std::filesystem::path& task_dir,
                                      const std::string& split) {
    return task_dir / (glue_split_name(task, split) + ".tsv");
}

GlueSplit load_glue(const std::string& task_name, const std::filesystem::path& task_dir, const std::string& split,
                    const TextDecoding& decoding) {
    const GlueTaskInfo& task = glue_task(task_name);
    const std::string split_name = glue_split_name(task, split);
    const bool test_split = split_name.rfind("test", 0) == 0;
    const std::filesystem::path file = task_dir / (split_name + ".tsv");
    const std::string fname = file.string();
    std::error_code ec;
    if (!std::filesystem::is_directory(task_dir, ec))
        throw Error("GLUE " + task.name + ": task directory " + task_dir.string() + " does not exist (expected the " +
                    task.dir_name + " folder of the GLUE download)");
    std::ifstream in(file, std::ios::binary);
    if (!in) throw Error(fname + ": cannot open (GLUE " + task.name + " split " + split_name + ")");

    const ColumnNames names = column_names(task.name);
    GlueSplit out;

    // Column layout, fixed once the first line is read.
    bool have_layout = false;
    std::size_t ncols = 0;
    std::vector<std::string> header;  // empty for CoLA train/dev
    int col_a = -1, col_b = -1, col_label = -1, col_id = -1, col_id1 = -1, col_id2 = -1;

    std::vector<long> blank_lines, short_rows, no_label_rows, no_gold_rows;
    std::string line;
    long lineno = 0;
    while (std::getline(in, line)) {
        ++lineno;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        const std::string where = fname + ":" + std::to_string(lineno);
        const std::size_t bom = lineno == 1 && line.rfind("\xEF\xBB\xBF", 0) == 0 ? 3 : 0;
        line = decode_line(std::string_view(line).substr(bom), decoding, where, bom);
        if (line.empty()) {
            blank_lines.push_back(lineno);
            continue;
        }
        const std::vector<std::string_view> fields = split_tabs(line);

        if (!have_layout) {
            have_layout = true;
            const bool cola_headerless =
                task.name == "cola" && !(fields.size() == 2 && fields[0] == "index" && fields[1] == "sentence");
            if (cola_headerless) {
                // CoLA train/dev: source, label, original label (* or empty), sentence. No header.
                ncols = 4;
                col_label = 1;
                col_a = 3;
                // fall through: this first line is a data row
            } else {
                for (auto f : fields) header.emplace_back(f);
                ncols = header.size();
                auto require = [&](const char* col) {
                    const int c = find_column(header, col);
                    if (c < 0)
                        throw Error(where + ": the header has no column '" + col + "' (expected a GLUE " + task.name +
                                    " " + split_name + " header; got columns: " + join(header) + ")");
                    return c;
                };
                col_a = require(names.text_a);
                if (names.text_b) col_b = require(names.text_b);
                col_label = test_split ? find_column(header, names.label) : require(names.label);
                col_id = find_column(header, "index");
                if (col_id < 0) col_id = find_column(header, "id");
                if (task.name == "mrpc") col_id1 = find_column(header, "#1 ID"), col_id2 = find_column(header, "#2 ID");
                continue;
            }
        }

        if (fields.size() != ncols) {
            if (task.name == "qqp" && fields.size() < ncols) {
                short_rows.push_back(lineno);
                continue;
            }
            throw Error(where + ": expected " + std::to_string(ncols) + " tab-separated columns" +
                        (header.empty() ? std::string(" (CoLA: source, label, original label, sentence)")
                                        : " (as in the header: " + join(header) + ")") +
                        ", got " + std::to_string(fields.size()));
        }

        TextExample ex;
        ex.text_a = std::string(fields[static_cast<std::size_t>(col_a)]);
        if (col_b >= 0) ex.text_b = std::string(fields[static_cast<std::size_t>(col_b)]);
        if (col_id >= 0) ex.id = std::string(fields[static_cast<std::size_t>(col_id)]);
        else if (col_id1 >= 0 && col_id2 >= 0)
            ex.id = std::string(fields[static_cast<std::size_t>(col_id1)]) + "-" +
                    std::string(fields[static_cast<std::size_t>(col_id2)]);
        else ex.id = std::to_string(lineno);

        if (col_label >= 0) {
            const std::string_view s = fields[static_cast<std::size_t>(col_label)];
            const std::string colname = "column " + std::to_string(col_label + 1) + " ('" +
                                        (header.empty() ? std::string("label") : header[std::size_t(col_label)]) +
                                        "')";
            const std::string got = "got '" + std::string(s) + "'";
            if (test_split && s.empty()) {
                // a test file with an empty label column: unlabelled (label -1, target 0)
            } else if (task.regression) {
                double v = 0;
                const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
                if (s.empty() || r.ec != std::errc() || r.ptr != s.data() + s.size() || !std::isfinite(v))
                    throw Error(where + ": " + colname + ": expected a similarity score (a number), " + got);
                ex.target = v;
            } else if (task.name == "mnli" && s == "-") {
                no_gold_rows.push_back(lineno);
                continue;
            } else if (task.name == "qqp" && s.empty()) {
                no_label_rows.push_back(lineno);
                continue;
            } else {
                const auto it = std::find(task.label_names.begin(), task.label_names.end(), s);
                if (it != task.label_names.end()) {
                    ex.label = static_cast<int>(it - task.label_names.begin());
                } else if (names.numeric_labels) {
                    int v = -1;
                    const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
                    if (s.empty() || r.ec != std::errc() || r.ptr != s.data() + s.size() || v < 0 ||
                        v >= task.num_labels())
                        throw Error(where + ": " + colname + ": expected a class id 0.." +
                                    std::to_string(task.num_labels() - 1) + ", " + got);
                    ex.label = v;
                } else {
                    throw Error(where + ": " + colname + ": expected one of " + join(task.label_names) + ", " + got);
                }
            }
        }
        out.examples.push_back(std::move(ex));
    }
    if (in.bad()) throw Error(fname + ": read error");
    if (!have_layout)
        throw Error(fname + ": the file is empty (expected " +
                    (task.name == "cola" && !test_split ? std::string("CoLA rows") : std::string("a header line")) +
                    ")");

    if (!short_rows.empty()) {
        out.skipped_quirks += static_cast<int>(short_rows.size());
        out.warnings.push_back(fname + ": skipped " + std::to_string(short_rows.size()) +
                               " row(s) with missing fields (known QQP quirk; Hugging Face datasets "
                               "drops them too): " +
                               line_list(short_rows));
    }
    if (!no_label_rows.empty()) {
        out.skipped_quirks += static_cast<int>(no_label_rows.size());
        out.warnings.push_back(fname + ": skipped " + std::to_string(no_label_rows.size()) +
                               " row(s) with an empty is_duplicate (known QQP quirk): " + line_list(no_label_rows));
    }
    if (!no_gold_rows.empty()) {
        out.skipped_quirks += static_cast<int>(no_gold_rows.size());
        out.warnings.push_back(fname + ": skipped " + std::to_string(no_gold_rows.size()) +
                               " row(s) with gold_label '-' (no annotator consensus; GLUE and Hugging Face drop "
                               "them): " +
                               line_list(no_gold_rows));
    }
    if (!blank_lines.empty())
        out.warnings.push_back(fname + ": ignored " + std::to_string(blank_lines.size()) +
                               " blank line(s): " + line_list(blank_lines));
    return out;
}

}  // namespace meft
