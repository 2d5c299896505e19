// Model discovery: folders under search paths and Hugging Face hub-cache snapshots are found when
// they hold a config.json of a supported model_type and weights; everything else is skipped.
#include <gtest/gtest.h>

#include <fstream>

#include "store/model_discovery.h"
#include "test_support.h"

using namespace meft;
namespace fs = std::filesystem;

namespace {
class Discovery : public test::TempDirTest {
protected:
    void model(const fs::path& dir, const std::string& type, bool weights = true, const std::string& weights_name = "model.safetensors") {
        fs::create_directories(dir);
        std::ofstream(dir / "config.json") << R"({"model_type": ")" << type << R"(", "num_hidden_layers": 2, "hidden_size": 64})";
        if (weights) std::ofstream(dir / weights_name) << "x";
    }
};
}  // namespace

TEST_F(Discovery, FindsSearchPathAndHubCacheModels) {
    model(dir_ / "models/bert-tiny", "bert");
    model(dir_ / "models/org/roberta-small", "roberta", true, "model.safetensors.index.json");
    model(dir_ / "models/gpt2", "gpt2");                  // unsupported architecture
    model(dir_ / "models/no-weights", "bert", false);    // config only
    fs::create_directories(dir_ / "models/empty");
    std::ofstream(dir_ / "models/broken.json") << "{";
    fs::create_directories(dir_ / "models/bad");
    std::ofstream(dir_ / "models/bad/config.json") << "{not json";
    std::ofstream(dir_ / "models/bad/model.safetensors") << "x";
    model(dir_ / "hub/models--google--bert_uncased_L-2_H-128/snapshots/0123456789abcdef", "bert");
    fs::create_directories(dir_ / "hub/datasets--glue/snapshots/x");

    const std::vector<FoundModel> found = discover_models({dir_ / "models", dir_ / "missing"}, dir_ / "hub");
    ASSERT_EQ(found.size(), 3u);
    std::map<std::string, FoundModel> by_name;
    for (const FoundModel& m : found) by_name[m.name] = m;
    ASSERT_TRUE(by_name.count("bert-tiny"));
    EXPECT_EQ(by_name["bert-tiny"].arch, "bert");
    EXPECT_EQ(by_name["bert-tiny"].num_layers, 2);
    EXPECT_EQ(by_name["bert-tiny"].source, "search path");
    ASSERT_TRUE(by_name.count("org/roberta-small"));
    EXPECT_EQ(by_name["org/roberta-small"].arch, "roberta");
    ASSERT_TRUE(by_name.count("google/bert_uncased_L-2_H-128 (0123456)"));
    EXPECT_EQ(by_name["google/bert_uncased_L-2_H-128 (0123456)"].source, "hub cache");
    // The same folder through two search paths is listed once.
    EXPECT_EQ(discover_models({dir_ / "models", dir_ / "models/bert-tiny"}, dir_ / "nohub").size(), 2u);
}

TEST_F(Discovery, HubCacheFollowsTheEnvironment) {
    ::setenv("HF_HUB_CACHE", "/x/hub", 1);
    EXPECT_EQ(hub_cache_dir(), fs::path("/x/hub"));
    ::unsetenv("HF_HUB_CACHE");
    ::setenv("HF_HOME", "/y", 1);
    EXPECT_EQ(hub_cache_dir(), fs::path("/y/hub"));
    ::unsetenv("HF_HOME");
}
