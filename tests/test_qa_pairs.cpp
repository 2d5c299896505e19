// Multiple-choice QA for encoders on the real ARC-Easy files (../shared/data/qa): the pairs the
// loader builds with the real BERT WordPiece and GPT-2 BPE tokenizers, and a short run in which the
// toy BERT, randomly initialised, learns to score ARC-Easy's choices clearly above chance with the
// multiple-choice head. Seeds are fixed, so the run is deterministic.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <map>

#include "core/cpu_backend.h"
#include "data/qa.h"
#include "data/qa_pair_task.h"
#include "data/tokenizer.h"
#include "model/sequence_classifier.h"
#include "test_support.h"
#include "train/trainer.h"

using namespace meft;
namespace fs = std::filesystem;

namespace {
const fs::path kShared = fs::path(MEFT_SHARED_DIR);
const fs::path kArc = kShared / "data/qa/ARC-Easy";

QaTaskRequest arc_request() {
    QaTaskRequest r;
    r.task = "arc_easy";
    r.dir = kArc;
    r.max_seq_length = 64;
    return r;
}

TEST(QaPairs, EveryChoiceOfAQuestionIsABertPairWithTheQuestionFirst) {
    const fs::path tok_dir = kShared / "models/bert-tiny-tokenizer";
    MEFT_REQUIRE_DIR(kArc, "the ARC-Easy files are needed");
    MEFT_REQUIRE_DIR(tok_dir, "the BERT WordPiece tokenizer is needed");
    const auto tok = load_tokenizer(tok_dir);
    const TaskData t = load_qa_pair_task(arc_request(), *tok);
    EXPECT_TRUE(t.choice_pairs);
    EXPECT_EQ(t.num_labels, 1);
    const std::vector<ChoiceExample> dev = load_qa("arc_easy", kArc, "dev");
    std::size_t pairs = 0;
    for (const ChoiceExample& q : dev) pairs += q.choices.size();
    ASSERT_EQ(t.dev.size(), pairs);

    // per question: consecutive pairs, choices in order, one gold; the layout [CLS] q [SEP] c [SEP]
    std::map<int, int> gold_of;
    std::size_t row = 0;
    for (std::size_t qi = 0; qi < dev.size(); ++qi) {
        const ChoiceExample& q = dev[qi];
        const Encoding question = tok->encode(q.question, std::nullopt, 0);  // [CLS] q [SEP]
        for (std::size_t k = 0; k < q.choices.size(); ++k, ++row) {
            const Example& e = t.dev[row];
            ASSERT_EQ(e.group, static_cast<int>(qi));
            ASSERT_EQ(e.choice, static_cast<int>(k));
            ASSERT_EQ(e.label, static_cast<int>(k) == q.answer ? 1 : 0);
            if (e.label == 1) ++gold_of[e.group];
            ASSERT_LE(e.input_ids.size(), 64u);
            ASSERT_EQ(tok->token(e.input_ids.front()), "[CLS]");
            ASSERT_EQ(tok->token(e.input_ids.back()), "[SEP]");
            const std::vector<std::int32_t> choice = tok->encode_text(q.choices[k]);
            if (question.input_ids.size() + choice.size() + 1 > 64) continue;  // truncated: checked below
            // the question's tokens, then the choice's with token type 1
            ASSERT_TRUE(std::equal(question.input_ids.begin(), question.input_ids.end(), e.input_ids.begin())) << q.id;
            ASSERT_TRUE(std::equal(choice.begin(), choice.end(), e.input_ids.begin() + std::ptrdiff_t(question.input_ids.size())))
                << q.id;
            ASSERT_EQ(e.token_type_ids[question.input_ids.size() - 1], 0);
            ASSERT_EQ(e.token_type_ids[question.input_ids.size()], 1);
        }
    }
    EXPECT_EQ(gold_of.size(), dev.size()) << "every dev question has its gold choice";
    for (const auto& [g, n] : gold_of) EXPECT_EQ(n, 1) << "question " << g;

    // the training split: only labelled questions, limited by max_train_examples
    QaTaskRequest r = arc_request();
    r.max_train_examples = 10;
    r.max_dev_examples = 3;
    const TaskData small = load_qa_pair_task(r, *tok);
    int questions = 0;
    for (std::size_t i = 0; i < small.train.size(); ++i) questions += i == 0 || small.train[i].group != small.train[i - 1].group;
    EXPECT_EQ(questions, 10);
    EXPECT_EQ(small.dev.back().group, 2);
}

TEST(QaPairs, SciqPairsPutTheQuestionBeforeItsSupport) {
    ChoiceExample item;
    item.context = "Plants make food by photosynthesis.";
    item.question = "What do plants make food by?";
    item.choices = {"respiration", "photosynthesis"};
    item.answer = 1;
    const ChoicePairs p = choice_pairs("sciq", item);
    EXPECT_EQ(p.first, "What do plants make food by? Plants make food by photosynthesis.");
    EXPECT_EQ(p.seconds, item.choices);
    EXPECT_EQ(p.answer, 1);
    EXPECT_EQ(choice_pairs("arc_easy", item).first, item.question);  // others: the question alone
}

TEST(QaPairs, BpePairsEndInEosForBartsHead) {
    const fs::path tok_dir = kShared / "models/roberta-base-tokenizer";
    MEFT_REQUIRE_DIR(kArc, "the ARC-Easy files are needed");
    MEFT_REQUIRE_DIR(tok_dir, "the byte-level BPE tokenizer is needed");
    const auto tok = load_tokenizer(tok_dir);
    QaTaskRequest r = arc_request();
    r.max_train_examples = 50;
    const TaskData t = load_qa_pair_task(r, *tok);
    ASSERT_FALSE(t.train.empty());
    for (const Example& e : t.train) {
        ASSERT_EQ(tok->token(e.input_ids.front()), "<s>");
        ASSERT_EQ(tok->token(e.input_ids.back()), "</s>");
        int eos = 0;
        for (std::int32_t id : e.input_ids) eos += tok->token(id) == "</s>";
        ASSERT_EQ(eos, 3) << "<s> q </s></s> c </s>";
    }
}

TEST(QaPairs, ToyBertLearnsArcEasyAboveChance) {
    const fs::path tok_dir = kShared / "models/bert-tiny-tokenizer";
    MEFT_REQUIRE_DIR(kArc, "the ARC-Easy files are needed for the QA training run");
    MEFT_REQUIRE_DIR(tok_dir, "the BERT WordPiece tokenizer is needed for the QA training run");
    const auto tok = load_tokenizer(tok_dir);
    ModelConfig cfg = preset_config(Arch::Bert, "toy");
    cfg.set_multiple_choice();
    const TaskData task = load_qa_pair_task(arc_request(), *tok);

    auto be = make_cpu_backend();
    SequenceClassifier m(cfg, *be, DType::F32);
    m.init_weights(0);
    TrainConfig t;
    t.max_seq_length = 64;
    t.batch_size = 16;  // questions
    t.epochs = 2;
    t.learning_rate = 1e-3;
    t.warmup_ratio = 0.1;
    t.adamw.weight_decay = 0.01;
    const EvalReport before = evaluate_task(m, task, 64, t.max_seq_length);
    const TrainResult res = train(m, task, t, nullptr);
    const EvalReport& after = res.final_eval;
    std::printf("ARC-Easy dev (570 questions, chance ~0.25), toy BERT, multiple-choice head: acc %.4f -> %.4f, "
                "loss %.3f -> %.3f over %d steps\n",
                before.metrics.at("acc"), after.metrics.at("acc"), before.loss, after.loss, res.steps);
    EXPECT_EQ(res.steps, 2 * ((2251 + 15) / 16)) << "a step takes 16 questions";
    // Chance on 570 questions of mostly four choices: about 0.25, with a standard deviation of
    // about 0.018 (this random model scores 0.281).
    EXPECT_LT(before.metrics.at("acc"), 0.30) << "a random model should be near chance";
    EXPECT_GT(after.metrics.at("acc"), 0.31);  // measured 0.337
    EXPECT_GT(after.metrics.at("acc"), before.metrics.at("acc") + 0.04);
    EXPECT_LT(res.final_loss, res.first_loss - 0.1) << "the training loss falls from about ln 4";
}
}  // namespace
