// Model behaviour: padding does not change logits; gradient accumulation over micro-batches gives
// the same update as one batch; float32 agrees with float64; dropout is deterministic per key.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "core/cpu_backend.h"
#include "data/batching.h"
#include "model/sequence_classifier.h"
#include "train/optimizer.h"
#include "train/trainer.h"

using namespace meft;

namespace {

ModelConfig cfg_for(Arch arch) {
    ModelConfig c = preset_config(arch, "tiny");
    c.vocab_size = 3000;
    c.hidden_size = 32;
    c.num_heads = 4;
    c.intermediate_size = 64;
    c.initializer_range = 0.2;
    c.set_num_labels(3);
    return c;
}

std::vector<Example> examples_for(const ModelConfig& c, int n, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::vector<Example> out;
    for (int i = 0; i < n; ++i) {
        Example e;
        const int len = 4 + static_cast<int>(rng() % 12);
        for (int t = 0; t < len; ++t) e.input_ids.push_back(5 + static_cast<int>(rng() % 2900));
        if (c.type_vocab_size > 1)
            for (int t = 0; t < len; ++t) e.token_type_ids.push_back(t >= len / 2);
        e.label = static_cast<int>(rng() % 3);
        out.push_back(e);
    }
    return out;
}

class ModelBehaviour : public ::testing::TestWithParam<Arch> {};

TEST_P(ModelBehaviour, PaddingDoesNotChangeLogits) {
    auto be = make_cpu_backend();
    const ModelConfig c = cfg_for(GetParam());
    SequenceClassifier m(c, *be, DType::F32);
    m.init_weights(11);
    const std::vector<Example> ex = examples_for(c, 5, 1);
    const std::vector<std::size_t> idx = {0, 1, 2, 3, 4};
    HostBatch tight = make_batch(ex, idx, c.pad_token_id, 512);
    const std::vector<double> a = m.to_host(m.forward(tight, {}));
    // append 9 padding positions to every example
    HostBatch loose;
    loose.B = tight.B;
    loose.T = tight.T + 9;
    for (int r = 0; r < tight.B; ++r) {
        for (int t = 0; t < loose.T; ++t) {
            const bool in = t < tight.T;
            const std::size_t j = static_cast<std::size_t>(r * tight.T + t);
            loose.input_ids.push_back(in ? tight.input_ids[j] : c.pad_token_id);
            loose.token_type_ids.push_back(in ? tight.token_type_ids[j] : 0);
            loose.attention_mask.push_back(in ? tight.attention_mask[j] : 0);
        }
    }
    const std::vector<double> b = m.to_host(m.forward(loose, {}));
    ASSERT_EQ(a.size(), b.size());
    for (std::size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-5 * (1 + std::abs(a[i])));
    // and an example alone gives the logits it has inside a padded batch
    const std::vector<std::size_t> one = {3};
    const std::vector<double> alone = m.to_host(m.forward(make_batch(ex, one, c.pad_token_id, 512), {}));
    for (int k = 0; k < 3; ++k) EXPECT_NEAR(alone[k], a[3 * 3 + k], 1e-5 * (1 + std::abs(alone[k])));
}

TEST_P(ModelBehaviour, GradientAccumulationMatchesOneBatch) {
    auto be = make_cpu_backend();
    ModelConfig c = cfg_for(GetParam());
    c.hidden_dropout = c.attention_dropout = 0.1;  // masks must not depend on the split
    const std::vector<Example> ex = examples_for(c, 8, 2);
    const std::vector<std::size_t> idx = {0, 1, 2, 3, 4, 5, 6, 7};
    std::vector<std::vector<double>> params_after;
    std::vector<double> losses;
    for (int micro : {1, 2, 4}) {
        SequenceClassifier m(c, *be, DType::F64);
        m.init_weights(5);
        m.params().zero_grads();
        losses.push_back(accumulate_gradients(m, ex, idx, micro, 64, 77, 3));
        AdamW opt(m.params(), AdamWConfig{});
        opt.step(1e-3);
        std::vector<double> flat;
        for (const Parameter& p : m.params().all()) {
            const double* v = p.value.ptr<double>();
            const double* g = p.grad.ptr<double>();
            flat.insert(flat.end(), g, g + p.shape.numel());
            flat.insert(flat.end(), v, v + p.shape.numel());
        }
        params_after.push_back(flat);
    }
    for (int k : {1, 2}) {
        EXPECT_NEAR(losses[static_cast<std::size_t>(k)], losses[0], 1e-10);
        ASSERT_EQ(params_after[static_cast<std::size_t>(k)].size(), params_after[0].size());
        double worst = 0;
        for (std::size_t i = 0; i < params_after[0].size(); ++i)
            worst = std::max(worst, std::abs(params_after[static_cast<std::size_t>(k)][i] - params_after[0][i]));
        EXPECT_LT(worst, 1e-10) << "micro-batches " << (k == 1 ? 2 : 4);
    }
}

TEST_P(ModelBehaviour, Float32AgreesWithFloat64) {
    auto be = make_cpu_backend();
    const ModelConfig c = cfg_for(GetParam());
    SequenceClassifier m32(c, *be, DType::F32), m64(c, *be, DType::F64);
    m32.init_weights(9);
    m64.init_weights(9);
    const std::vector<Example> ex = examples_for(c, 4, 3);
    const std::vector<std::size_t> idx = {0, 1, 2, 3};
    const HostBatch b = make_batch(ex, idx, c.pad_token_id, 64);
    const std::vector<double> a = m32.to_host(m32.forward(b, {}));
    const std::vector<double> d = m64.to_host(m64.forward(b, {}));
    for (std::size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], d[i], 1e-4 * (1 + std::abs(d[i])));
}

TEST_P(ModelBehaviour, DropoutIsDeterministicPerKeyAndOffInEval) {
    auto be = make_cpu_backend();
    ModelConfig c = cfg_for(GetParam());
    c.hidden_dropout = c.attention_dropout = 0.2;
    SequenceClassifier m(c, *be, DType::F32);
    m.init_weights(4);
    const std::vector<Example> ex = examples_for(c, 4, 4);
    const std::vector<std::size_t> idx = {0, 1, 2, 3};
    const HostBatch b = make_batch(ex, idx, c.pad_token_id, 64);
    const auto t1 = m.to_host(m.forward(b, {true, 1, 1}));
    const auto t2 = m.to_host(m.forward(b, {true, 1, 1}));
    const auto t3 = m.to_host(m.forward(b, {true, 1, 2}));
    const auto e1 = m.to_host(m.forward(b, {}));
    const auto e2 = m.to_host(m.forward(b, {false, 5, 9}));
    EXPECT_EQ(t1, t2);
    EXPECT_NE(t1, t3);
    EXPECT_NE(t1, e1);
    EXPECT_EQ(e1, e2);
}

INSTANTIATE_TEST_SUITE_P(Arch, ModelBehaviour, ::testing::Values(Arch::Bert, Arch::Roberta),
                         [](const auto& info) { return arch_name(info.param); });

}  // namespace
