// Multiple-choice QA loaders: the real OpenBookQA / ARC / PIQA files under shared/data/qa, and
// hand-written fixtures for the other layouts (OpenBookQA jsonl, official ARC names, PIQA test, SciQ)
// and for error messages.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "core/error.h"
#include "data/qa.h"
#include "data/qa_pair_task.h"
#include "data/tokenizer.h"
#include "test_support.h"

namespace fs = std::filesystem;
using namespace meft;
using meft::test::error_of;

namespace {

fs::path qa_root() { return fs::path(MEFT_SHARED_DIR) / "data" / "qa"; }

#define REQUIRE_SHARED_QA() MEFT_REQUIRE_DIR(qa_root(), "the real QA files are not tested")

std::map<int, int> answer_counts(const std::vector<ChoiceExample>& v) {
    std::map<int, int> c;
    for (const auto& e : v) {
        EXPECT_GE(e.answer, 0) << e.id;
        EXPECT_LT(e.answer, static_cast<int>(e.choices.size())) << e.id;
        ++c[e.answer];
    }
    return c;
}

std::map<std::size_t, int> choice_counts(const std::vector<ChoiceExample>& v) {
    std::map<std::size_t, int> c;
    for (const auto& e : v) ++c[e.choices.size()];
    return c;
}

class QaFixture : public meft::test::TempDirTest {
protected:
    fs::path write(const std::string& sub, const std::string& name, const std::string& bytes) {
        fs::create_directories(dir_ / sub);
        std::ofstream(dir_ / sub / name, std::ios::binary) << bytes;
        return dir_ / sub / name;
    }
};

}  // namespace

TEST(QaTable, NamesAndAliases) {
    ASSERT_EQ(qa_tasks().size(), 5u);
    EXPECT_EQ(qa_task("OBQA").name, "openbookqa");
    EXPECT_EQ(qa_task("OpenBookQA").name, "openbookqa");
    EXPECT_EQ(qa_task("ARC-Easy").name, "arc_easy");
    EXPECT_EQ(qa_task("arc_e").name, "arc_easy");
    EXPECT_EQ(qa_task("ARC-Challenge").name, "arc_challenge");
    EXPECT_EQ(qa_task("PIQA").name, "piqa");
    EXPECT_EQ(qa_task("sciq").num_choices, 4);
    EXPECT_EQ(qa_task("piqa").num_choices, 2);
    EXPECT_EQ(qa_task("arc_easy").num_choices, 0);
    const std::string e = error_of([] { qa_task("hellaswag"); });
    EXPECT_NE(e.find("unknown QA task 'hellaswag'"), std::string::npos) << e;
    EXPECT_NE(e.find("openbookqa, arc_easy, arc_challenge, piqa, sciq"), std::string::npos) << e;
}

// ---- the real files ---------------------------------------------------------------------------------------

TEST(QaReal, OpenBookQAMainTsv) {
    REQUIRE_SHARED_QA();
    const fs::path dir = qa_root() / "OpenBookQA";  // the loader looks in Main/
    const auto train = load_qa("openbookqa", dir, "train");
    const auto dev = load_qa("obqa", dir / "Main", "validation");
    const auto test = load_qa("OpenBookQA", dir, "test");
    ASSERT_EQ(train.size(), 4957u);
    ASSERT_EQ(dev.size(), 500u);
    ASSERT_EQ(test.size(), 500u);
    EXPECT_EQ(answer_counts(train), (std::map<int, int>{{0, 1378}, {1, 1212}, {2, 1146}, {3, 1221}}));
    EXPECT_EQ(answer_counts(dev), (std::map<int, int>{{0, 126}, {1, 138}, {2, 110}, {3, 126}}));
    EXPECT_EQ(answer_counts(test), (std::map<int, int>{{0, 138}, {1, 126}, {2, 132}, {3, 104}}));
    for (const auto* split : {&train, &dev, &test}) EXPECT_EQ(choice_counts(*split), (std::map<std::size_t, int>{{4, int(split->size())}}));

    const auto& d0 = dev[0];
    EXPECT_EQ(d0.id, "8-376");
    EXPECT_EQ(d0.question,
              "Frilled sharks and angler fish live far beneath the surface of the ocean, which is why they are known as");
    EXPECT_EQ(d0.choices, (std::vector<std::string>{"Deep sea animals", "fish", "Long Sea Fish", "Far Sea Animals"}));
    EXPECT_EQ(d0.answer, 0);
    EXPECT_TRUE(d0.context.empty());
    EXPECT_EQ(dev[1].answer, 3);

    // The row whose Choices repeat the marker "(D)": the repeat is text of choice D.
    const ChoiceExample* quirk = nullptr;
    for (const auto& e : train)
        if (e.id == "12-1145") quirk = &e;
    ASSERT_NE(quirk, nullptr);
    EXPECT_EQ(quirk->question, "A learned behavior");
    EXPECT_EQ(quirk->choices,
              (std::vector<std::string>{"newborn turtles crawling towards the sea",
                                        "seals clapping to the delight of an audience", "ducks sitting on their eggs",
                                        "baby birds chewing worms (D) mother dogs nursing their pups"}));
    EXPECT_EQ(quirk->answer, 1);
}

TEST(QaReal, ARCEasyAndChallenge) {
    REQUIRE_SHARED_QA();
    const fs::path e = qa_root() / "ARC-Easy", c = qa_root() / "ARC-Challenge";
    const auto etrain = load_qa("arc_easy", e, "train"), edev = load_qa("arc-easy", e, "dev"),
               etest = load_qa("ARC-Easy", e, "test");
    const auto ctrain = load_qa("arc_challenge", c, "train"), cdev = load_qa("arc_c", c, "dev"),
               ctest = load_qa("ARC-Challenge", c, "test");
    EXPECT_EQ(etrain.size(), 2251u);
    EXPECT_EQ(edev.size(), 570u);
    EXPECT_EQ(etest.size(), 2376u);
    EXPECT_EQ(ctrain.size(), 1119u);
    EXPECT_EQ(cdev.size(), 299u);
    EXPECT_EQ(ctest.size(), 1170u);
    // Answers over A-E and 1-5 alike, counted with a script over the raw jsonl.
    EXPECT_EQ(answer_counts(etrain), (std::map<int, int>{{0, 548}, {1, 588}, {2, 578}, {3, 535}, {4, 2}}));
    EXPECT_EQ(answer_counts(edev), (std::map<int, int>{{0, 158}, {1, 152}, {2, 142}, {3, 118}}));
    EXPECT_EQ(answer_counts(etest), (std::map<int, int>{{0, 596}, {1, 585}, {2, 633}, {3, 561}, {4, 1}}));
    EXPECT_EQ(answer_counts(ctrain), (std::map<int, int>{{0, 239}, {1, 296}, {2, 291}, {3, 293}}));
    EXPECT_EQ(answer_counts(cdev), (std::map<int, int>{{0, 64}, {1, 73}, {2, 78}, {3, 83}, {4, 1}}));
    EXPECT_EQ(answer_counts(ctest), (std::map<int, int>{{0, 266}, {1, 311}, {2, 308}, {3, 285}}));
    EXPECT_EQ(choice_counts(etrain), (std::map<std::size_t, int>{{3, 6}, {4, 2241}, {5, 4}}));

    const auto& c0 = cdev[0];
    EXPECT_EQ(c0.id, "Mercury_SC_407695");
    EXPECT_EQ(c0.question.rfind("Juan and LaKeisha roll a few objects down a ramp.", 0), 0u);
    EXPECT_EQ(c0.choices, (std::vector<std::string>{"Put the objects in groups.", "Change the height of the ramp.",
                                                    "Choose different objects to roll.",
                                                    "Record the details of the investigation."}));
    EXPECT_EQ(c0.answer, 3);
    EXPECT_TRUE(c0.context.empty());  // "para" is ignored

    // Digit labels: ARC-Easy dev line 9, answerKey "1".
    EXPECT_EQ(edev[8].id, "NYSEDREGENTS_2014_8_10");
    EXPECT_EQ(edev[8].answer, 0);
    EXPECT_EQ(edev[8].choices.front(), "obtain energy");
    // Five choices: ARC-Easy train line 754, answerKey "D".
    EXPECT_EQ(etrain[753].id, "TIMSS_2003_8_pg24");
    EXPECT_EQ(etrain[753].choices.size(), 5u);
    EXPECT_EQ(etrain[753].answer, 3);
}

TEST(QaReal, PIQAValid) {
    REQUIRE_SHARED_QA();
    const auto v = load_qa("piqa", qa_root() / "PIQA", "dev");
    ASSERT_EQ(v.size(), 1838u);
    EXPECT_EQ(answer_counts(v), (std::map<int, int>{{0, 910}, {1, 928}}));
    EXPECT_EQ(v[0].question, "How do I ready a guinea pig cage for it's new occupants?");
    ASSERT_EQ(v[0].choices.size(), 2u);
    EXPECT_EQ(v[0].choices[0].rfind("Provide the guinea pig with a cage full of a few inches of bedding made of ripped paper", 0), 0u);
    EXPECT_EQ(v[0].answer, 0);
    EXPECT_EQ(v[0].id, "1");
    EXPECT_EQ(v[1].question, "dresser");
    EXPECT_EQ(v[1].choices[1], "finish, woodgrain with  bobby pin ");
    EXPECT_EQ(v[1].answer, 1);
    EXPECT_EQ(load_qa("PIQA", qa_root() / "PIQA", "validation").size(), 1838u);
    // No train files are shared: a clear error naming what was looked for.
    const std::string e = error_of([] { load_qa("piqa", qa_root() / "PIQA", "train"); });
    EXPECT_NE(e.find("train.jsonl"), std::string::npos) << e;
}

// ---- fixtures -----------------------------------------------------------------------------------------------

TEST_F(QaFixture, OpenBookQAJsonlLayoutAndTsvErrors) {
    write("OBQA", "dev.jsonl",
          "{\"id\": \"7-980\", \"question\": {\"stem\": \"The sun is responsible for\", \"choices\": ["
          "{\"text\": \"puppies learning new tricks\", \"label\": \"A\"}, {\"text\": \"children growing up\", \"label\": \"B\"},"
          "{\"text\": \"flowers wilting\", \"label\": \"C\"}, {\"text\": \"plants sprouting\", \"label\": \"D\"}]}, "
          "\"fact1\": \"the sun is the source of energy\", \"answerKey\": \"D\"}\r\n"
          "\r\n"
          "{\"id\": \"7-584\", \"question\": {\"stem\": \"When standing miles away\", \"choices\": ["
          "{\"text\": \"close\", \"label\": \"A\"}, {\"text\": \"smaller\", \"label\": \"B\"}]}, \"answerKey\": \"B\"}");
    const auto v = load_qa("openbookqa", dir_ / "OBQA", "dev");
    ASSERT_EQ(v.size(), 2u);
    EXPECT_EQ(v[0].id, "7-980");
    EXPECT_EQ(v[0].answer, 3);
    EXPECT_EQ(v[0].choices[3], "plants sprouting");
    EXPECT_EQ(v[1].answer, 1);

    const auto tsv = write("OBQA", "train.tsv",
                           "ID\tQuestion Stem\tChoices\tComplete Question\tAnswer Key\n"
                           "1\tStem one\t(A) a (B) b (C) c (D) d\tStem one (A) a (B) b (C) c (D) d\tC\n"
                           "2\tStem two\t(A) a (B) b (C) c (D) d\tStem two (A) a (B) b (C) c (D) d\tE\n");
    std::string e = error_of([&] { load_qa("openbookqa", dir_ / "OBQA", "train"); });
    EXPECT_NE(e.find(tsv.string() + ":3: column 5 ('Answer Key'): expected one of A, B, C, D, got 'E'"), std::string::npos)
        << e;
    write("OBQA", "train.tsv",
          "ID\tQuestion Stem\tChoices\tComplete Question\tAnswer Key\n1\tStem\tno markers\tStem\tA\n");
    e = error_of([&] { load_qa("openbookqa", dir_ / "OBQA", "train"); });
    EXPECT_NE(e.find("train.tsv:2: column 3 ('Choices'): expected \"(A) text (B) text ...\""), std::string::npos) << e;
    write("OBQA", "train.tsv", "ID\tQuestion Stem\tChoices\tComplete Question\tAnswer Key\n1\tStem\t(A) a (B) b\n");
    e = error_of([&] { load_qa("openbookqa", dir_ / "OBQA", "train"); });
    EXPECT_NE(e.find("train.tsv:2: expected 5 tab-separated columns"), std::string::npos) << e;
    write("OBQA", "train.tsv", "id\tquestion\n");
    e = error_of([&] { load_qa("openbookqa", dir_ / "OBQA", "train"); });
    EXPECT_NE(e.find("train.tsv:1: the header has no column 'ID'"), std::string::npos) << e;

    // A TSV test split may leave the answer empty.
    write("OBQA", "test.tsv",
          "ID\tQuestion Stem\tChoices\tComplete Question\tAnswer Key\r\n1\tStem\t(A) x (B) y (C) z\tStem (A) x (B) y (C) z\t\r\n");
    const auto t = load_qa("openbookqa", dir_ / "OBQA", "test");
    ASSERT_EQ(t.size(), 1u);
    EXPECT_EQ(t[0].answer, -1);
    EXPECT_EQ(t[0].choices, (std::vector<std::string>{"x", "y", "z"}));
}

// A number past double's range is nlohmann's out_of_range, not a parse_error (found by fuzz_qa_jsonl).
TEST_F(QaFixture, JsonNumberOverflowIsAnError) {
    const auto arc = write("ARC", "train.jsonl", "{\"id\": 1e999}\n");
    std::string e = error_of([&] { load_qa("arc_easy", dir_ / "ARC", "train"); });
    EXPECT_NE(e.find(arc.string() + ":1: invalid JSON"), std::string::npos) << e;
    const auto sciq = write("SciQ", "train.json", "[{\"question\": 1e999}]");
    e = error_of([&] { load_qa("sciq", dir_ / "SciQ", "train"); });
    EXPECT_NE(e.find(sciq.string() + ": invalid JSON"), std::string::npos) << e;
}

TEST_F(QaFixture, ARCOfficialNamesDigitLabelsAndErrors) {
    write("ARC-Challenge", "ARC-Challenge-Train.jsonl",
          "{\"id\": \"Q1\", \"question\": {\"stem\": \"Which?\", \"choices\": [{\"text\": \"one\", \"label\": \"1\"}, "
          "{\"text\": \"two\", \"label\": \"2\"}, {\"text\": \"three\", \"label\": \"3\"}]}, \"answerKey\": \"3\"}\n"
          "{\"id\": \"Q2\", \"question\": {\"stem\": \"What?\", \"choices\": [{\"text\": \"a\", \"label\": \"A\", \"para\": \"p\"}, "
          "{\"text\": \"b\", \"label\": \"B\"}, {\"text\": \"c\", \"label\": \"C\"}, {\"text\": \"d\", \"label\": \"D\"}, "
          "{\"text\": \"e\", \"label\": \"E\"}]}, \"answerKey\": \"E\"}\n");
    const auto v = load_qa("arc_challenge", dir_ / "ARC-Challenge", "train");
    ASSERT_EQ(v.size(), 2u);
    EXPECT_EQ(v[0].answer, 2);
    EXPECT_EQ(v[0].choices.size(), 3u);
    EXPECT_EQ(v[1].answer, 4);
    EXPECT_EQ(v[1].question, "What?");

    const auto f = write("ARC-Easy", "dev.jsonl",
                         "{\"id\": \"Q1\", \"question\": {\"stem\": \"S\", \"choices\": [{\"text\": \"a\", \"label\": \"A\"}, "
                         "{\"text\": \"b\", \"label\": \"B\"}]}, \"answerKey\": \"A\"}\n"
                         "{\"id\": \"Q2\", \"question\": {\"stem\": \"S\", \"choices\": [{\"text\": \"a\", \"label\": \"A\"}, "
                         "{\"text\": \"b\", \"label\": \"B\"}]}, \"answerKey\": \"3\"}\n");
    std::string e = error_of([&] { load_qa("arc_easy", dir_ / "ARC-Easy", "dev"); });
    EXPECT_NE(e.find(f.string() + ":2: 'answerKey' is \"3\", expected one of the choice labels A, B"), std::string::npos) << e;

    write("ARC-Easy", "dev.jsonl", "{\"id\": \"Q1\", \"question\": {\"stem\": \"S\", \"choices\": [}\n");
    e = error_of([&] { load_qa("arc_easy", dir_ / "ARC-Easy", "dev"); });
    EXPECT_NE(e.find(f.string() + ":1: invalid JSON"), std::string::npos) << e;

    write("ARC-Easy", "dev.jsonl",
          "\n{\"id\": \"Q1\", \"question\": {\"choices\": [{\"text\": \"a\"}, {\"text\": \"b\"}]}, \"answerKey\": \"A\"}\n");
    e = error_of([&] { load_qa("arc_easy", dir_ / "ARC-Easy", "dev"); });
    EXPECT_NE(e.find(f.string() + ":2: question: missing key 'stem'"), std::string::npos) << e;

    write("ARC-Easy", "dev.jsonl",
          "{\"id\": \"Q1\", \"question\": {\"stem\": \"S\", \"choices\": [{\"text\": \"a\"}, {\"text\": 7}]}, \"answerKey\": \"A\"}\n");
    e = error_of([&] { load_qa("arc_easy", dir_ / "ARC-Easy", "dev"); });
    EXPECT_NE(e.find(":1: question.choices[1]: key 'text' must be a string, got number 7"), std::string::npos) << e;

    write("ARC-Easy", "dev.jsonl",
          "{\"id\": \"Q1\", \"question\": {\"stem\": \"S\", \"choices\": [{\"text\": \"a\"}, {\"text\": \"b\"}]}}\n");
    e = error_of([&] { load_qa("arc_easy", dir_ / "ARC-Easy", "dev"); });
    EXPECT_NE(e.find(":1: missing key 'answerKey'"), std::string::npos) << e;
    // ... which a test split may omit; choices without labels are A, B, ...
    write("ARC-Easy", "test.jsonl",
          "{\"id\": \"Q1\", \"question\": {\"stem\": \"S\", \"choices\": [{\"text\": \"a\"}, {\"text\": \"b\"}]}}\n");
    EXPECT_EQ(load_qa("arc_easy", dir_ / "ARC-Easy", "test").at(0).answer, -1);

    write("ARC-Easy", "train.jsonl", "version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 123\n");
    e = error_of([&] { load_qa("arc_easy", dir_ / "ARC-Easy", "train"); });
    EXPECT_NE(e.find("train.jsonl:1: this is a Git LFS pointer"), std::string::npos) << e;

    e = error_of([&] { load_qa("arc_easy", dir_ / "ARC-Easy", "holdout"); });
    EXPECT_NE(e.find("no split 'holdout'"), std::string::npos) << e;
    e = error_of([&] { load_qa("arc_easy", dir_ / "missing", "train"); });
    EXPECT_NE(e.find("does not exist"), std::string::npos) << e;
}

TEST_F(QaFixture, PIQALabelsAlignedByLine) {
    write("PIQA", "train.jsonl",
          "{\"goal\": \"Make outdoor pillow.\", \"sol1\": \"Blow into tin can.\", \"sol2\": \"Blow into trash bag.\"}\r\n"
          "{\"goal\": \"ice box\", \"sol1\": \"add water\", \"sol2\": \"add soda\"}\r\n");
    const auto labels = write("PIQA", "train-labels.lst", "1\r\n0\r\n");
    const auto v = load_qa("piqa", dir_ / "PIQA", "train");
    ASSERT_EQ(v.size(), 2u);
    EXPECT_EQ(v[0].answer, 1);
    EXPECT_EQ(v[1].answer, 0);
    EXPECT_EQ(v[1].choices, (std::vector<std::string>{"add water", "add soda"}));
    EXPECT_EQ(v[1].id, "2");

    write("PIQA", "train-labels.lst", "1\n");
    std::string e = error_of([&] { load_qa("piqa", dir_ / "PIQA", "train"); });
    EXPECT_NE(e.find(labels.string() + ": 1 labels, but"), std::string::npos) << e;
    EXPECT_NE(e.find("has 2 items (the first without a label is on line 2)"), std::string::npos) << e;
    write("PIQA", "train-labels.lst", "1\n0\n1\n");
    e = error_of([&] { load_qa("piqa", dir_ / "PIQA", "train"); });
    EXPECT_NE(e.find(labels.string() + ":3: more labels than items"), std::string::npos) << e;
    write("PIQA", "train-labels.lst", "1\nyes\n");
    e = error_of([&] { load_qa("piqa", dir_ / "PIQA", "train"); });
    EXPECT_NE(e.find(labels.string() + ":2: expected a label 0 or 1, got 'yes'"), std::string::npos) << e;

    write("PIQA", "valid.jsonl", "{\"goal\": \"g\", \"sol1\": \"a\"}\n");
    write("PIQA", "valid-labels.lst", "0\n");
    e = error_of([&] { load_qa("piqa", dir_ / "PIQA", "dev"); });
    EXPECT_NE(e.find("valid.jsonl:1: missing key 'sol2'"), std::string::npos) << e;

    write("PIQA", "tests.jsonl", "{\"goal\": \"g\", \"sol1\": \"a\", \"sol2\": \"b\"}");
    const auto t = load_qa("piqa", dir_ / "PIQA", "test");
    ASSERT_EQ(t.size(), 1u);
    EXPECT_EQ(t[0].answer, -1);

    fs::remove(dir_ / "PIQA" / "valid-labels.lst");
    e = error_of([&] { load_qa("piqa", dir_ / "PIQA", "dev"); });
    EXPECT_NE(e.find("valid-labels.lst: cannot open"), std::string::npos) << e;
}

TEST_F(QaFixture, SciQJsonArrayFixedChoiceOrder) {
    write("SciQ", "train.json",
          "[\n"
          "  {\n"
          "    \"question\": \"What type of organism is commonly used in preparation of foods such as cheese?\",\n"
          "    \"distractor3\": \"viruses\",\n"
          "    \"distractor1\": \"protozoa\",\n"
          "    \"distractor2\": \"gymnosperms\",\n"
          "    \"correct_answer\": \"mesophilic organisms\",\n"
          "    \"support\": \"Mesophiles grow best in moderate temperature.\"\n"
          "  },\n"
          "  {\"question\": \"What phenomenon makes global winds blow northeast?\", \"distractor3\": \"tropical effect\","
          " \"distractor1\": \"muon effect\", \"distractor2\": \"centrifugal effect\", \"correct_answer\": \"coriolis effect\","
          " \"support\": \"\"}\n"
          "]\n");
    const auto v = load_qa("SciQ", dir_ / "SciQ", "train");
    ASSERT_EQ(v.size(), 2u);
    EXPECT_EQ(v[0].choices, (std::vector<std::string>{"protozoa", "gymnosperms", "viruses", "mesophilic organisms"}));
    EXPECT_EQ(v[0].answer, 3);
    EXPECT_EQ(v[0].context, "Mesophiles grow best in moderate temperature.");
    EXPECT_EQ(v[0].question, "What type of organism is commonly used in preparation of foods such as cheese?");
    EXPECT_EQ(v[0].id, "0");
    EXPECT_EQ(v[1].id, "1");
    EXPECT_EQ(v[1].choices[3], "coriolis effect");
    EXPECT_EQ(v[1].answer, 3);
    EXPECT_TRUE(v[1].context.empty());

    // dev is SciQ's valid.json; a missing key names the line the item starts on.
    const auto valid = write("SciQ", "valid.json",
                             "[{\"question\": \"q0\", \"distractor1\": \"a\", \"distractor2\": \"b\", \"distractor3\": \"c\", "
                             "\"correct_answer\": \"d\", \"support\": \"s\"},\n"
                             " {\"question\": \"q1\", \"distractor1\": \"a\", \"distractor3\": \"c\", \"correct_answer\": \"d\"}]");
    std::string e = error_of([&] { load_qa("sciq", dir_ / "SciQ", "validation"); });
    EXPECT_NE(e.find(valid.string() + ":2: item 1: missing key 'distractor2'"), std::string::npos) << e;

    write("SciQ", "valid.json", "[\n{\"question\": \"q0\",\n \"distractor1\": }\n]");
    e = error_of([&] { load_qa("sciq", dir_ / "SciQ", "dev"); });
    EXPECT_NE(e.find(valid.string() + ":3:"), std::string::npos) << e;
    EXPECT_NE(e.find("invalid JSON"), std::string::npos) << e;

    write("SciQ", "valid.json", "[{\"question\": 5, \"distractor1\": \"a\", \"distractor2\": \"b\", \"distractor3\": \"c\", "
                                "\"correct_answer\": \"d\"}]");
    e = error_of([&] { load_qa("sciq", dir_ / "SciQ", "dev"); });
    EXPECT_NE(e.find(":1: item 0: key 'question' must be a string, got number 5"), std::string::npos) << e;

    // One object a line is read too.
    write("SciQ", "test.jsonl",
          "{\"question\": \"q\", \"distractor1\": \"a\", \"distractor2\": \"b\", \"distractor3\": \"c\", \"correct_answer\": \"d\", \"support\": \"s\"}\n");
    const auto t = load_qa("sciq", dir_ / "SciQ", "test");
    ASSERT_EQ(t.size(), 1u);
    EXPECT_EQ(t[0].answer, 3);
    EXPECT_EQ(t[0].context, "s");
}

// ---- encodings ----------------------------------------------------------------------------------------------

namespace {
// "café crème brûlée" in UTF-8 and in Latin-1 (é e9, è e8, û fb).
const std::string kCafeUtf8 = "caf\xC3\xA9 cr\xC3\xA8me br\xC3\xBBl\xC3\xA9" "e";
const std::string kCafeLatin1 = "caf\xE9 cr\xE8me br\xFBl\xE9" "e";
const std::string kAdvice = "; the file may be Latin-1 — set task.encoding to \"latin-1\" to read it as such";

// One ARC record whose question and first choice hold `text`.
std::string arc_line(const std::string& id, const std::string& text) {
    return "{\"id\": \"" + id + "\", \"question\": {\"stem\": \"Is " + text + " a dessert?\", \"choices\": [{\"text\": \"" +
           text + "\", \"label\": \"A\"}, {\"text\": \"no\", \"label\": \"B\"}]}, \"answerKey\": \"A\"}";
}
fs::path bert_tokenizer() { return fs::path(MEFT_SHARED_DIR) / "models" / "bert-tiny-tokenizer"; }
}  // namespace

// nlohmann::json rejects some bytes that are not UTF-8 with its own message; the loaders check every
// line first, so the message names file, line and byte, says what was expected, and what to do.
TEST_F(QaFixture, ALatin1JsonlLineIsAnErrorNamingFileLineAndByte) {
    const std::string bad = arc_line("Q2", kCafeLatin1);
    const auto f = write("ARC-Easy", "train.jsonl", arc_line("Q1", "pie") + "\n" + bad + "\n");
    const std::string e = error_of([&] { load_qa("arc_easy", dir_ / "ARC-Easy", "train"); });
    EXPECT_EQ(e, f.string() + ":2: byte " + std::to_string(bad.find('\xE9') + 1) +
                     ": not valid UTF-8 (e9 20: e9 starts a 3-byte sequence, but 20 is not a continuation byte (80..bf))" +
                     kAdvice);
    EXPECT_EQ(e.find("parse error"), std::string::npos) << "the JSON parser's message leaked: " << e;

    // Each invalid kind, in every reader: OpenBookQA's TSV, PIQA's jsonl, SciQ's JSON array.
    const auto obqa = write("OpenBookQA", "train.tsv",
                            "ID\tQuestion Stem\tChoices\tComplete Question\tAnswer Key\n"
                            "1\tq\xC0\xAF\t(A) a (B) b\tq a\tA\n");
    EXPECT_NE(error_of([&] { load_qa("openbookqa", dir_ / "OpenBookQA", "train"); })
                  .find(obqa.string() + ":2: byte 4: not valid UTF-8 (c0 af: an overlong encoding of U+002F)"),
              std::string::npos);
    const auto piqa = write("PIQA", "train.jsonl", "{\"goal\": \"g\", \"sol1\": \"\xED\xA0\x80\", \"sol2\": \"b\"}\n");
    write("PIQA", "train-labels.lst", "0\n");
    EXPECT_NE(error_of([&] { load_qa("piqa", dir_ / "PIQA", "train"); })
                  .find(piqa.string() + ":1: byte 24: not valid UTF-8 (ed a0 80: the UTF-16 surrogate U+D800"),
              std::string::npos);
    const auto sciq = write("SciQ", "train.json",
                            "[\n {\"question\": \"q\", \"distractor1\": \"a\", \"distractor2\": \"b\",\n"
                            "  \"distractor3\": \"\xF4\x90\x80\x80\", \"correct_answer\": \"d\"}\n]\n");
    EXPECT_NE(error_of([&] { load_qa("sciq", dir_ / "SciQ", "train"); })
                  .find(sciq.string() + ":3: byte 19: not valid UTF-8 (f4 90 80 80: U+110000, above the last code point"),
              std::string::npos);
    const std::string cut = arc_line("Q3", "pie\xE2\x82");  // a 3-byte sequence cut short by a space
    write("ARC-Easy", "dev.jsonl", cut + "\n");
    EXPECT_NE(error_of([&] { load_qa("arc_easy", dir_ / "ARC-Easy", "dev"); })
                  .find(":1: byte " + std::to_string(cut.find('\xE2') + 1) + ": not valid UTF-8 (e2 82 20: e2 starts"),
              std::string::npos);
}

TEST_F(QaFixture, ALatin1FileReadAsLatin1TokenizesAsTheUtf8File) {
    for (const auto& [sub, text] : {std::pair{"utf8", kCafeUtf8}, std::pair{"latin1", kCafeLatin1}}) {
        write(sub, "train.jsonl", arc_line("Q1", text) + "\n" + arc_line("Q2", "pie") + "\n");
        write(sub, "dev.jsonl", arc_line("Q3", "tarte " + text) + "\n");
    }
    TextDecoding latin1;
    latin1.encoding = TextEncoding::latin1;
    const auto u = load_qa("arc_easy", dir_ / "utf8", "train");
    const auto l = load_qa("arc_easy", dir_ / "latin1", "train", latin1);
    ASSERT_EQ(l.size(), 2u);
    EXPECT_EQ(l[0].question, "Is " + kCafeUtf8 + " a dessert?");
    EXPECT_EQ(l[0].choices, u[0].choices);
    EXPECT_EQ(l[0].answer, 0);

    MEFT_REQUIRE_DIR(bert_tokenizer(), "the Latin-1 file is not tokenized");
    const auto tok = load_tokenizer(bert_tokenizer());
    QaTaskRequest r;
    r.task = "arc_easy";
    r.dir = dir_ / "utf8";
    const TaskData tu = load_qa_pair_task(r, *tok);
    r.dir = dir_ / "latin1";
    r.decoding = latin1;  // what task.encoding "latin-1" sets
    const TaskData tl = load_qa_pair_task(r, *tok);
    ASSERT_EQ(tl.train.size(), tu.train.size());
    ASSERT_EQ(tl.dev.size(), tu.dev.size());
    for (std::size_t i = 0; i < tu.train.size(); ++i) EXPECT_EQ(tl.train[i].input_ids, tu.train[i].input_ids) << i;
    for (std::size_t i = 0; i < tu.dev.size(); ++i) EXPECT_EQ(tl.dev[i].input_ids, tu.dev[i].input_ids) << i;
    r.decoding = {};
    EXPECT_NE(error_of([&] { load_qa_pair_task(r, *tok); }).find("latin1/train.jsonl:1: byte "), std::string::npos);
}
