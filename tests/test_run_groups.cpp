// Runs pooled by config keys or by seeds, and a group's curves as mean ± std (and min..max) at the
// steps every member recorded.
#include <gtest/gtest.h>

#include <cmath>

#include "store/run_groups.h"

using namespace meft;
using nlohmann::json;

namespace {

json cfg(const std::string& method, double lr, int seed) {
    return {{"method", {{"name", method}}}, {"training", {{"learning_rate", lr}, {"seed", seed}}}};
}

TEST(RunGroups, ByChosenKeysInFirstRunOrder) {
    const std::vector<json> c = {cfg("lora", 1e-3, 1), cfg("full", 2e-5, 1), cfg("lora", 5e-4, 2), cfg("lora", 1e-3, 2)};
    const auto by_method = group_by_keys(c, {"method.name"});
    ASSERT_EQ(by_method.size(), 2u);
    EXPECT_EQ(by_method[0].label, "method.name=lora");
    EXPECT_EQ(by_method[0].members, (std::vector<std::size_t>{0, 2, 3}));
    EXPECT_EQ(by_method[1].members, (std::vector<std::size_t>{1}));
    const auto both = group_by_keys(c, {"method.name", "training.learning_rate"});
    ASSERT_EQ(both.size(), 3u);
    EXPECT_EQ(both[0].members, (std::vector<std::size_t>{0, 3}));
    EXPECT_EQ(both[0].label, "method.name=lora, training.learning_rate=0.001");
    const auto missing = group_by_keys({cfg("lora", 1e-3, 1), json{{"method", {{"name", "lora"}}}}}, {"training.seed"});
    ASSERT_EQ(missing.size(), 2u);
    EXPECT_EQ(missing[1].label, "training.seed=(unset)");
    const auto all = group_by_keys(c, {});
    ASSERT_EQ(all.size(), 1u);
    EXPECT_EQ(all[0].members.size(), 4u);
}

TEST(RunGroups, SeedsPoolEverythingElseApart) {
    const std::vector<json> c = {cfg("lora", 1e-3, 1), cfg("lora", 1e-3, 2), cfg("lora", 5e-4, 1)};
    const auto g = group_seeds(c);
    ASSERT_EQ(g.size(), 2u);
    EXPECT_EQ(g[0].members, (std::vector<std::size_t>{0, 1}));
    EXPECT_EQ(g[0].label, "training.learning_rate=0.001");
    EXPECT_EQ(g[1].label, "training.learning_rate=0.0005");
}

TEST(RunGroups, BandAtStepsEveryMemberHas) {
    const std::vector<std::vector<CurvePoint>> members = {
        {{1, 1, 1.0}, {2, 2, 2.0}, {3, 3, 3.0}, {4, 4, 4.0}},
        {{1, 1, 3.0}, {3, 3, 5.0}, {4, 4, 6.0}},  // no step 2
        {{1, 1, 2.0}, {2, 2, 0.0}, {3, 3, 4.0}},  // ends at step 3
    };
    const auto band = curve_band(members);
    ASSERT_EQ(band.size(), 2u);  // steps 1 and 3
    EXPECT_EQ(band[0].step, 1);
    EXPECT_DOUBLE_EQ(band[0].mean, 2.0);
    EXPECT_DOUBLE_EQ(band[0].sd, 1.0);  // values 1, 3, 2
    EXPECT_DOUBLE_EQ(band[0].min, 1.0);
    EXPECT_DOUBLE_EQ(band[0].max, 3.0);
    EXPECT_EQ(band[0].n, 3);
    EXPECT_EQ(band[1].step, 3);
    EXPECT_DOUBLE_EQ(band[1].mean, 4.0);
    EXPECT_DOUBLE_EQ(band[1].x, 3.0);
    const auto one = curve_band({{{5, 0.5, 7.0}}});
    ASSERT_EQ(one.size(), 1u);
    EXPECT_DOUBLE_EQ(one[0].sd, 0.0);  // a single run has no spread
    EXPECT_DOUBLE_EQ(one[0].x, 0.5);
    EXPECT_TRUE(curve_band({}).empty());
}

TEST(RunGroups, BandXIsTheMembersMeanX) {  // wall-clock: runs reach a step at different times
    const auto band = curve_band({{{10, 4.0, 1.0}}, {{10, 6.0, 2.0}}});
    ASSERT_EQ(band.size(), 1u);
    EXPECT_DOUBLE_EQ(band[0].x, 5.0);
    EXPECT_NEAR(band[0].sd, std::sqrt(0.5), 1e-15);
}

}  // namespace
