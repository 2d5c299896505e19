#include "data/qa.h"
#include "data/text_util.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>
#include <string_view>
#include <system_error>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace meft {

namespace {

using nlohmann::json;
namespace fs = std::filesystem;

std::string canonical_split(const QaTaskInfo& task, const std::string& split) {
    const std::string key = squash(split);
    if (key == "train") return "train";
    if (key == "dev" || key == "validation" || key == "valid" || key == "val") return "dev";
    if (key == "test") return "test";
    throw Error(task.name + " has no split '" + split + "' (expected one of " + join(task.splits) + ")");
}

// Reads a whole text file as UTF-8 (checked, or transcoded from Latin-1) before anything parses it;
// lines are split by the callers. A Git LFS pointer is an error.
std::string read_text(const fs::path& file, const TextDecoding& decoding) {
    std::ifstream in(file, std::ios::binary);
    if (!in) throw Error(file.string() + ": cannot open");
    std::ostringstream ss;
    ss << in.rdbuf();
    if (in.bad()) throw Error(file.string() + ": read error");
    std::string text = ss.str();
    const char* bom = "\xEF\xBB\xBF";
    if (decoding.encoding == TextEncoding::latin1 && text.rfind(bom, 0) == 0) text.erase(0, 3);
    text = decode_text(std::move(text), decoding, file.string());  // UTF-8: byte counts include a BOM
    if (text.rfind(bom, 0) == 0) text.erase(0, 3);
    if (text.rfind("version https://git-lfs.github.com/spec/", 0) == 0)
        throw Error(file.string() + ":1: this is a Git LFS pointer, not the data (fetch the real file with git lfs)");
    return text;
}

bool blank(std::string_view s) { return s.find_first_not_of(" \t\r") == std::string_view::npos; }

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

const char* type_name(const json& j) { return j.type_name(); }

json parse_json(std::string_view text, const std::string& where) {
    try {
        return json::parse(text.begin(), text.end());
    } catch (const json::exception& e) {  // parse_error, or out_of_range for a number like 1e999
        throw Error(where + ": invalid JSON (" + std::string(e.what()) + ")");
    }
}

const json& member(const json& obj, const char* key, const std::string& where) {
    const auto it = obj.find(key);
    if (it == obj.end()) throw Error(where + ": missing key '" + key + "'");
    return *it;
}

std::string string_member(const json& obj, const char* key, const std::string& where) {
    const json& v = member(obj, key, where);
    if (!v.is_string())
        throw Error(where + ": key '" + key + "' must be a string, got " + type_name(v) + " " + v.dump());
    return v.get<std::string>();
}

// A label or answer key written as a string ("A", "1") or, in some exports, a number.
std::string key_text(const json& v, const std::string& what, const std::string& where) {
    if (v.is_string()) return v.get<std::string>();
    if (v.is_number_integer()) return std::to_string(v.get<long long>());
    throw Error(where + ": " + what + " must be a string such as \"A\" or \"1\", got " + type_name(v) + " " + v.dump());
}

fs::path first_existing(const std::string& what, const std::vector<fs::path>& candidates) {
    std::error_code ec;
    for (const auto& p : candidates)
        if (fs::is_regular_file(p, ec)) return p;
    std::vector<std::string> names;
    for (const auto& p : candidates) names.push_back(p.string());
    throw Error(what + ": none of these files exists: " + join(names));
}

// ---- ARC-style JSON records (ARC, OpenBookQA .jsonl) -------------------------------------------------------

ChoiceExample arc_record(const json& j, bool test_split, long lineno, const std::string& where) {
    if (!j.is_object()) throw Error(where + ": expected a JSON object, got " + type_name(j));
    ChoiceExample ex;
    if (const auto it = j.find("id"); it != j.end()) ex.id = key_text(*it, "'id'", where);
    else ex.id = std::to_string(lineno);
    const json& q = member(j, "question", where);
    if (!q.is_object())
        throw Error(where + ": key 'question' must be an object {\"stem\", \"choices\"}, got " + type_name(q));
    ex.question = string_member(q, "stem", where + ": question");
    const json& choices = member(q, "choices", where + ": question");
    if (!choices.is_array()) throw Error(where + ": key 'question.choices' must be an array, got " + type_name(choices));
    if (choices.size() < 2)
        throw Error(where + ": 'question.choices' has " + std::to_string(choices.size()) +
                    " entries, expected at least 2");
    std::vector<std::string> labels;
    for (std::size_t i = 0; i < choices.size(); ++i) {
        const std::string cw = where + ": question.choices[" + std::to_string(i) + "]";
        const json& c = choices[i];
        if (!c.is_object()) throw Error(cw + ": expected an object {\"text\", \"label\"}, got " + type_name(c));
        ex.choices.push_back(string_member(c, "text", cw));
        if (const auto it = c.find("label"); it != c.end()) labels.push_back(key_text(*it, "'label'", cw));
        else labels.push_back(std::string(1, static_cast<char>('A' + i)));
    }
    const auto ak = j.find("answerKey");
    if (ak == j.end() || (ak->is_string() && ak->get<std::string>().empty()) || ak->is_null()) {
        if (!test_split) throw Error(where + ": missing key 'answerKey' (expected one of " + join(labels) + ")");
        return ex;
    }
    const std::string key = key_text(*ak, "'answerKey'", where);
    const auto it = std::find(labels.begin(), labels.end(), key);
    if (it == labels.end())
        throw Error(where + ": 'answerKey' is \"" + key + "\", expected one of the choice labels " + join(labels));
    ex.answer = static_cast<int>(it - labels.begin());
    return ex;
}

std::vector<ChoiceExample> load_arc_jsonl(const fs::path& file, bool test_split, const TextDecoding& decoding) {
    const std::string text = read_text(file, decoding);
    std::vector<ChoiceExample> out;
    const auto lines = split_lines(text);
    for (std::size_t i = 0; i < lines.size(); ++i) {
        if (blank(lines[i])) continue;
        const long lineno = static_cast<long>(i) + 1;
        const std::string where = file.string() + ":" + std::to_string(lineno);
        out.push_back(arc_record(parse_json(lines[i], where), test_split, lineno, where));
    }
    return out;
}

// ---- OpenBookQA Main TSV ------------------------------------------------------------------------------------

// "(A) text (B) text ..." -> texts and their letters. Markers must run A, B, C, ... in order; a later
// marker that repeats a letter is text (train row 12-1145 reads "(D) baby birds chewing worms (D) mother
// dogs nursing their pups", which is one choice D).
bool parse_obqa_choices(std::string_view s, std::vector<std::string>& texts, std::vector<std::string>& letters) {
    if (s.rfind("(A) ", 0) != 0 && s != "(A)") return false;
    std::size_t pos = std::min<std::size_t>(4, s.size());
    for (char next = 'B';; ++next) {
        letters.emplace_back(1, static_cast<char>(next - 1));
        const std::string marker = std::string(" (") + next + ") ";
        std::size_t m = s.find(marker, pos);
        std::size_t skip = marker.size();
        if (m == std::string_view::npos) {
            const std::string tail = std::string(" (") + next + ")";  // an empty last choice
            if (s.size() >= pos + tail.size() && s.substr(s.size() - tail.size()) == tail) {
                m = s.size() - tail.size();
                skip = tail.size();
            }
        }
        if (m == std::string_view::npos || next > 'Z') {
            texts.emplace_back(s.substr(pos));
            return true;
        }
        texts.emplace_back(s.substr(pos, m - pos));
        pos = m + skip;
    }
}

std::vector<ChoiceExample> load_obqa_tsv(const fs::path& file, bool test_split, const TextDecoding& decoding) {
    const std::string text = read_text(file, decoding);
    const std::string fname = file.string();
    const auto lines = split_lines(text);
    if (lines.empty() || blank(lines[0]))
        throw Error(fname + ":1: expected the header ID, Question Stem, Choices, Complete Question, Answer Key");
    std::vector<std::string> header;
    for (auto f : split_tabs(lines[0])) header.emplace_back(f);
    auto column = [&](const char* name) {
        const auto it = std::find(header.begin(), header.end(), name);
        if (it == header.end())
            throw Error(fname + ":1: the header has no column '" + name +
                        "' (expected ID, Question Stem, Choices, Complete Question, Answer Key; got " + join(header) +
                        ")");
        return static_cast<std::size_t>(it - header.begin());
    };
    const std::size_t c_id = column("ID"), c_stem = column("Question Stem"), c_choices = column("Choices"),
                      c_key = column("Answer Key");
    std::vector<ChoiceExample> out;
    for (std::size_t i = 1; i < lines.size(); ++i) {
        if (blank(lines[i])) continue;
        const std::string where = fname + ":" + std::to_string(i + 1);
        const auto f = split_tabs(lines[i]);
        if (f.size() != header.size())
            throw Error(where + ": expected " + std::to_string(header.size()) + " tab-separated columns (" +
                        join(header) + "), got " + std::to_string(f.size()));
        ChoiceExample ex;
        ex.id = std::string(f[c_id]);
        ex.question = std::string(f[c_stem]);
        std::vector<std::string> letters;
        if (!parse_obqa_choices(f[c_choices], ex.choices, letters) || ex.choices.size() < 2)
            throw Error(where + ": column " + std::to_string(c_choices + 1) +
                        " ('Choices'): expected \"(A) text (B) text ...\" with at least 2 choices, got '" +
                        std::string(f[c_choices]) + "'");
        const std::string key(f[c_key]);
        if (key.empty() && test_split) {
            out.push_back(std::move(ex));
            continue;
        }
        const auto it = std::find(letters.begin(), letters.end(), key);
        if (it == letters.end())
            throw Error(where + ": column " + std::to_string(c_key + 1) + " ('Answer Key'): expected one of " +
                        join(letters) + ", got '" + key + "'");
        ex.answer = static_cast<int>(it - letters.begin());
        out.push_back(std::move(ex));
    }
    return out;
}

// ---- PIQA ---------------------------------------------------------------------------------------------------

std::vector<ChoiceExample> load_piqa(const fs::path& dir, const std::string& split, const TextDecoding& decoding) {
    const std::string stem = split == "train" ? "train" : split == "dev" ? "valid" : "tests";
    const fs::path data = split == "test" ? first_existing("piqa test", {dir / "tests.jsonl", dir / "test.jsonl"})
                                          : first_existing("piqa " + split, {dir / (stem + ".jsonl")});
    const fs::path labels_file = dir / (stem + "-labels.lst");
    std::error_code ec;
    const bool have_labels = fs::is_regular_file(labels_file, ec);
    if (!have_labels && split != "test")
        throw Error(labels_file.string() + ": cannot open (PIQA " + split + " labels, one 0 or 1 per line of " +
                    data.filename().string() + ")");

    const std::string text = read_text(data, decoding);
    std::vector<ChoiceExample> out;
    std::vector<long> item_lines;
    const auto lines = split_lines(text);
    for (std::size_t i = 0; i < lines.size(); ++i) {
        if (blank(lines[i])) continue;
        const long lineno = static_cast<long>(i) + 1;
        const std::string where = data.string() + ":" + std::to_string(lineno);
        const json j = parse_json(lines[i], where);
        if (!j.is_object()) throw Error(where + ": expected a JSON object {\"goal\", \"sol1\", \"sol2\"}");
        ChoiceExample ex;
        ex.question = string_member(j, "goal", where);
        ex.choices = {string_member(j, "sol1", where), string_member(j, "sol2", where)};
        if (const auto it = j.find("id"); it != j.end()) ex.id = key_text(*it, "'id'", where);
        else ex.id = std::to_string(lineno);
        out.push_back(std::move(ex));
        item_lines.push_back(lineno);
    }
    if (!have_labels) return out;

    const std::string ltext = read_text(labels_file, decoding);
    const auto llines = split_lines(ltext);
    std::size_t n = 0;
    for (std::size_t i = 0; i < llines.size(); ++i) {
        if (blank(llines[i])) continue;
        const std::string where = labels_file.string() + ":" + std::to_string(i + 1);
        std::string_view s = llines[i];
        while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
        if (s != "0" && s != "1") throw Error(where + ": expected a label 0 or 1, got '" + std::string(llines[i]) + "'");
        if (n >= out.size())
            throw Error(where + ": more labels than items (" + data.string() + " has " + std::to_string(out.size()) +
                        ")");
        out[n++].answer = s == "1" ? 1 : 0;
    }
    if (n != out.size())
        throw Error(labels_file.string() + ": " + std::to_string(n) + " labels, but " + data.string() + " has " +
                    std::to_string(out.size()) + " items (the first without a label is on line " +
                    std::to_string(item_lines[n]) + ")");
    return out;
}

// ---- SciQ ---------------------------------------------------------------------------------------------------

ChoiceExample sciq_record(const json& j, bool test_split, std::size_t index, const std::string& where) {
    if (!j.is_object())
        throw Error(where + ": expected an object {question, distractor1..3, correct_answer, support}, got " +
                    type_name(j));
    ChoiceExample ex;
    ex.id = std::to_string(index);
    ex.question = string_member(j, "question", where);
    ex.choices = {string_member(j, "distractor1", where), string_member(j, "distractor2", where),
                  string_member(j, "distractor3", where)};
    const auto ca = j.find("correct_answer");
    if (ca == j.end() || ca->is_null()) {
        if (!test_split) throw Error(where + ": missing key 'correct_answer'");
        ex.choices.emplace_back();
    } else {
        ex.choices.push_back(string_member(j, "correct_answer", where));
        ex.answer = 3;
    }
    if (const auto s = j.find("support"); s != j.end() && !s->is_null()) ex.context = string_member(j, "support", where);
    return ex;
}

// The 1-based line on which each element of a top-level JSON array starts (the text already parsed).
std::vector<long> array_item_lines(std::string_view text) {
    std::vector<long> out;
    long line = 1;
    int depth = 0;
    bool in_string = false, escape = false, expect_item = false;
    for (char c : text) {
        if (c == '\n') ++line;
        if (in_string) {
            if (escape) escape = false;
            else if (c == '\\') escape = true;
            else if (c == '"') in_string = false;
            continue;
        }
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') continue;
        if (expect_item && c != ']') {
            out.push_back(line);
            expect_item = false;
        }
        if (c == '"') in_string = true;
        else if (c == '[' || c == '{') {
            ++depth;
            if (depth == 1 && c == '[') expect_item = true;
        } else if (c == ']' || c == '}') {
            --depth;
            expect_item = false;
        } else if (c == ',' && depth == 1) {
            expect_item = true;
        }
    }
    return out;
}

// "line L, column C" of a 1-based byte offset.
std::string line_column(std::string_view text, std::size_t byte) {
    long line = 1, col = 1;
    for (std::size_t i = 0; i + 1 < byte && i < text.size(); ++i) {
        if (text[i] == '\n') line = line + 1, col = 1;
        else ++col;
    }
    return std::to_string(line) + ":" + std::to_string(col);
}

std::vector<ChoiceExample> load_sciq(const fs::path& dir, const std::string& split, const TextDecoding& decoding) {
    const std::string stem = split == "dev" ? "valid" : split;
    std::vector<fs::path> candidates = {dir / (stem + ".json"), dir / (stem + ".jsonl")};
    if (split == "dev") candidates.insert(candidates.end(), {dir / "dev.json", dir / "dev.jsonl"});
    const fs::path file = first_existing("sciq " + split, candidates);
    const bool test_split = split == "test";
    const std::string text = read_text(file, decoding);
    std::vector<ChoiceExample> out;
    const std::size_t first = text.find_first_not_of(" \t\r\n");
    if (first != std::string::npos && text[first] == '[') {
        json j;
        try {
            j = json::parse(text);
        } catch (const json::parse_error& e) {
            throw Error(file.string() + ":" + line_column(text, e.byte) + ": invalid JSON (" + e.what() + ")");
        } catch (const json::exception& e) {  // out_of_range: a number like 1e999
            throw Error(file.string() + ": invalid JSON (" + e.what() + ")");
        }
        const std::vector<long> lines = array_item_lines(text);
        MEFT_CHECK(lines.size() == j.size(), "sciq: item line scan disagrees with the JSON parser");
        for (std::size_t i = 0; i < j.size(); ++i)
            out.push_back(sciq_record(j[i], test_split, i,
                                      file.string() + ":" + std::to_string(lines[i]) + ": item " + std::to_string(i)));
        return out;
    }
    // One object per line.
    const auto lines = split_lines(text);
    for (std::size_t i = 0; i < lines.size(); ++i) {
        if (blank(lines[i])) continue;
        const std::string where = file.string() + ":" + std::to_string(i + 1);
        out.push_back(sciq_record(parse_json(lines[i], where), test_split, out.size(), where));
    }
    if (out.empty() && first == std::string::npos) throw Error(file.string() + ": the file is empty");
    return out;
}

}  // namespace

const std::vector<QaTaskInfo>& qa_tasks() {
    static const std::vector<QaTaskInfo> tasks = {
        {"openbookqa", "OpenBookQA", 4, {"train", "dev", "test"}},
        {"arc_easy", "ARC-Easy", 0, {"train", "dev", "test"}},
        {"arc_challenge", "ARC-Challenge", 0, {"train", "dev", "test"}},
        {"piqa", "PIQA", 2, {"train", "dev", "test"}},
        {"sciq", "SciQ", 4, {"train", "dev", "test"}},
    };
    return tasks;
}

const QaTaskInfo& qa_task(const std::string& name) {
    std::string key = squash(name);
    if (key == "obqa" || key == "openbook") key = "openbookqa";
    else if (key == "arce" || key == "arceasy") key = "arc_easy";
    else if (key == "arcc" || key == "arcchallenge") key = "arc_challenge";
    for (const auto& t : qa_tasks())
        if (t.name == key) return t;
    std::vector<std::string> names;
    for (const auto& t : qa_tasks()) names.push_back(t.name);
    throw Error("unknown QA task '" + name + "' (expected one of " + join(names) + ")");
}

std::vector<ChoiceExample> load_qa(const std::string& task_name, const std::filesystem::path& dir,
                                   const std::string& split_arg, const TextDecoding& decoding) {
    const QaTaskInfo& task = qa_task(task_name);
    const std::string split = canonical_split(task, split_arg);
    const bool test_split = split == "test";
    std::error_code ec;
    if (!fs::is_directory(dir, ec))
        throw Error(task.name + ": directory " + dir.string() + " does not exist (expected the " + task.dir_name +
                    " folder)");
    if (task.name == "openbookqa") {
        const fs::path file =
            first_existing("openbookqa " + split, {dir / (split + ".tsv"), dir / "Main" / (split + ".tsv"),
                                                   dir / (split + ".jsonl"), dir / "Main" / (split + ".jsonl")});
        return file.extension() == ".tsv" ? load_obqa_tsv(file, test_split, decoding)
                                          : load_arc_jsonl(file, test_split, decoding);
    }
    if (task.name == "arc_easy" || task.name == "arc_challenge") {
        std::string cap = split;
        cap[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(cap[0])));
        return load_arc_jsonl(
            first_existing(task.name + " " + split, {dir / (split + ".jsonl"), dir / (task.dir_name + "-" + cap + ".jsonl")}),
            test_split, decoding);
    }
    if (task.name == "piqa") return load_piqa(dir, split, decoding);
    return load_sciq(dir, split, decoding);
}

std::vector<IndexedQuestion> requested_questions(const QaTaskRequest& r, bool train) {
    const std::string& name = qa_task(r.task).name;
    const std::vector<ChoiceExample> items =
        load_qa(name, r.dir, train ? "train" : r.dev_split.empty() ? "dev" : r.dev_split, r.decoding);
    const int limit = train ? r.max_train_examples : r.max_dev_examples;
    std::vector<IndexedQuestion> out;
    for (std::size_t i = 0; i < items.size(); ++i) {
        if (limit > 0 && static_cast<int>(out.size()) >= limit) break;
        if (train && items[i].answer < 0) continue;
        out.push_back({static_cast<int>(i), items[i]});
    }
    return out;
}

}  // namespace meft
