// The `meft run` line a front end copies: its overrides turn the saved file into the edited
// experiment exactly (checked by applying them), a key the edit drops is refused by name, and
// words are quoted so a shell gives meft exactly the text.
#include <gtest/gtest.h>

#include "core/error.h"
#include "store/experiment.h"
#include "store/run_command.h"
#include "test_support.h"

using namespace meft;
using nlohmann::json;

TEST(RunCommand, OverridesMakeTheFileIntoTheEdit) {
    const json base = json::parse(R"({"name": "q", "backbone": {"preset": "toy", "seed": 0},
        "method": {"name": "lora", "lora": {"r": 8}}, "training": {"learning_rate": 0.001, "batch_size": 32},
        "tags": ["a"]})");
    json edited = base;
    edited["training"]["learning_rate"] = 3e-4;              // a number
    edited["method"] = {{"name", "meft1"}, {"meft", {{"streams", "float64"}}}};  // a whole section replaced
    edited["backbone"] = {{"path", "/models/bert base"}, {"seed", 0}};  // a string with a space
    edited["name"] = "true";                                 // a string that reads as JSON
    edited["tags"] = {"a", "b"};                             // a list
    edited["notes"] = "new key";
    edited["method"] = {{"name", "lora"}, {"lora", {{"r", 16}}}};
    edited["backbone"].erase("path");
    edited["backbone"]["preset"] = "tiny";
    const std::vector<std::string> o = overrides_between(base, edited);
    json applied = base;
    apply_overrides(applied, o);
    EXPECT_EQ(applied, edited);
    EXPECT_EQ(o, (std::vector<std::string>{"backbone.preset=tiny", "method.lora.r=16", "name=\"true\"",
                                           "notes=new key", "tags=[\"a\",\"b\"]", "training.learning_rate=0.0003"}));
    EXPECT_TRUE(overrides_between(base, base).empty());
}

TEST(RunCommand, ADroppedKeyIsNamed) {
    const json base = {{"training", {{"learning_rate", 0.001}, {"seed", 3}}}};
    const json edited = {{"training", {{"learning_rate", 0.001}}}};
    const std::string msg = test::error_of([&] { overrides_between(base, edited); });
    EXPECT_NE(msg.find("leaves out training.seed"), std::string::npos) << msg;
}

TEST(RunCommand, WordsAreQuotedForTheShell) {
    EXPECT_EQ(shell_quoted("experiments/quickstart.json"), "experiments/quickstart.json");
    EXPECT_EQ(shell_quoted("my runs/it's.json"), "'my runs/it'\\''s.json'");
    EXPECT_EQ(shell_quoted(""), "''");
    EXPECT_EQ(run_command("a b.json", {"training.learning_rate=0.0003", "notes=two words"}, "runs.sqlite"),
              "meft run 'a b.json' --db runs.sqlite --set training.learning_rate=0.0003 --set 'notes=two words'");
    EXPECT_EQ(run_command("x.json", {}), "meft run x.json");
}
