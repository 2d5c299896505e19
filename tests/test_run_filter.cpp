// meft runs list --filter: conditions on plain fields, config paths and final metrics, numeric
// and text comparison, "contains", missing keys, and clear errors for malformed expressions.
#include <gtest/gtest.h>

#include "core/error.h"
#include "store/run_filter.h"
#include "test_support.h"

using namespace meft;

namespace {
RunInfo run(std::int64_t id, const std::string& method, double lr, double acc, const std::string& status = "finished") {
    RunInfo r;
    r.id = id;
    r.experiment = "glue-" + method;
    r.status = status;
    r.tags = "paper,glue";
    r.steps = 100 * static_cast<int>(id);
    r.config = {{"method", {{"name", method}}}, {"training", {{"learning_rate", lr}}}};
    if (acc >= 0) r.final_metrics = {{"accuracy", acc}};
    r.environment = {{"backend", "cpu"}};
    return r;
}
int count(const std::string& expr, const std::vector<RunInfo>& runs) {
    const RunFilter f(expr);
    int n = 0;
    for (const RunInfo& r : runs) n += f.matches(r);
    return n;
}
}  // namespace

TEST(RunFilter, SelectsOnFieldsConfigAndMetrics) {
    const std::vector<RunInfo> runs = {run(1, "lora", 5e-4, 0.91), run(2, "lora", 8e-4, 0.87), run(3, "meft1", 5e-4, 0.93),
                                       run(4, "full", 2e-5, -1, "failed")};
    EXPECT_EQ(count("config.method.name = lora", runs), 2);
    EXPECT_EQ(count("metrics.accuracy >= 0.9", runs), 2);  // 0.91, 0.93; the failed run has none
    EXPECT_EQ(count("metrics.accuracy >= 0.9 and config.method.name = lora", runs), 1);
    EXPECT_EQ(count("config.training.learning_rate < 6e-4", runs), 3);  // numbers compare as numbers
    EXPECT_EQ(count("steps > 150", runs), 3);
    EXPECT_EQ(count("status != finished", runs), 1);
    EXPECT_EQ(count("metrics.accuracy != 0.91", runs), 3);  // a missing key passes only "!="
    EXPECT_EQ(count("experiment ~ meft", runs), 1);
    EXPECT_EQ(count("tags ~ glue AND env.backend = 'cpu'", runs), 4);
    EXPECT_EQ(count("id <= 2", runs), 2);
    EXPECT_EQ(count("config.method.name = \"full\"", runs), 1);
}

TEST(RunFilter, MalformedExpressionsAreClearErrors) {
    for (const char* bad : {"accuracy", "metrics.accuracy >", "= 3", "score > 1", "config > 1 and"}) {
        const std::string msg = test::error_of([&] { RunFilter f(bad); });
        EXPECT_NE(msg.find("--filter"), std::string::npos) << bad << ": " << msg;
    }
}
