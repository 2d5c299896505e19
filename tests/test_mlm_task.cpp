// Masked-LM pre-training as a task ("task": {"name": "mlm", ...}): the experiment file's keys and
// errors, the data built from SST-2's training sentences (blocks, held-out blocks masked once,
// masks anew at every step), a short pre-training whose held-out loss falls and repeats bit for
// bit, and its checkpoint: BertForMaskedLM in config.json, reloaded as a masked LM with the same
// outputs, and as a classifier that keeps the backbone and draws a fresh head.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include <unistd.h>

#include "core/cpu_backend.h"
#include "core/error.h"
#include "core/philox.h"
#include "data/mlm_task.h"
#include "data/tokenizer.h"
#include "model/checkpoint.h"
#include "run/run_setup.h"
#include "store/experiment.h"
#include "test_support.h"
#include "train/trainer.h"

using namespace meft;
namespace fs = std::filesystem;

namespace {

const fs::path kShared = fs::path(MEFT_SOURCE_DIR) / ".." / "shared";
const fs::path kGlue = kShared / "data" / "glue";
const fs::path kTokenizer = kShared / "models" / "bert-tiny-tokenizer";

nlohmann::json mlm_experiment() {
    return {{"backbone", {{"arch", "bert"}, {"preset", "tiny"}}},
            {"task", {{"name", "mlm"}, {"text", {"corpus.txt", {{"path", "c.jsonl"}, {"field", "body"}},
                                                  {{"glue", "SST-2"}, {"data_dir", "glue"}}}}}}};
}

std::string parse_error(const nlohmann::json& j) {
    try {
        (void)parse_experiment(j, "x.json");
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST(MlmExperiment, KeysAndResolvedConfig) {
    nlohmann::json j = mlm_experiment();
    j["task"]["held_out"] = 0.1;
    j["task"]["mask_probability"] = 0.2;
    j["task"]["whole_word_masking"] = true;
    const Experiment e = parse_experiment(j, "x.json");
    ASSERT_TRUE(e.task.is_mlm());
    ASSERT_EQ(e.task.text.size(), 3u);
    EXPECT_EQ(e.task.text[0].path, "corpus.txt");
    EXPECT_EQ(e.task.text[1].field, "body");
    EXPECT_EQ(e.task.text[2].glue, "sst2");  // canonical spelling
    EXPECT_EQ(e.task.text[2].path, "glue");
    EXPECT_EQ(e.task.held_out, 0.1);
    EXPECT_EQ(e.task.mask_probability, 0.2);
    EXPECT_TRUE(e.task.whole_word_masking);
    // The resolved config reads back as the same experiment.
    const nlohmann::json r = resolved_config(e);
    const Experiment again = parse_experiment(r, "resolved");
    EXPECT_EQ(resolved_config(again), r);
    // A list of sources is one experiment, not a sweep over them.
    EXPECT_EQ(expand_sweeps(j).size(), 1u);
    // The model the task needs: the masked-LM head.
    EXPECT_TRUE(experiment_model_config(e).masked_lm);
}

TEST(MlmExperiment, ErrorsNameTheKey) {
    auto with = [](const char* key, nlohmann::json v) {
        nlohmann::json j = mlm_experiment();
        j["task"][key] = std::move(v);
        return parse_error(j);
    };
    EXPECT_NE(with("text", nlohmann::json::array()).find("'task.text' must be a non-empty list"), std::string::npos);
    EXPECT_NE(with("text", "corpus.txt").find("'task.text' must be a non-empty list"), std::string::npos);
    EXPECT_NE(with("text", {{"a", 1}, 3}).find("'task.text[0]'"), std::string::npos);
    EXPECT_NE(with("text", {"a.txt", 3}).find("'task.text[1]' must be a path or an object, found 3"), std::string::npos);
    EXPECT_NE(with("text", {{{"glue", "imdb"}, {"data_dir", "g"}}}).find("'task.text[0].glue' must be a GLUE task"),
              std::string::npos);
    EXPECT_NE(with("text", {{{"glue", "sst2"}}}).find("needs \"data_dir\""), std::string::npos);
    EXPECT_NE(with("text", {{{"path", "a.jsonl"}, {"feild", "t"}}}).find("'feild' is not a known key"), std::string::npos);
    EXPECT_NE(with("held_out", 0.9).find("'task.held_out' must be in [0, 0.5]"), std::string::npos);
    EXPECT_NE(with("data_dir", "x").find("'task.data_dir' is not a known key"), std::string::npos);
    nlohmann::json opt = mlm_experiment();
    opt["backbone"]["arch"] = "opt";
    EXPECT_NE(parse_error(opt).find("needs a backbone with a masked-LM head"), std::string::npos);
}

TEST(MlmTask, BlocksFromSst2AndMasks) {
    MEFT_REQUIRE_DIR(kGlue / "SST-2", "the GLUE data of ../shared");
    MEFT_REQUIRE_DIR(kTokenizer, "the BERT tokenizer of ../shared");
    const auto tok = load_tokenizer(kTokenizer);
    MlmTaskRequest r;
    r.glue_train = {{"sst2", kGlue / "SST-2"}};
    r.held_out = 0.01;
    r.block_tokens = 32;
    r.seed = 5;
    r.max_train_blocks = 2000;
    const TaskData t = load_mlm_task(r, *tok);
    ASSERT_TRUE(t.masking);
    ASSERT_EQ(t.train.size(), 2000u);
    ASSERT_GT(t.dev.size(), 50u);
    for (const Example& x : t.train) {
        ASSERT_EQ(x.input_ids.size(), 32u);
        EXPECT_TRUE(x.token_labels.empty());  // masked at each step
    }
    std::size_t masked = 0, tokens = 0;
    for (const Example& x : t.dev) {
        ASSERT_TRUE(x.masked_lm);
        ASSERT_EQ(x.token_labels.size(), 32u);
        for (std::int32_t y : x.token_labels) masked += y >= 0;
        tokens += x.token_labels.size();
    }
    EXPECT_NEAR(double(masked) / double(tokens), 0.15, 0.03);
    // Held-out documents never reach training: no dev block equals a training block.
    const TaskData again = load_mlm_task(r, *tok);
    EXPECT_EQ(again.dev.size(), t.dev.size());
    for (std::size_t i = 0; i < t.dev.size(); ++i) ASSERT_EQ(again.dev[i].input_ids, t.dev[i].input_ids) << i;

    // A step's masks: a function of (seed, step, block), not of where the block sits in the step.
    const std::vector<std::size_t> idx = {7, 3, 11}, reversed = {11, 3, 7};
    const auto a = masked_step_examples(t.train, idx, *t.masking, 42, 9);
    const auto b = masked_step_examples(t.train, reversed, *t.masking, 42, 9);
    const auto c = masked_step_examples(t.train, idx, *t.masking, 42, 10);
    EXPECT_EQ(a[0].input_ids, b[2].input_ids);
    EXPECT_EQ(a[0].token_labels, b[2].token_labels);
    EXPECT_NE(a[0].token_labels, c[0].token_labels);
    EXPECT_TRUE(a[0].masked_lm);
    EXPECT_EQ(loss_weight(a[0]), static_cast<int>(std::count_if(a[0].token_labels.begin(), a[0].token_labels.end(),
                                                                [](std::int32_t y) { return y >= 0; })));
}

TEST(MlmTask, PretrainingLowersTheHeldOutLossRepeatablyAndSaves) {
    MEFT_REQUIRE_DIR(kGlue / "SST-2", "the GLUE data of ../shared");
    MEFT_REQUIRE_DIR(kTokenizer, "the BERT tokenizer of ../shared");
    const auto tok = load_tokenizer(kTokenizer);
    MlmTaskRequest r;
    r.glue_train = {{"sst2", kGlue / "SST-2"}};
    r.held_out = 0.01;
    r.block_tokens = 32;
    r.max_train_blocks = 3000;
    r.max_dev_blocks = 32;
    const TaskData t = load_mlm_task(r, *tok);
    auto be = make_cpu_backend();
    ModelConfig cfg = preset_config(Arch::Bert, "tiny");
    cfg.set_masked_lm();
    TrainConfig tc;
    tc.learning_rate = 1e-3;
    tc.batch_size = 16;
    tc.max_steps = 40;
    tc.max_seq_length = 32;
    tc.eval_every = 40;
    auto pretrain = [&] {
        auto m = make_model(cfg, *be, DType::F32, nullptr);
        m->init_weights(1);
        const EvalReport before = evaluate_task(*m, t, 32, 32);
        const TrainResult res = train(*m, t, tc, nullptr);
        return std::make_tuple(std::move(m), before, res);
    };
    auto [m, before, res] = pretrain();
    EXPECT_NEAR(before.loss, std::log(double(cfg.vocab_size)), 0.5);  // a random head: ~uniform over the vocabulary
    EXPECT_LT(res.final_eval.loss, before.loss - 1.5) << "40 steps of pre-training did not lower the held-out MLM loss";
    EXPECT_GT(res.final_eval.metrics.at("masked_accuracy"), before.metrics.at("masked_accuracy"));
    EXPECT_NEAR(res.final_eval.metrics.at("perplexity"), std::exp(res.final_eval.loss), 1e-9 * std::exp(res.final_eval.loss));
    const auto [m2, before2, res2] = pretrain();
    EXPECT_EQ(res2.final_eval.loss, res.final_eval.loss) << "pre-training is not deterministic";

    // The checkpoint: BertForMaskedLM, reloaded with the same outputs.
    const fs::path dir = fs::temp_directory_path() / ("meft_mlm_task_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    save_model(*m, dir);
    std::ifstream cj(dir / "config.json");
    const nlohmann::json config = nlohmann::json::parse(cj);
    EXPECT_EQ(config["architectures"], nlohmann::json::array({"BertForMaskedLM"}));
    LoadOptions as_mlm;
    as_mlm.masked_lm = true;
    LoadReport rep;
    auto reloaded = load_model(dir, *be, DType::F32, as_mlm, &rep);
    EXPECT_TRUE(rep.initialised.empty());
    EXPECT_EQ(evaluate_task(*reloaded, t, 32, 32).loss, evaluate_task(*m, t, 32, 32).loss);
    // Fine-tuning from it: a classifier keeps the backbone, draws its head, drops the MLM head.
    LoadOptions as_task;
    as_task.num_labels = 2;
    LoadReport crep;
    auto clf = load_classifier(dir, *be, DType::F32, as_task, &crep);
    EXPECT_FALSE(clf->config().masked_lm);
    EXPECT_EQ(crep.initialised.size(), 4u);  // the pooler and the classifier, weights and biases
    EXPECT_NE(std::find(crep.ignored.begin(), crep.ignored.end(), "cls.predictions.transform.dense.weight"), crep.ignored.end());
    const std::string wte = "bert.embeddings.word_embeddings.weight";
    EXPECT_EQ(clf->params().download_values(clf->params().find(wte)->value),
              m->params().download_values(m->params().find(wte)->value));
    fs::remove_all(dir);
}
