// OPT as a causal LM: float64 finite-difference gradients for every method (and the post-LN and
// project_in/out shapes), MEFT's reversible backward against ordinary backprop with a frozen prefix
// and a vanilla top, causal masking, padding invariance, and checkpoints in Hugging Face layout.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include "peft/method.h"
#include "core/cpu_backend.h"
#include "model/causal_lm.h"
#include "model/checkpoint.h"
#include "peft/meft_stack.h"
#include "model/safetensors.h"
#include "model_gradcheck.h"
#include "test_support.h"

using namespace meft;
namespace fs = std::filesystem;

namespace {

ModelConfig tiny_opt(int layers = 2) { return meft::test::tiny_opt_config(layers); }
using meft::test::lm_batch;

MethodConfig method(const nlohmann::json& j) { return parse_method(j, "test"); }

// ---- finite differences ----------------------------------------------------------------------

struct OptCase {
    std::string label;
    nlohmann::json method;
};

class OptGrad : public ::testing::TestWithParam<OptCase> {};


TEST_P(OptGrad, TrainableParametersMatchFiniteDifferences) {
    auto be = make_cpu_backend();
    const ModelConfig cfg = tiny_opt(3);
    CausalLM m(cfg, *be, DType::F64, method(GetParam().method));
    m.init_weights(5);
    meft::test::perturb_method_parameters(m);
    const auto r = meft::test::check_trainable_gradients(m, lm_batch(cfg, 2, 6, 1), {true, 77, 2});
    EXPECT_GT(r.checked, 0);
}

// ReLU adapters: a wide-enough bottleneck that no adapter has every unit dead on the test batch.
const nlohmann::json kAdapter = {{"init_std", 0.5}, {"bottleneck", 8}};

INSTANTIATE_TEST_SUITE_P(
    Methods, OptGrad,
    ::testing::Values(
        OptCase{"full", {{"name", "full"}}}, OptCase{"bitfit", {{"name", "bitfit"}}},
        OptCase{"lora_all", {{"name", "lora"},
                             {"lora", {{"r", 2}, {"targets", {"query", "key", "value", "attention_output", "ffn_in", "ffn_out"}}}}}},
        OptCase{"houlsby", {{"name", "houlsby"}, {"adapter", kAdapter}}},
        OptCase{"pfeiffer", {{"name", "pfeiffer"}, {"adapter", kAdapter}}},
        OptCase{"parallel", {{"name", "parallel"}, {"adapter", kAdapter}}},
        OptCase{"prefix", {{"name", "prefix"}, {"prefix", {{"length", 3}, {"init_std", 0.5}}}}},
        OptCase{"prefix_mlp", {{"name", "prefix"}, {"prefix", {{"length", 3}, {"reparameterize", true}, {"hidden", 5}}}}},
        OptCase{"ia3", {{"name", "ia3"}}},
        OptCase{"checkpointing", {{"name", "full"}, {"gradient_checkpointing", true}}},
        OptCase{"meft1", {{"name", "meft1"}, {"adapter", kAdapter}, {"meft", {{"streams", "float64"}}}}},
        OptCase{"meft2", {{"name", "meft2"}, {"adapter", kAdapter}, {"meft", {{"streams", "float64"}}}}},
        OptCase{"meft1_frozen_prefix", {{"name", "meft1"}, {"adapter", kAdapter},
                                        {"meft", {{"streams", "float64"}, {"frozen_prefix", 1}, {"reversible_layers", 1}}}}}),
    [](const auto& info) { return info.param.label; });

TEST(OptShapes, ProjectInOutAndPostLayerNormMatchFiniteDifferences) {
    auto be = make_cpu_backend();
    ModelConfig proj = tiny_opt(2);
    proj.word_embed_proj_dim = 6;  // OPT-350m's shape: embeddings narrower than the layers
    ModelConfig post = tiny_opt(2);
    post.pre_layer_norm = post.final_layer_norm = false;  // do_layer_norm_before = false
    for (const ModelConfig& cfg : {proj, post}) {
        CausalLM m(cfg, *be, DType::F64, method({{"name", "full"}}));
        m.init_weights(8);
        const auto r = meft::test::check_trainable_gradients(m, lm_batch(cfg, 2, 5, 3), {true, 1, 1});
        EXPECT_EQ(r.checked, m.params().size());
    }
    CausalLM m(proj, *be, DType::F64);
    EXPECT_TRUE(m.params().find("model.decoder.project_in.weight"));
    EXPECT_EQ(m.params().find("model.decoder.project_in.weight")->shape, (Shape{8, 6}));
    EXPECT_EQ(m.params().find("model.decoder.project_out.weight")->shape, (Shape{6, 8}));
    CausalLM q(post, *be, DType::F64);
    EXPECT_FALSE(q.params().find("model.decoder.final_layer_norm.weight"));
}

// ---- MEFT on OPT (spec §2.2, §4.2) ------------------------------------------------------------

// The [DEC] layout: a frozen plain prefix, a reversible middle, ordinary backprop on top.
TEST(OptMeft, ReversibleBackwardEqualsVanillaWithFrozenPrefix) {
    auto be = make_cpu_backend();
    ModelConfig cfg = tiny_opt(5);
    cfg.hidden_size = cfg.word_embed_proj_dim = 16;
    cfg.intermediate_size = 32;
    cfg.initializer_range = 0.1;
    const HostBatch b = lm_batch(cfg, 3, 7, 4);
    for (int variant : {1, 2}) {
        auto grads = [&](const nlohmann::json& knobs, std::vector<double>* recon) {
            nlohmann::json j = {{"name", "meft" + std::to_string(variant)}, {"adapter", {{"init_std", 0.1}, {"bottleneck", 4}}},
                                {"meft", knobs}};
            j["meft"]["frozen_prefix"] = 1;
            CausalLM m(cfg, *be, DType::F64, method(j));
            m.init_weights(3);
            m.params().zero_grads();
            m.forward_backward(b, {true, 9, 4, false, recon != nullptr}, 0.5);
            if (recon) *recon = m.stack_runner()->reconstruction_error();
            // nothing below the coupled layers trains: the frozen prefix keeps no activations
            for (const AllocationRecord& rec : m.activations().records())
                EXPECT_NE(rec.layer, 0) << "frozen prefix layer 0 kept " << rec.name;
            return meft::test::trainable_grads(m);
        };
        std::vector<double> recon;
        const auto vanilla = grads({{"vanilla_gradient", true}}, nullptr);
        const auto reversible = grads({{"reversible_layers", 2}}, &recon);
        EXPECT_EQ(reversible, vanilla) << "MEFT" << variant << ": exact reversible backward is bit-identical";
        ASSERT_EQ(recon.size(), 5u);
        for (int l = 1; l <= 2; ++l) EXPECT_EQ(recon[static_cast<std::size_t>(l)], 0.0) << "layer " << l;
        EXPECT_FALSE(vanilla.empty());
    }
}

// ---- causal masking and padding ----------------------------------------------------------------

TEST(OptCausal, LogitsDoNotDependOnLaterTokens) {
    auto be = make_cpu_backend();
    const ModelConfig cfg = tiny_opt(2);
    CausalLM m(cfg, *be, DType::F64);
    m.init_weights(2);
    HostBatch b = lm_batch(cfg, 1, 8, 5, false);
    for (int t = 1; t < 8; ++t) b.token_labels[static_cast<std::size_t>(t)] = b.input_ids[static_cast<std::size_t>(t)];
    const std::vector<double> before = m.to_host(m.forward(b, {}));
    b.input_ids[6] = b.input_ids[6] == 5 ? 6 : 5;  // change token 6: rows 0..5 predict tokens 1..6
    b.input_ids[7] = b.input_ids[7] == 9 ? 10 : 9;
    const std::vector<double> after = m.to_host(m.forward(b, {}));
    const std::size_t V = static_cast<std::size_t>(cfg.vocab_size);
    ASSERT_EQ(before.size(), 7 * V);
    for (std::size_t r = 0; r < 6; ++r)
        for (std::size_t k = 0; k < V; ++k) ASSERT_EQ(before[r * V + k], after[r * V + k]) << "row " << r;
    double changed = 0;
    for (std::size_t k = 0; k < V; ++k) changed += std::abs(before[6 * V + k] - after[6 * V + k]);
    EXPECT_GT(changed, 1e-6) << "the row reading token 6 must change";
}

TEST(OptCausal, PaddingDoesNotChangeAnExamplesScore) {
    auto be = make_cpu_backend();
    const ModelConfig cfg = tiny_opt(2);
    for (const char* name : {"full", "prefix", "meft1"}) {
        CausalLM m(cfg, *be, DType::F64, method({{"name", name}, {"adapter", kAdapter}}));
        m.init_weights(4);
        HostBatch one = lm_batch(cfg, 1, 5, 6, false);
        const double alone = m.example_outputs(one)[0];
        HostBatch two = lm_batch(cfg, 2, 9, 7, false);  // a longer neighbour: example 0 gets 4 pads
        for (int t = 0; t < 9; ++t) {
            const bool real = t < 5;
            two.input_ids[static_cast<std::size_t>(t)] = real ? one.input_ids[static_cast<std::size_t>(t)] : cfg.pad_token_id;
            two.attention_mask[static_cast<std::size_t>(t)] = real;
            two.token_labels[static_cast<std::size_t>(t)] = real ? one.token_labels[static_cast<std::size_t>(t)] : -100;
        }
        const double padded = m.example_outputs(two)[0];
        EXPECT_LT(alone, 0.0) << name;
        EXPECT_NEAR(padded, alone, 1e-12 * std::abs(alone)) << name;
    }
}

TEST(OptLoss, MeanOverPredictedTokensIndependentOfMicroBatches) {
    // forward_backward sums token losses: two halves of a batch add up to the whole.
    auto be = make_cpu_backend();
    const ModelConfig cfg = tiny_opt(2);
    CausalLM m(cfg, *be, DType::F64, method({{"name", "lora"}}));
    m.init_weights(1);
    const HostBatch all = lm_batch(cfg, 2, 6, 8);
    HostBatch first = all, second = all;
    auto keep = [](HostBatch& b, int row) {
        HostBatch o;
        o.B = 1;
        o.T = b.T;
        for (auto* v : {&b.input_ids, &b.attention_mask, &b.token_type_ids, &b.token_labels}) {
            std::vector<std::int32_t> part(v->begin() + row * b.T, v->begin() + (row + 1) * b.T);
            if (v == &b.input_ids) o.input_ids = part;
            if (v == &b.attention_mask) o.attention_mask = part;
            if (v == &b.token_type_ids) o.token_type_ids = part;
            if (v == &b.token_labels) o.token_labels = part;
        }
        o.labels = {0};
        o.targets = {0};
        o.example_offset = row;
        return o;
    };
    first = keep(first, 0);
    second = keep(second, 1);
    m.params().zero_grads();
    const double whole = m.forward_backward(all, {true, 3, 1}, 0.1);
    const auto g_whole = meft::test::trainable_grads(m);
    m.params().zero_grads();
    const double split = m.forward_backward(first, {true, 3, 1}, 0.1) + m.forward_backward(second, {true, 3, 1}, 0.1);
    const auto g_split = meft::test::trainable_grads(m);
    EXPECT_NEAR(whole, split, 1e-12 * whole);
    ASSERT_EQ(g_whole.size(), g_split.size());
    for (std::size_t i = 0; i < g_whole.size(); ++i) EXPECT_NEAR(g_whole[i], g_split[i], 1e-12) << i;
}

// ---- chunked loss ------------------------------------------------------------------------------
// Training and evaluation compute the LM head's logits, softmax and gradient a few labelled
// positions at a time: any chunk size gives the whole computation's loss, gradients (the tied
// embedding's included) and scores, and finite differences hold across chunk edges.

TEST(OptLoss, ChunksOfLabelledPositionsGiveTheWholeLossAndGradients) {
    auto be = make_cpu_backend();
    const ModelConfig cfg = tiny_opt();
    const HostBatch b = lm_batch(cfg, 3, 9, 4);
    std::vector<double> g_whole, scores_whole;
    double loss_whole = 0;
    for (int rows : {1000, 1, 2, 5}) {
        CausalLM m(cfg, *be, DType::F64, method({{"name", "full"}}));
        m.init_weights(2);
        m.set_loss_chunk_rows(rows);
        m.params().zero_grads();
        const double loss = m.forward_backward(b, {true, 5, 1}, 0.5);
        const auto g = meft::test::trainable_grads(m);
        const auto scores = m.example_outputs(b);
        if (rows == 1000) {
            loss_whole = loss, g_whole = g, scores_whole = scores;
            EXPECT_NEAR(loss, meft::test::host_lm_loss(m, b, {true, 5, 1}), 1e-12);  // forward()'s whole logits
            continue;
        }
        EXPECT_NEAR(loss, loss_whole, 1e-12 * loss_whole) << rows << " rows per chunk";
        ASSERT_EQ(g.size(), g_whole.size());
        for (std::size_t i = 0; i < g.size(); ++i) ASSERT_NEAR(g[i], g_whole[i], 1e-12) << rows << " rows, gradient " << i;
        ASSERT_EQ(scores.size(), scores_whole.size());
        for (std::size_t i = 0; i < scores.size(); ++i) EXPECT_NEAR(scores[i], scores_whole[i], 1e-12) << rows << " rows";
    }
    CausalLM m(cfg, *be, DType::F64, method({{"name", "lora"}}));
    m.init_weights(2);
    meft::test::perturb_method_parameters(m);
    m.set_loss_chunk_rows(2);
    EXPECT_GT(meft::test::check_trainable_gradients(m, b, {true, 5, 1}).checked, 0);
}

// The head holds the labelled positions' hidden rows; its [M, V] logits (overwritten by their
// gradient) and probabilities live one chunk at a time.
TEST(OptLoss, OneChunkOfLogitsAtATime) {
    auto be = make_cpu_backend();
    ModelConfig cfg = tiny_opt();
    cfg.vocab_size = 4000;
    const HostBatch b = lm_batch(cfg, 4, 32, 8, false);
    std::size_t transient[2];
    for (int i = 0; i < 2; ++i) {
        CausalLM m(cfg, *be, DType::F32, method({{"name", "full"}}));
        m.init_weights(1);
        m.set_loss_chunk_rows(i ? 8 : 100000);
        m.params().zero_grads();
        m.forward_backward(b, {true, 1, 0}, 1.0);
        transient[i] = m.memory_report().layers.back().transient;
    }
    const std::size_t logits = std::size_t(4 * 16) * 4000 * 4;  // 64 labelled positions (the second half of each)
    EXPECT_GE(transient[0], 2 * logits);  // logits (then their gradient, in place) and probabilities
    EXPECT_LT(transient[1], logits / 2);  // 8 of the 64 rows at a time
    std::printf("LM head transient, 64 labelled positions x 4000 tokens: whole %zu bytes, 8 rows per chunk %zu bytes\n",
                transient[0], transient[1]);
}

// ---- checkpoints ---------------------------------------------------------------------------------

class OptCheckpoint : public meft::test::TempDirTest {};

TEST_F(OptCheckpoint, HuggingFaceNamesShapesAndRoundTrip) {
    auto be = make_cpu_backend();
    ModelConfig cfg = preset_config(Arch::Opt, "tiny");
    cfg.vocab_size = 300;
    cfg.max_position_embeddings = 100;
    CausalLM m(cfg, *be, DType::F32);
    m.init_weights(9);
    save_model(m, dir_);
    const SafetensorsReader r = SafetensorsReader::open_dir(dir_);
    const std::int64_t C = cfg.hidden_size, I = cfg.intermediate_size;
    const std::vector<std::pair<std::string, std::vector<std::int64_t>>> expected = {
        {"model.decoder.embed_tokens.weight", {300, C}},
        {"model.decoder.embed_positions.weight", {102, C}},
        {"model.decoder.final_layer_norm.weight", {C}},
        {"model.decoder.final_layer_norm.bias", {C}},
        {"model.decoder.layers.0.self_attn.q_proj.weight", {C, C}},
        {"model.decoder.layers.0.self_attn.k_proj.bias", {C}},
        {"model.decoder.layers.0.self_attn.v_proj.weight", {C, C}},
        {"model.decoder.layers.0.self_attn.out_proj.weight", {C, C}},
        {"model.decoder.layers.0.self_attn_layer_norm.weight", {C}},
        {"model.decoder.layers.1.fc1.weight", {I, C}},
        {"model.decoder.layers.1.fc1.bias", {I}},
        {"model.decoder.layers.1.fc2.weight", {C, I}},
        {"model.decoder.layers.1.final_layer_norm.bias", {C}},
    };
    for (const auto& [name, shape] : expected) {
        ASSERT_TRUE(r.contains(name)) << name;
        EXPECT_EQ(r.info(name).shape, shape) << name;
    }
    EXPECT_FALSE(r.contains("lm_head.weight")) << "the LM head is tied to embed_tokens, not saved";
    EXPECT_EQ(static_cast<int>(r.names().size()), m.params().size());
    const nlohmann::json j = nlohmann::json::parse(std::ifstream(dir_ / "config.json"));
    EXPECT_EQ(j["model_type"], "opt");
    EXPECT_EQ(j["architectures"][0], "OPTForCausalLM");
    EXPECT_EQ(j["ffn_dim"], I);
    EXPECT_EQ(j["do_layer_norm_before"], true);
    EXPECT_EQ(j["word_embed_proj_dim"], C);

    LoadReport rep;
    auto loaded = load_model(dir_, *be, DType::F32, {}, &rep);
    EXPECT_TRUE(rep.initialised.empty());
    EXPECT_TRUE(rep.ignored.empty());
    const HostBatch b = lm_batch(cfg, 2, 7, 3);
    EXPECT_EQ(m.example_outputs(b), loaded->example_outputs(b));
    EXPECT_THROW(load_classifier(dir_, *be, DType::F32), Error);
}

}  // namespace
