// A short QA run: the toy OPT, randomly initialised, is at chance on ARC-Easy (zero-shot); one
// epoch of causal-LM training on the gold answers (real ARC-Easy files and the GPT-2 byte-level BPE
// of ../shared/models/roberta-base-tokenizer, which OPT shares) lifts likelihood-scored accuracy
// clearly above chance. The seeds are fixed, so the run is deterministic.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>

#include "core/cpu_backend.h"
#include "data/qa_lm_task.h"
#include "data/tokenizer.h"
#include "model/causal_lm.h"
#include "test_support.h"
#include "train/trainer.h"

using namespace meft;
namespace fs = std::filesystem;

namespace {
const fs::path kShared = fs::path(MEFT_SHARED_DIR);

TEST(OptQa, ToyOptLearnsArcEasyAboveChance) {
    const fs::path data = kShared / "data/qa/ARC-Easy", tok_dir = kShared / "models/roberta-base-tokenizer";
    MEFT_REQUIRE_DIR(data, "the ARC-Easy files are needed for the QA training run");
    MEFT_REQUIRE_DIR(tok_dir, "the byte-level BPE tokenizer is needed for the QA training run");
    const auto tok = load_tokenizer(tok_dir);
    ModelConfig cfg = preset_config(Arch::Opt, "toy");
    cfg.vocab_size = tok->vocab_size();
    QaTaskRequest r;
    r.task = "arc_easy";
    r.dir = data;
    r.max_seq_length = 128;
    r.bos = cfg.bos_token_id;
    const TaskData task = load_qa_lm_task(r, *tok);
    ASSERT_GT(task.train.size(), 2000u);
    ASSERT_GT(task.dev.size(), 2000u);  // every choice of 570 questions

    auto be = make_cpu_backend();
    CausalLM m(cfg, *be, DType::F32);
    m.init_weights(1);
    TrainConfig t;
    t.max_seq_length = 128;
    t.eval_batch_size = 64;
    const EvalReport before = evaluate_task(m, task, t.eval_batch_size, t.max_seq_length);
    t.batch_size = 16;
    t.epochs = 1;
    t.learning_rate = 1e-3;
    t.warmup_ratio = 0.05;
    const TrainResult res = train(m, task, t, nullptr);
    const EvalReport& after = res.final_eval;
    std::printf("ARC-Easy dev (570 questions, chance ~0.25): acc %.4f -> %.4f, acc_norm %.4f -> %.4f, "
                "loss %.3f -> %.3f over %d steps\n",
                before.metrics.at("acc"), after.metrics.at("acc"), before.metrics.at("acc_norm"),
                after.metrics.at("acc_norm"), before.loss, after.loss, res.steps);
    EXPECT_LT(before.metrics.at("acc"), 0.28) << "a random model should be at chance";
    // Chance on 570 mostly four-way questions: 0.25 with a standard deviation of about 0.018.
    EXPECT_GT(after.metrics.at("acc"), 0.29);
    EXPECT_LT(after.loss, before.loss - 2.0) << "the answers' per-token loss falls from ln(V) ~ 10.8";
}
}  // namespace
