// Fine-tuning methods: float64 finite-difference checks of every trainable parameter of each
// method on a 2-layer model (with and without gradient checkpointing), frozen parameters stay
// frozen, trainable counts equal the closed forms on BERT-base, starting points, and gradient
// checkpointing gives the same gradients with less saved activation memory.
#include <gtest/gtest.h>

#include <cmath>

#include "peft/method.h"
#include "core/cpu_backend.h"
#include "model_gradcheck.h"
#include "model/sequence_classifier.h"
#include "train/optimizer.h"
#include "train/trainer.h"

using namespace meft;

namespace {

ModelConfig small(Arch arch) { return meft::test::tiny_model_config(arch); }

HostBatch batch_for(const ModelConfig& c) {
    HostBatch b;
    b.B = 2;
    b.T = 5;
    const int pad = c.pad_token_id;
    b.input_ids = {2, 7, 11, 13, 3, /**/ 2, 5, 17, pad, pad};
    b.attention_mask = {1, 1, 1, 1, 1, /**/ 1, 1, 1, 0, 0};
    b.token_type_ids.assign(10, 0);
    b.labels = {0, 2};
    b.targets = {0, 0};
    return b;
}

MethodConfig method(const std::string& name, bool checkpointing = false) {
    nlohmann::json j = {{"name", name}, {"gradient_checkpointing", checkpointing}};
    if (name == "lora")
        j["lora"] = {{"r", 2}, {"alpha", 4}, {"dropout", 0.1},
                     {"targets", {"query", "key", "value", "attention_output", "ffn_in", "ffn_out"}}};
    if (name == "prefix") j["prefix"] = {{"length", 3}, {"init_std", 0.5}};
    if (name == "prefix_mlp") j = {{"name", "prefix"}, {"gradient_checkpointing", checkpointing},
                                  {"prefix", {{"length", 3}, {"init_std", 0.5}, {"reparameterize", true}, {"hidden", 5}}}};
    if (name == "houlsby" || name == "pfeiffer" || name == "parallel")
        j["adapter"] = {{"bottleneck", 3}, {"init_std", 0.5}, {"scaling", 2.0}};
    return parse_method(j, "test");
}


struct Case {
    std::string name;
    bool checkpointing;
    Arch arch;
};

void PrintTo(const Case& c, std::ostream* os) {
    *os << c.name << (c.checkpointing ? "+checkpointing" : "") << " on " << arch_name(c.arch);
}

class MethodGrad : public ::testing::TestWithParam<Case> {};

TEST_P(MethodGrad, TrainableParametersMatchFiniteDifferences) {
    const Case& tc = GetParam();
    auto be = make_cpu_backend();
    const ModelConfig cfg = small(tc.arch);
    SequenceClassifier m(cfg, *be, DType::F64, method(tc.name, tc.checkpointing));
    m.init_weights(3);
    meft::test::perturb_method_parameters(m);
    const auto r = meft::test::check_trainable_gradients(m, batch_for(cfg), {true, 4321, 2});
    EXPECT_GT(r.checked, 0);
}

std::vector<Case> cases() {
    std::vector<Case> out;
    // Every registered method (MEFT's reversible ones: test_meft, which checks their rebuilt
    // inputs and gradients), so a new method gets its finite-difference check by registering.
    std::vector<std::string> names;
    for (const std::string& n : method_names())
        if (!parse_method(nlohmann::json{{"name", n}}, "test").is_meft()) names.push_back(n);
    names.push_back("prefix_mlp");
    for (const std::string& n : names)
        for (bool ckpt : {false, true}) out.push_back({n, ckpt, Arch::Bert});
    for (const char* n : {"lora", "houlsby", "prefix", "ia3"}) out.push_back({n, false, Arch::Roberta});
    return out;
}

INSTANTIATE_TEST_SUITE_P(Methods, MethodGrad, ::testing::ValuesIn(cases()), [](const auto& info) {
    return info.param.name + (info.param.checkpointing ? "_checkpointing" : "") + "_" + arch_name(info.param.arch);
});

// Closed-form trainable counts on BERT-base (2 labels; classifier = 768*2 + 2 = 1,538).
TEST(MethodCounts, BertBaseClosedForms) {
    auto be = make_cpu_backend();
    ModelConfig base = preset_config(Arch::Bert, "base");
    auto count = [&](const nlohmann::json& j) {
        SequenceClassifier m(base, *be, DType::F32, parse_method(j, "test"));  // declared, not allocated
        return m.params().count(true);
    };
    const std::int64_t head = 768 * 2 + 2;
    EXPECT_EQ(count({{"name", "full"}}), 109483778);
    // LoRA r=8 on query and value: 12 layers x 2 sites x (8*768 + 768*8)
    EXPECT_EQ(count({{"name", "lora"}}), 12 * 2 * (8 * 768 + 768 * 8) + head);
    // all six sites: q,k,v,o are 768->768; ffn_in 768->3072; ffn_out 3072->768
    EXPECT_EQ(count({{"name", "lora"}, {"lora", {{"targets", {"query", "key", "value", "attention_output", "ffn_in", "ffn_out"}}}}}),
              12 * (4 * 2 * 8 * 768 + 2 * 8 * (768 + 3072)) + head);
    // Houlsby r=64: two adapters per layer + every LayerNorm (2 per layer + embeddings)
    const std::int64_t adapter64 = 768 * 64 + 64 + 64 * 768 + 768;
    const std::int64_t layer_norms = (12 * 2 + 1) * 2 * 768;
    EXPECT_EQ(count({{"name", "houlsby"}}), 12 * 2 * adapter64 + layer_norms + head);
    EXPECT_EQ(count({{"name", "pfeiffer"}}), 12 * adapter64 + layer_norms + head);
    EXPECT_EQ(count({{"name", "parallel"}}), 12 * adapter64 + layer_norms + head);
    // MEFT's adapter size r=8 (13,064 each; 313,536 for two per layer): the same closed form
    EXPECT_EQ(count({{"name", "houlsby"}, {"adapter", {{"bottleneck", 8}}}}) - layer_norms - head, 313536);
    // BitFit: every bias (per layer q,k,v,o,LN1,ffn_in,ffn_out,LN2) + embeddings LN + pooler + head
    EXPECT_EQ(count({{"name", "bitfit"}}), 12 * (4 * 768 + 768 + 3072 + 768 + 768) + 768 + 768 + head);
    // prefix-tuning, 20 virtual tokens: a key and a value prefix [20, 768] per layer
    EXPECT_EQ(count({{"name", "prefix"}}), 12 * 2 * 20 * 768 + head);
    // reparameterised: P' [20,768] -> Linear(768, 512) -> tanh -> Linear(512, 2*12*768)
    EXPECT_EQ(count({{"name", "prefix"}, {"prefix", {{"reparameterize", true}}}}),
              20 * 768 + 512 * 768 + 512 + 18432 * 512 + 18432 + head);
    // (IA)3: l_k, l_v (768 each), l_ff (3072) per layer
    EXPECT_EQ(count({{"name", "ia3"}}), 12 * (768 + 768 + 3072) + head);
}

TEST(MethodStart, ZeroInitialisedEditsStartAtTheBackbone) {
    auto be = make_cpu_backend();
    const ModelConfig cfg = small(Arch::Bert);
    const HostBatch b = batch_for(cfg);
    for (const nlohmann::json& j : {nlohmann::json{{"name", "lora"}}, nlohmann::json{{"name", "ia3"}},
                                    nlohmann::json{{"name", "houlsby"}, {"adapter", {{"zero_init_up", true}}}}}) {
        SequenceClassifier m(cfg, *be, DType::F64, parse_method(j, "test"));
        m.init_weights(1);
        EXPECT_EQ(starting_point_deviation(m, b), 0.0) << j.dump();
    }
    SequenceClassifier h(cfg, *be, DType::F64, parse_method({{"name", "houlsby"}}, "test"));
    h.init_weights(1);
    const double d = starting_point_deviation(h, b);
    EXPECT_GT(d, 0.0);     // N(0, 0.02^2) up-projections: close to, not at, the backbone
    EXPECT_LT(d, 0.05);
}

TEST(MethodFreeze, FrozenParametersDoNotMoveAndHaveNoState) {
    auto be = make_cpu_backend();
    const ModelConfig cfg = small(Arch::Bert);
    SequenceClassifier m(cfg, *be, DType::F64, method("lora"));
    m.init_weights(5);
    meft::test::perturb_method_parameters(m);
    std::vector<std::vector<double>> before;
    for (const Parameter& p : m.params().all())
        before.emplace_back(p.value.ptr<double>(), p.value.ptr<double>() + p.shape.numel());
    m.params().zero_grads();
    m.forward_backward(batch_for(cfg), {true, 1, 0}, 0.5);
    AdamW opt(m.params(), AdamWConfig{});
    opt.step(1e-2);
    std::int64_t grad_bytes = 0;
    for (std::size_t i = 0; i < before.size(); ++i) {
        const Parameter& p = m.params().at(static_cast<int>(i));
        const std::vector<double> after(p.value.ptr<double>(), p.value.ptr<double>() + p.shape.numel());
        if (p.trainable) {
            EXPECT_NE(after, before[i]) << p.name;
            grad_bytes += static_cast<std::int64_t>(p.grad.bytes());
        } else {
            EXPECT_EQ(after, before[i]) << p.name;
            EXPECT_FALSE(p.m);
        }
    }
    EXPECT_EQ(m.params().grad_arena().bytes_in_use(), static_cast<std::size_t>(grad_bytes));
    EXPECT_EQ(m.params().optimizer_arena().bytes_in_use(), static_cast<std::size_t>(2 * grad_bytes));
}

TEST(GradientCheckpointing, SameGradientsLessMemory) {
    auto be = make_cpu_backend();
    ModelConfig cfg = small(Arch::Bert);
    cfg.num_layers = 4;
    std::vector<std::vector<double>> grads;
    std::vector<std::size_t> peak;
    for (bool ckpt : {false, true}) {
        SequenceClassifier m(cfg, *be, DType::F64, method("houlsby", ckpt));
        m.init_weights(8);
        m.params().zero_grads();
        m.activations().reset_peak();
        m.forward_backward(batch_for(cfg), {true, 3, 1}, 1.0);
        peak.push_back(m.activations().peak_bytes());
        std::vector<double> g;
        for (const Parameter& p : m.params().all())
            if (p.trainable) g.insert(g.end(), p.grad.ptr<double>(), p.grad.ptr<double>() + p.shape.numel());
        grads.push_back(g);
    }
    EXPECT_EQ(grads[0], grads[1]);  // recomputation repeats the forward bit for bit
    EXPECT_LT(peak[1] * 3, peak[0]);
}

}  // namespace
