// The multiple-choice head of BERT, RoBERTa and BART over (context, choice) pairs: batching that
// keeps each question's pairs together, float64 finite-difference gradients of the per-question
// softmax loss for each backbone and several methods, gradient accumulation across questions,
// bad-label errors, checkpoints in Hugging Face layout, and a short run that learns a synthetic
// multiple-choice task.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <algorithm>
#include <fstream>
#include <random>
#include <tuple>

#include "peft/method.h"
#include "core/cpu_backend.h"
#include "data/batching.h"
#include "model/arch/arch.h"
#include "model/checkpoint.h"
#include "model/safetensors.h"
#include "model/sequence_classifier.h"
#include "model_gradcheck.h"
#include "test_support.h"
#include "train/trainer.h"

using namespace meft;
namespace fs = std::filesystem;

namespace {

// A tiny float64 backbone of `arch` with a multiple-choice head (one score per pair).
ModelConfig tiny_mc(Arch arch, int layers = 2) {
    ModelConfig c = arch == Arch::Bart ? meft::test::tiny_bart_config(2, layers) : meft::test::tiny_model_config(arch, 2, layers);
    c.set_multiple_choice();
    return c;
}

// The id layout every backbone accepts: a start token, eos (2) in the middle and at the end (BART's
// head reads the last), random ids elsewhere; BERT's start token is not its padding id 0.
Example pair_example(const ModelConfig& c, int len, int group, int choice, int label, std::mt19937_64& rng) {
    Example e;
    for (int t = 0; t < len; ++t) {
        int id = 3 + static_cast<int>(rng() % static_cast<std::uint64_t>(c.vocab_size - 3));
        if (t == 0) id = c.arch == Arch::Bert ? 3 : 0;
        if (t == len / 2 || t == len - 1) id = 2;
        e.input_ids.push_back(id);
        e.token_type_ids.push_back(c.arch == Arch::Bert && t > len / 2 ? 1 : 0);
    }
    e.group = group;
    e.choice = choice;
    e.label = label;
    return e;
}

// Questions with the given numbers of choices (gold: question q's choice q % n), lengths varying
// so the batch pads.
std::vector<Example> questions(const ModelConfig& c, const std::vector<int>& choices, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::vector<Example> out;
    for (std::size_t q = 0; q < choices.size(); ++q)
        for (int k = 0; k < choices[q]; ++k)
            out.push_back(pair_example(c, 5 + static_cast<int>(rng() % 4), static_cast<int>(q) + 10, k,
                                       k == static_cast<int>(q) % choices[q] ? 1 : 0, rng));
    return out;
}

std::vector<std::size_t> all(const std::vector<Example>& ex) {
    std::vector<std::size_t> idx(ex.size());
    for (std::size_t i = 0; i < idx.size(); ++i) idx[i] = i;
    return idx;
}

HostBatch batch_of(const ModelConfig& c, const std::vector<Example>& ex) {
    return make_batch(ex, all(ex), c.pad_token_id, 64);
}

MethodConfig method(const nlohmann::json& j) { return parse_method(j, "test"); }
const nlohmann::json kAdapter = {{"init_std", 0.5}, {"bottleneck", 3}};

// ---- batching ---------------------------------------------------------------------------------

TEST(ChoiceBatching, AQuestionsPairsAreOneUnitThatNoMicroBatchSplits) {
    const ModelConfig c = tiny_mc(Arch::Bert);
    const std::vector<Example> ex = questions(c, {2, 3, 4, 3}, 1);  // 12 rows, 4 questions
    EXPECT_EQ(unit_starts(ex), (std::vector<std::size_t>{0, 2, 5, 9, 12}));
    const HostBatch b = batch_of(c, ex);
    EXPECT_EQ(b.choice_counts, (std::vector<int>{2, 3, 4, 3}));
    // three micro-batches over questions 3, 0, 2, 1 (shuffled units): cuts fall between questions
    const std::vector<std::size_t> starts = unit_starts(ex);
    const std::vector<std::size_t> order{3, 0, 2, 1};
    const std::vector<std::size_t> rows = unit_rows(starts, order);
    EXPECT_EQ(rows, (std::vector<std::size_t>{9, 10, 11, 0, 1, 5, 6, 7, 8, 2, 3, 4}));
    const auto parts = micro_batch_ranges(ex, rows, 3);
    ASSERT_EQ(parts.size(), 3u);
    EXPECT_EQ(parts[0], (std::pair<std::size_t, std::size_t>{0, 3}));   // question 3
    EXPECT_EQ(parts[1], (std::pair<std::size_t, std::size_t>{3, 5}));   // question 0
    EXPECT_EQ(parts[2], (std::pair<std::size_t, std::size_t>{5, 12}));  // questions 2 and 1
    // more parts than questions: one question each
    EXPECT_EQ(micro_batch_ranges(ex, rows, 10).size(), 4u);
    // each question weighs 1 in the mean loss (its gold pair)
    double w = 0;
    for (const Example& e : ex) w += loss_weight(e);
    EXPECT_EQ(w, 4.0);
}

TEST(ChoiceBatching, PlainExamplesStayOneUnitEachAndMixingIsAnError) {
    const ModelConfig c = tiny_mc(Arch::Bert);
    std::vector<Example> ex = questions(c, {2}, 2);
    std::mt19937_64 rng(3);
    for (int i = 0; i < 3; ++i) ex.push_back(pair_example(c, 5, -1, -1, 1, rng));  // classification examples
    EXPECT_EQ(unit_starts(ex), (std::vector<std::size_t>{0, 2, 3, 4, 5}));
    const std::vector<std::size_t> plain{2, 3, 4};
    EXPECT_TRUE(make_batch(ex, plain, c.pad_token_id, 64).choice_counts.empty());
    const std::string msg = meft::test::error_of([&] { make_batch(ex, all(ex), c.pad_token_id, 64); });
    EXPECT_NE(msg.find("mixes 2 multiple-choice pairs with 3 other examples"), std::string::npos) << msg;
}

// ---- finite differences ----------------------------------------------------------------------

struct ChoiceCase {
    std::string label;
    Arch arch;
    nlohmann::json method;
};

class ChoiceGrad : public ::testing::TestWithParam<ChoiceCase> {};

TEST_P(ChoiceGrad, TrainableParametersMatchFiniteDifferences) {
    auto be = make_cpu_backend();
    // BART: one encoder and one decoder layer and two questions, or full fine-tuning's check takes
    // long; its two stacks are checked in depth by test_bart.
    const bool bart = GetParam().arch == Arch::Bart;
    const ModelConfig cfg = tiny_mc(GetParam().arch, bart ? 1 : 2);
    SequenceClassifier m(cfg, *be, DType::F64, method(GetParam().method));
    EXPECT_EQ(m.outputs_per_example(), 1);
    m.init_weights(5);
    meft::test::perturb_method_parameters(m);
    // questions of 2, 3 and 4 choices (ARC mixes such counts), every dropout on
    const std::vector<int> choices = bart ? std::vector<int>{3, 2} : std::vector<int>{2, 3, 4};
    const HostBatch b = batch_of(cfg, questions(cfg, choices, 7));
    ASSERT_EQ(b.choice_counts, choices);
    const auto r = meft::test::check_trainable_gradients(m, b, {true, 77, 2}, bart ? 1e-6 : 1e-5);
    int trainable = 0;
    for (const Parameter& p : m.params().all()) trainable += p.trainable;
    EXPECT_EQ(r.checked, trainable);
    EXPECT_GT(r.checked, 0);
}

const nlohmann::json kFull = {{"name", "full"}};
const nlohmann::json kLora = {{"name", "lora"}, {"lora", {{"r", 2}}}};
const nlohmann::json kPrefix = {{"name", "prefix"}, {"prefix", {{"length", 3}, {"init_std", 0.5}}}};
const nlohmann::json kHoulsby = {{"name", "houlsby"}, {"adapter", kAdapter}};
const nlohmann::json kMeft1 = {{"name", "meft1"}, {"adapter", kAdapter}, {"meft", {{"streams", "float64"}}}};
const nlohmann::json kMeft3 = {{"name", "meft3"}, {"adapter", kAdapter}, {"meft", {{"streams", "float64"}}}};

INSTANTIATE_TEST_SUITE_P(
    Backbones, ChoiceGrad,
    ::testing::Values(ChoiceCase{"bert_full", Arch::Bert, kFull}, ChoiceCase{"bert_lora", Arch::Bert, kLora},
                      ChoiceCase{"bert_meft1", Arch::Bert, kMeft1}, ChoiceCase{"roberta_full", Arch::Roberta, kFull},
                      ChoiceCase{"roberta_prefix", Arch::Roberta, kPrefix},
                      ChoiceCase{"roberta_meft3", Arch::Roberta, kMeft3}, ChoiceCase{"bart_full", Arch::Bart, kFull},
                      ChoiceCase{"bart_houlsby", Arch::Bart, kHoulsby}, ChoiceCase{"bart_meft1", Arch::Bart, kMeft1}),
    [](const auto& info) { return info.param.label; });

// ---- the loss -----------------------------------------------------------------------------------

TEST(ChoiceLoss, TheLossIsEachQuestionsSoftmaxCrossEntropy) {
    // The summed loss equals a softmax over each question's own scores, by hand.
    auto be = make_cpu_backend();
    const ModelConfig cfg = tiny_mc(Arch::Bert);
    SequenceClassifier m(cfg, *be, DType::F64);
    m.init_weights(2);
    const std::vector<Example> ex = questions(cfg, {3, 2}, 4);
    const HostBatch b = batch_of(cfg, ex);
    const std::vector<double> z = m.example_outputs(b);
    // the per-question softmax by hand
    double expect = 0;
    for (auto [r0, n, gold] : {std::tuple{0, 3, 0}, std::tuple{3, 2, 1}}) {
        double mx = -1e300, se = 0;
        for (int k = 0; k < n; ++k) mx = std::max(mx, z[static_cast<std::size_t>(r0 + k)]);
        for (int k = 0; k < n; ++k) se += std::exp(z[static_cast<std::size_t>(r0 + k)] - mx);
        expect += mx + std::log(se) - z[static_cast<std::size_t>(r0 + gold)];
    }
    m.params().zero_grads();
    EXPECT_NEAR(m.forward_backward(b, {}, 1.0), expect, 1e-12);
    // the score gradient of a question sums to zero (a softmax ignores a shared shift): the head's
    // output bias, which shifts every score alike, gets no gradient
    const Parameter* bias = m.params().find("classifier.bias");
    ASSERT_NE(bias, nullptr);
    EXPECT_LT(std::abs(bias->grad.ptr<double>()[0]), 1e-12);
}

TEST(ChoiceLoss, AccumulatingQuestionsInMicroBatchesGivesTheSameGradient) {
    auto be = make_cpu_backend();
    for (Arch arch : {Arch::Bert, Arch::Bart}) {
        const ModelConfig cfg = tiny_mc(arch);
        const std::vector<Example> ex = questions(cfg, {4, 2, 3, 5, 2}, 9);
        const std::vector<std::size_t> rows = unit_rows(unit_starts(ex), std::vector<std::size_t>{2, 0, 4, 1, 3});
        std::vector<std::vector<double>> grads;
        std::vector<double> losses;
        for (int micro : {1, 2, 5}) {
            SequenceClassifier m(cfg, *be, DType::F64, method(kLora));
            m.init_weights(8);
            m.params().zero_grads();
            losses.push_back(accumulate_gradients(m, ex, rows, micro, 64, 5, 3));  // dropout on
            grads.push_back(meft::test::trainable_grads(m));
        }
        for (std::size_t i = 1; i < grads.size(); ++i) {
            EXPECT_NEAR(losses[i], losses[0], 1e-12) << arch_name(arch);
            ASSERT_EQ(grads[i].size(), grads[0].size());
            for (std::size_t j = 0; j < grads[0].size(); ++j)
                ASSERT_NEAR(grads[i][j], grads[0][j], 1e-12) << arch_name(arch) << " micro-batch split " << i;
        }
    }
}

TEST(ChoiceLoss, BadLabelsAndUngroupedBatchesAreErrors) {
    auto be = make_cpu_backend();
    const ModelConfig cfg = tiny_mc(Arch::Roberta);
    SequenceClassifier m(cfg, *be, DType::F64);
    m.init_weights(1);
    const std::vector<Example> ex = questions(cfg, {3, 2}, 5);
    auto fails_with = [&](HostBatch b, const std::string& want) {
        const std::string msg = meft::test::error_of([&] { m.forward_backward(b, {}, 1.0); });
        EXPECT_NE(msg.find(want), std::string::npos) << msg;
    };
    HostBatch b = batch_of(cfg, ex);
    b.labels[4] = 0;  // question 2 loses its gold choice
    fails_with(b, "examples 3..4 (one question): no gold choice");
    b = batch_of(cfg, ex);
    b.labels[1] = 1;  // question 1 gets two
    fails_with(b, "examples 0..2 (one question): more than one gold choice");
    b = batch_of(cfg, ex);
    b.labels[2] = -1;  // an unlabelled pair in training
    fails_with(b, "a choice's label must be 1 (gold) or 0, found -1");
    b = batch_of(cfg, ex);
    b.choice_counts = {3};  // rows 3..4 belong to no question
    fails_with(b, "rows grouped by question (3 of 5 rows are)");
}

// ---- evaluation ---------------------------------------------------------------------------------

TEST(ChoiceEval, AccuracyAndLossArePerQuestionWhateverTheRowOrder) {
    auto be = make_cpu_backend();
    const ModelConfig cfg = tiny_mc(Arch::Bert);
    SequenceClassifier m(cfg, *be, DType::F64);
    m.init_weights(6);
    std::vector<Example> ex = questions(cfg, {3, 4, 2, 4, 3, 2}, 12);
    ex.back().label = ex[ex.size() - 2].label = -1;  // an unlabelled question is not scored
    const EvalReport r = evaluate(m, ex, 4, 64);  // small batches: questions cut across them
    // by hand: each labelled question's scores
    const std::vector<double> z = m.example_outputs(batch_of(cfg, ex));
    double correct = 0, nll = 0;
    std::size_t r0 = 0;
    for (int n : {3, 4, 2, 4, 3}) {
        int gold = 0, best = 0;
        for (int k = 0; k < n; ++k) {
            if (ex[r0 + static_cast<std::size_t>(k)].label == 1) gold = k;
            if (z[r0 + static_cast<std::size_t>(k)] > z[r0 + static_cast<std::size_t>(best)]) best = k;
        }
        correct += best == gold;
        nll += meft::test::row_cross_entropy(z.data() + r0, n, gold);
        r0 += static_cast<std::size_t>(n);
    }
    EXPECT_NEAR(r.metrics.at("acc"), correct / 5, 1e-12);
    EXPECT_NEAR(r.loss, nll / 5, 1e-9);
    EXPECT_EQ(r.metrics.size(), 1u);
    // the same rows in another order score the same
    std::vector<Example> shuffled = ex;
    std::mt19937_64 rng(1);
    std::shuffle(shuffled.begin(), shuffled.end(), rng);
    const EvalReport s = evaluate(m, shuffled, 3, 64);
    EXPECT_NEAR(s.metrics.at("acc"), r.metrics.at("acc"), 1e-12);
    EXPECT_NEAR(s.loss, r.loss, 1e-9);
}

// ---- checkpoints ----------------------------------------------------------------------------------

class ChoiceCheckpoint : public meft::test::TempDirTest {};

TEST_F(ChoiceCheckpoint, HeadsCarryTransformersNamesAndReloadToTheSameScores) {
    auto be = make_cpu_backend();
    struct Want {
        Arch arch;
        std::string architecture;
        std::vector<std::string> head;
    };
    for (const Want& w :
         {Want{Arch::Bert, "BertForMultipleChoice", {"bert.pooler.dense.weight", "classifier.weight", "classifier.bias"}},
          Want{Arch::Roberta, "RobertaForMultipleChoice", {"roberta.pooler.dense.weight", "classifier.weight", "classifier.bias"}},
          Want{Arch::Bart, "BartForSequenceClassification",
               {"classification_head.dense.weight", "classification_head.out_proj.weight", "classification_head.out_proj.bias"}}}) {
        const ModelConfig cfg = tiny_mc(w.arch);
        const fs::path dir = dir_ / arch_name(w.arch);
        SequenceClassifier m(cfg, *be, DType::F64);
        m.init_weights(3);
        save_model(m, dir, DType::F64);
        const nlohmann::json j = nlohmann::json::parse(std::ifstream(dir / "config.json"));
        EXPECT_EQ(j["architectures"][0], w.architecture);
        EXPECT_EQ(j.contains("meft_head"), w.arch == Arch::Bart);
        const SafetensorsReader rd = SafetensorsReader::open_dir(dir);
        for (const std::string& n : w.head) EXPECT_TRUE(rd.contains(n)) << n;
        const std::string out = w.arch == Arch::Bart ? "classification_head.out_proj.weight" : "classifier.weight";
        EXPECT_EQ(rd.info(out).shape, (std::vector<std::int64_t>{1, cfg.hidden_size}));
        EXPECT_FALSE(rd.contains("classifier.out_proj.weight"));  // RoBERTa's classification head is not used

        // the folder alone says it is a multiple-choice model, and reloads to the same scores
        const HostBatch b = batch_of(cfg, questions(cfg, {3, 2}, 2));
        LoadReport rep;
        auto back = load_classifier(dir, *be, DType::F64, {}, &rep);
        EXPECT_TRUE(back->config().multiple_choice) << arch_name(w.arch);
        EXPECT_TRUE(rep.initialised.empty());
        EXPECT_EQ(back->example_outputs(b), m.example_outputs(b)) << arch_name(w.arch);

        // the task decides the head: a classification task gets a fresh classifier of its labels
        LoadOptions lo;
        lo.multiple_choice = false;
        lo.num_labels = 3;
        LoadReport rep2;
        auto cls = load_classifier(dir, *be, DType::F64, lo, &rep2);
        EXPECT_FALSE(cls->config().multiple_choice);
        EXPECT_EQ(cls->outputs_per_example(), 3);
        EXPECT_FALSE(rep2.initialised.empty()) << arch_name(w.arch);
    }
}

TEST_F(ChoiceCheckpoint, AClassifierCheckpointGetsAFreshMultipleChoiceHead) {
    auto be = make_cpu_backend();
    ModelConfig cfg = meft::test::tiny_model_config(Arch::Bert, 3);
    SequenceClassifier m(cfg, *be, DType::F64);
    m.init_weights(4);
    save_model(m, dir_);
    LoadOptions lo;
    lo.multiple_choice = true;
    lo.num_labels = 1;
    LoadReport rep;
    auto mc = load_classifier(dir_, *be, DType::F64, lo, &rep);
    EXPECT_TRUE(mc->config().multiple_choice);
    EXPECT_FALSE(mc->config().is_regression());
    // the 3-label classifier does not fit one score: drawn afresh; the pooler is kept
    EXPECT_EQ(rep.initialised, (std::vector<std::string>{"classifier.weight", "classifier.bias"}));
}

TEST(ChoiceConfig, TransformersMultipleChoiceConfigsAreRead) {
    // transformers writes its default two labels into a *ForMultipleChoice config; they are unused
    nlohmann::json j = meft::test::tiny_model_config(Arch::Roberta).to_json();
    j["architectures"] = {"RobertaForMultipleChoice"};
    const ModelConfig c = ModelConfig::from_json(j, "config.json");
    EXPECT_TRUE(c.multiple_choice);
    EXPECT_EQ(c.num_labels(), 1);
    EXPECT_TRUE(meft::arch_spec(c.arch).head(c).pooler);
    EXPECT_EQ(c.head_dropout(), c.hidden_dropout);  // RobertaForMultipleChoice's dropout
    j["meft_head"] = "ranking";
    const std::string msg = meft::test::error_of([&] { ModelConfig::from_json(j, "config.json"); });
    EXPECT_NE(msg.find("config.json: meft_head 'ranking' is not known"), std::string::npos) << msg;
}

// ---- learning -----------------------------------------------------------------------------------

// A synthetic multiple-choice task: the context holds a "key" token, the gold choice repeats it and
// the distractors carry other key tokens. Pairs are laid out as BERT's [CLS] ctx [SEP] choice [SEP].
TaskData key_task(int train_questions, int dev_questions) {
    std::mt19937_64 rng(21);
    TaskData t;
    t.name = "key_choice";
    t.choice_pairs = true;
    t.num_labels = 1;
    auto make = [&](std::vector<Example>& out, int n, int first_group) {
        for (int q = 0; q < n; ++q) {
            const int choices = 2 + static_cast<int>(rng() % 3);
            const int gold = static_cast<int>(rng() % static_cast<std::uint64_t>(choices));
            std::vector<int> keys;
            while (static_cast<int>(keys.size()) < choices) {
                const int k = 10 + static_cast<int>(rng() % 20);
                if (std::find(keys.begin(), keys.end(), k) == keys.end()) keys.push_back(k);
            }
            std::vector<int> ctx;
            for (int i = 0; i < 5; ++i) ctx.push_back(30 + static_cast<int>(rng() % 10));
            ctx[rng() % ctx.size()] = keys[static_cast<std::size_t>(gold)];
            for (int k = 0; k < choices; ++k) {
                Example e;
                e.input_ids = {1};
                e.input_ids.insert(e.input_ids.end(), ctx.begin(), ctx.end());
                e.input_ids.push_back(2);
                e.token_type_ids.assign(e.input_ids.size(), 0);
                for (int id : {30 + static_cast<int>(rng() % 10), keys[static_cast<std::size_t>(k)], 2}) {
                    e.input_ids.push_back(id);
                    e.token_type_ids.push_back(1);
                }
                e.group = first_group + q;
                e.choice = k;
                e.label = k == gold ? 1 : 0;
                out.push_back(std::move(e));
            }
        }
    };
    make(t.train, train_questions, 0);
    make(t.dev, dev_questions, train_questions);
    return t;
}

TEST(ChoiceTraining, ATinyBertLearnsToPickTheChoiceThatRepeatsTheContextKey) {
    auto be = make_cpu_backend();
    ModelConfig cfg = preset_config(Arch::Bert, "tiny");
    cfg.vocab_size = 40;
    cfg.set_multiple_choice();
    cfg.set_dropout(0.0);  // a small exact task: dropout only slows it down
    const TaskData task = key_task(600, 200);
    SequenceClassifier m(cfg, *be, DType::F32, method({{"name", "full"}}));
    m.init_weights(3);
    TrainConfig t;
    t.batch_size = 16;  // questions (2 to 4 pairs each)
    t.gradient_accumulation = 2;
    t.epochs = 5;
    t.learning_rate = 1e-3;
    t.max_seq_length = 32;
    const EvalReport before = evaluate_task(m, task, 64, 32);
    const TrainResult r = train(m, task, t, nullptr);
    EXPECT_EQ(r.steps, 5 * ((600 + 15) / 16)) << "steps count questions, not pairs";
    std::printf("key choice (chance ~0.36): acc %.3f -> %.3f, loss %.3f -> %.3f\n", before.metrics.at("acc"),
                r.final_eval.metrics.at("acc"), before.loss, r.final_eval.loss);
    EXPECT_LT(before.metrics.at("acc"), 0.5);
    EXPECT_GT(r.final_eval.metrics.at("acc"), 0.9);
    EXPECT_LT(r.final_eval.loss, 0.3);
}

}  // namespace
