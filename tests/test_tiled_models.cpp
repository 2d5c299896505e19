// Tiled attention inside whole models (training.attention "tiled"): float64 finite differences
// of every trainable parameter for every method on BERT, BART (cross-attention, two stacks) and OPT
// (causal, prefix keys); the same loss and gradients as standard attention (float64 to 1e-12,
// float32 across tile edges to rounding); MEFT's exact inverse stays bit for bit; no [T x T]
// probabilities are kept.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "core/cpu_backend.h"
#include "model/causal_lm.h"
#include "model/sequence_classifier.h"
#include "model_gradcheck.h"
#include "peft/method.h"
#include "train/memory_plan.h"

using namespace meft;

namespace {

MethodConfig method(const nlohmann::json& j) { return parse_method(j, "test"); }

const nlohmann::json kAdapter = {{"init_std", 0.5}, {"bottleneck", 3}};

// A method by name with knobs that give every trainable tensor a visible gradient.
nlohmann::json method_json(const std::string& name) {
    nlohmann::json j = {{"name", name}};
    if (name == "lora")
        j["lora"] = {{"r", 2}, {"alpha", 4}, {"dropout", 0.1},
                     {"targets", {"query", "key", "value", "attention_output", "ffn_in", "ffn_out"}}};
    if (name == "dora")  // the exact gradient (detach_norm would differ from finite differences by design)
        j["lora"] = {{"r", 2}, {"alpha", 4}, {"dropout", 0.1}, {"detach_norm", false},
                     {"targets", {"query", "key", "value", "attention_output", "ffn_in", "ffn_out"}}};
    if (name == "vera")
        j["vera"] = {{"r", 3}, {"dropout", 0.1}, {"targets", {"query", "key", "value", "attention_output", "ffn_in", "ffn_out"}}};
    if (name == "prefix") j["prefix"] = {{"length", 3}, {"init_std", 0.5}};
    if (name == "houlsby" || name == "pfeiffer" || name == "parallel" || name.rfind("meft", 0) == 0) j["adapter"] = kAdapter;
    if (name.rfind("meft", 0) == 0) j["meft"] = {{"streams", "float64"}};
    return j;
}

enum class Family { Bert, Bart, Opt };

struct Case {
    std::string label;
    Family family;
    nlohmann::json method;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.label; }

ModelConfig config_of(Family f, AttentionKind k) {
    ModelConfig c = f == Family::Bert   ? meft::test::tiny_model_config(Arch::Bert)
                    : f == Family::Bart ? meft::test::tiny_bart_config()
                                        : meft::test::tiny_opt_config();
    c.attention = k;
    return c;
}

HostBatch batch_of(Family f, const ModelConfig& c) {
    if (f == Family::Bart) return meft::test::bart_batch(c, 3, 9, 1);
    if (f == Family::Opt) return meft::test::lm_batch(c, 2, 6, 1);
    HostBatch b;  // one padded example: the tiled kernel's key mask matters
    b.B = 2;
    b.T = 5;
    b.input_ids = {2, 7, 11, 13, 3, /**/ 2, 5, 17, c.pad_token_id, c.pad_token_id};
    b.attention_mask = {1, 1, 1, 1, 1, /**/ 1, 1, 1, 0, 0};
    b.token_type_ids.assign(10, 0);
    b.labels = {0, 2};
    b.targets = {0, 0};
    return b;
}

std::unique_ptr<Model> build(Backend& be, Family f, AttentionKind k, const nlohmann::json& m, DType dt = DType::F64) {
    const ModelConfig cfg = config_of(f, k);
    std::unique_ptr<Model> model;
    if (f == Family::Opt) model = std::make_unique<CausalLM>(cfg, be, dt, method(m));
    else model = std::make_unique<SequenceClassifier>(cfg, be, dt, method(m));
    model->init_weights(3);
    if (dt == DType::F64) meft::test::perturb_method_parameters(*model);
    return model;
}

class TiledGrad : public ::testing::TestWithParam<Case> {};

// Every trainable parameter against central finite differences of the host-computed loss, dropout
// on (the recomputed attention masks must be the forward's).
TEST_P(TiledGrad, TrainableParametersMatchFiniteDifferences) {
    const Case& tc = GetParam();
    auto be = make_cpu_backend();
    const auto m = build(*be, tc.family, AttentionKind::Tiled, tc.method);
    const auto r = meft::test::check_trainable_gradients(*m, batch_of(tc.family, m->config()), {true, 4321, 2},
                                                         tc.family == Family::Bart ? 1e-6 : 1e-5);
    EXPECT_GT(r.checked, 0);
}

// The same loss and the same gradients as standard attention (same seed, same dropout masks).
TEST_P(TiledGrad, EqualsStandardAttention) {
    const Case& tc = GetParam();
    auto be = make_cpu_backend();
    const auto standard = build(*be, tc.family, AttentionKind::Standard, tc.method);
    const auto tiled = build(*be, tc.family, AttentionKind::Tiled, tc.method);
    const HostBatch b = batch_of(tc.family, standard->config());
    standard->params().zero_grads();
    tiled->params().zero_grads();
    const double ls = standard->forward_backward(b, {true, 99, 4}, 1.0);
    const double lt = tiled->forward_backward(b, {true, 99, 4}, 1.0);
    EXPECT_NEAR(lt, ls, 1e-12 * std::abs(ls));
    const std::vector<double> gs = meft::test::trainable_grads(*standard), gt = meft::test::trainable_grads(*tiled);
    ASSERT_EQ(gs.size(), gt.size());
    double worst = 0, scale = 0;
    for (std::size_t i = 0; i < gs.size(); ++i) worst = std::max(worst, std::abs(gs[i] - gt[i])), scale = std::max(scale, std::abs(gs[i]));
    EXPECT_GT(scale, 0.0);
    EXPECT_LT(worst, 1e-12 * scale) << tc.label;
}

std::vector<Case> cases() {
    std::vector<Case> out;
    // Every registered method on BERT (a new method gets its tiled check by registering).
    for (const std::string& n : method_names()) out.push_back({"bert_" + n, Family::Bert, method_json(n)});
    out.push_back({"bert_lora_checkpointing", Family::Bert,
                   [] { auto j = method_json("lora"); j["gradient_checkpointing"] = true; return j; }()});
    for (const char* n : {"full", "lora", "prefix", "meft1", "meft3"}) out.push_back({std::string("bart_") + n, Family::Bart, method_json(n)});
    for (const char* n : {"full", "prefix", "ia3", "meft1", "meft2"}) out.push_back({std::string("opt_") + n, Family::Opt, method_json(n)});
    return out;
}

INSTANTIATE_TEST_SUITE_P(Methods, TiledGrad, ::testing::ValuesIn(cases()),
                         [](const auto& info) { return info.param.label; });

// ---- float32 across tile edges ----------------------------------------------------------------

HostBatch long_batch(const ModelConfig& c, int B, int T, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    HostBatch b;
    b.B = B;
    b.T = T;
    for (int i = 0; i < B; ++i) {
        const int len = T - static_cast<int>(rng() % 40);  // padding that ends mid-tile
        for (int t = 0; t < T; ++t) {
            b.input_ids.push_back(t < len ? 1 + static_cast<int>(rng() % static_cast<std::uint64_t>(c.vocab_size - 1)) : c.pad_token_id);
            b.attention_mask.push_back(t < len);
            b.token_type_ids.push_back(0);
        }
        b.labels.push_back(static_cast<int>(rng() % 3));
        b.targets.push_back(0);
    }
    return b;
}

ModelConfig float32_config(int layers, AttentionKind k) {
    ModelConfig c = meft::test::tiny_model_config(Arch::Bert, 3, layers);
    c.hidden_size = 64;
    c.num_heads = 4;
    c.intermediate_size = 128;
    c.max_position_embeddings = 512;
    c.vocab_size = 500;
    c.initializer_range = 0.02;
    c.attention = k;
    return c;
}

double rel_diff(const std::vector<double>& a, const std::vector<double>& b) {
    double d = 0, n = 0;
    for (std::size_t i = 0; i < a.size(); ++i) d += (a[i] - b[i]) * (a[i] - b[i]), n += b[i] * b[i];
    return std::sqrt(d / std::max(n, 1e-300));
}

std::vector<double> float_grads(Model& m) {
    std::vector<double> g;
    for (const Parameter& p : m.params().all())
        if (p.trainable) g.insert(g.end(), p.grad.ptr<float>(), p.grad.ptr<float>() + p.shape.numel());
    return g;
}

// 300 tokens: five 64-row query tiles and three 128-column key tiles, the last ones partial.
TEST(TiledFloat32, EqualsStandardToRoundingAcrossTileEdges) {
    auto be = make_cpu_backend();
    for (const char* name : {"full", "meft1"}) {
        std::vector<double> g[2];
        double loss[2];
        for (int i = 0; i < 2; ++i) {
            const ModelConfig cfg = float32_config(2, i ? AttentionKind::Tiled : AttentionKind::Standard);
            SequenceClassifier m(cfg, *be, DType::F32, method({{"name", name}}));
            m.init_weights(7);
            m.params().zero_grads();
            loss[i] = m.forward_backward(long_batch(cfg, 3, 300, 5), {true, 17, 1}, 1.0 / 3);
            g[i] = float_grads(m);
        }
        EXPECT_NEAR(loss[1], loss[0], 1e-5 * std::abs(loss[0])) << name;
        const double d = rel_diff(g[1], g[0]);
        EXPECT_LT(d, 1e-4) << name;
        std::printf("%s, float32, 3 x 300 tokens: loss %.7f (standard) %.7f (tiled); gradients differ by %.2e (relative)\n",
                    name, loss[0], loss[1], d);
    }
}

// MEFT recomputes every layer from its rebuilt input in backward: with tiled attention (its
// dropout masks regenerated from the same counters) the exact streams still rebuild every input
// bit for bit.
TEST(TiledMeft, ExactInverseIsBitIdentical) {
    auto be = make_cpu_backend();
    const ModelConfig cfg = float32_config(12, AttentionKind::Tiled);
    const HostBatch b = long_batch(cfg, 4, 200, 9);
    for (int variant : {1, 2, 3}) {
        const nlohmann::json j = {{"name", "meft" + std::to_string(variant)},
                                  {"meft", {{"streams", "exact"}, {"keep_true_inputs", true}}}};
        SequenceClassifier m(cfg, *be, DType::F32, method(j));
        m.init_weights(5);
        m.params().zero_grads();
        m.forward_backward(b, {true, 11, 0}, 1.0 / b.B);
        const std::vector<double>& err = m.stack_runner()->reconstruction_error();
        ASSERT_EQ(err.size(), 12u);
        for (int l = 0; l < 12; ++l) EXPECT_EQ(err[static_cast<std::size_t>(l)], 0.0) << "MEFT" << variant << " layer " << l;
    }
}

// ---- memory -----------------------------------------------------------------------------------

// Tiled attention keeps per block one log-sum-exp per (example, head, query) instead of the
// probabilities; planned = measured with it (for every method: test_memory).
TEST(TiledMemory, KeepsRowStatisticsInsteadOfProbabilities) {
    auto be = make_cpu_backend();
    const int B = 2, T = 200;
    std::size_t held[2];
    for (int i = 0; i < 2; ++i) {
        const ModelConfig cfg = float32_config(2, i ? AttentionKind::Tiled : AttentionKind::Standard);
        held[i] = measure_memory(*be, cfg, method({{"name", "full"}}), DType::F32, B, T).report.held_total;
    }
    const ModelConfig cfg = float32_config(2, AttentionKind::Standard);
    const std::size_t probs = std::size_t(B) * cfg.num_heads * T * T * 4, lse = std::size_t(B) * cfg.num_heads * T * 4;
    // full fine-tuning keeps ctx either way (the output projection trains): per layer, probs out, lse in
    EXPECT_EQ(held[0] - held[1], 2 * (probs - lse));
}

}  // namespace
