// Runs as tables (store/run_table.h): flattening, the config diff, metrics side by side with the
// best marked, one-line summaries, grouping runs that differ in the seed alone, the paper-style
// table (mean ± std over seeds, best per task) and every rendering (csv, json, markdown, latex).
#include <gtest/gtest.h>

#include "core/error.h"
#include "store/run_table.h"
#include "test_support.h"

using namespace meft;

namespace {

RunInfo make_run(std::int64_t id, const std::string& method, const std::string& task, double lr, int seed,
                 nlohmann::json metrics, const std::string& status = "finished") {
    RunInfo r;
    r.id = id;
    r.status = status;
    r.config = {{"method", {{"name", method}}},
                {"task", {{"name", task}}},
                {"training", {{"learning_rate", lr}, {"seed", seed}, {"batch_size", 8}}}};
    r.final_metrics = std::move(metrics);
    return r;
}

TEST(RunTable, FlattensNestedConfigsToDottedKeys) {
    const auto flat = flatten_config({{"a", {{"b", 1}, {"c", {{"d", "x"}}}}}, {"e", {1, 2}}, {"f", true}, {"g", nlohmann::json::object()}});
    EXPECT_EQ(flat.size(), 4u);
    EXPECT_EQ(flat.at("a.b"), "1");
    EXPECT_EQ(flat.at("a.c.d"), "x");  // strings unquoted
    EXPECT_EQ(flat.at("e"), "[1,2]");
    EXPECT_EQ(flat.at("f"), "true");
    EXPECT_TRUE(flatten_config(nullptr).empty());
}

TEST(RunTable, ConfigDiffKeepsOnlyKeysThatDiffer) {
    const std::vector<RunInfo> runs = {make_run(1, "lora", "sst2", 1e-3, 1, {}), make_run(2, "full", "sst2", 2e-5, 1, {})};
    const auto diff = config_diff(runs);
    ASSERT_EQ(diff.size(), 2u);
    EXPECT_EQ(diff[0].key, "method.name");
    EXPECT_EQ(diff[0].values[0], "lora");
    EXPECT_EQ(diff[0].values[1], "full");
    EXPECT_EQ(diff[1].key, "training.learning_rate");
    EXPECT_TRUE(diff[1].differs);

    // A key that only one run has differs, and shows as missing for the other.
    std::vector<nlohmann::json> configs = {runs[0].config, runs[0].config};
    configs[1]["method"]["lora"] = {{"r", 8}};
    const auto rows = config_rows(configs, true);
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0].key, "method.lora.r");
    EXPECT_FALSE(rows[0].values[0]);
    EXPECT_EQ(rows[0].values[1], "8");
    EXPECT_EQ(config_rows(configs, false).size(), 6u);  // every key, same-valued ones with differs = false
    EXPECT_TRUE(config_diff({runs[0]}).empty());         // one run differs from nothing
}

TEST(RunTable, MetricsSideBySideMarkTheBestByGoal) {
    const auto c = compare_runs({make_run(3, "lora", "sst2", 1e-3, 1, {{"accuracy", 0.9}, {"dev_loss", 0.3}, {"steps", 10}}),
                                 make_run(4, "full", "sst2", 2e-5, 1, {{"accuracy", 0.8}, {"dev_loss", 0.2}, {"steps", 20}})});
    EXPECT_EQ(c.columns, (std::vector<std::string>{"run 3", "run 4"}));
    ASSERT_EQ(c.metrics.size(), 4u);
    EXPECT_EQ(c.metrics[0].key, "status");
    EXPECT_EQ(c.metrics[1].key, "accuracy");
    EXPECT_EQ(c.metrics[1].best, (std::vector<bool>{true, false}));   // higher is better
    EXPECT_EQ(c.metrics[2].key, "dev_loss");
    EXPECT_EQ(c.metrics[2].best, (std::vector<bool>{false, true}));   // lower is better
    EXPECT_EQ(c.metrics[3].best, (std::vector<bool>{false, false}));  // steps: not ranked
    EXPECT_EQ(metric_goal("activation_peak_bytes"), MetricGoal::lower);
    EXPECT_EQ(metric_goal("tokens_per_s"), MetricGoal::higher);
    EXPECT_EQ(metric_goal("best_accuracy"), MetricGoal::higher);
    EXPECT_EQ(metric_goal("best_step"), MetricGoal::none);
}

TEST(RunTable, ComparisonMarkdownIsWhatTheCliPrints) {
    const auto c = compare_runs({make_run(1, "lora", "sst2", 1e-3, 1, {{"accuracy", 0.5}}),
                                 make_run(2, "lora", "sst2", 1e-3, 2, {{"accuracy", 0.75}})});
    EXPECT_EQ(render_comparison(c, TableFormat::markdown, false),
              "| config (differing keys) | run 1 | run 2 |\n|---|---|---|\n| training.seed | 1 | 2 |\n\n"
              "| metric | run 1 | run 2 |\n|---|---|---|\n| status | finished | finished |\n| accuracy | 0.5 | 0.75 |\n");
    EXPECT_NE(render_comparison(c, TableFormat::markdown, true).find("| accuracy | 0.5 | **0.75** |"), std::string::npos);
    const std::string csv = render_comparison(c, TableFormat::csv, false);
    EXPECT_EQ(csv, "section,key,run 1,run 2\nconfig,training.seed,1,2\nmetric,status,finished,finished\nmetric,accuracy,0.5,0.75\n");
    const std::string tex = render_comparison(c, TableFormat::latex, true);
    EXPECT_NE(tex.find("training.seed & 1 & 2 \\\\"), std::string::npos);
    EXPECT_NE(tex.find("accuracy & 0.5 & \\textbf{0.75} \\\\"), std::string::npos);
    const auto j = nlohmann::json::parse(render_comparison(c, TableFormat::json, true));
    EXPECT_EQ(j["runs"], nlohmann::json({1, 2}));
    EXPECT_EQ(j["config"][0]["run 2"], "2");
    EXPECT_EQ(j["best"]["accuracy"], nlohmann::json({"run 2"}));
}

TEST(RunTable, RoundedMetricsReadWell) {
    const auto c = round_metrics(compare_runs({make_run(1, "lora", "sst2", 1e-3, 1, {{"dev_loss", 0.41100000000000003}, {"bytes", 104857600}}),
                                               make_run(2, "lora", "sst2", 1e-3, 1, {{"dev_loss", 2.0 / 3.0}, {"bytes", 1.5e20}})}));
    EXPECT_EQ(c.metrics[1].key, "bytes");
    EXPECT_EQ(c.metrics[1].text[0], "104857600");
    EXPECT_EQ(c.metrics[1].text[1], "1.5e+20");
    EXPECT_EQ(c.metrics[2].text[0], "0.411");
    EXPECT_EQ(c.metrics[2].text[1], "0.666667");
    EXPECT_EQ(c.metrics[2].best, (std::vector<bool>{true, false}));  // ranks on the exact values
    EXPECT_EQ(c.metrics[0].text[0], "finished");
}

TEST(RunTable, RenderersEscapeAndMarkMissingCells) {
    const TextTable t{{"key", "a_b"}, {{{"x,y"}, {"50 ± 1", true}}, {{"p|q"}, {"", false, true}}}};
    EXPECT_EQ(render_table(t, TableFormat::csv), "key,a_b\n\"x,y\",50 ± 1\np|q,\n");
    EXPECT_EQ(render_table(t, TableFormat::markdown), "| key | a_b |\n|---|---|\n| x,y | **50 ± 1** |\n| p\\|q | — |\n");
    EXPECT_EQ(render_table(t, TableFormat::latex),
              "\\begin{tabular}{lc}\n\\toprule\nkey & a\\_b \\\\\n\\midrule\nx,y & \\textbf{50 $\\pm$ 1} \\\\\np|q & -- \\\\\n"
              "\\bottomrule\n\\end{tabular}\n");
    const auto j = nlohmann::json::parse(render_table(t, TableFormat::json));
    EXPECT_EQ(j[0]["a_b"], "50 ± 1");
    EXPECT_TRUE(j[1]["a_b"].is_null());
    EXPECT_EQ(table_format("latex"), TableFormat::latex);
    EXPECT_THROW(table_format("xlsx"), Error);
}

// Two methods x two tasks; lora has two seeds on sst2.
std::vector<RunInfo> paper_runs() {
    return {make_run(1, "lora", "sst2", 1e-3, 1, {{"accuracy", 0.90}}), make_run(2, "lora", "sst2", 1e-3, 2, {{"accuracy", 0.92}}),
            make_run(3, "full", "sst2", 2e-5, 1, {{"accuracy", 0.93}}), make_run(4, "full", "cola", 2e-5, 1, {{"matthews", 0.5}, {"accuracy", 0.8}})};
}

TEST(RunTable, PaperTablePoolsSeedsAndMarksTheBestPerTask) {
    const PaperTable p = paper_table(paper_runs());
    ASSERT_EQ(p.rows.size(), 2u);
    EXPECT_EQ(p.rows[0].label(), "lora");  // each method has one configuration per task: no keys to name
    EXPECT_EQ(p.rows[1].label(), "full");
    EXPECT_EQ(p.tasks, (std::vector<std::string>{"sst2", "cola"}));
    const PaperCell* lora = p.cell("lora", "sst2");
    ASSERT_TRUE(lora);
    EXPECT_EQ(lora->values.size(), 2u);
    EXPECT_NEAR(lora->mean, 0.91, 1e-12);
    ASSERT_TRUE(lora->sd);
    EXPECT_NEAR(*lora->sd, 0.0141421356, 1e-9);  // sample std
    EXPECT_EQ(lora->runs, (std::vector<std::int64_t>{1, 2}));
    EXPECT_FALSE(lora->best);
    EXPECT_FALSE(p.cell("full", "sst2")->sd);  // one run: no spread
    EXPECT_TRUE(p.cell("full", "sst2")->best);
    EXPECT_TRUE(p.cell("full", "cola")->best);  // cola ranks by Matthews
    EXPECT_DOUBLE_EQ(p.cell("full", "cola")->mean, 0.5);
    EXPECT_EQ(p.cell("lora", "cola"), nullptr);
}

TEST(RunTable, PaperTableInEveryFormat) {
    const PaperTable p = paper_table(paper_runs());
    // A single run's cell is its value alone: no "± 0.0", its std empty (csv) or null (json).
    EXPECT_EQ(render_paper_table(p, TableFormat::csv),
              "method,config,task,metric,runs,mean,std,best\n"
              "lora,,sst2,accuracy,2,0.910000,0.014142,0\n"
              "full,,sst2,accuracy,1,0.930000,,1\n"
              "full,,cola,matthews,1,0.500000,,1\n");
    EXPECT_EQ(render_paper_table(p, TableFormat::markdown),
              "| method | sst2 (accuracy) | cola (matthews) |\n|---|---|---|\n"
              "| lora | 91.0 ± 1.4 | — |\n"
              "| full | **93.0** | **50.0** |\n");
    EXPECT_EQ(render_paper_table(p, TableFormat::latex),
              "\\begin{tabular}{lcc}\n\\toprule\nMethod & sst2 & cola \\\\\n\\midrule\n"
              "lora & 91.0 $\\pm$ 1.4 & -- \\\\\n"
              "full & \\textbf{93.0} & \\textbf{50.0} \\\\\n"
              "\\bottomrule\n\\end{tabular}\n");
    const auto j = nlohmann::json::parse(render_paper_table(p, TableFormat::json));
    ASSERT_EQ(j.size(), 3u);
    EXPECT_EQ(j[0]["method"], "lora");
    EXPECT_EQ(j[0]["config"], "");
    EXPECT_EQ(j[0]["runs"], 2);
    EXPECT_NEAR(j[0]["mean"].get<double>(), 0.91, 1e-12);
    EXPECT_NEAR(j[0]["std"].get<double>(), 0.0141421356, 1e-9);
    EXPECT_EQ(j[0]["best"], false);
    EXPECT_TRUE(j[1]["std"].is_null());
    EXPECT_EQ(j[2]["metric"], "matthews");
    for (TableFormat f : {TableFormat::csv, TableFormat::json, TableFormat::markdown, TableFormat::latex})
        for (const char* zero_spread : {"± 0.0", "$\\pm$ 0.0", "0.000000"})
            EXPECT_EQ(render_paper_table(p, f).find(zero_spread), std::string::npos) << format_name(f) << ": " << zero_spread;
}

// ---- runs that differ in the seed alone ------------------------------------------------------------------

TEST(RunTable, SeedGroupsPoolOnlyWhatDiffersInTheSeed) {
    // Three seeds of one config; two learning rates with the same seed; a LoRA rank only one run sets.
    std::vector<nlohmann::json> configs = {make_run(1, "lora", "sst2", 1e-3, 1, {}).config,
                                           make_run(2, "lora", "sst2", 1e-3, 2, {}).config,
                                           make_run(3, "lora", "sst2", 2e-3, 1, {}).config,
                                           make_run(4, "lora", "sst2", 1e-3, 3, {}).config};
    auto groups = seed_groups(configs);
    ASSERT_EQ(groups.size(), 2u);
    EXPECT_EQ(groups[0].members, (std::vector<std::size_t>{0, 1, 3}));
    EXPECT_EQ(groups[1].members, (std::vector<std::size_t>{2}));
    EXPECT_EQ(groups[0].label, "training.learning_rate=0.001");
    EXPECT_EQ(groups[1].label, "training.learning_rate=0.002");

    // Keys that differ are all named (sorted); one a group lacks reads "(unset)".
    configs.push_back(configs[0]);
    configs.back()["method"]["lora"] = {{"r", 16}};
    groups = seed_groups(configs);
    ASSERT_EQ(groups.size(), 3u);
    EXPECT_EQ(groups[0].label, "method.lora.r=(unset), training.learning_rate=0.001");
    EXPECT_EQ(groups[2].label, "method.lora.r=16, training.learning_rate=0.001");
    EXPECT_EQ(groups[2].keys, (std::vector<std::pair<std::string, std::string>>{{"method.lora.r", "16"},
                                                                               {"training.learning_rate", "0.001"}}));
    // One configuration, however many seeds: one group and nothing to name.
    groups = seed_groups({configs[0], configs[1]});
    ASSERT_EQ(groups.size(), 1u);
    EXPECT_EQ(groups[0].label, "");
    EXPECT_TRUE(seed_groups({}).empty());
    // Any other key keeps runs apart, the backbone's seed included.
    nlohmann::json other = configs[0];
    other["backbone"]["seed"] = 7;
    groups = seed_groups({configs[0], other});
    ASSERT_EQ(groups.size(), 2u);
    EXPECT_EQ(groups[1].label, "backbone.seed=7");
}

TEST(RunTable, SeedGroupsWithinATableNameOnlyWhatRowsAndColumnsDoNot) {
    // lora tried two learning rates on sst2 and one on cola; full one per task.
    const std::vector<nlohmann::json> configs = {
        make_run(1, "lora", "sst2", 1e-3, 1, {}).config, make_run(2, "lora", "sst2", 2e-3, 1, {}).config,
        make_run(3, "lora", "cola", 1e-3, 1, {}).config, make_run(4, "full", "sst2", 2e-5, 1, {}).config,
        make_run(5, "full", "cola", 3e-5, 1, {}).config};
    const auto groups = seed_groups(configs, {"method.name"}, {"task.name"});
    ASSERT_EQ(groups.size(), 5u);
    EXPECT_EQ(groups[0].label, "training.learning_rate=0.001");
    EXPECT_EQ(groups[1].label, "training.learning_rate=0.002");
    EXPECT_EQ(groups[2].label, "training.learning_rate=0.001");  // lines up with sst2's row
    EXPECT_EQ(groups[3].label, "");  // full's learning rates differ across tasks only: the columns tell them apart
    EXPECT_EQ(groups[4].label, "");
}

TEST(RunTable, PaperTableGroupsOnlyWhatDiffersInTheSeed) {
    // Two learning rates with the same seed: two rows, each labelled with the learning rate. Three
    // seeds of one config: one row, mean ± std. A single run: its value alone.
    const std::vector<RunInfo> runs = {
        make_run(1, "lora", "sst2", 1e-3, 1, {{"accuracy", 0.90}}), make_run(2, "lora", "sst2", 2e-3, 1, {{"accuracy", 0.80}}),
        make_run(3, "full", "sst2", 2e-5, 1, {{"accuracy", 0.91}}), make_run(4, "full", "sst2", 2e-5, 2, {{"accuracy", 0.92}}),
        make_run(5, "full", "sst2", 2e-5, 3, {{"accuracy", 0.93}})};
    const PaperTable p = paper_table(runs);
    ASSERT_EQ(p.rows.size(), 3u);
    EXPECT_EQ(p.rows[0].label(), "lora (training.learning_rate=0.001)");
    EXPECT_EQ(p.rows[0].config, "training.learning_rate=0.001");
    EXPECT_EQ(p.rows[1].label(), "lora (training.learning_rate=0.002)");
    EXPECT_EQ(p.rows[2].label(), "full");
    const PaperCell* full = p.cell("full", "sst2");
    ASSERT_TRUE(full && full->sd);
    EXPECT_EQ(full->runs, (std::vector<std::int64_t>{3, 4, 5}));
    EXPECT_NEAR(full->mean, 0.92, 1e-12);
    EXPECT_NEAR(*full->sd, 0.01, 1e-12);
    EXPECT_TRUE(full->best);
    EXPECT_EQ(p.cell("lora (training.learning_rate=0.001)", "sst2")->values, (std::vector<double>{0.90}));

    EXPECT_EQ(render_paper_table(p, TableFormat::markdown),
              "| method | sst2 (accuracy) |\n|---|---|\n"
              "| lora (training.learning_rate=0.001) | 90.0 |\n"
              "| lora (training.learning_rate=0.002) | 80.0 |\n"
              "| full | **92.0 ± 1.0** |\n");
    EXPECT_EQ(render_paper_table(p, TableFormat::csv),
              "method,config,task,metric,runs,mean,std,best\n"
              "lora,training.learning_rate=0.001,sst2,accuracy,1,0.900000,,0\n"
              "lora,training.learning_rate=0.002,sst2,accuracy,1,0.800000,,0\n"
              "full,,sst2,accuracy,3,0.920000,0.010000,1\n");
    EXPECT_NE(render_paper_table(p, TableFormat::latex)
                  .find("lora (training.learning\\_rate=0.001) & 90.0 \\\\\n"),
              std::string::npos);
    const auto j = nlohmann::json::parse(render_paper_table(p, TableFormat::json));
    EXPECT_EQ(j[1]["config"], "training.learning_rate=0.002");
    EXPECT_TRUE(j[1]["std"].is_null());
}

TEST(RunTable, PaperTableRejectsUnfinishedRunsAndMissingMetrics) {
    auto runs = paper_runs();
    runs[1].status = "failed";
    EXPECT_EQ(test::error_of([&] { paper_table(runs); }), "run 2 is failed, not finished");
    runs = paper_runs();
    runs[3].final_metrics.erase("matthews");
    EXPECT_EQ(test::error_of([&] { paper_table(runs); }), "run 4 has no 'matthews' metric");
}

TEST(RunTable, SummaryHasTheMainScoreMemoryAndTrainableShare) {
    RunInfo r = make_run(7, "lora", "cola", 1e-3, 1,
                         {{"accuracy", 0.8}, {"matthews", 0.4}, {"activation_peak_bytes", 3 * 1024 * 1024},
                          {"trainable_parameters", 25}, {"all_parameters", 1000}});
    r.tags = "paper,glue";
    const RunSummary s = summarize_run(r);
    EXPECT_EQ(s.method, "lora");
    EXPECT_EQ(s.task, "cola");
    EXPECT_EQ(s.score_key, "matthews");  // the task's headline metric, not the first one found
    EXPECT_DOUBLE_EQ(*s.score, 0.4);
    EXPECT_DOUBLE_EQ(*s.activation_mib, 3.0);
    EXPECT_DOUBLE_EQ(*s.trainable_percent, 2.5);
    const RunSummary empty = summarize_run(make_run(8, "full", "sst2", 1e-3, 1, nullptr, "running"));
    EXPECT_FALSE(empty.score);
    EXPECT_FALSE(empty.activation_mib);
    EXPECT_FALSE(empty.trainable_percent);
}

}  // namespace

TEST(RunTable, VersusABaselineRun) {
    MetricRow acc{"accuracy", {}, {0.90, 0.93, std::nullopt}, {}};
    EXPECT_EQ(versus_baseline(acc, 1, 0), "+3.0 pt");
    EXPECT_EQ(versus_baseline(acc, 0, 1), "-3.0 pt");
    EXPECT_FALSE(versus_baseline(acc, 0, 0));  // the baseline itself
    EXPECT_FALSE(versus_baseline(acc, 2, 0));  // no value
    MetricRow mem{"activation_peak_bytes", {}, {1000.0, 420.0, 0.0}, {}};
    EXPECT_EQ(versus_baseline(mem, 1, 0), "×0.42");
    EXPECT_FALSE(versus_baseline(mem, 1, 2));  // a zero baseline has no ratio
}
