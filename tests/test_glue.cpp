// GLUE task table and TSV loader: the real files under shared/data/glue, and hand-written fixtures for
// the tasks whose files are not shared (QQP, MNLI, QNLI, WNLI), test splits, quirks and errors.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <string>

#include "core/error.h"
#include "data/glue.h"
#include "data/text_task.h"
#include "data/tokenizer.h"
#include "test_support.h"

namespace fs = std::filesystem;
using namespace meft;
using meft::test::error_of;

namespace {

fs::path glue_root() { return fs::path(MEFT_SHARED_DIR) / "data" / "glue"; }

#define REQUIRE_SHARED_GLUE() MEFT_REQUIRE_DIR(glue_root(), "the real GLUE files are not tested")

std::vector<int> label_counts(const GlueSplit& s, int K) {
    std::vector<int> c(static_cast<std::size_t>(K), 0);
    for (const auto& e : s.examples) {
        EXPECT_GE(e.label, 0);
        EXPECT_LT(e.label, K);
        if (e.label >= 0 && e.label < K) ++c[static_cast<std::size_t>(e.label)];
    }
    return c;
}

void expect_clean(const GlueSplit& s) {
    EXPECT_EQ(s.skipped_quirks, 0);
    EXPECT_TRUE(s.warnings.empty()) << (s.warnings.empty() ? "" : s.warnings[0]);
}

class GlueFixture : public meft::test::TempDirTest {
protected:
    // Writes bytes exactly as given (no newline translation) under dir_/sub/name.
    fs::path write(const std::string& sub, const std::string& name, const std::string& bytes) {
        fs::create_directories(dir_ / sub);
        std::ofstream(dir_ / sub / name, std::ios::binary) << bytes;
        return dir_ / sub / name;
    }
};

}  // namespace

// ---- the task table ---------------------------------------------------------------------------------------

TEST(GlueTable, TasksLabelsSplitsMetrics) {
    const auto& t = glue_tasks();
    ASSERT_EQ(t.size(), 9u);
    std::vector<std::string> names;
    for (const auto& x : t) names.push_back(x.name);
    EXPECT_EQ(names, (std::vector<std::string>{"cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli"}));

    EXPECT_EQ(glue_task("cola").label_names, (std::vector<std::string>{"unacceptable", "acceptable"}));
    EXPECT_EQ(glue_task("sst2").label_names, (std::vector<std::string>{"negative", "positive"}));
    EXPECT_EQ(glue_task("mrpc").label_names, (std::vector<std::string>{"not_equivalent", "equivalent"}));
    EXPECT_EQ(glue_task("qqp").label_names, (std::vector<std::string>{"not_duplicate", "duplicate"}));
    EXPECT_EQ(glue_task("mnli").label_names, (std::vector<std::string>{"entailment", "neutral", "contradiction"}));
    EXPECT_EQ(glue_task("qnli").label_names, (std::vector<std::string>{"entailment", "not_entailment"}));
    EXPECT_EQ(glue_task("rte").label_names, (std::vector<std::string>{"entailment", "not_entailment"}));
    EXPECT_EQ(glue_task("wnli").label_names, (std::vector<std::string>{"not_entailment", "entailment"}));
    EXPECT_TRUE(glue_task("stsb").regression);
    EXPECT_TRUE(glue_task("stsb").label_names.empty());
    EXPECT_EQ(glue_task("stsb").num_labels(), 1);
    EXPECT_EQ(glue_task("mnli").num_labels(), 3);

    EXPECT_EQ(glue_task("cola").metrics, (std::vector<std::string>{"matthews"}));
    EXPECT_EQ(glue_task("sst2").metrics, (std::vector<std::string>{"accuracy"}));
    EXPECT_EQ(glue_task("mrpc").metrics, (std::vector<std::string>{"f1", "accuracy"}));
    EXPECT_EQ(glue_task("qqp").metrics, (std::vector<std::string>{"f1", "accuracy"}));
    EXPECT_EQ(glue_task("stsb").metrics, (std::vector<std::string>{"pearson", "spearman"}));
    EXPECT_EQ(glue_task("mnli").metrics, (std::vector<std::string>{"accuracy_matched", "accuracy_mismatched"}));

    EXPECT_EQ(glue_task("sst2").splits, (std::vector<std::string>{"train", "dev", "test"}));
    EXPECT_EQ(glue_task("mnli").splits, (std::vector<std::string>{"train", "dev_matched", "dev_mismatched",
                                                                  "test_matched", "test_mismatched"}));
    EXPECT_EQ(glue_task("SST-2").dir_name, "SST-2");
    EXPECT_EQ(glue_task("sts-b").dir_name, "STS-B");
}

TEST(GlueTable, AliasesAndSplitNames) {
    EXPECT_EQ(glue_task("SST-2").name, "sst2");
    EXPECT_EQ(glue_task("sst").name, "sst2");
    EXPECT_EQ(glue_task("STS-B").name, "stsb");
    EXPECT_EQ(glue_task("sts_b").name, "stsb");
    EXPECT_EQ(glue_task("CoLA").name, "cola");
    EXPECT_EQ(glue_task("MultiNLI").name, "mnli");
    EXPECT_EQ(glue_task("QQP").name, "qqp");
    const std::string e = error_of([] { glue_task("sst3"); });
    EXPECT_NE(e.find("unknown GLUE task 'sst3'"), std::string::npos) << e;
    EXPECT_NE(e.find("cola, sst2, mrpc"), std::string::npos) << e;

    EXPECT_EQ(glue_split_name(glue_task("rte"), "validation"), "dev");
    EXPECT_EQ(glue_split_name(glue_task("rte"), "DEV"), "dev");
    EXPECT_EQ(glue_split_name(glue_task("mnli"), "dev"), "dev_matched");
    EXPECT_EQ(glue_split_name(glue_task("mnli"), "validation_mismatched"), "dev_mismatched");
    EXPECT_EQ(glue_split_name(glue_task("mnli"), "dev-mismatched"), "dev_mismatched");
    EXPECT_EQ(glue_split_name(glue_task("mnli"), "test"), "test_matched");
    EXPECT_EQ(glue_split_file(glue_task("mnli"), "/x/MNLI", "dev_mm"), fs::path("/x/MNLI/dev_mismatched.tsv"));
    const std::string s = error_of([] { glue_split_name(glue_task("rte"), "dev_matched"); });
    EXPECT_NE(s.find("no split 'dev_matched'"), std::string::npos) << s;
    EXPECT_NE(s.find("train, dev, test"), std::string::npos) << s;
}

// ---- the real GLUE files ----------------------------------------------------------------------------------

TEST(GlueReal, CoLA) {
    REQUIRE_SHARED_GLUE();
    const GlueSplit train = load_glue("cola", glue_root() / "CoLA", "train");
    const GlueSplit dev = load_glue("CoLA", glue_root() / "CoLA", "validation");
    ASSERT_EQ(train.examples.size(), 8551u);
    ASSERT_EQ(dev.examples.size(), 1043u);
    expect_clean(train);
    expect_clean(dev);
    EXPECT_EQ(label_counts(train, 2), (std::vector<int>{2528, 6023}));
    EXPECT_EQ(label_counts(dev, 2), (std::vector<int>{322, 721}));
    const auto& first = train.examples.front();
    EXPECT_EQ(first.text_a, "Our friends won't buy this analysis, let alone the next one we propose.");
    EXPECT_FALSE(first.text_b.has_value());
    EXPECT_EQ(first.label, 1);
    EXPECT_EQ(first.id, "1");  // no id column: the line number (no header)
    // dev.tsv has no newline after its last line.
    EXPECT_EQ(dev.examples.back().text_a, "John talked to Bill about himself.");
    EXPECT_EQ(dev.examples.back().id, "1043");
}

TEST(GlueReal, SST2) {
    REQUIRE_SHARED_GLUE();
    const GlueSplit train = load_glue("sst2", glue_root() / "SST-2", "train");
    const GlueSplit dev = load_glue("SST-2", glue_root() / "SST-2", "dev");
    ASSERT_EQ(train.examples.size(), 67349u);
    ASSERT_EQ(dev.examples.size(), 872u);
    expect_clean(train);
    expect_clean(dev);
    EXPECT_EQ(label_counts(train, 2), (std::vector<int>{29780, 37569}));
    EXPECT_EQ(label_counts(dev, 2), (std::vector<int>{428, 444}));
    EXPECT_EQ(train.examples[0].text_a, "hide new secretions from the parental units ");  // kept as in the file
    EXPECT_EQ(train.examples[0].label, 0);
    EXPECT_EQ(train.examples[0].id, "2");  // line 2 (line 1 is the header)
    EXPECT_EQ(dev.examples[0].text_a, "it 's a charming and often affecting journey . ");
    EXPECT_EQ(dev.examples[0].label, 1);
}

TEST(GlueReal, MRPC) {
    REQUIRE_SHARED_GLUE();
    const GlueSplit train = load_glue("mrpc", glue_root() / "MRPC", "train");
    const GlueSplit dev = load_glue("mrpc", glue_root() / "MRPC", "dev");
    ASSERT_EQ(train.examples.size(), 3667u);  // one pair short of HF's 3668 (see SOURCES.md)
    ASSERT_EQ(dev.examples.size(), 408u);
    expect_clean(train);
    expect_clean(dev);
    EXPECT_EQ(label_counts(train, 2), (std::vector<int>{1194, 2473}));
    EXPECT_EQ(label_counts(dev, 2), (std::vector<int>{129, 279}));
    const auto& d0 = dev.examples[0];  // the header carries a UTF-8 BOM; it must not hide "Quality"
    EXPECT_EQ(d0.id, "1355540-1355592");
    EXPECT_EQ(d0.label, 1);
    EXPECT_EQ(d0.text_a, "He said the foodservice pie business doesn 't fit the company 's long-term growth strategy .");
    ASSERT_TRUE(d0.text_b.has_value());
    EXPECT_EQ(*d0.text_b, "\" The foodservice pie business does not fit our long-term growth strategy .");  // literal quote
    EXPECT_EQ(train.examples[0].id, "702876-702977");
}

TEST(GlueReal, RTE) {
    REQUIRE_SHARED_GLUE();
    const GlueSplit train = load_glue("rte", glue_root() / "RTE", "train");
    const GlueSplit dev = load_glue("RTE", glue_root() / "RTE", "dev");
    ASSERT_EQ(train.examples.size(), 2490u);
    ASSERT_EQ(dev.examples.size(), 277u);
    expect_clean(train);
    expect_clean(dev);
    EXPECT_EQ(label_counts(train, 2), (std::vector<int>{1249, 1241}));  // entailment, not_entailment
    EXPECT_EQ(label_counts(dev, 2), (std::vector<int>{146, 131}));
    EXPECT_EQ(train.examples[0].id, "0");
    EXPECT_EQ(train.examples[0].text_a, "No Weapons of Mass Destruction Found in Iraq Yet.");
    EXPECT_EQ(*train.examples[0].text_b, "Weapons of Mass Destruction Found in Iraq.");
    EXPECT_EQ(train.examples[0].label, 1);  // not_entailment
    EXPECT_EQ(train.examples[1].label, 0);  // entailment
    EXPECT_EQ(dev.examples[0].label, 1);
    EXPECT_EQ(*dev.examples[0].text_b, "Christopher Reeve had an accident.");
}

TEST(GlueReal, STSB) {
    REQUIRE_SHARED_GLUE();
    const GlueSplit train = load_glue("stsb", glue_root() / "STS-B", "train");
    const GlueSplit dev = load_glue("sts-b", glue_root() / "STS-B", "dev");
    ASSERT_EQ(train.examples.size(), 5749u);
    ASSERT_EQ(dev.examples.size(), 1500u);
    expect_clean(train);
    expect_clean(dev);
    EXPECT_EQ(train.examples[0].text_a, "A plane is taking off.");
    EXPECT_EQ(*train.examples[0].text_b, "An air plane is taking off.");
    EXPECT_DOUBLE_EQ(train.examples[0].target, 5.0);
    EXPECT_DOUBLE_EQ(train.examples[1].target, 3.8);
    EXPECT_EQ(dev.examples.back().id, "1499");
    EXPECT_DOUBLE_EQ(dev.examples.back().target, 0.0);
    double sum = 0, lo = 10, hi = -10;
    for (const auto& e : train.examples) {
        sum += e.target, lo = std::min(lo, e.target), hi = std::max(hi, e.target);
        EXPECT_EQ(e.label, -1);
    }
    EXPECT_NEAR(sum, 15528.043397, 1e-4);  // sum of the score column (awk)
    EXPECT_DOUBLE_EQ(lo, 0.0);
    EXPECT_DOUBLE_EQ(hi, 5.0);
    double dsum = 0;
    for (const auto& e : dev.examples) dsum += e.target;
    EXPECT_NEAR(dsum / 1500.0, 2.363908, 1e-6);
}

// ---- fixtures: tasks whose files are not shared -------------------------------------------------------------

TEST_F(GlueFixture, QQPWithMissingFieldQuirks) {
    write("QQP", "train.tsv",
          "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"
          "0\t1\t2\tHow do I learn \"C++\"?\tWhat's the best way to learn C++?\t1\n"
          "1\t3\t4\tWhy is the sky blue?\n"           // line 3: question broken over lines (quirk)
          "Because of Rayleigh scattering.\t0\n"      // line 4: its tail (quirk)
          "2\t5\t6\tIs water wet?\tAre fish wet?\t0\n"
          "3\t7\t8\tWhat is 2+2?\tWhat is four?\t\n"  // line 6: empty label (quirk)
          "4\t9\t10\tHi\t\t1");                       // empty question2 is kept; no final newline
    const GlueSplit s = load_glue("QQP", dir_ / "QQP", "train");
    ASSERT_EQ(s.examples.size(), 3u);
    EXPECT_EQ(s.skipped_quirks, 3);
    ASSERT_EQ(s.warnings.size(), 2u);
    EXPECT_NE(s.warnings[0].find("skipped 2 row(s) with missing fields"), std::string::npos) << s.warnings[0];
    EXPECT_NE(s.warnings[0].find("lines 3, 4"), std::string::npos) << s.warnings[0];
    EXPECT_NE(s.warnings[0].find("train.tsv"), std::string::npos) << s.warnings[0];
    EXPECT_NE(s.warnings[1].find("line 6"), std::string::npos) << s.warnings[1];
    EXPECT_EQ(s.examples[0].id, "0");
    EXPECT_EQ(s.examples[0].text_a, "How do I learn \"C++\"?");  // quotes are literal
    EXPECT_EQ(s.examples[0].label, 1);
    EXPECT_EQ(s.examples[1].id, "2");
    EXPECT_EQ(s.examples[1].label, 0);
    EXPECT_EQ(s.examples[2].text_b, std::optional<std::string>(""));

    write("QQP", "test.tsv", "id\tquestion1\tquestion2\n0\tA?\tB?\n1\tC?\tD?\n");
    const GlueSplit t = load_glue("qqp", dir_ / "QQP", "test");
    ASSERT_EQ(t.examples.size(), 2u);
    EXPECT_EQ(t.examples[1].label, -1);
    EXPECT_EQ(*t.examples[1].text_b, "D?");

    // Too many columns is not the known quirk: an error naming file and line.
    write("QQP", "dev.tsv", "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n0\t1\t2\ta\tb\t1\n1\t1\t2\ta\tb\t1\textra\n");
    const std::string e = error_of([&] { load_glue("qqp", dir_ / "QQP", "dev"); });
    EXPECT_NE(e.find((dir_ / "QQP" / "dev.tsv").string() + ":3:"), std::string::npos) << e;
    EXPECT_NE(e.find("expected 6 tab-separated columns"), std::string::npos) << e;
    EXPECT_NE(e.find("got 7"), std::string::npos) << e;
}

TEST_F(GlueFixture, MNLISplitsAndNoConsensusRows) {
    const std::string head12 =
        "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\t"
        "sentence2_parse\tsentence1\tsentence2\tlabel1\tgold_label\n";
    write("MNLI", "train.tsv",
          head12 + "0\t31193\t31193n\tgovernment\t( a )\t( b )\t(ROOT a)\t(ROOT b)\tConceptually cream skimming.\t"
                   "Product and geography are what make cream skimming work.\tneutral\tneutral\n"
                   "1\t101457\t101457e\ttelephone\t( c )\t( d )\t(ROOT c)\t(ROOT d)\tyou know during the season\t"
                   "You lose the things.\tentailment\tentailment\n"
                   "2\t134793\t134793e\tfiction\t( e )\t( f )\t(ROOT e)\t(ROOT f)\tOne of our number.\t"
                   "A member of my team.\tcontradiction\tcontradiction\n");
    const GlueSplit train = load_glue("mnli", dir_ / "MNLI", "train");
    ASSERT_EQ(train.examples.size(), 3u);
    expect_clean(train);
    EXPECT_EQ(train.examples[0].label, 1);  // neutral
    EXPECT_EQ(train.examples[1].label, 0);  // entailment
    EXPECT_EQ(train.examples[2].label, 2);  // contradiction
    EXPECT_EQ(train.examples[0].text_a, "Conceptually cream skimming.");
    EXPECT_EQ(*train.examples[1].text_b, "You lose the things.");
    EXPECT_EQ(train.examples[2].id, "2");

    const std::string head16 =
        "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\t"
        "sentence2_parse\tsentence1\tsentence2\tlabel1\tlabel2\tlabel3\tlabel4\tlabel5\tgold_label\r\n";
    const std::string dev = head16 +
                            "0\t1\t1n\tslate\tx\tx\tx\tx\tThe new rights are nice.\tEveryone loves them.\tneutral\t"
                            "entailment\tneutral\tneutral\tneutral\tneutral\r\n"
                            "1\t2\t2c\tslate\tx\tx\tx\tx\tA.\tB.\tneutral\tentailment\tcontradiction\tneutral\t"
                            "entailment\t-\r\n"
                            "2\t3\t3c\tslate\tx\tx\tx\tx\tC.\tD.\tcontradiction\tcontradiction\tcontradiction\t"
                            "contradiction\tcontradiction\tcontradiction\r\n";
    write("MNLI", "dev_matched.tsv", dev);
    write("MNLI", "dev_mismatched.tsv", dev);
    for (const char* split : {"dev", "dev_matched", "validation_mismatched"}) {
        const GlueSplit d = load_glue("MNLI", dir_ / "MNLI", split);
        ASSERT_EQ(d.examples.size(), 2u) << split;
        EXPECT_EQ(d.skipped_quirks, 1) << split;
        ASSERT_EQ(d.warnings.size(), 1u);
        EXPECT_NE(d.warnings[0].find("gold_label '-'"), std::string::npos) << d.warnings[0];
        EXPECT_NE(d.warnings[0].find("line 3"), std::string::npos) << d.warnings[0];
        EXPECT_EQ(d.examples[0].label, 1);
        EXPECT_EQ(d.examples[1].label, 2);
        EXPECT_EQ(*d.examples[1].text_b, "D.");  // "\r\n" endings: no '\r' left in the last column
        EXPECT_EQ(d.examples[1].id, "2");
    }

    write("MNLI", "test_matched.tsv",
          "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\t"
          "sentence2_parse\tsentence1\tsentence2\n"
          "0\t31493\t31493\ttravel\tx\tx\tx\tx\tHierbas.\tThe drink is mild.\n");
    const GlueSplit t = load_glue("mnli", dir_ / "MNLI", "test");
    ASSERT_EQ(t.examples.size(), 1u);
    EXPECT_EQ(t.examples[0].label, -1);
    EXPECT_EQ(*t.examples[0].text_b, "The drink is mild.");

    // An unknown class name is an error, not a quirk.
    write("MNLI", "train.tsv", head12 + "0\t1\t1\tg\tx\tx\tx\tx\ta\tb\tneutral\tmaybe\n");
    const std::string e = error_of([&] { load_glue("mnli", dir_ / "MNLI", "train"); });
    EXPECT_NE(e.find("train.tsv:2:"), std::string::npos) << e;
    EXPECT_NE(e.find("column 12 ('gold_label')"), std::string::npos) << e;
    EXPECT_NE(e.find("expected one of entailment, neutral, contradiction"), std::string::npos) << e;
    EXPECT_NE(e.find("got 'maybe'"), std::string::npos) << e;
}

TEST_F(GlueFixture, QNLIAndWNLI) {
    write("QNLI", "train.tsv",
          "index\tquestion\tsentence\tlabel\n"
          "0\tWhat came into force after the new constitution was herald?\tAs of that day, the new constitution "
          "heralding the Second Republic came into force.\tentailment\n"
          "1\tWhat is the first major city in the stream of the Rhine?\tThe most important tributaries in this "
          "area are the Ill below of Strasbourg.\tnot_entailment\n");
    const GlueSplit q = load_glue("qnli", dir_ / "QNLI", "train");
    ASSERT_EQ(q.examples.size(), 2u);
    EXPECT_EQ(q.examples[0].label, 0);
    EXPECT_EQ(q.examples[1].label, 1);
    EXPECT_EQ(q.examples[1].text_a, "What is the first major city in the stream of the Rhine?");
    write("QNLI", "test.tsv", "index\tquestion\tsentence\n0\tQ?\tS.\n");
    EXPECT_EQ(load_glue("qnli", dir_ / "QNLI", "test").examples.at(0).label, -1);

    write("WNLI", "train.tsv",
          "index\tsentence1\tsentence2\tlabel\n"
          "0\tI stuck a pin through a carrot. When I pulled the pin out, it had a hole.\tThe carrot had a hole.\t1\n"
          "1\tJohn couldn't see the stage with Billy in front of him because he is so short.\tJohn is so short.\t1\n"
          "2\tThe police arrested all of the gang members.\tThe police were trying to stop the drug trade.\t0\n");
    const GlueSplit w = load_glue("WNLI", dir_ / "WNLI", "train");
    ASSERT_EQ(w.examples.size(), 3u);
    EXPECT_EQ(w.examples[0].label, 1);  // 1 = entailment, label_names[1]
    EXPECT_EQ(glue_task("wnli").label_names[static_cast<std::size_t>(w.examples[0].label)], "entailment");
    EXPECT_EQ(w.examples[2].label, 0);
}

TEST_F(GlueFixture, TestSplitsOfSharedTasks) {
    write("CoLA", "test.tsv", "index\tsentence\n0\tBill whistled past the house.\n1\tThe car honked its way down the road.\n");
    const GlueSplit c = load_glue("cola", dir_ / "CoLA", "test");
    ASSERT_EQ(c.examples.size(), 2u);
    EXPECT_EQ(c.examples[1].id, "1");
    EXPECT_EQ(c.examples[1].label, -1);
    EXPECT_EQ(c.examples[0].text_a, "Bill whistled past the house.");

    write("SST-2", "test.tsv", "index\tsentence\n0\tuneasy mishmash of styles and genres .\n");
    EXPECT_EQ(load_glue("sst2", dir_ / "SST-2", "test").examples.at(0).label, -1);

    write("MRPC", "test.tsv",
          "\xEF\xBB\xBFindex\t#1 ID\t#2 ID\t#1 String\t#2 String\n0\t1089874\t1089925\tPCCW 's chief.\tCurrent Chief.\n");
    const GlueSplit m = load_glue("mrpc", dir_ / "MRPC", "test");
    ASSERT_EQ(m.examples.size(), 1u);
    EXPECT_EQ(m.examples[0].id, "0");  // the index column, as GLUE submissions need
    EXPECT_EQ(m.examples[0].label, -1);

    write("STS-B", "test.tsv",
          "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\n"
          "0\tmain-captions\tMSRvid\t2012test\t0024\tnone\tnone\tA girl is styling her hair.\tA girl is brushing her hair.\n");
    const GlueSplit s = load_glue("stsb", dir_ / "STS-B", "test");
    ASSERT_EQ(s.examples.size(), 1u);
    EXPECT_EQ(*s.examples[0].text_b, "A girl is brushing her hair.");
    EXPECT_EQ(s.examples[0].label, -1);

    write("RTE", "test.tsv", "index\tsentence1\tsentence2\n0\tMangla was summoned.\tMangla was summoned after.\n");
    EXPECT_EQ(load_glue("rte", dir_ / "RTE", "test").examples.at(0).label, -1);

    // A test file that keeps an empty label column: unlabelled rows, not errors.
    write("RTE", "test.tsv", "index\tsentence1\tsentence2\tlabel\n0\ta\tb\t\n1\tc\td\tentailment\n");
    const GlueSplit r = load_glue("rte", dir_ / "RTE", "test");
    ASSERT_EQ(r.examples.size(), 2u);
    EXPECT_EQ(r.examples[0].label, -1);
    EXPECT_EQ(r.examples[1].label, 0);
}

TEST_F(GlueFixture, LineEndingsBlankLinesAndQuotes) {
    // CRLF, a final line without newline, quotes that are literal text, a blank line (ignored, reported).
    write("SST-2", "train.tsv", "sentence\tlabel\r\n\"a \"quoted\" film\t1\r\n\r\n'tis bad \t0");
    const GlueSplit s = load_glue("sst-2", dir_ / "SST-2", "train");
    ASSERT_EQ(s.examples.size(), 2u);
    EXPECT_EQ(s.examples[0].text_a, "\"a \"quoted\" film");
    EXPECT_EQ(s.examples[0].label, 1);
    EXPECT_EQ(s.examples[1].text_a, "'tis bad ");
    EXPECT_EQ(s.examples[1].label, 0);
    EXPECT_EQ(s.examples[1].id, "4");
    EXPECT_EQ(s.skipped_quirks, 0);
    ASSERT_EQ(s.warnings.size(), 1u);
    EXPECT_NE(s.warnings[0].find("blank line(s): line 3"), std::string::npos) << s.warnings[0];

    // CoLA without header, CRLF, class names accepted as well as ids.
    write("CoLA", "dev.tsv", "gj04\t1\t\tThe sailors rode the breeze.\r\ngj04\t0\t*\tThe more you eat, the more.\r\n");
    const GlueSplit c = load_glue("cola", dir_ / "CoLA", "dev");
    ASSERT_EQ(c.examples.size(), 2u);
    EXPECT_EQ(c.examples[1].label, 0);
    EXPECT_EQ(c.examples[1].text_a, "The more you eat, the more.");
}

TEST_F(GlueFixture, ErrorsNameFileLineAndColumn) {
    const auto file = write("SST-2", "train.tsv", "sentence\tlabel\ngood\t1\nbad\t2\n");
    std::string e = error_of([&] { load_glue("sst2", dir_ / "SST-2", "train"); });
    EXPECT_NE(e.find(file.string() + ":3: column 2 ('label'): expected a class id 0..1, got '2'"), std::string::npos) << e;

    write("SST-2", "train.tsv", "sentence\tlabel\ngood\t1\nno label here\n");
    e = error_of([&] { load_glue("sst2", dir_ / "SST-2", "train"); });
    EXPECT_NE(e.find(file.string() + ":3: expected 2 tab-separated columns (as in the header: sentence, label), got 1"),
              std::string::npos)
        << e;

    write("SST-2", "train.tsv", "sentence\tlabel\ngood\t1.0\n");
    e = error_of([&] { load_glue("sst2", dir_ / "SST-2", "train"); });
    EXPECT_NE(e.find(":2: column 2 ('label')"), std::string::npos) << e;

    write("SST-2", "train.tsv", "text\tlabel\ngood\t1\n");
    e = error_of([&] { load_glue("sst2", dir_ / "SST-2", "train"); });
    EXPECT_NE(e.find(file.string() + ":1: the header has no column 'sentence'"), std::string::npos) << e;
    EXPECT_NE(e.find("got columns: text, label"), std::string::npos) << e;

    write("SST-2", "dev.tsv", "");
    e = error_of([&] { load_glue("sst2", dir_ / "SST-2", "dev"); });
    EXPECT_NE(e.find("dev.tsv: the file is empty"), std::string::npos) << e;

    e = error_of([&] { load_glue("sst2", dir_ / "SST-2", "test"); });
    EXPECT_NE(e.find("test.tsv: cannot open"), std::string::npos) << e;
    e = error_of([&] { load_glue("sst2", dir_ / "nowhere", "train"); });
    EXPECT_NE(e.find("does not exist"), std::string::npos) << e;

    const auto cola = write("CoLA", "train.tsv", "gj04\t1\t\tFine.\ngj04\t1\tBroken row.\n");
    e = error_of([&] { load_glue("cola", dir_ / "CoLA", "train"); });
    EXPECT_NE(e.find(cola.string() + ":2: expected 4 tab-separated columns (CoLA: source, label, original label, sentence), got 3"),
              std::string::npos)
        << e;

    const auto rte = write("RTE", "train.tsv", "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailed\n");
    e = error_of([&] { load_glue("rte", dir_ / "RTE", "train"); });
    EXPECT_NE(e.find(rte.string() + ":2: column 4 ('label'): expected one of entailment, not_entailment, got 'entailed'"),
              std::string::npos)
        << e;

    // A train split must have its label column; a test split need not.
    write("RTE", "dev.tsv", "index\tsentence1\tsentence2\n0\ta\tb\n");
    e = error_of([&] { load_glue("rte", dir_ / "RTE", "dev"); });
    EXPECT_NE(e.find("dev.tsv:1: the header has no column 'label'"), std::string::npos) << e;

    const auto sts = write("STS-B", "train.tsv",
                           "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"
                           "0\tg\tf\ty\to\ts\ts\tA.\tB.\t4.5\n"
                           "1\tg\tf\ty\to\ts\ts\tA.\tB.\tfive\n");
    e = error_of([&] { load_glue("stsb", dir_ / "STS-B", "train"); });
    EXPECT_NE(e.find(sts.string() + ":3: column 10 ('score'): expected a similarity score (a number), got 'five'"),
              std::string::npos)
        << e;

    // The MNLI "-" quirk is MNLI's: in RTE a "-" label is an error.
    write("RTE", "train.tsv", "index\tsentence1\tsentence2\tlabel\n0\ta\tb\t-\n");
    EXPECT_NE(error_of([&] { load_glue("rte", dir_ / "RTE", "train"); }).find(":2: column 4"), std::string::npos);
    // A short row is QQP's quirk only.
    write("QNLI", "train.tsv", "index\tquestion\tsentence\tlabel\n0\tq\n");
    EXPECT_NE(error_of([&] { load_glue("qnli", dir_ / "QNLI", "train"); }).find("train.tsv:2: expected 4"),
              std::string::npos);
}

// ---- encodings ----------------------------------------------------------------------------------------------

namespace {
// "café crème brûlée" in UTF-8 and in Latin-1 (é e9, è e8, û fb).
const std::string kCafeUtf8 = "caf\xC3\xA9 cr\xC3\xA8me br\xC3\xBBl\xC3\xA9" "e";
const std::string kCafeLatin1 = "caf\xE9 cr\xE8me br\xFBl\xE9" "e";
fs::path bert_tokenizer() { return fs::path(MEFT_SHARED_DIR) / "models" / "bert-tiny-tokenizer"; }
}  // namespace

TEST_F(GlueFixture, ALatin1LineIsAnErrorNamingFileLineAndByte) {
    const auto file = write("SST-2", "train.tsv", "sentence\tlabel\ngood\t1\n" + kCafeLatin1 + "\t1\nfine\t0\n");
    EXPECT_EQ(error_of([&] { load_glue("sst2", dir_ / "SST-2", "train"); }),
              file.string() + ":3: byte 4: not valid UTF-8 (e9 20: e9 starts a 3-byte sequence, but 20 is not a "
                              "continuation byte (80..bf)); the file may be Latin-1 — set task.encoding to \"latin-1\" "
                              "to read it as such");
    // In any column, the header included; a byte-order mark counts in the byte position.
    const auto mrpc = write("MRPC", "train.tsv",
                            "\xEF\xBB\xBFQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t1\t2\ta\tb\xFF\n");
    EXPECT_NE(error_of([&] { load_glue("mrpc", dir_ / "MRPC", "train"); })
                  .find(mrpc.string() + ":2: byte 10: not valid UTF-8 (ff: ff never occurs in UTF-8)"),
              std::string::npos);
    write("MRPC", "train.tsv", "\xEF\xBB\xBFQuality\t#1 ID\xE9\t#2 ID\t#1 String\t#2 String\n");
    EXPECT_NE(error_of([&] { load_glue("mrpc", dir_ / "MRPC", "train"); }).find("train.tsv:1: byte 17: "),
              std::string::npos);
}

TEST_F(GlueFixture, ALatin1FileReadAsLatin1TokenizesAsTheUtf8File) {
    for (const auto& [sub, text] : {std::pair{"utf8", kCafeUtf8}, std::pair{"latin1", kCafeLatin1}}) {
        write(sub, "train.tsv", "index\tsentence1\tsentence2\tlabel\n0\t" + text + "\tla " + text + "\tentailment\n");
        write(sub, "dev.tsv", "index\tsentence1\tsentence2\tlabel\n0\tun " + text + "\t" + text + "\tnot_entailment\n");
    }
    TextDecoding latin1;
    latin1.encoding = TextEncoding::latin1;
    const GlueSplit u = load_glue("rte", dir_ / "utf8", "train");
    const GlueSplit l = load_glue("rte", dir_ / "latin1", "train", latin1);
    ASSERT_EQ(l.examples.size(), 1u);
    EXPECT_EQ(l.examples[0].text_a, kCafeUtf8);
    ASSERT_TRUE(l.examples[0].text_b && u.examples[0].text_b);
    EXPECT_EQ(*l.examples[0].text_b, *u.examples[0].text_b);
    EXPECT_EQ(l.examples[0].label, 0);

    MEFT_REQUIRE_DIR(bert_tokenizer(), "the Latin-1 file is not tokenized");
    const auto tok = load_tokenizer(bert_tokenizer());
    GlueTaskRequest r;
    r.task = "rte";
    r.dir = dir_ / "utf8";
    const TaskData tu = load_glue_task(r, *tok);
    r.dir = dir_ / "latin1";
    r.decoding = latin1;  // what task.encoding "latin-1" sets
    const TaskData tl = load_glue_task(r, *tok);
    ASSERT_EQ(tl.train.size(), 1u);
    ASSERT_EQ(tl.dev.size(), 1u);
    EXPECT_EQ(tl.train[0].input_ids, tu.train[0].input_ids);
    EXPECT_EQ(tl.train[0].token_type_ids, tu.train[0].token_type_ids);
    EXPECT_EQ(tl.dev[0].input_ids, tu.dev[0].input_ids);
    // Not what the Latin-1 bytes gave when nothing checked them ("caf cr ##me br ##le").
    const std::string raw_b = "la " + kCafeLatin1;
    EXPECT_NE(tu.train[0].input_ids,
              tok->encode(kCafeLatin1, std::optional<std::string_view>(raw_b), r.max_seq_length).input_ids);
    // Read as UTF-8 (the default), the same request stops at the file's first line of text.
    r.decoding = {};
    EXPECT_NE(error_of([&] { load_glue_task(r, *tok); }).find("latin1/train.tsv:2: byte 6: not valid UTF-8"),
              std::string::npos);
}
