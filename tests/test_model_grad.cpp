// Whole-model finite-difference gradient checks (float64): every element of every parameter
// tensor of a 2-layer BERT and RoBERTa, with dropout on (masks regenerated in backward), a
// padded example, and both classification and regression heads.
#include <gtest/gtest.h>

#include <cmath>

#include "core/cpu_backend.h"
#include "model_gradcheck.h"
#include "model/sequence_classifier.h"

using namespace meft;

namespace {

HostBatch small_batch(const ModelConfig& c) {
    HostBatch b;
    b.B = 3;
    b.T = 6;
    const int pad = c.pad_token_id;
    b.input_ids = {2, 7, 11, 13, 3, 39, /**/ 2, 5, 17, 3, pad, pad, /**/ 2, 21, 22, 23, 24, 3};
    b.attention_mask = {1, 1, 1, 1, 1, 1, /**/ 1, 1, 1, 1, 0, 0, /**/ 1, 1, 1, 1, 1, 1};
    b.token_type_ids.assign(18, 0);
    if (c.type_vocab_size > 1) b.token_type_ids = {0, 0, 0, 1, 1, 1, /**/ 0, 0, 1, 1, 0, 0, /**/ 0, 1, 0, 1, 0, 1};
    b.labels = {0, c.num_labels() - 1, c.num_labels() > 2 ? 1 : 0};
    b.targets = {0.5, -1.0, 2.0};
    return b;
}

void check_model(Arch arch, int labels) {
    auto be = make_cpu_backend();
    const ModelConfig cfg = meft::test::tiny_model_config(arch, labels);
    SequenceClassifier m(cfg, *be, DType::F64);
    m.init_weights(3);
    const meft::test::ModelGradResult r = meft::test::check_trainable_gradients(m, small_batch(cfg), {true, 1234, 5});
    EXPECT_EQ(r.checked, m.params().size());  // full fine-tuning: every tensor
    std::printf("%d parameter tensors checked; worst relative error %.2e (%s)\n", r.checked, r.worst, r.worst_name.c_str());
}

TEST(ModelGrad, BertClassification) { check_model(Arch::Bert, 3); }
TEST(ModelGrad, RobertaClassification) { check_model(Arch::Roberta, 3); }
TEST(ModelGrad, BertRegression) { check_model(Arch::Bert, 1); }

}  // namespace
