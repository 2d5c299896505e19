// Fine-tuning methods: float64 finite-difference checks of every trainable parameter of each
// method on a 2-layer model (with and without gradient checkpointing), frozen parameters stay
// frozen, trainable counts equal the closed forms on BERT-base, starting points, and gradient
// checkpointing gives the same gradients with less saved activation memory.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "peft/method.h"
#include "core/cpu_backend.h"
#include "model_gradcheck.h"
#include "model/sequence_classifier.h"
#include "train/optimizer.h"
#include "train/memory_plan.h"
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

// chunk > 0: gradient checkpointing recomputes chunks of that many tokens (recompute_tokens).
MethodConfig method(const std::string& name, bool checkpointing = false, int chunk = 0) {
    nlohmann::json j = {{"name", name}, {"gradient_checkpointing", checkpointing}, {"recompute_tokens", chunk}};
    if (name == "lora" || name == "rslora" || name == "lora_fa")
        j["lora"] = {{"r", 2}, {"alpha", 4}, {"dropout", 0.1},
                     {"targets", {"query", "key", "value", "attention_output", "ffn_in", "ffn_out"}}};
    if (name == "dora")  // the exact gradient through the norm (the detached one: DoraDetachedNorm)
        j["lora"] = {{"r", 2}, {"alpha", 4}, {"dropout", 0.1}, {"detach_norm", false},
                     {"targets", {"query", "key", "value", "attention_output", "ffn_in", "ffn_out"}}};
    if (name == "vera")
        j["vera"] = {{"r", 3}, {"d_initial", 0.1}, {"dropout", 0.1},
                     {"targets", {"query", "key", "value", "attention_output", "ffn_in", "ffn_out"}}};
    if (name == "prefix") j["prefix"] = {{"length", 3}, {"init_std", 0.5}};
    if (name == "prefix_mlp") j = {{"name", "prefix"}, {"gradient_checkpointing", checkpointing}, {"recompute_tokens", chunk},
                                  {"prefix", {{"length", 3}, {"init_std", 0.5}, {"reparameterize", true}, {"hidden", 5}}}};
    if (name == "houlsby" || name == "pfeiffer" || name == "parallel")
        j["adapter"] = {{"bottleneck", 3}, {"init_std", 0.5}, {"scaling", 2.0}};
    return parse_method(j, "test");
}


struct Case {
    std::string name;
    bool checkpointing;
    Arch arch;
    bool chunked = false;  // checkpointing recomputes one example at a time
};

void PrintTo(const Case& c, std::ostream* os) {
    *os << c.name << (c.checkpointing ? "+checkpointing" : "") << (c.chunked ? " in chunks" : "") << " on "
        << arch_name(c.arch);
}

class MethodGrad : public ::testing::TestWithParam<Case> {};

TEST_P(MethodGrad, TrainableParametersMatchFiniteDifferences) {
    const Case& tc = GetParam();
    auto be = make_cpu_backend();
    const ModelConfig cfg = small(tc.arch);
    SequenceClassifier m(cfg, *be, DType::F64, method(tc.name, tc.checkpointing, tc.chunked ? 5 : 0));
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
    // gradient checkpointing recomputing one example at a time (a prefix's mask included)
    for (const char* n : {"full", "lora", "houlsby", "prefix", "prefix_mlp", "ia3"}) out.push_back({n, true, Arch::Bert, true});
    for (const char* n : {"lora", "houlsby", "prefix", "ia3"}) out.push_back({n, false, Arch::Roberta});
    return out;
}

INSTANTIATE_TEST_SUITE_P(Methods, MethodGrad, ::testing::ValuesIn(cases()), [](const auto& info) {
    return info.param.name + (info.param.checkpointing ? "_checkpointing" : "") + (info.param.chunked ? "_chunked" : "") +
           "_" + arch_name(info.param.arch);
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
    // rsLoRA trains what LoRA does; LoRA-FA only B [768, 8] per site
    EXPECT_EQ(count({{"name", "rslora"}}), 12 * 2 * (8 * 768 + 768 * 8) + head);
    EXPECT_EQ(count({{"name", "lora_fa"}}), 12 * 2 * (768 * 8) + head);
    // DoRA: LoRA's plus a magnitude [768] per site; VeRA r = 256: λ_b [768] and λ_d [256] per site
    // (the shared vera_A [256, 768], vera_B [768, 256] are frozen)
    EXPECT_EQ(count({{"name", "dora"}}), 12 * 2 * (8 * 768 + 768 * 8 + 768) + head);
    EXPECT_EQ(count({{"name", "vera"}}), 12 * 2 * (768 + 256) + head);
    SequenceClassifier v(base, *be, DType::F32,
                         parse_method({{"name", "vera"}, {"vera", {{"targets", {"query", "ffn_in", "ffn_out"}}}}}, "t"));
    EXPECT_EQ(v.params().find("vera_A")->shape, (Shape{256, 3072}));  // widest input: ffn_out's
    EXPECT_EQ(v.params().find("vera_B")->shape, (Shape{3072, 256}));  // widest output: ffn_in's
    EXPECT_EQ(v.params().count(true), 12 * (768 + 3072 + 768 + 3 * 256) + head);
}

// DoRA with the norm detached (the default): the magnitude's gradient is the exact one, A's and
// B's are those of the same function with ||W + s·B·A|| held at its value. Checked against a
// dense float64 evaluation of those formulas on one projection.
TEST(LoraVariants, DoraDetachedNormGradients) {
    auto be = make_cpu_backend();
    const int N = 5, IN = 4, OUT = 3, R = 2;
    ParameterStore ps(*be, DType::F64);
    const int w_idx = ps.declare("p.weight", {OUT, IN}, Init::normal(0.7));
    ps.declare("p.bias", {OUT}, Init::normal(0.3));
    const MethodConfig m = parse_method({{"name", "dora"}, {"lora", {{"r", R}, {"alpha", 3}, {"dropout", 0.0}, {"targets", {"query"}}}}}, "t");
    ASSERT_TRUE(m.lora.detach_norm);
    const ModelConfig cfg = small(Arch::Bert);
    auto stack = std::shared_ptr<const ModelEdit>(m)->edit_stack(StackSpec{}, cfg, ps);
    SiteSpec site{Site::Query, "p", 0, 1, false, IN, OUT, false, w_idx};
    auto edit = stack->linear(site, ps);
    ASSERT_TRUE(edit);
    ps.set_trainable([](const Parameter& p) { return p.added && !p.fixed; });
    ps.materialize();
    for (int i = 0; i < ps.size(); ++i) ps.initialize(i, 11);
    auto vals = [&](const std::string& n) { return ps.find(n)->value.ptr<double>(); };
    double *W = vals("p.weight"), *A = vals("p.lora_A.weight"), *Bm = vals("p.lora_B.weight"), *M = vals("p.lora_magnitude_vector");
    for (int o = 0; o < OUT; ++o) {  // the magnitude starts at W's row norms
        double ss = 0;
        for (int i = 0; i < IN; ++i) ss += W[o * IN + i] * W[o * IN + i];
        EXPECT_NEAR(M[o], std::sqrt(ss), 1e-15);
    }
    std::mt19937_64 rng(5);
    std::normal_distribution<double> nd(0.0, 0.5);
    for (int i = 0; i < OUT * R; ++i) Bm[i] = nd(rng);
    for (int o = 0; o < OUT; ++o) M[o] += nd(rng);
    std::vector<double> x(N * IN), G(N * OUT), out(N * OUT, 0.0), dx(N * IN, 0.0);
    for (double& v : x) v = nd(rng);
    for (double& v : G) v = nd(rng);
    Arena saved("saved", be->memory()), tmp("tmp", be->memory());
    const Tensor tx{DType::F64, {N, IN}, x.data()}, tout{DType::F64, {N, OUT}, out.data()};
    const EditCall call{*be, ps, tmp, true, 0.0, PhiloxKey{}, 0};
    const Tensor kept = edit->forward(call, tout, tx, saved, 0, "q");
    ps.zero_grads();
    edit->backward(call, Tensor{DType::F64, {N, IN}, dx.data()}, Tensor{DType::F64, {N, OUT}, G.data()}, tx, kept);

    const double s = 3.0 / R;
    std::vector<double> V(OUT * IN), n(OUT), dA(R * IN, 0.0), dB(OUT * R, 0.0), dM(OUT, 0.0), dX(N * IN, 0.0);
    for (int o = 0; o < OUT; ++o) {
        double ss = 0;
        for (int i = 0; i < IN; ++i) {
            double ba = 0;
            for (int k = 0; k < R; ++k) ba += Bm[o * R + k] * A[k * IN + i];
            V[o * IN + i] = W[o * IN + i] + s * ba;
            ss += V[o * IN + i] * V[o * IN + i];
        }
        n[o] = std::sqrt(ss);
    }
    for (int t = 0; t < N; ++t)
        for (int o = 0; o < OUT; ++o) {
            const double g = M[o] / n[o], go = G[t * OUT + o];
            double vx = 0, wx = 0;
            for (int i = 0; i < IN; ++i) vx += V[o * IN + i] * x[t * IN + i], wx += W[o * IN + i] * x[t * IN + i];
            EXPECT_NEAR(out[t * OUT + o], g * vx - wx, 1e-12);  // the branch: (g - 1) W x + g s B A x
            dM[o] += go * vx / n[o];
            for (int i = 0; i < IN; ++i) dX[t * IN + i] += go * (g * V[o * IN + i] - W[o * IN + i]);
            for (int k = 0; k < R; ++k) {
                double ax = 0;
                for (int i = 0; i < IN; ++i) ax += A[k * IN + i] * x[t * IN + i];
                dB[o * R + k] += go * g * s * ax;
                for (int i = 0; i < IN; ++i) dA[k * IN + i] += go * g * s * Bm[o * R + k] * x[t * IN + i];
            }
        }
    auto near = [](const double* got, const std::vector<double>& want, const char* what) {
        for (std::size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-12) << what << "[" << i << "]";
    };
    near(ps.find("p.lora_magnitude_vector")->grad.ptr<double>(), dM, "dm");
    near(ps.find("p.lora_A.weight")->grad.ptr<double>(), dA, "dA");
    near(ps.find("p.lora_B.weight")->grad.ptr<double>(), dB, "dB");
    near(dx.data(), dX, "dx");
}

// rsLoRA scales the update by alpha / sqrt(r): rsLoRA (alpha 8, r 4) is LoRA (alpha 16, r 4),
// bit for bit, in outputs and gradients.
TEST(LoraVariants, RsLoraScalesByAlphaOverRootR) {
    auto be = make_cpu_backend();
    const ModelConfig cfg = small(Arch::Bert);
    std::vector<double> g[2];
    double loss[2];
    int i = 0;
    for (const char* name : {"rslora", "lora"}) {
        const nlohmann::json lora = {{"r", 4}, {"alpha", i ? 16 : 8}, {"dropout", 0.1}, {"targets", {"query", "ffn_out"}}};
        SequenceClassifier m(cfg, *be, DType::F64, parse_method({{"name", name}, {"lora", lora}}, "test"));
        m.init_weights(3);
        meft::test::perturb_method_parameters(m);
        m.params().zero_grads();
        loss[i] = m.forward_backward(batch_for(cfg), {true, 2, 1}, 1.0);
        g[i++] = meft::test::trainable_grads(m);
    }
    EXPECT_EQ(loss[0], loss[1]);
    EXPECT_EQ(g[0], g[1]);
    EXPECT_DOUBLE_EQ(parse_method({{"name", "rslora"}, {"lora", {{"r", 16}, {"alpha", 8}}}}, "t").lora_scale(), 2.0);
    EXPECT_DOUBLE_EQ(parse_method({{"name", "lora"}, {"lora", {{"r", 16}, {"alpha", 8}}}}, "t").lora_scale(), 0.5);
}

// LoRA-FA: A stays at its draw (no gradient, no optimizer state: MethodFreeze), B gets LoRA's
// gradient, and a frozen projection's input is not kept when LoRA-FA is its only edit.
TEST(LoraVariants, LoraFaTrainsOnlyBAndKeepsNoFrozenInputs) {
    auto be = make_cpu_backend();
    ModelConfig cfg = small(Arch::Bert);
    const nlohmann::json lora = {{"r", 2}, {"alpha", 4}, {"dropout", 0.1}, {"targets", {"query", "attention_output", "ffn_out"}}};
    SequenceClassifier fa(cfg, *be, DType::F64, parse_method({{"name", "lora_fa"}, {"lora", lora}}, "test"));
    SequenceClassifier full(cfg, *be, DType::F64, parse_method({{"name", "lora"}, {"lora", lora}}, "test"));
    for (SequenceClassifier* m : {&fa, &full}) {
        m->init_weights(3);
        meft::test::perturb_method_parameters(*m);
        m->params().zero_grads();
        m->forward_backward(batch_for(cfg), {true, 2, 1}, 1.0);
    }
    int b_tensors = 0;
    for (const Parameter& p : fa.params().all()) {
        const bool is_a = p.name.find(".lora_A.") != std::string::npos, is_b = p.name.find(".lora_B.") != std::string::npos;
        if (is_a) {
            EXPECT_TRUE(p.fixed && !p.trainable) << p.name;
        }
        if (!is_b) continue;
        ++b_tensors;
        const Parameter& q = *full.params().find(p.name);
        const std::vector<double> gf = fa.to_host(p.grad), gl = full.to_host(q.grad);
        EXPECT_EQ(gf, gl) << p.name;  // dB = scale · dout^T (A·Dropout(x)): the same
    }
    EXPECT_EQ(b_tensors, 3 * cfg.num_layers);
    // Kept for backward: LoRA keeps ctx [B,T,C] and the FFN activation [B,T,I] per layer for its A
    // gradients; LoRA-FA does not.
    cfg.attention_dropout = cfg.hidden_dropout = 0.0;
    const std::size_t held_fa = measure_memory(*be, cfg, parse_method({{"name", "lora_fa"}, {"lora", lora}}, "t"), DType::F32, 4, 24).report.held_total;
    const std::size_t held_lora = measure_memory(*be, cfg, parse_method({{"name", "lora"}, {"lora", lora}}, "t"), DType::F32, 4, 24).report.held_total;
    EXPECT_EQ(held_lora - held_fa, std::size_t(cfg.num_layers) * 4 * 24 * (cfg.hidden_size + cfg.intermediate_size) * 4);
}

TEST(MethodStart, ZeroInitialisedEditsStartAtTheBackbone) {
    auto be = make_cpu_backend();
    const ModelConfig cfg = small(Arch::Bert);
    const HostBatch b = batch_for(cfg);
    for (const nlohmann::json& j : {nlohmann::json{{"name", "lora"}}, nlohmann::json{{"name", "ia3"}},
                                    nlohmann::json{{"name", "dora"}}, nlohmann::json{{"name", "vera"}},
                                    nlohmann::json{{"name", "houlsby"}, {"adapter", {{"zero_init_up", true}}}}}) {
        for (DType dt : {DType::F64, DType::F32}) {  // DoRA's m / ||W|| is exactly 1 in either
            SequenceClassifier m(cfg, *be, dt, parse_method(j, "test"));
            m.init_weights(1);
            EXPECT_EQ(starting_point_deviation(m, b), 0.0) << j.dump() << " " << dtype_name(dt);
        }
    }
    SequenceClassifier h(cfg, *be, DType::F64, parse_method({{"name", "houlsby"}}, "test"));
    h.init_weights(1);
    const double d = starting_point_deviation(h, b);
    EXPECT_GT(d, 0.0);     // N(0, 0.02^2) up-projections: close to, not at, the backbone
    EXPECT_LT(d, 0.05);
}

TEST(MethodFreeze, FrozenParametersDoNotMoveAndHaveNoState) {
    for (const char* name : {"lora", "lora_fa", "vera"}) {  // LoRA-FA's A, VeRA's A and B are added yet frozen
        auto be = make_cpu_backend();
        const ModelConfig cfg = small(Arch::Bert);
        SequenceClassifier m(cfg, *be, DType::F64, method(name));
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
                EXPECT_NE(after, before[i]) << name << " " << p.name;
                grad_bytes += static_cast<std::int64_t>(p.grad.bytes());
            } else {
                EXPECT_EQ(after, before[i]) << p.name;
                EXPECT_FALSE(p.m);
            }
        }
        EXPECT_EQ(m.params().grad_arena().bytes_in_use(), static_cast<std::size_t>(grad_bytes));
        EXPECT_EQ(m.params().optimizer_arena().bytes_in_use(), static_cast<std::size_t>(2 * grad_bytes));
    }
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

// Recomputing a chunk of examples at a time gives the same gradients (to the order of the
// parameter gradients' sums) with a smaller transient per layer.
TEST(GradientCheckpointing, ChunksOfExamplesGiveTheSameGradients) {
    auto be = make_cpu_backend();
    ModelConfig cfg = small(Arch::Bert);
    cfg.num_layers = 3;
    std::vector<std::vector<double>> grads;
    std::vector<std::size_t> transient;
    for (int chunk : {0, 5}) {
        SequenceClassifier m(cfg, *be, DType::F64, method("houlsby", true, chunk));
        m.init_weights(8);
        m.params().zero_grads();
        m.forward_backward(batch_for(cfg), {true, 3, 1}, 1.0);
        grads.push_back(meft::test::trainable_grads(m));
        transient.push_back(m.memory_report().layers[1].transient);
    }
    ASSERT_EQ(grads[0].size(), grads[1].size());
    for (std::size_t i = 0; i < grads[0].size(); ++i) EXPECT_NEAR(grads[1][i], grads[0][i], 1e-12) << i;
    EXPECT_LT(transient[1], transient[0]);
}

}  // namespace
