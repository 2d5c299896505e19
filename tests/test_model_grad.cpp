// Whole-model finite-difference gradient checks (float64): every element of every parameter
// tensor of a 2-layer BERT and RoBERTa, with dropout on (masks regenerated in backward), a
// padded example, and both classification and regression heads.
#include <gtest/gtest.h>

#include <cmath>

#include "core/cpu_backend.h"
#include "gradcheck.h"
#include "model/sequence_classifier.h"

using namespace meft;

namespace {

ModelConfig small_config(Arch arch, int labels) {
    ModelConfig c;
    c.arch = arch;
    c.vocab_size = 40;
    c.hidden_size = 8;
    c.num_heads = 2;
    c.num_layers = 2;
    c.intermediate_size = 16;
    c.max_position_embeddings = 16;
    c.type_vocab_size = arch == Arch::Bert ? 2 : 1;
    c.pad_token_id = arch == Arch::Bert ? 0 : 1;
    c.layer_norm_eps = arch == Arch::Bert ? 1e-12 : 1e-5;
    c.hidden_dropout = 0.1;
    c.attention_dropout = 0.1;
    c.initializer_range = 0.5;  // large weights so every path carries a visible gradient
    c.set_num_labels(labels);
    if (labels == 1) c.problem_type = "regression";
    return c;
}

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

// Sum of per-example losses computed on the host from the model's logits.
double host_loss(SequenceClassifier& m, const HostBatch& b, const ForwardOptions& o) {
    const std::vector<double> z = m.logits_to_host(m.forward(b, o));
    const int K = m.config().num_labels();
    double s = 0;
    for (int i = 0; i < b.B; ++i) {
        const double* r = z.data() + i * K;
        if (K == 1) {
            s += (r[0] - b.targets[i]) * (r[0] - b.targets[i]);
        } else {
            double mx = r[0];
            for (int j = 1; j < K; ++j) mx = std::max(mx, r[j]);
            double e = 0;
            for (int j = 0; j < K; ++j) e += std::exp(r[j] - mx);
            s += std::log(e) + mx - r[b.labels[i]];
        }
    }
    return s;
}

void check_model(Arch arch, int labels) {
    auto be = make_cpu_backend();
    const ModelConfig cfg = small_config(arch, labels);
    SequenceClassifier m(cfg, *be, DType::F64);
    m.init_weights(3);
    const HostBatch b = small_batch(cfg);
    const ForwardOptions o{true, 1234, 5};
    m.params().zero_grads();
    const double loss = m.forward_backward(b, o, 1.0);
    EXPECT_NEAR(loss, host_loss(m, b, o), 1e-12);

    int checked = 0;
    double worst = 0;
    std::string worst_name;
    for (Parameter& p : m.params().all()) {
        const std::size_t n = static_cast<std::size_t>(p.shape.numel());
        const double* g = p.grad.ptr<double>();
        std::vector<double> analytic(g, g + n);
        double* v = p.value.ptr<double>();
        std::vector<double> x(v, v + n);
        auto f = [&] {
            std::copy(x.begin(), x.end(), v);  // perturbed copy -> model
            return host_loss(m, b, o);
        };
        const meft::test::GradError e = meft::test::check_grad(x, analytic, f);
        std::copy(x.begin(), x.end(), v);
        if (p.name.find("attention.self.key.bias") != std::string::npos) {
            // Softmax ignores a shift shared by all keys of a row, and q.b_k is such a shift:
            // the key bias has exactly zero gradient. Numeric noise is ~1e-11.
            for (double a : analytic) EXPECT_LT(std::abs(a), 1e-12) << p.name;
            EXPECT_LT(e.max_abs, 1e-9) << p.name;
        } else {
            EXPECT_LT(e.rel(), 1e-6) << p.name << " max abs err " << e.max_abs << " scale " << e.scale;
            EXPECT_GT(e.scale, 1e-8) << p.name << " has no gradient";
            if (e.rel() > worst) worst = e.rel(), worst_name = p.name;
        }
        ++checked;
    }
    EXPECT_EQ(checked, m.params().size());
    std::printf("%d parameter tensors checked; worst relative error %.2e (%s)\n", checked, worst, worst_name.c_str());
}

TEST(ModelGrad, BertClassification) { check_model(Arch::Bert, 3); }
TEST(ModelGrad, RobertaClassification) { check_model(Arch::Roberta, 3); }
TEST(ModelGrad, BertRegression) { check_model(Arch::Bert, 1); }

}  // namespace
