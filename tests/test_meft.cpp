// MEFT: reversible fine-tuning. Finite-difference gradients of every adapter, reversible backward
// against ordinary backprop of the same architecture, bit-exact inverses at depth (exact streams)
// next to the float64-stream drift, memory that does not grow with depth, and parameter counts.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "peft/method.h"
#include "core/cpu_backend.h"
#include "model_gradcheck.h"
#include "model/causal_lm.h"
#include "model/sequence_classifier.h"
#include "train/memory_plan.h"
#include "train/trainer.h"

using namespace meft;

namespace {

ModelConfig cfg_small(int layers, int hidden = 8, int heads = 2, int inter = 16) {
    ModelConfig c;
    c.vocab_size = 40;
    c.hidden_size = hidden;
    c.num_heads = heads;
    c.num_layers = layers;
    c.intermediate_size = inter;
    c.max_position_embeddings = 64;
    c.hidden_dropout = c.attention_dropout = 0.1;
    c.initializer_range = 0.5;
    c.set_num_labels(3);
    return c;
}

HostBatch random_batch(const ModelConfig& c, int B, int T, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    HostBatch b;
    b.B = B;
    b.T = T;
    for (int i = 0; i < B; ++i) {
        const int len = T - static_cast<int>(rng() % 3);
        for (int t = 0; t < T; ++t) {
            b.input_ids.push_back(t < len ? 1 + static_cast<int>(rng() % (c.vocab_size - 1)) : c.pad_token_id);
            b.attention_mask.push_back(t < len);
            b.token_type_ids.push_back(0);
        }
        b.labels.push_back(static_cast<int>(rng() % 3));
        b.targets.push_back(0);
    }
    return b;
}

MethodConfig meft(int variant, const nlohmann::json& knobs = nlohmann::json::object(), double init_std = 0.5) {
    nlohmann::json j = {{"name", "meft" + std::to_string(variant)}, {"adapter", {{"init_std", init_std}, {"bottleneck", 3}}}};
    nlohmann::json k = knobs;
    if (k.contains("recompute_tokens")) {  // a top-level knob (MEFT and gradient checkpointing)
        j["recompute_tokens"] = k["recompute_tokens"];
        k.erase("recompute_tokens");
    }
    if (!k.empty()) j["meft"] = k;
    return parse_method(j, "test");
}

std::vector<double> trainable_grads(SequenceClassifier& m) {
    std::vector<double> g;
    for (const Parameter& p : m.params().all()) {
        if (!p.trainable) continue;
        if (p.grad.dtype == DType::F64) {
            g.insert(g.end(), p.grad.ptr<double>(), p.grad.ptr<double>() + p.shape.numel());
        } else {
            g.insert(g.end(), p.grad.ptr<float>(), p.grad.ptr<float>() + p.shape.numel());
        }
    }
    return g;
}

double rel_diff(const std::vector<double>& a, const std::vector<double>& b) {
    double d = 0, n = 0;
    for (std::size_t i = 0; i < a.size(); ++i) d += (a[i] - b[i]) * (a[i] - b[i]), n += b[i] * b[i];
    return std::sqrt(d / std::max(n, 1e-300));
}

// ---- finite differences ----------------------------------------------------------------------

struct GradCase {
    int variant;
    std::string streams;  // "float64" (reversible backward) or "vanilla"
};

void PrintTo(const GradCase& c, std::ostream* os) { *os << "MEFT" << c.variant << " " << c.streams; }

class MeftGrad : public ::testing::TestWithParam<GradCase> {};

TEST_P(MeftGrad, AdaptersAndHeadMatchFiniteDifferences) {
    const GradCase& tc = GetParam();
    auto be = make_cpu_backend();
    const ModelConfig cfg = cfg_small(2);
    const nlohmann::json knobs = tc.streams == "vanilla" ? nlohmann::json{{"vanilla_gradient", true}}
                                                         : nlohmann::json{{"streams", "float64"}};
    SequenceClassifier m(cfg, *be, DType::F64, meft(tc.variant, knobs));
    m.init_weights(7);
    for (const Parameter& p : m.params().all()) {
        if (p.trainable) {
            EXPECT_TRUE(p.added || p.name.rfind("classifier.", 0) == 0) << p.name << " should be frozen under MEFT";
        }
    }
    const auto r = meft::test::check_trainable_gradients(m, random_batch(cfg, 2, 5, 1), {true, 55, 3});
    // two adapters per layer (rev + parallel, or attention + parallel) x 4 tensors x 2 layers + head
    EXPECT_EQ(r.checked, 2 * 4 * 2 + 2);
}

INSTANTIATE_TEST_SUITE_P(Variants, MeftGrad,
                         ::testing::Values(GradCase{1, "float64"}, GradCase{2, "float64"}, GradCase{3, "float64"},
                                           GradCase{1, "vanilla"}, GradCase{2, "vanilla"}, GradCase{3, "vanilla"}),
                         [](const auto& info) { return "meft" + std::to_string(info.param.variant) + "_" + info.param.streams; });

// ---- reversible backward vs ordinary backprop -------------------------------------------------

std::vector<double> grads_of(Backend& be, const ModelConfig& cfg, DType dt, int variant, const nlohmann::json& knobs,
                             const HostBatch& b, double init_std) {
    SequenceClassifier m(cfg, be, dt, meft(variant, knobs, init_std));
    m.init_weights(21);
    m.params().zero_grads();
    m.forward_backward(b, {true, 9, 4}, 1.0 / b.B);
    return trainable_grads(m);
}

TEST(MeftReversible, MatchesVanillaBackpropFloat64FourLayers) {
    auto be = make_cpu_backend();
    ModelConfig cfg = cfg_small(4, 16, 2, 32);
    cfg.initializer_range = 0.1;
    const HostBatch b = random_batch(cfg, 3, 7, 2);
    for (int variant : {1, 2, 3}) {
        const auto vanilla = grads_of(*be, cfg, DType::F64, variant, {{"vanilla_gradient", true}}, b, 0.1);
        const auto exact = grads_of(*be, cfg, DType::F64, variant, {{"streams", "exact"}}, b, 0.1);
        const auto f64 = grads_of(*be, cfg, DType::F64, variant, {{"streams", "float64"}}, b, 0.1);
        const auto f64_vanilla = grads_of(*be, cfg, DType::F64, variant, {{"streams", "float64"}, {"vanilla_gradient", true}}, b, 0.1);
        EXPECT_EQ(exact, vanilla) << "MEFT" << variant << ": exact reversible backward is bit-identical";
        EXPECT_LT(rel_diff(f64, f64_vanilla), 1e-10) << "MEFT" << variant;
        std::printf("MEFT%d float64 at 4 layers: exact vs vanilla %.1e, float64 streams vs vanilla %.1e\n", variant,
                    rel_diff(exact, vanilla), rel_diff(f64, f64_vanilla));
    }
}

TEST(MeftReversible, MatchesVanillaBackpropFloat32TwentyFourLayers) {
    auto be = make_cpu_backend();
    ModelConfig cfg = cfg_small(24, 32, 4, 64);
    cfg.initializer_range = 0.02;
    const HostBatch b = random_batch(cfg, 4, 16, 3);
    for (int variant : {1, 2, 3}) {
        const auto vanilla = grads_of(*be, cfg, DType::F32, variant, {{"vanilla_gradient", true}}, b, 0.02);
        const auto exact = grads_of(*be, cfg, DType::F32, variant, {}, b, 0.02);
        EXPECT_LT(rel_diff(exact, vanilla), 1e-6) << "MEFT" << variant;
        EXPECT_EQ(exact, vanilla) << "MEFT" << variant;
    }
}

// ---- exact inverse at depth -------------------------------------------------------------------

TEST(MeftReversible, ExactInverseIsBitIdenticalAtTwentyFourLayers) {
    auto be = make_cpu_backend();
    ModelConfig cfg = cfg_small(24, 256, 4, 512);
    cfg.max_position_embeddings = 512;
    cfg.initializer_range = 0.02;
    cfg.vocab_size = 1000;
    const HostBatch b = random_batch(cfg, 16, 256, 4);  // 16 x 256 x 256 = 1,048,576 stream elements
    for (int variant : {1, 2, 3}) {
        for (const char* streams : {"exact", "float64"}) {
            SequenceClassifier m(cfg, *be, DType::F32, meft(variant, {{"streams", streams}, {"keep_true_inputs", true}}, 0.02));
            m.init_weights(5);
            m.params().zero_grads();
            m.forward_backward(b, {true, 11, 0}, 1.0 / b.B);
            const std::vector<double>& err = m.stack_runner()->reconstruction_error();
            ASSERT_EQ(err.size(), 24u);
            if (std::string(streams) == "exact") {
                for (int l = 0; l < 24; ++l) EXPECT_EQ(err[static_cast<std::size_t>(l)], 0.0) << "MEFT" << variant << " layer " << l;
            }
            std::printf("MEFT%d %-7s streams, 24 layers, reconstruction error (relative) at layer 0 / 12 / 23: %.2e / %.2e / %.2e\n",
                        variant, streams, err[0], err[12], err[23]);
        }
    }
}

// ---- chunked recompute ------------------------------------------------------------------------
// Reversible layers run F and G on chunks of whole examples (recompute_tokens), in forward
// and in backward's recompute alike.

TEST(MeftChunks, FiniteDifferencesWithOneExamplePerChunk) {
    auto be = make_cpu_backend();
    const ModelConfig cfg = cfg_small(2);
    for (int variant : {1, 2, 3}) {
        SequenceClassifier m(cfg, *be, DType::F64, meft(variant, {{"streams", "float64"}, {"recompute_tokens", 1}}));
        m.init_weights(7);
        const auto r = meft::test::check_trainable_gradients(m, random_batch(cfg, 3, 5, 1), {true, 55, 3});
        EXPECT_EQ(r.checked, 2 * 4 * 2 + 2) << "MEFT" << variant;
    }
}

// Chunks of 1 and 2 examples (the last one shorter) against the whole batch: the same loss and
// gradients to float64 rounding (only the order of the parameter gradients' sums differs), for an
// encoder, BART's two stacks (the decoder's cross-attention reads its chunk's encoder rows and
// adds into their gradient) and OPT.
TEST(MeftChunks, SameGradientsAsTheWholeBatch) {
    auto be = make_cpu_backend();
    struct Family {
        const char* name;
        ModelConfig cfg;
        HostBatch batch, before;  // `before`: a smaller batch's step first (nothing of it may linger)
        bool lm;
    };
    ModelConfig enc = cfg_small(4, 16, 2, 32);
    enc.initializer_range = 0.1;
    const ModelConfig bart = meft::test::tiny_bart_config(), opt = meft::test::tiny_opt_config(3);
    const Family families[] = {
        {"bert", enc, random_batch(enc, 5, 7, 2), random_batch(enc, 2, 7, 3), false},
        {"bart", bart, meft::test::bart_batch(bart, 5, 9, 1), meft::test::bart_batch(bart, 2, 9, 3), false},
        {"opt", opt, meft::test::lm_batch(opt, 5, 6, 1), meft::test::lm_batch(opt, 2, 6, 3), true}};
    for (const Family& f : families) {
        for (int variant : {1, 2, 3}) {
            if (f.lm && variant == 3) continue;  // OPT takes MEFT1/2
            std::vector<double> whole;
            double whole_loss = 0;
            for (int examples : {0, 1, 2}) {
                const nlohmann::json knobs = {{"streams", "exact"}, {"recompute_tokens", examples * f.batch.T}};
                std::unique_ptr<Model> m;
                if (f.lm) m = std::make_unique<CausalLM>(f.cfg, *be, DType::F64, meft(variant, knobs, 0.1));
                else m = std::make_unique<SequenceClassifier>(f.cfg, *be, DType::F64, meft(variant, knobs, 0.1));
                m->init_weights(21);
                m->forward_backward(f.before, {true, 9, 3}, 1.0);
                m->params().zero_grads();
                const double loss = m->forward_backward(f.batch, {true, 9, 4}, 1.0 / f.batch.B);
                const std::vector<double> g = meft::test::trainable_grads(*m);
                if (examples == 0) {
                    whole = g, whole_loss = loss;
                    continue;
                }
                EXPECT_NEAR(loss, whole_loss, 1e-13 * std::abs(whole_loss)) << f.name << " MEFT" << variant;
                EXPECT_LT(rel_diff(g, whole), 1e-12) << f.name << " MEFT" << variant << ", " << examples << " per chunk";
            }
        }
    }
}

TEST(MeftChunks, ExactInverseStaysBitIdentical) {
    auto be = make_cpu_backend();
    ModelConfig cfg = cfg_small(12, 32, 4, 64);
    cfg.initializer_range = 0.02;
    const HostBatch b = random_batch(cfg, 5, 48, 6);
    for (int variant : {1, 2, 3}) {
        SequenceClassifier m(cfg, *be, DType::F32,
                             meft(variant, {{"streams", "exact"}, {"keep_true_inputs", true}, {"recompute_tokens", 96}}, 0.02));
        m.init_weights(5);
        m.params().zero_grads();
        m.forward_backward(b, {true, 11, 0}, 1.0 / b.B);
        const std::vector<double>& err = m.stack_runner()->reconstruction_error();
        ASSERT_EQ(err.size(), 12u);
        for (int l = 0; l < 12; ++l) EXPECT_EQ(err[static_cast<std::size_t>(l)], 0.0) << "MEFT" << variant << " layer " << l;
    }
}

// A reversible layer's backward transient is one chunk's; the whole output buffer is held instead.
TEST(MeftChunks, TransientShrinksWithTheChunk) {
    auto be = make_cpu_backend();
    ModelConfig cfg = cfg_small(3, 32, 4, 128);
    cfg.max_position_embeddings = 128;
    std::size_t transient[2];
    for (int i = 0; i < 2; ++i) {
        const MethodConfig m = meft(1, {{"recompute_tokens", i ? 64 : 0}}, 0.02);
        const MemoryReport r = measure_memory(*be, cfg, m, DType::F32, 8, 64).report;
        transient[i] = r.layers[1].transient;  // layer 0
    }
    EXPECT_LT(transient[1] * 3, transient[0]);  // 8 chunks of 1 example instead of 8 examples at once
    std::printf("MEFT1 layer 0 backward transient, 8 x 64 tokens: whole batch %zu bytes, 1 example per chunk %zu bytes\n",
                transient[0], transient[1]);
}

// ---- memory -----------------------------------------------------------------------------------

std::size_t saved_bytes(Backend& be, int layers, const MethodConfig& method) {
    ModelConfig cfg = cfg_small(layers, 32, 4, 64);
    SequenceClassifier m(cfg, be, DType::F32, method);
    m.init_weights(1);
    const HostBatch b = random_batch(cfg, 4, 16, 5);
    m.forward(b, {true, 1, 0});
    return m.activations().bytes_in_use();
}

TEST(MeftMemory, SavedActivationsDoNotGrowWithDepth) {
    auto be = make_cpu_backend();
    const std::int64_t n = 4 * 16 * 32;  // stream elements
    // float64 streams keep only the two streams and the merge: the same at 4 and 12 layers
    const MethodConfig f64 = meft(1, {{"streams", "float64"}});
    EXPECT_EQ(saved_bytes(*be, 4, f64), saved_bytes(*be, 12, f64));
    // exact streams add only the packed remainders: 4 bits per element per division by 10
    for (int variant : {1, 2, 3}) {
        const MethodConfig ex = meft(variant);
        const int divisions = variant == 3 ? 2 : 1;
        EXPECT_EQ(saved_bytes(*be, 12, ex) - saved_bytes(*be, 4, ex),
                  static_cast<std::size_t>(8 * divisions * remainder_bytes(n, 10)))
            << "MEFT" << variant;
    }
    // full fine-tuning grows by a whole layer's activations per layer: linearly
    const std::size_t full4 = saved_bytes(*be, 4, MethodConfig{}), full5 = saved_bytes(*be, 5, MethodConfig{}),
                      full12 = saved_bytes(*be, 12, MethodConfig{});
    EXPECT_EQ(full12 - full4, 8 * (full5 - full4));
    EXPECT_GT(full5 - full4, static_cast<std::size_t>(8 * n * 4));  // at least eight [B,T,C] float tensors a layer
}

TEST(MeftCounts, BertBaseAdapters) {
    auto be = make_cpu_backend();
    const ModelConfig base = preset_config(Arch::Bert, "base");
    for (const char* name : {"meft1", "meft2", "meft3"}) {
        SequenceClassifier m(base, *be, DType::F32, parse_method({{"name", name}}, "test"));
        EXPECT_EQ(m.params().count(true), 313536 + 768 * 2 + 2) << name;  // spec §3, plus the classifier
    }
}

TEST(MeftOptions, FrozenPrefixAndPartialReversibility) {
    auto be = make_cpu_backend();
    ModelConfig cfg = cfg_small(4);
    const HostBatch b = random_batch(cfg, 2, 5, 6);
    // a frozen prefix of 1 layer, 2 reversible, 1 vanilla: reversible backward equals plain backprop
    const auto mixed = grads_of(*be, cfg, DType::F64, 1, {{"frozen_prefix", 1}, {"reversible_layers", 2}}, b, 0.5);
    const auto vanilla = grads_of(*be, cfg, DType::F64, 1, {{"frozen_prefix", 1}, {"vanilla_gradient", true}}, b, 0.5);
    EXPECT_EQ(mixed, vanilla);
    SequenceClassifier m(cfg, *be, DType::F64, meft(1, {{"frozen_prefix", 1}}));
    for (const Parameter& p : m.params().all())
        EXPECT_EQ(p.name.find("encoder.layer.0.") != std::string::npos && p.added, false) << p.name << ": prefix layers have no adapters";
    EXPECT_THROW(SequenceClassifier(cfg, *be, DType::F64, meft(1, {{"frozen_prefix", 4}})), Error);
    EXPECT_THROW(SequenceClassifier(cfg, *be, DType::F64, meft(1, {{"reversible_layers", 5}})), Error);
    EXPECT_THROW(parse_method({{"name", "meft1"}, {"meft", {{"lambda", 0.3}}}}, "test"), Error);
}

}  // namespace
