// docs/experiment.schema.json against the parser: both accept the same keys in every section,
// every shipped experiment file validates against the schema, and values the parser rejects for
// their type or range the schema rejects too. The validator below covers the subset of JSON
// Schema (2020-12) the file uses: type, properties, additionalProperties, enum, minimum, maximum,
// minItems, minLength, pattern, items, anyOf.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <set>

#include "core/error.h"
#include "peft/method_knobs.h"
#include "store/experiment.h"
#include "test_support.h"

using namespace meft;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const fs::path kSource = MEFT_SOURCE_DIR;

json read_json(const fs::path& p) {
    std::ifstream in(p);
    return json::parse(in);
}

// Returns "" when `v` satisfies `s`, else the first violation with its path.
std::string violation(const json& s, const json& v, const std::string& path) {
    if (s.contains("anyOf")) {
        std::string first;
        for (const json& alt : s["anyOf"]) {
            const std::string w = violation(alt, v, path);
            if (w.empty()) return "";
            if (first.empty()) first = w;
        }
        return first;
    }
    if (s.contains("type")) {
        const std::string t = s["type"];
        const bool ok = (t == "object" && v.is_object()) || (t == "array" && v.is_array()) ||
                        (t == "string" && v.is_string()) || (t == "boolean" && v.is_boolean()) ||
                        (t == "integer" && v.is_number_integer()) || (t == "number" && v.is_number());
        if (!ok) return path + ": expected " + t + ", found " + v.dump();
    }
    if (s.contains("enum") && std::find(s["enum"].begin(), s["enum"].end(), v) == s["enum"].end())
        return path + ": " + v.dump() + " is not one of " + s["enum"].dump();
    if (v.is_number()) {
        if (s.contains("minimum") && v.get<double>() < s["minimum"].get<double>()) return path + ": below minimum";
        if (s.contains("maximum") && v.get<double>() > s["maximum"].get<double>()) return path + ": above maximum";
    }
    if (v.is_string()) {
        const std::string x = v;
        if (s.contains("minLength") && x.size() < s["minLength"].get<std::size_t>()) return path + ": too short";
        if (s.contains("pattern") && !std::regex_search(x, std::regex(s["pattern"].get<std::string>())))
            return path + ": does not match " + s["pattern"].get<std::string>();
    }
    if (v.is_array()) {
        if (s.contains("minItems") && v.size() < s["minItems"].get<std::size_t>()) return path + ": too few items";
        if (s.contains("items"))
            for (std::size_t i = 0; i < v.size(); ++i) {
                const std::string w = violation(s["items"], v[i], path + "[" + std::to_string(i) + "]");
                if (!w.empty()) return w;
            }
    }
    if (v.is_object()) {
        const json props = s.value("properties", json::object());
        for (auto it = v.begin(); it != v.end(); ++it) {
            const std::string p = path.empty() ? it.key() : path + "." + it.key();
            if (!props.contains(it.key())) {
                if (s.value("additionalProperties", true) == false) return p + ": not allowed";
                continue;
            }
            const std::string w = violation(props[it.key()], it.value(), p);
            if (!w.empty()) return w;
        }
    }
    return "";
}

const json& schema() {
    static const json s = read_json(kSource / "docs/experiment.schema.json");
    return s;
}

// The keys the parser accepts in a section, read from its "unknown key" message.
std::set<std::string> parser_keys(json experiment, const std::string& section) {
    json::json_pointer ptr("/" + std::regex_replace(section, std::regex("\\."), "/"));
    if (section.empty()) experiment["zz_unknown"] = 1;
    else experiment[ptr]["zz_unknown"] = 1;
    const std::string msg = test::error_of([&] { parse_experiment(experiment, "t"); });
    const auto open = msg.find("expected one of: ");
    EXPECT_NE(open, std::string::npos) << msg;
    std::set<std::string> keys;
    std::stringstream list(msg.substr(open + 17, msg.rfind(')') - open - 17));
    for (std::string k; std::getline(list, k, ',');) keys.insert(k.substr(k.find_first_not_of(' ')));
    return keys;
}

std::set<std::string> schema_keys(const std::string& section) {
    const json* s = &schema();
    std::stringstream parts(section);
    for (std::string p; std::getline(parts, p, '.');) s = &(*s)["properties"][p];
    std::set<std::string> keys;
    for (auto it = (*s)["properties"].begin(); it != (*s)["properties"].end(); ++it) keys.insert(it.key());
    return keys;
}

}  // namespace

TEST(ExperimentSchema, SectionsHaveTheParsersKeys) {
    const json toy = {{"backbone", {{"preset", "tiny"}}}};
    const json meft = {{"backbone", {{"preset", "tiny"}}}, {"method", {{"name", "meft1"}, {"meft", json::object()}}}};
    const json prefix = {{"backbone", {{"preset", "tiny"}}}, {"method", {{"name", "prefix"}, {"prefix", json::object()}}}};
    const json lora = {{"backbone", {{"preset", "tiny"}}}, {"method", {{"name", "lora"}, {"lora", json::object()},
                                                                      {"adapter", json::object()}}}};
    for (const char* section : {"", "backbone", "training", "training.early_stopping", "output"})
        EXPECT_EQ(parser_keys(toy, section), schema_keys(section)) << "section '" << section << "'";
    EXPECT_EQ(parser_keys(lora, "method"), schema_keys("method"));
    EXPECT_EQ(parser_keys(lora, "method.lora"), schema_keys("method.lora"));
    EXPECT_EQ(parser_keys(lora, "method.adapter"), schema_keys("method.adapter"));
    EXPECT_EQ(parser_keys(meft, "method.meft"), schema_keys("method.meft"));
    EXPECT_EQ(parser_keys(prefix, "method.prefix"), schema_keys("method.prefix"));
    // task: the toy task's keys, a GLUE task's and mlm's together.
    json glue = toy;
    glue["task"] = {{"name", "rte"}, {"data_dir", "x"}};
    json mlm = toy;
    mlm["task"] = {{"name", "mlm"}, {"text", {"corpus.txt"}}};
    std::set<std::string> task = parser_keys(toy, "task");
    task.merge(parser_keys(glue, "task"));
    task.merge(parser_keys(mlm, "task"));
    EXPECT_EQ(task, schema_keys("task"));
}

TEST(ExperimentSchema, MethodSectionIsTheKnobTables) {
    // The method section is generated from the engine's one knob table, which the parser reads too.
    EXPECT_EQ(schema()["properties"]["method"], json::parse(method_schema().dump()))
        << "docs/experiment.schema.json is behind the knob table (engine/peft/method_knobs.cpp): run "
           "`meft schema --update docs/experiment.schema.json`";
}

TEST(ExperimentSchema, ShippedExperimentsValidate) {
    int n = 0;
    for (const auto& entry : fs::recursive_directory_iterator(kSource / "experiments")) {
        if (entry.path().extension() != ".json") continue;
        EXPECT_EQ(violation(schema(), read_json(entry.path()), ""), "") << entry.path();
        ++n;
    }
    EXPECT_GE(n, 14);  // quickstart, the toy examples and the ten paper recipes
}

TEST(ExperimentSchema, RejectsWhatTheParserRejects) {
    const json base = {{"backbone", {{"preset", "tiny"}}}};
    const std::vector<std::pair<std::string, json>> bad = {
        {"/training/learning_rate", "0.1"},      {"/training/learning_rate", -1},
        {"/training/batch_size", 0},             {"/training/batch_size", 2.5},
        {"/training/dtype", "float16"},          {"/training/backend", "gpu"},
        {"/training/lerning_rate", 1},           {"/backbone/arch", "gpt2"},
        {"/method/name", "lorra"},               {"/method/lora/targets", json::array({"querry"})},
        {"/method/meft/streams", "float32"},     {"/task/num_labels", 1},
        {"/training/seed", json::array()},       {"/tags", json::array({"a,b"})},
        {"/output/save_model", "yes"},
    };
    for (const auto& [where, value] : bad) {
        json j = base;
        j[json::json_pointer(where)] = value;
        if (where.rfind("/method/", 0) == 0 && !j["method"].contains("name")) j["method"]["name"] = "meft1";
        EXPECT_NE(violation(schema(), j, ""), "") << where << " = " << value.dump() << " passed the schema";
        EXPECT_THROW(
            {
                for (const SweepPoint& p : expand_sweeps(j)) parse_experiment(p.config, "t");
            },
            Error)
            << where << " = " << value.dump() << " passed the parser";
    }
    EXPECT_EQ(violation(schema(), base, ""), "");

    // task.encoding belongs to the file-reading tasks: both accept its two values and reject others.
    json glue = base;
    glue["task"] = {{"name", "rte"}, {"data_dir", "x"}, {"encoding", "latin1"}};
    EXPECT_NE(violation(schema(), glue, ""), "");
    EXPECT_THROW(parse_experiment(glue, "t"), Error);
    for (const char* ok : {"utf-8", "latin-1"}) {
        glue["task"]["encoding"] = ok;
        EXPECT_EQ(violation(schema(), glue, ""), "") << ok;
        EXPECT_NO_THROW(parse_experiment(glue, "t")) << ok;
    }
}
