// The masked-LM head (BertForMaskedLM, RobertaForMaskedLM): float64 finite-difference gradients
// for BERT and RoBERTa under every method, Hugging Face's names, the tied decoder, evaluation
// outputs against a host computation, loss chunks, and the refusal for families without the head.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "core/cpu_backend.h"
#include "core/error.h"
#include "model/arch/arch.h"
#include "model/masked_lm.h"
#include "model_gradcheck.h"
#include "peft/method.h"

using namespace meft;

namespace {

// B sequences of T tokens (the later ones padded) with about a third of the real positions
// labelled with a token id (not necessarily the input's: a masked position's input is [MASK]).
HostBatch mlm_batch(const ModelConfig& c, int B, int T, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    HostBatch b;
    b.B = B;
    b.T = T;
    for (int i = 0; i < B; ++i) {
        const int len = T - static_cast<int>(rng() % 3);
        for (int t = 0; t < T; ++t) {
            const bool real = t < len;
            const int id = real ? 3 + static_cast<int>(rng() % static_cast<std::uint64_t>(c.vocab_size - 3)) : c.pad_token_id;
            b.input_ids.push_back(id);
            b.attention_mask.push_back(real);
            b.token_type_ids.push_back(0);
            const bool labelled = real && t > 0 && rng() % 3 == 0;
            b.token_labels.push_back(labelled ? 3 + static_cast<int>(rng() % static_cast<std::uint64_t>(c.vocab_size - 3)) : -100);
        }
        b.token_labels[static_cast<std::size_t>(i * T + 1)] = 5;  // at least one label per example
    }
    return b;
}

MethodConfig method(const nlohmann::json& j) { return parse_method(j, "test"); }

struct MlmCase {
    std::string label;
    Arch arch;
    nlohmann::json method;
};

class MlmGrad : public ::testing::TestWithParam<MlmCase> {};

TEST_P(MlmGrad, TrainableParametersMatchFiniteDifferences) {
    auto be = make_cpu_backend();
    const ModelConfig cfg = meft::test::tiny_model_config(GetParam().arch, 2, 2);
    MaskedLM m(cfg, *be, DType::F64, method(GetParam().method));
    m.init_weights(5);
    meft::test::perturb_method_parameters(m);
    const auto r = meft::test::check_trainable_gradients(m, mlm_batch(cfg, 2, 6, 1), {true, 77, 2});
    EXPECT_GT(r.checked, 0);
    // The head trains with every method, as a task head does.
    for (const Parameter& p : m.params().all())
        if (m.is_head_parameter(p.name)) EXPECT_TRUE(p.trainable) << p.name;
}

const nlohmann::json kAdapter = {{"init_std", 0.5}, {"bottleneck", 4}};

INSTANTIATE_TEST_SUITE_P(
    Methods, MlmGrad,
    ::testing::Values(
        MlmCase{"bert_full", Arch::Bert, {{"name", "full"}}},
        MlmCase{"roberta_full", Arch::Roberta, {{"name", "full"}}},
        MlmCase{"bert_bitfit", Arch::Bert, {{"name", "bitfit"}}},
        MlmCase{"bert_lora", Arch::Bert, {{"name", "lora"}, {"lora", {{"r", 2}}}}},
        MlmCase{"bert_houlsby", Arch::Bert, {{"name", "houlsby"}, {"adapter", kAdapter}}},
        MlmCase{"roberta_pfeiffer", Arch::Roberta, {{"name", "pfeiffer"}, {"adapter", kAdapter}}},
        MlmCase{"bert_prefix", Arch::Bert, {{"name", "prefix"}, {"prefix", {{"length", 3}, {"init_std", 0.5}}}}},
        MlmCase{"bert_ia3", Arch::Bert, {{"name", "ia3"}}},
        MlmCase{"bert_checkpointing", Arch::Bert, {{"name", "full"}, {"gradient_checkpointing", true}}},
        MlmCase{"bert_meft1", Arch::Bert, {{"name", "meft1"}, {"adapter", kAdapter}, {"meft", {{"streams", "float64"}}}}},
        MlmCase{"roberta_meft2", Arch::Roberta, {{"name", "meft2"}, {"adapter", kAdapter}, {"meft", {{"streams", "float64"}}}}},
        MlmCase{"bert_meft3", Arch::Bert, {{"name", "meft3"}, {"adapter", kAdapter}, {"meft", {{"streams", "float64"}}}}}),
    [](const auto& info) { return info.param.label; });

TEST(MlmHead, HuggingFaceNamesAndTiedDecoder) {
    auto be = make_cpu_backend();
    for (Arch arch : {Arch::Bert, Arch::Roberta}) {
        const ModelConfig cfg = meft::test::tiny_model_config(arch, 2, 1);
        MaskedLM m(cfg, *be, DType::F64, nullptr);
        std::set<std::string> names;
        for (const Parameter& p : m.params().all()) names.insert(p.name);
        const std::string pre = arch == Arch::Bert ? "cls.predictions." : "lm_head.";
        const std::string dense = arch == Arch::Bert ? "cls.predictions.transform.dense" : "lm_head.dense";
        const std::string ln = arch == Arch::Bert ? "cls.predictions.transform.LayerNorm" : "lm_head.layer_norm";
        for (const std::string& n : {dense + ".weight", dense + ".bias", ln + ".weight", ln + ".bias", pre + "bias"}) {
            EXPECT_TRUE(names.count(n)) << n;
            EXPECT_TRUE(m.is_head_parameter(n)) << n;
        }
        EXPECT_EQ(m.params().at(m.params().index_of(pre + "bias")).shape, (Shape{cfg.vocab_size}));
        EXPECT_FALSE(names.count(pre + "decoder.weight")) << "the decoder is the token table, not a copy";
        EXPECT_EQ(m.params().at(m.token_table()).name, m.prefix() + "embeddings.word_embeddings.weight");
        EXPECT_FALSE(m.is_head_parameter(m.params().at(m.token_table()).name));
        for (const std::string& n : names) EXPECT_EQ(n.find("pooler"), std::string::npos) << "MaskedLM has no pooler: " << n;
        EXPECT_TRUE(arch_spec(arch).is_tied_copy(pre + "decoder.weight"));
        EXPECT_TRUE(arch_spec(arch).is_tied_copy(pre + "decoder.bias"));
    }
}

// Evaluation outputs per example: the summed log-likelihood of its labelled tokens, their count,
// and how many have the largest logit — each against the logits computed on the host.
TEST(MlmHead, ExampleOutputsAgreeWithTheLogits) {
    auto be = make_cpu_backend();
    const ModelConfig cfg = meft::test::tiny_model_config(Arch::Bert, 2, 2);
    MaskedLM m(cfg, *be, DType::F64, nullptr);
    m.init_weights(3);
    const HostBatch b = mlm_batch(cfg, 3, 7, 4);
    const std::vector<double> z = m.to_host(m.forward(b, {}));
    const int V = cfg.vocab_size;
    std::vector<double> ll(3, 0), count(3, 0), top(3, 0);
    std::size_t row = 0;
    for (int i = 0; i < b.B; ++i)
        for (int t = 0; t < b.T; ++t) {
            const int y = b.token_labels[static_cast<std::size_t>(i * b.T + t)];
            if (y < 0) continue;
            const double* r = z.data() + row++ * static_cast<std::size_t>(V);
            ll[i] -= meft::test::row_cross_entropy(r, V, y);
            count[i] += 1;
            top[i] += std::max_element(r, r + V) - r == y ? 1 : 0;
        }
    ASSERT_EQ(row * static_cast<std::size_t>(V), z.size());
    for (int chunk : {0, 1, 2}) {  // whole, then one and two rows per loss chunk
        m.set_loss_chunk_rows(chunk);
        const std::vector<double> out = m.example_outputs(b);
        ASSERT_EQ(out.size(), 9u);
        for (int i = 0; i < 3; ++i) {
            EXPECT_NEAR(out[static_cast<std::size_t>(i * 3)], ll[i], 1e-10) << i;
            EXPECT_EQ(out[static_cast<std::size_t>(i * 3 + 1)], count[i]) << i;
            EXPECT_EQ(out[static_cast<std::size_t>(i * 3 + 2)], top[i]) << i;
        }
    }
    double total = 0;
    for (double c : count) total += c;
    EXPECT_GT(total, 3);
}

// Loss chunks of one row give the whole loss and gradients.
TEST(MlmHead, ChunksGiveTheWholeLossAndGradients) {
    auto be = make_cpu_backend();
    const ModelConfig cfg = meft::test::tiny_model_config(Arch::Roberta, 2, 2);
    const HostBatch b = mlm_batch(cfg, 2, 8, 9);
    std::vector<double> losses, grads[2];
    for (int k = 0; k < 2; ++k) {
        MaskedLM m(cfg, *be, DType::F64, nullptr);
        m.init_weights(11);
        m.set_loss_chunk_rows(k == 0 ? 0 : 1);
        m.params().zero_grads();
        losses.push_back(m.forward_backward(b, {true, 3, 1}, 0.5));
        grads[k] = meft::test::trainable_grads(m);
    }
    EXPECT_NEAR(losses[0], losses[1], 1e-12);
    ASSERT_EQ(grads[0].size(), grads[1].size());
    for (std::size_t i = 0; i < grads[0].size(); ++i) EXPECT_NEAR(grads[0][i], grads[1][i], 1e-12) << i;
}

TEST(MlmHead, NothingMaskedNoLossAndBadLabelsRefused) {
    auto be = make_cpu_backend();
    const ModelConfig cfg = meft::test::tiny_model_config(Arch::Bert, 2, 1);
    MaskedLM m(cfg, *be, DType::F64, nullptr);
    m.init_weights(1);
    HostBatch b = mlm_batch(cfg, 2, 5, 2);
    std::fill(b.token_labels.begin(), b.token_labels.end(), -100);
    m.params().zero_grads();
    EXPECT_EQ(m.forward_backward(b, {true, 1, 1}, 1.0), 0.0);
    for (double g : meft::test::trainable_grads(m)) EXPECT_EQ(g, 0.0);
    b.token_labels[3] = cfg.vocab_size;
    try {
        m.forward_backward(b, {true, 1, 1}, 1.0);
        FAIL() << "a label outside the vocabulary was accepted";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("outside the vocabulary"), std::string::npos) << e.what();
    }
    b.token_labels.clear();
    EXPECT_THROW(m.forward_backward(b, {true, 1, 1}, 1.0), Error);
}

// Without token labels only the backbone runs (the starting-point check, predictions of hidden
// states): no logits, the hidden states as SequenceClassifier's backbone computes them.
TEST(MlmHead, ForwardWithoutLabelsRunsTheBackboneOnly) {
    auto be = make_cpu_backend();
    const ModelConfig cfg = meft::test::tiny_model_config(Arch::Bert, 2, 2);
    MaskedLM m(cfg, *be, DType::F64, nullptr);
    m.init_weights(4);
    HostBatch b = mlm_batch(cfg, 2, 6, 3);
    const std::vector<double> with_labels = (m.forward(b, {}), m.to_host(m.last_hidden()));
    b.token_labels.clear();
    EXPECT_FALSE(m.forward(b, {}));
    EXPECT_EQ(m.to_host(m.last_hidden()), with_labels);
    EXPECT_EQ(m.example_outputs(b), std::vector<double>(6, 0.0));
}

TEST(MlmHead, FamiliesWithoutTheHeadAreRefused) {
    auto be = make_cpu_backend();
    for (const ModelConfig& cfg : {meft::test::tiny_opt_config(1), meft::test::tiny_bart_config(2, 1)}) {
        try {
            MaskedLM m(cfg, *be, DType::F64, nullptr);
            FAIL() << arch_name(cfg.arch) << " built a masked LM";
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find("no masked-language-model head"), std::string::npos) << e.what();
        }
    }
}

}  // namespace
