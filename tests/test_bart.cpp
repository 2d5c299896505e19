// BART as a sequence classifier (BartForSequenceClassification): float64 finite-difference
// gradients for every method, MEFT's reversible encoder and decoder against ordinary backprop,
// padding invariance, the eos head, and checkpoints in Hugging Face layout.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include "peft/method.h"
#include "core/cpu_backend.h"
#include "model/checkpoint.h"
#include "model/safetensors.h"
#include "model/sequence_classifier.h"
#include "model_gradcheck.h"
#include "test_support.h"

using namespace meft;
namespace fs = std::filesystem;

namespace {

ModelConfig tiny_bart(int labels = 3, int layers = 2) { return meft::test::tiny_bart_config(labels, layers); }

using meft::test::bart_batch;

MethodConfig method(const nlohmann::json& j) { return parse_method(j, "test"); }

const nlohmann::json kAdapter = {{"init_std", 0.5}, {"bottleneck", 3}};

// ---- finite differences ----------------------------------------------------------------------

struct BartCase {
    std::string label;
    nlohmann::json method;
    int labels = 3;
};

class BartGrad : public ::testing::TestWithParam<BartCase> {};

TEST_P(BartGrad, TrainableParametersMatchFiniteDifferences) {
    auto be = make_cpu_backend();
    const ModelConfig cfg = tiny_bart(GetParam().labels);
    SequenceClassifier m(cfg, *be, DType::F64, method(GetParam().method));
    m.init_weights(5);
    meft::test::perturb_method_parameters(m);
    // Step 1e-6: encoder + decoder + head with these weights curve the loss enough that 1e-5's
    // truncation error (which shrinks as h², measured) reaches 1e-6 relative for LoRA.
    const auto r = meft::test::check_trainable_gradients(m, bart_batch(cfg, 3, 9, 1), {true, 77, 2}, 1e-6);
    EXPECT_GT(r.checked, 0);
    int trainable = 0;
    for (const Parameter& p : m.params().all()) trainable += p.trainable;
    EXPECT_EQ(r.checked, trainable);
    // The task head trains under every method (it used to stay at its random initialisation
    // under LoRA, (IA)3, prefix-tuning and MEFT: only BERT's "classifier." counted as a head).
    for (const Parameter& p : m.params().all()) {
        if (p.name.rfind("classification_head.", 0) == 0) {
            EXPECT_TRUE(p.trainable) << p.name;
        }
    }
}

INSTANTIATE_TEST_SUITE_P(
    Methods, BartGrad,
    ::testing::Values(
        BartCase{"full", {{"name", "full"}}}, BartCase{"full_regression", {{"name", "full"}}, 1},
        BartCase{"bitfit", {{"name", "bitfit"}}},
        BartCase{"lora_all", {{"name", "lora"},
                              {"lora", {{"r", 2}, {"targets", {"query", "key", "value", "attention_output", "ffn_in", "ffn_out"}}}}}},
        BartCase{"houlsby", {{"name", "houlsby"}, {"adapter", kAdapter}}},
        BartCase{"pfeiffer", {{"name", "pfeiffer"}, {"adapter", kAdapter}}},
        BartCase{"parallel", {{"name", "parallel"}, {"adapter", kAdapter}}},
        BartCase{"prefix", {{"name", "prefix"}, {"prefix", {{"length", 3}, {"init_std", 0.5}}}}},
        BartCase{"prefix_mlp", {{"name", "prefix"}, {"prefix", {{"length", 3}, {"reparameterize", true}, {"hidden", 5}}}}},
        BartCase{"ia3", {{"name", "ia3"}}},
        BartCase{"checkpointing", {{"name", "full"}, {"gradient_checkpointing", true}}},
        BartCase{"meft1", {{"name", "meft1"}, {"adapter", kAdapter}, {"meft", {{"streams", "float64"}}}}},
        BartCase{"meft2", {{"name", "meft2"}, {"adapter", kAdapter}, {"meft", {{"streams", "float64"}}}}},
        BartCase{"meft3", {{"name", "meft3"}, {"adapter", kAdapter}, {"meft", {{"streams", "float64"}}}}},
        BartCase{"meft1_vanilla_top", {{"name", "meft1"}, {"adapter", kAdapter},
                                       {"meft", {{"streams", "float64"}, {"reversible_layers", 1}}}}}),
    [](const auto& info) { return info.param.label; });

// ---- MEFT on BART: both stacks reversible ------------------------------------------------------

TEST(BartMeft, ReversibleBackwardEqualsVanillaInBothStacks) {
    auto be = make_cpu_backend();
    ModelConfig cfg = tiny_bart(2, 3);
    cfg.hidden_size = 16;
    cfg.intermediate_size = 32;
    cfg.initializer_range = 0.1;
    const HostBatch b = bart_batch(cfg, 3, 8, 4);
    for (int variant : {1, 2, 3}) {
        const std::string name = "meft" + std::to_string(variant);
        auto grads = [&](const nlohmann::json& knobs, std::vector<double>* recon) {
            nlohmann::json j = {{"name", name}, {"adapter", {{"init_std", 0.1}, {"bottleneck", 4}}}, {"meft", knobs}};
            SequenceClassifier m(cfg, *be, DType::F64, method(j));
            m.init_weights(3);
            m.params().zero_grads();
            m.forward_backward(b, {true, 9, 4, false, recon != nullptr}, 0.5);
            if (recon) {
                *recon = m.reconstruction_error();
                // reversible layers keep only MEFT's remainders (and the encoder's output, which
                // the decoder's cross-attention reads): no per-layer activations
                for (const AllocationRecord& rec : m.activations().records()) {
                    if (rec.layer >= 0 && rec.layer < cfg.total_layers()) {
                        EXPECT_TRUE(rec.name.rfind("meft.", 0) == 0 || rec.name == "encoder.out")
                            << name << ": layer " << rec.layer << " kept " << rec.name;
                    }
                }
            }
            return meft::test::trainable_grads(m);
        };
        std::vector<double> recon;
        const auto vanilla = grads({{"vanilla_gradient", true}}, nullptr);
        const auto reversible = grads(nlohmann::json::object(), &recon);
        EXPECT_FALSE(vanilla.empty());
        EXPECT_EQ(reversible, vanilla) << name << ": exact reversible backward is bit-identical";
        ASSERT_EQ(recon.size(), static_cast<std::size_t>(cfg.total_layers())) << name;
        for (double e : recon) EXPECT_EQ(e, 0.0) << name;
    }
}

TEST(BartMeft, AFrozenPrefixIsRefused) {
    auto be = make_cpu_backend();
    const nlohmann::json j = {{"name", "meft1"}, {"meft", {{"frozen_prefix", 1}}}};
    // a frozen prefix would cut the decoder's gradient into the encoder
    const std::string msg = meft::test::error_of([&] { SequenceClassifier m(tiny_bart(), *be, DType::F64, method(j)); });
    EXPECT_NE(msg.find("frozen_prefix"), std::string::npos) << msg;
}

// ---- padding, the eos head --------------------------------------------------------------------

TEST(BartInputs, PaddingDoesNotChangeAnExamplesLogits) {
    auto be = make_cpu_backend();
    const ModelConfig cfg = tiny_bart();
    for (const char* name : {"full", "lora", "prefix", "meft1", "meft3"}) {
        SequenceClassifier m(cfg, *be, DType::F64, method({{"name", name}, {"adapter", kAdapter}}));
        m.init_weights(4);
        const HostBatch one = bart_batch(cfg, 1, 6, 6, false);
        const std::vector<double> alone = m.example_outputs(one);
        HostBatch two = bart_batch(cfg, 2, 10, 7, false);  // a longer neighbour: example 0 gets 4 pads
        for (int t = 0; t < 10; ++t) {
            const bool real = t < 6;
            two.input_ids[static_cast<std::size_t>(t)] = real ? one.input_ids[static_cast<std::size_t>(t)] : cfg.pad_token_id;
            two.attention_mask[static_cast<std::size_t>(t)] = real;
        }
        const std::vector<double> padded = m.example_outputs(two);
        for (int k = 0; k < cfg.num_labels(); ++k)
            EXPECT_NEAR(padded[static_cast<std::size_t>(k)], alone[static_cast<std::size_t>(k)], 1e-12) << name;
    }
}

TEST(BartInputs, TheHeadReadsTheLastEosAndNeedsOne) {
    auto be = make_cpu_backend();
    const ModelConfig cfg = tiny_bart();
    SequenceClassifier m(cfg, *be, DType::F64);
    m.init_weights(2);
    HostBatch b = bart_batch(cfg, 1, 8, 3, false);
    const std::vector<double> before = m.example_outputs(b);
    // A token after the last eos is not read by the head (the decoder is causal) ...
    b.input_ids.push_back(7);
    b.attention_mask.push_back(1);
    b.token_type_ids.push_back(0);
    b.T = 9;
    const std::vector<double> extended = m.example_outputs(b);
    // ... but the encoder is bidirectional, so it changes what the decoder attends to.
    double diff = 0;
    for (std::size_t k = 0; k < before.size(); ++k) diff += std::abs(before[k] - extended[k]);
    EXPECT_GT(diff, 1e-9);
    // no eos at all: a clear error naming the example
    for (std::int32_t& id : b.input_ids)
        if (id == cfg.eos_token_id) id = 5;
    const std::string msg = meft::test::error_of([&] { m.example_outputs(b); });
    EXPECT_NE(msg.find("example 0: no eos token"), std::string::npos) << msg;
}

// ---- checkpoints ---------------------------------------------------------------------------------

class BartCheckpoint : public meft::test::TempDirTest {};

TEST_F(BartCheckpoint, HuggingFaceNamesShapesAndRoundTrip) {
    auto be = make_cpu_backend();
    ModelConfig cfg = preset_config(Arch::Bart, "tiny");
    cfg.vocab_size = 300;
    cfg.max_position_embeddings = 100;
    cfg.set_num_labels(3);
    SequenceClassifier m(cfg, *be, DType::F32);
    m.init_weights(9);
    save_model(m, dir_);
    const SafetensorsReader r = SafetensorsReader::open_dir(dir_);
    const std::int64_t C = cfg.hidden_size, I = cfg.intermediate_size;
    const std::vector<std::pair<std::string, std::vector<std::int64_t>>> expected = {
        {"model.shared.weight", {300, C}},
        {"model.encoder.embed_positions.weight", {102, C}},
        {"model.decoder.embed_positions.weight", {102, C}},
        {"model.encoder.layernorm_embedding.weight", {C}},
        {"model.decoder.layernorm_embedding.bias", {C}},
        {"model.encoder.layers.0.self_attn.q_proj.weight", {C, C}},
        {"model.encoder.layers.0.self_attn.k_proj.bias", {C}},
        {"model.encoder.layers.0.self_attn_layer_norm.weight", {C}},
        {"model.encoder.layers.0.fc1.weight", {I, C}},
        {"model.encoder.layers.0.fc2.weight", {C, I}},
        {"model.encoder.layers.0.final_layer_norm.bias", {C}},
        {"model.decoder.layers.0.self_attn.out_proj.weight", {C, C}},
        {"model.decoder.layers.0.encoder_attn.q_proj.weight", {C, C}},
        {"model.decoder.layers.0.encoder_attn.k_proj.weight", {C, C}},
        {"model.decoder.layers.0.encoder_attn.v_proj.bias", {C}},
        {"model.decoder.layers.0.encoder_attn.out_proj.weight", {C, C}},
        {"model.decoder.layers.0.encoder_attn_layer_norm.weight", {C}},
        {"model.decoder.layers.0.fc1.bias", {I}},
        {"classification_head.dense.weight", {C, C}},
        {"classification_head.out_proj.weight", {3, C}},
        {"classification_head.out_proj.bias", {3}},
    };
    for (const auto& [name, shape] : expected) {
        ASSERT_TRUE(r.contains(name)) << name;
        EXPECT_EQ(r.info(name).shape, shape) << name;
    }
    EXPECT_FALSE(r.contains("model.encoder.embed_tokens.weight")) << "tied to model.shared, not saved";
    EXPECT_EQ(static_cast<int>(r.names().size()), m.params().size());
    const nlohmann::json j = nlohmann::json::parse(std::ifstream(dir_ / "config.json"));
    EXPECT_EQ(j["model_type"], "bart");
    EXPECT_EQ(j["architectures"][0], "BartForSequenceClassification");
    EXPECT_EQ(j["d_model"], C);
    EXPECT_EQ(j["encoder_layers"], 1);
    EXPECT_EQ(j["decoder_layers"], 1);
    EXPECT_EQ(j["decoder_ffn_dim"], I);
    EXPECT_EQ(j["decoder_start_token_id"], 2);
    EXPECT_EQ(j["id2label"].size(), 3u);

    LoadReport rep;
    auto loaded = load_model(dir_, *be, DType::F32, {}, &rep);
    EXPECT_TRUE(rep.initialised.empty());
    EXPECT_TRUE(rep.ignored.empty());
    const HostBatch b = bart_batch(cfg, 2, 7, 3);
    EXPECT_EQ(m.example_outputs(b), loaded->example_outputs(b));

    // A different label count draws a fresh out_proj; the dense layer is kept.
    LoadOptions lo;
    lo.num_labels = 2;
    LoadReport rep2;
    auto relabelled = load_model(dir_, *be, DType::F32, lo, &rep2);
    EXPECT_EQ(rep2.initialised, (std::vector<std::string>{"classification_head.out_proj.weight",
                                                           "classification_head.out_proj.bias"}));
    EXPECT_THROW(load_model(dir_, *be, DType::F32, LoadOptions{method({{"name", "meft1"}, {"meft", {{"frozen_prefix", 1}}}})}),
                 Error);
}

TEST(BartConfig, RefusesWhatTheEngineDoesNotImplement) {
    nlohmann::json j = preset_config(Arch::Bart, "tiny").to_json();
    EXPECT_NO_THROW(ModelConfig::from_json(j, "config.json"));
    for (const auto& [key, value] : std::vector<std::pair<std::string, nlohmann::json>>{
             {"scale_embedding", true}, {"decoder_attention_heads", 4}, {"decoder_ffn_dim", 64},
             {"encoder_layerdrop", 0.1}, {"normalize_before", true}}) {
        nlohmann::json bad = j;
        bad[key] = value;
        const std::string msg = meft::test::error_of([&] { ModelConfig::from_json(bad, "config.json"); });
        EXPECT_NE(msg.find(key), std::string::npos) << key << ": " << msg;
    }
}

}  // namespace
