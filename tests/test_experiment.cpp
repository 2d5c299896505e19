// SPDX-License-Identifier: GPL-3.0-or-later
// test_experiment.cpp — the experiment file: the shipped example parses, and every mistake a user
// can make (unknown key, wrong type, out-of-range value, broken JSON, contradictory backbone) is an
// Error that names the file and the key path.
#include "store/experiment.h"

#include <gtest/gtest.h>

#include "malformed_cases.h"
#include "test_support.h"
#include <unistd.h>

#include <fstream>
#include <regex>
#include <string>

#include "core/error.h"

namespace fs = std::filesystem;
using namespace meft;
using nlohmann::json;

namespace {

using meft::test::error_of;

// A minimal valid experiment.
json minimal() { return json{{"backbone", {{"arch", "bert"}, {"preset", "tiny"}}}}; }

std::string parse_error(const json& j) {
    return error_of([&] { parse_experiment(j, "exp.json"); });
}

bool contains(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

class ExperimentFileTest : public meft::test::TempDirTest {
protected:
    fs::path write(const std::string& name, const std::string& text) {
        const fs::path p = dir_ / name;
        std::ofstream out(p, std::ios::binary | std::ios::trunc);
        out << text;
        EXPECT_TRUE(out.good());
        return p;
    }
};

TEST(Experiment, ShippedQuickstartParses) {
    const fs::path file = fs::path(MEFT_SOURCE_DIR) / "experiments" / "quickstart.json";
    ASSERT_TRUE(fs::exists(file)) << file;
    const Experiment e = load_experiment(file);
    EXPECT_EQ(e.name, "quickstart");
    EXPECT_EQ(e.file, file);
    EXPECT_EQ(e.backbone.arch, Arch::Bert);
    EXPECT_EQ(e.backbone.preset, "toy");
    EXPECT_TRUE(e.backbone.path.empty());
    EXPECT_EQ(e.task.name, "toy");
    EXPECT_EQ(e.task.toy.num_labels, 2);
    EXPECT_EQ(e.task.toy.train_examples, 2000);
    EXPECT_EQ(e.task.toy.dev_examples, 400);
    EXPECT_EQ(e.task.toy.min_length, 8);
    EXPECT_EQ(e.task.toy.max_length, 32);
    EXPECT_DOUBLE_EQ(e.train.learning_rate, 5e-4);
    EXPECT_EQ(e.train.batch_size, 32);
    EXPECT_EQ(e.train.epochs, 2);
    EXPECT_EQ(e.train.max_seq_length, 64);
    EXPECT_DOUBLE_EQ(e.train.warmup_ratio, 0.1);
    EXPECT_DOUBLE_EQ(e.train.adamw.weight_decay, 0.01);
    EXPECT_DOUBLE_EQ(e.train.max_grad_norm, 1.0);
    EXPECT_EQ(e.train.seed, 42u);
    ASSERT_TRUE(e.dropout.has_value());
    EXPECT_DOUBLE_EQ(*e.dropout, 0.1);
    EXPECT_EQ(e.dtype, DType::F32);
    EXPECT_TRUE(e.output_dir.empty());
    EXPECT_FALSE(e.save_model);
}

TEST(Experiment, DefaultsAndEveryKey) {
    const Experiment d = parse_experiment(minimal(), "exp.json");
    EXPECT_EQ(d.name, "experiment");
    EXPECT_EQ(d.backbone.preset, "tiny");
    EXPECT_FALSE(d.dropout.has_value());
    EXPECT_EQ(d.train.batch_size, TrainConfig{}.batch_size);

    const json full = {
        {"name", "all"},
        {"backbone", {{"arch", "roberta"}, {"preset", "base"}, {"seed", 9}}},
        {"task",
         {{"name", "toy"}, {"num_labels", 3}, {"train_examples", 10}, {"dev_examples", 5}, {"min_length", 4},
          {"max_length", 9}, {"seed", 2}}},
        {"training",
         {{"learning_rate", 0.01}, {"batch_size", 8}, {"gradient_accumulation_steps", 2}, {"epochs", 4},
          {"max_steps", 7}, {"max_seq_length", 16}, {"warmup_ratio", 0.2}, {"weight_decay", 0.0},
          {"adam_beta1", 0.8}, {"adam_beta2", 0.99}, {"adam_epsilon", 1e-6}, {"max_grad_norm", 0.5}, {"seed", 3},
          {"eval_every", 5}, {"eval_batch_size", 4}, {"dropout", 0.0}, {"dtype", "float64"}, {"attention", "tiled"}}},
        {"output", {{"dir", "out"}, {"save_model", true}}},
    };
    const Experiment e = parse_experiment(full, "exp.json");
    EXPECT_EQ(e.name, "all");
    EXPECT_EQ(e.backbone.arch, Arch::Roberta);
    EXPECT_EQ(e.backbone.preset, "base");
    EXPECT_EQ(e.backbone.init_seed, 9u);
    EXPECT_EQ(e.task.toy.num_labels, 3);
    EXPECT_EQ(e.task.toy.train_examples, 10);
    EXPECT_EQ(e.task.toy.dev_examples, 5);
    EXPECT_EQ(e.task.toy.min_length, 4);
    EXPECT_EQ(e.task.toy.max_length, 9);
    EXPECT_EQ(e.task.toy.seed, 2u);
    EXPECT_DOUBLE_EQ(e.train.learning_rate, 0.01);
    EXPECT_EQ(e.train.batch_size, 8);
    EXPECT_EQ(e.train.gradient_accumulation, 2);
    EXPECT_EQ(e.train.epochs, 4);
    EXPECT_EQ(e.train.max_steps, 7);
    EXPECT_EQ(e.train.max_seq_length, 16);
    EXPECT_DOUBLE_EQ(e.train.warmup_ratio, 0.2);
    EXPECT_DOUBLE_EQ(e.train.adamw.weight_decay, 0.0);
    EXPECT_DOUBLE_EQ(e.train.adamw.beta1, 0.8);
    EXPECT_DOUBLE_EQ(e.train.adamw.beta2, 0.99);
    EXPECT_DOUBLE_EQ(e.train.adamw.eps, 1e-6);
    EXPECT_DOUBLE_EQ(e.train.max_grad_norm, 0.5);
    EXPECT_EQ(e.train.seed, 3u);
    EXPECT_EQ(e.train.eval_every, 5);
    EXPECT_EQ(e.train.eval_batch_size, 4);
    ASSERT_TRUE(e.dropout.has_value());
    EXPECT_DOUBLE_EQ(*e.dropout, 0.0);
    EXPECT_EQ(e.dtype, DType::F64);
    EXPECT_EQ(e.attention, AttentionKind::Tiled);
    EXPECT_EQ(d.attention, AttentionKind::Standard);
    EXPECT_EQ(resolved_config(e)["training"]["attention"], "tiled");
    EXPECT_EQ(resolved_config(d)["training"]["attention"], "standard");
    // How attention computes is not part of the fingerprint a checkpoint carries (like the backend).
    json resolved = resolved_config(e);
    const std::string h = config_hash(resolved);
    resolved["training"]["attention"] = "standard";
    EXPECT_EQ(config_hash(resolved), h);
    resolved["training"]["seed"] = 4;
    EXPECT_NE(config_hash(resolved), h);
    EXPECT_EQ(e.output_dir, fs::path("out"));
    EXPECT_TRUE(e.save_model);
}

TEST(Experiment, UnknownKeyNamesTheKeyPath) {
    json j = minimal();
    j["training"] = {{"lerning_rate", 0.001}};
    std::string msg = parse_error(j);
    EXPECT_TRUE(contains(msg, "exp.json")) << msg;
    EXPECT_TRUE(contains(msg, "'training.lerning_rate'")) << msg;
    EXPECT_TRUE(contains(msg, "learning_rate")) << "should list the accepted keys: " << msg;

    j = minimal();
    j["trainig"] = json::object();
    msg = parse_error(j);
    EXPECT_TRUE(contains(msg, "'trainig'")) << msg;

    j = minimal();
    j["backbone"]["presett"] = "tiny";
    msg = parse_error(j);
    EXPECT_TRUE(contains(msg, "'backbone.presett'")) << msg;

    j = minimal();
    j["output"] = {{"directory", "x"}};
    msg = parse_error(j);
    EXPECT_TRUE(contains(msg, "'output.directory'")) << msg;

    j = minimal();
    j["task"] = {{"num_label", 2}};
    msg = parse_error(j);
    EXPECT_TRUE(contains(msg, "'task.num_label'")) << msg;
}

TEST(Experiment, WrongTypeNamesKeyAndExpectedType) {
    struct Case {
        const char* section;
        const char* key;
        json value;
        const char* expected;
    };
    const Case cases[] = {
        {"training", "batch_size", "32", "integer"},
        {"training", "batch_size", 3.5, "integer"},
        {"training", "learning_rate", "fast", "number"},
        {"training", "dtype", 32, "string"},
        {"output", "save_model", "yes", "true or false"},
        {"backbone", "preset", 1, "string"},
        {"task", "num_labels", json::array({2}), "integer"},
    };
    for (const Case& c : cases) {
        json j = minimal();
        j[c.section][c.key] = c.value;
        const std::string msg = parse_error(j);
        const std::string path = std::string("'") + c.section + "." + c.key + "'";
        EXPECT_TRUE(contains(msg, path)) << msg;
        EXPECT_TRUE(contains(msg, c.expected)) << msg;
    }
    json j = minimal();
    j["name"] = 5;
    EXPECT_TRUE(contains(parse_error(j), "'name'"));
    j = minimal();
    j["training"] = json::array();
    EXPECT_TRUE(contains(parse_error(j), "'training'"));
    EXPECT_TRUE(contains(parse_error(json::array()), "exp.json"));
}

TEST(Experiment, OutOfRangeNamesTheKey) {
    struct Case {
        const char* section;
        const char* key;
        json value;
    };
    const Case cases[] = {
        {"training", "warmup_ratio", 1.5},   {"training", "batch_size", 0},
        {"training", "learning_rate", -1.0}, {"training", "dropout", 1.0},
        {"training", "adam_beta1", 1.0},     {"training", "epochs", 0},
        {"task", "num_labels", 1},           {"task", "train_examples", 0},
        {"backbone", "seed", -1},            {"training", "max_seq_length", 1},
    };
    for (const Case& c : cases) {
        json j = minimal();
        j[c.section][c.key] = c.value;
        const std::string msg = parse_error(j);
        EXPECT_TRUE(contains(msg, std::string("'") + c.section + "." + c.key + "'")) << msg;
    }
    // Choices outside the accepted set name the key too.
    json j = minimal();
    j["backbone"]["preset"] = "huge";
    EXPECT_TRUE(contains(parse_error(j), "'backbone.preset'"));
    j = minimal();
    j["backbone"]["arch"] = "gpt2";
    EXPECT_TRUE(contains(parse_error(j), "'backbone.arch'"));
    j = minimal();
    j["training"]["dtype"] = "float16";
    EXPECT_TRUE(contains(parse_error(j), "'training.dtype'"));
    j = minimal();
    j["training"]["attention"] = "flash";
    EXPECT_TRUE(contains(parse_error(j), "'training.attention'")) << parse_error(j);
    EXPECT_TRUE(contains(parse_error(j), "\"standard\" or \"tiled\"")) << parse_error(j);
    j["training"]["attention"] = "tiled";  // both backends have a tiled kernel
    j["training"]["backend"] = "cuda";
    EXPECT_EQ(parse_experiment(j, "t").attention, AttentionKind::Tiled);
    j = minimal();
    j["task"]["name"] = "sst2-typo";
    EXPECT_TRUE(contains(parse_error(j), "'task.name'"));
    // Cross-key constraints.
    j = minimal();
    j["task"]["min_length"] = 20;
    j["task"]["max_length"] = 10;
    EXPECT_TRUE(contains(parse_error(j), "'task.max_length'"));
    j = minimal();
    j["training"]["batch_size"] = 2;
    j["training"]["gradient_accumulation_steps"] = 4;
    EXPECT_TRUE(contains(parse_error(j), "'training.gradient_accumulation_steps'"));
    j = minimal();
    j["output"]["save_model"] = true;
    EXPECT_TRUE(contains(parse_error(j), "output.save_model"));
}

TEST(Experiment, TaskEncodingIsUtf8OrLatin1) {
    json j = minimal();
    j["task"] = {{"name", "rte"}, {"data_dir", "glue/RTE"}};
    const Experiment d = parse_experiment(j, "exp.json");
    EXPECT_EQ(d.task.encoding, TextEncoding::utf8);  // the default
    EXPECT_EQ(resolved_config(d)["task"]["encoding"], "utf-8");

    j["task"]["encoding"] = "latin-1";
    const Experiment l = parse_experiment(j, "exp.json");
    EXPECT_EQ(l.task.encoding, TextEncoding::latin1);
    EXPECT_EQ(resolved_config(l)["task"]["encoding"], "latin-1");  // recorded with every run
    j["task"]["name"] = "arc_easy";
    EXPECT_EQ(parse_experiment(j, "exp.json").task.encoding, TextEncoding::latin1);  // QA tasks too

    for (const json& bad : {json("latin1"), json("UTF-8"), json("cp1252"), json("")}) {
        j["task"]["encoding"] = bad;
        EXPECT_EQ(parse_error(j), "exp.json: 'task.encoding' must be \"utf-8\" or \"latin-1\", found " + bad.dump());
    }
    j["task"]["encoding"] = 1;
    EXPECT_EQ(parse_error(j), "exp.json: 'task.encoding' must be a string, found 1");
    // The toy task reads no files: the key is unknown there.
    j = minimal();
    j["task"] = {{"name", "toy"}, {"encoding", "latin-1"}};
    EXPECT_TRUE(contains(parse_error(j), "'task.encoding' is not a known key")) << parse_error(j);
}

TEST(Experiment, BackboneNeedsExactlyOneOfPresetAndPath) {
    json j = minimal();
    j["backbone"]["path"] = "models/bert";
    std::string msg = parse_error(j);
    EXPECT_TRUE(contains(msg, "backbone")) << msg;
    EXPECT_TRUE(contains(msg, "preset")) << msg;
    EXPECT_TRUE(contains(msg, "path")) << msg;

    j = json{{"backbone", {{"arch", "bert"}}}};
    msg = parse_error(j);
    EXPECT_TRUE(contains(msg, "backbone")) << msg;

    msg = parse_error(json::object());  // no backbone at all
    EXPECT_TRUE(contains(msg, "backbone")) << msg;
}

TEST_F(ExperimentFileTest, InvalidJsonReportsFileLineAndColumn) {
    const fs::path p = write("broken.json",
                             "{\n"
                             "  \"name\": \"broken\",\n"
                             "  \"backbone\": {\"preset\": \"tiny\",, \"arch\": \"bert\"}\n"
                             "}\n");
    const std::string msg = error_of([&] { load_experiment(p); });
    const std::regex where(std::regex_replace(p.string(), std::regex(R"([.^$|()\[\]{}*+?\\])"), R"(\$&)") +
                           ":3:([0-9]+):");
    std::smatch m;
    ASSERT_TRUE(std::regex_search(msg, m, where)) << msg;
    // The second comma is at column 33 of line 3; the reported column points at or just after it.
    const int col = std::stoi(m[1]);
    EXPECT_GE(col, 33) << msg;
    EXPECT_LE(col, 35) << msg;
    EXPECT_TRUE(contains(msg, "JSON")) << msg;
}

TEST_F(ExperimentFileTest, LoadErrorsNameTheFile) {
    const fs::path missing = dir_ / "nope.json";
    std::string msg = error_of([&] { load_experiment(missing); });
    EXPECT_TRUE(contains(msg, missing.string())) << msg;

    const fs::path p = write("typo.json", R"({"backbone": {"preset": "tiny"}, "training": {"lerning_rate": 0.1}})");
    msg = error_of([&] { load_experiment(p); });
    EXPECT_TRUE(contains(msg, p.string())) << msg;
    EXPECT_TRUE(contains(msg, "'training.lerning_rate'")) << msg;

    const fs::path empty = write("empty.json", "");
    msg = error_of([&] { load_experiment(empty); });
    EXPECT_TRUE(contains(msg, empty.string())) << msg;
}

TEST_F(ExperimentFileTest, RelativeBackbonePathResolvesAgainstTheFile) {
    fs::create_directories(dir_ / "models/r");
    write("models/r/config.json", "{}");  // only its presence is checked before the run
    const fs::path p = write("rel.json", R"({"backbone": {"arch": "roberta", "path": "models/r"}})");
    const Experiment e = load_experiment(p);
    EXPECT_EQ(e.backbone.arch, Arch::Roberta);
    EXPECT_TRUE(e.backbone.preset.empty());
    EXPECT_EQ(e.backbone.path, dir_ / "models/r");

    const fs::path q = write("abs.json", R"({"backbone": {"path": ")" + (dir_ / "models/r").string() + R"("}})");
    EXPECT_EQ(load_experiment(q).backbone.path, dir_ / "models/r");
}

}  // namespace

namespace {

TEST(ExperimentSweeps, ListsExpandIntoTheGridInKeyOrder) {
    const nlohmann::json j = {{"backbone", {{"preset", "tiny"}}},
                              {"tags", {"a", "b"}},
                              {"method", {{"name", {"lora", "ia3"}}, {"lora", {{"targets", {"query", "value"}}}}}},
                              {"training", {{"learning_rate", {0.1, 0.2, 0.3}}, {"seed", 7}}}};
    const auto points = meft::expand_sweeps(j);
    ASSERT_EQ(points.size(), 6u);
    EXPECT_EQ(points[0].label, "method.name=lora, training.learning_rate=0.1");
    EXPECT_EQ(points[5].label, "method.name=ia3, training.learning_rate=0.3");
    for (const auto& p : points) {
        EXPECT_TRUE(p.config["tags"].is_array());                      // lists by nature stay lists
        EXPECT_TRUE(p.config["method"]["lora"]["targets"].is_array());
        EXPECT_TRUE(p.config["training"]["learning_rate"].is_number());
        EXPECT_NO_THROW(meft::parse_experiment(p.config, "sweep"));
    }
    const nlohmann::json none = {{"backbone", {{"preset", "tiny"}}}};
    ASSERT_EQ(meft::expand_sweeps(none).size(), 1u);
    EXPECT_EQ(meft::expand_sweeps(none)[0].label, "");
    const nlohmann::json empty = {{"training", {{"seed", nlohmann::json::array()}}}};
    EXPECT_THROW(meft::expand_sweeps(empty), meft::Error);
}

// Found by fuzzing the experiment parser: a 400-byte file of seven 10-value lists is a grid of
// 10^7 runs, which expand_sweeps built (minutes, gigabytes) before anything was checked.
TEST(ExperimentSweeps, HugeGridIsRefusedBeforeExpanding) {
    nlohmann::json eleven = nlohmann::json::array();
    for (int i = 1; i <= 11; ++i) eleven.push_back(i);
    nlohmann::json j = {{"backbone", {{"preset", "tiny"}}},
                        {"training", {{"seed", eleven}, {"batch_size", eleven}, {"epochs", eleven}, {"max_steps", eleven}}}};
    const std::string msg = meft::test::error_of([&] { meft::expand_sweeps(j); });  // 14,641 runs
    EXPECT_NE(msg.find("more than 4096 runs"), std::string::npos) << msg;
    EXPECT_NE(msg.find("'training.seed'"), std::string::npos) << msg;  // the axis that crosses the limit (keys sort)
    j["training"].erase("seed");
    EXPECT_EQ(meft::expand_sweeps(j).size(), 1331u);  // a large grid below the limit still expands
}

TEST(ExperimentSweeps, EveryExpansionIsValidatedBeforeAnyRuns) {
    const auto dir = std::filesystem::temp_directory_path() / ("meft_sweep_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    {
        std::ofstream(dir / "s.json") << R"({"backbone": {"preset": "tiny"}, "training": {"batch_size": [8, 0]}})";
    }
    const std::string msg = meft::test::error_of([&] { meft::load_experiments(dir / "s.json"); });
    EXPECT_NE(msg.find("training.batch_size=0"), std::string::npos) << msg;   // names the expansion
    EXPECT_NE(msg.find("training.batch_size"), std::string::npos) << msg;
    std::filesystem::remove_all(dir);
}

}  // namespace

namespace {

// Malformed experiment files: each is a meft::Error naming the file — never another exception,
// never a crash (no run row can exist: meft run loads every expansion before opening a run).
TEST(ExperimentFiles, MalformedFilesAreClearErrors) {
    const std::vector<std::string> cases = meft::test::malformed_experiment_texts();
    const auto dir = std::filesystem::temp_directory_path() / ("meft_bad_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    int i = 0;
    for (const std::string& text : cases) {
        const auto file = dir / ("bad" + std::to_string(i++) + ".json");
        {
            std::ofstream out(file, std::ios::binary);
            out << text;
        }
        try {
            meft::load_experiments(file);
            ADD_FAILURE() << "accepted: " << text;
        } catch (const meft::Error& e) {
            EXPECT_NE(std::string(e.what()).find(file.filename().string()), std::string::npos)
                << "the message does not name the file: " << e.what();
        } catch (const std::exception& e) {
            ADD_FAILURE() << "not a meft::Error for " << text << ": " << e.what();
        }
    }
    EXPECT_GE(i, 15);
    std::filesystem::remove_all(dir);
}

}  // namespace

// Save as… into another folder: relative folders are rewritten to name the same places from there
// (one by one in a sweep); absolute ones and every other key stay as they were.
TEST(Experiment, RebasedPathsNameTheSameFolders) {
    namespace fs = std::filesystem;
    const nlohmann::json j = {{"name", "x"},
                              {"backbone", {{"path", "models/bert"}, {"tokenizer", "../tok"}}},
                              {"task", {{"name", "sst2"}, {"data_dir", nlohmann::json::array({"../data/SST-2", "/abs/glue"})}}},
                              {"output", {{"dir", "out"}}}};
    const fs::path from = "/root/a/exp.json", to = "/root/b/c/new.json";
    const nlohmann::json r = rebase_paths(j, from, to);
    EXPECT_EQ(r["backbone"]["path"], "../../a/models/bert");
    EXPECT_EQ(r["backbone"]["tokenizer"], "../../tok");
    EXPECT_EQ(r["task"]["data_dir"], nlohmann::json::array({"../../data/SST-2", "/abs/glue"}));
    EXPECT_EQ(r["output"], j["output"]);  // output.dir is the working directory's, not the file's
    EXPECT_EQ(r["name"], "x");
    for (const auto& [old_rel, new_rel] : {std::pair{"models/bert", "../../a/models/bert"}, {"../tok", "../../tok"}})
        EXPECT_EQ((from.parent_path() / old_rel).lexically_normal(), (to.parent_path() / new_rel).lexically_normal());
    EXPECT_EQ(rebase_paths(j, from, "/root/a/same-folder.json"), j);
}
