// GLUE with BART: the toy BART (2 encoder + 2 decoder layers, random weights) classifies SST-2
// from the decoder's last eos state. The real SST-2 files and the GPT-2 byte-level BPE of
// ../shared/models/roberta-base-tokenizer (which BART shares with RoBERTa, pairs included) go
// through the same loader as the CLI's; one epoch on 8000 sentences lifts dev accuracy far above
// chance. The seeds are fixed, so the run is deterministic.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>

#include "core/cpu_backend.h"
#include "data/text_task.h"
#include "data/tokenizer.h"
#include "model/sequence_classifier.h"
#include "test_support.h"
#include "train/trainer.h"

using namespace meft;
namespace fs = std::filesystem;

namespace {
const fs::path kShared = fs::path(MEFT_SHARED_DIR);

TEST(BartGlue, ToyBartLearnsSst2AboveChance) {
    const fs::path data = kShared / "data/glue/SST-2", tok_dir = kShared / "models/roberta-base-tokenizer";
    MEFT_REQUIRE_DIR(data, "the SST-2 files are needed for the BART GLUE run");
    MEFT_REQUIRE_DIR(tok_dir, "the byte-level BPE tokenizer is needed for the BART GLUE run");
    const auto tok = load_tokenizer(tok_dir);
    ModelConfig cfg = preset_config(Arch::Bart, "toy");
    cfg.set_num_labels(2);
    ASSERT_LE(tok->vocab_size(), cfg.vocab_size);
    GlueTaskRequest r;
    r.task = "sst2";
    r.dir = data;
    r.max_train_examples = 8000;
    r.max_seq_length = 64;
    const TaskData task = load_glue_task(r, *tok);
    ASSERT_EQ(task.train.size(), 8000u);
    ASSERT_EQ(task.dev.size(), 872u);
    for (const Example& e : task.train) {  // the head needs each sequence's closing </s>
        ASSERT_FALSE(e.input_ids.empty());
        ASSERT_EQ(e.input_ids.back(), cfg.eos_token_id);
    }

    auto be = make_cpu_backend();
    SequenceClassifier m(cfg, *be, DType::F32);
    m.init_weights(0);
    TrainConfig t;
    t.max_seq_length = 64;
    t.eval_batch_size = 128;
    const EvalReport before = evaluate_task(m, task, t.eval_batch_size, t.max_seq_length);
    t.batch_size = 32;
    t.epochs = 1;
    t.learning_rate = 5e-4;
    t.warmup_ratio = 0.1;
    t.adamw.weight_decay = 0.01;
    t.max_grad_norm = 1.0;
    const TrainResult res = train(m, task, t, nullptr);
    const EvalReport& after = res.final_eval;
    std::printf("SST-2 dev (872 sentences, chance ~0.51): accuracy %.4f -> %.4f, loss %.3f -> %.3f over %d steps\n",
                before.metrics.at("accuracy"), after.metrics.at("accuracy"), before.loss, after.loss, res.steps);
    EXPECT_LT(before.metrics.at("accuracy"), 0.6) << "a random model should be near chance";
    // Chance on 872 balanced sentences has a standard deviation of about 0.017.
    EXPECT_GT(after.metrics.at("accuracy"), 0.7);
    EXPECT_LT(after.loss, before.loss - 0.1);
}

}  // namespace
