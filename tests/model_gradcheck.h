// model_gradcheck.h — whole-model finite-difference checks shared by the model, method, MEFT and
// OPT suites: a tiny float64 model, its loss recomputed on the host, and the check of every
// trainable parameter.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>

#include "gradcheck.h"
#include "model/masked_lm.h"
#include "model/model.h"

namespace meft::test {

// 2-layer (by default) BERT or RoBERTa with hidden 8, 2 heads, dropout 0.1 and large weights
// (initializer_range 0.5) so every path carries a visible gradient.
inline ModelConfig tiny_model_config(Arch arch, int labels = 3, int layers = 2) {
    ModelConfig c;
    c.arch = arch;
    c.vocab_size = 40;
    c.hidden_size = 8;
    c.num_heads = 2;
    c.num_layers = layers;
    c.intermediate_size = 16;
    c.max_position_embeddings = 64;
    c.type_vocab_size = arch == Arch::Bert ? 2 : 1;
    c.pad_token_id = arch == Arch::Bert ? 0 : 1;
    c.layer_norm_eps = arch == Arch::Bert ? 1e-12 : 1e-5;
    c.hidden_dropout = c.attention_dropout = 0.1;
    c.initializer_range = 0.5;
    c.set_num_labels(labels);
    if (labels == 1) c.problem_type = "regression";
    return c;
}

// A tiny BART: hidden 8, 2 heads, `layers` + `layers` layers, 12 positions, every dropout 0.1
// (activation and head too) and weights large enough that every path carries a visible gradient.
inline ModelConfig tiny_bart_config(int labels = 3, int layers = 2) {
    ModelConfig c = preset_config(Arch::Bart, "toy");
    c.vocab_size = 40;
    c.hidden_size = 8;
    c.num_heads = 2;
    c.num_layers = c.decoder_layers = layers;
    c.intermediate_size = 16;
    c.max_position_embeddings = 12;
    c.hidden_dropout = c.attention_dropout = c.activation_dropout = c.classifier_dropout = 0.1;
    c.initializer_range = 0.5;
    c.set_num_labels(labels);
    if (labels == 1) c.problem_type = "regression";
    return c;
}

// A tiny OPT: hidden 8, 2 heads, dropout 0.1 everywhere (attention too, unlike OPT's 0) and large
// weights so every path carries a visible gradient.
inline ModelConfig tiny_opt_config(int layers = 2) {
    ModelConfig c = preset_config(Arch::Opt, "tiny");
    c.vocab_size = 40;
    c.hidden_size = 8;
    c.word_embed_proj_dim = 8;
    c.num_heads = 2;
    c.num_layers = layers;
    c.intermediate_size = 16;
    c.max_position_embeddings = 64;
    c.hidden_dropout = c.attention_dropout = 0.1;
    c.initializer_range = 0.5;
    return c;
}

// B sequences of up to T tokens (the last ones padded), labels on the second half of each.
inline HostBatch lm_batch(const ModelConfig& c, int B, int T, std::uint64_t seed, bool pad = true) {
    std::mt19937_64 rng(seed);
    HostBatch b;
    b.B = B;
    b.T = T;
    for (int i = 0; i < B; ++i) {
        const int len = pad ? T - static_cast<int>(rng() % 3) : T;
        for (int t = 0; t < T; ++t) {
            const bool real = t < len;
            const int id = real ? 3 + static_cast<int>(rng() % (c.vocab_size - 3)) : c.pad_token_id;
            b.input_ids.push_back(t == 0 ? c.bos_token_id : id);
            b.attention_mask.push_back(real);
            b.token_type_ids.push_back(0);
            b.token_labels.push_back(real && t >= len / 2 ? b.input_ids.back() : -100);
        }
        b.labels.push_back(0);
        b.targets.push_back(0);
    }
    return b;
}

// B pairs "<s> a </s></s> b </s>" (RoBERTa's pair layout, which BART shares), the shorter ones
// padded: two eos in the middle, the head reads the last.
inline HostBatch bart_batch(const ModelConfig& c, int B, int T, std::uint64_t seed, bool pad = true) {
    std::mt19937_64 rng(seed);
    HostBatch b;
    b.B = B;
    b.T = T;
    for (int i = 0; i < B; ++i) {
        const int len = pad ? T - static_cast<int>(rng() % 3) : T;
        for (int t = 0; t < T; ++t) {
            int id = 3 + static_cast<int>(rng() % (c.vocab_size - 3));
            if (t == 0) id = c.bos_token_id;
            if (t == len / 2 || t == len / 2 + 1 || t == len - 1) id = c.eos_token_id;
            if (t >= len) id = c.pad_token_id;
            b.input_ids.push_back(id);
            b.attention_mask.push_back(t < len);
            b.token_type_ids.push_back(0);
        }
        b.labels.push_back(static_cast<int>(rng() % static_cast<std::uint64_t>(c.num_labels())));
        b.targets.push_back(static_cast<double>(rng() % 100) / 25.0);
    }
    return b;
}

// Cross-entropy of one row of logits against a label.
inline double row_cross_entropy(const double* r, int K, int label) {
    double mx = r[0];
    for (int j = 1; j < K; ++j) mx = std::max(mx, r[j]);
    double e = 0;
    for (int j = 0; j < K; ++j) e += std::exp(r[j] - mx);
    return std::log(e) + mx - r[label];
}

// A causal LM's summed loss from its logits [M,V]: the rows are the batch's labelled positions
// in order (example, then position t predicting token t+1).
inline double host_lm_loss(Model& m, const HostBatch& b, const ForwardOptions& o) {
    const Tensor logits = m.forward(b, o);
    if (!logits) return 0.0;
    const std::vector<double> z = m.to_host(logits);
    const int V = m.config().vocab_size;
    double s = 0;
    std::size_t row = 0;
    for (int i = 0; i < b.B; ++i)
        for (int t = 0; t + 1 < b.T; ++t) {
            const int label = b.token_labels[static_cast<std::size_t>(i * b.T + t + 1)];
            if (label < 0) continue;
            s += row_cross_entropy(z.data() + row * static_cast<std::size_t>(V), V, label);
            ++row;
        }
    EXPECT_EQ(row * static_cast<std::size_t>(V), z.size());
    return s;
}

// A masked LM's summed loss from its logits [M,V]: the rows are the batch's labelled positions in
// order (example, then position t predicting its own token: labels are not shifted).
inline double host_mlm_loss(Model& m, const HostBatch& b, const ForwardOptions& o) {
    const Tensor logits = m.forward(b, o);
    if (!logits) return 0.0;
    const std::vector<double> z = m.to_host(logits);
    const int V = m.config().vocab_size;
    double s = 0;
    std::size_t row = 0;
    for (std::size_t j = 0; j < b.token_labels.size(); ++j) {
        if (b.token_labels[j] < 0) continue;
        s += row_cross_entropy(z.data() + row * static_cast<std::size_t>(V), V, b.token_labels[j]);
        ++row;
    }
    EXPECT_EQ(row * static_cast<std::size_t>(V), z.size());
    return s;
}

// A multiple-choice head's summed loss: each question's rows (HostBatch::choice_counts) are one
// softmax, whose cross-entropy is taken at the gold row (label 1).
inline double host_choice_loss(const std::vector<double>& scores, const HostBatch& b) {
    double s = 0;
    std::size_t r0 = 0;
    for (int n : b.choice_counts) {
        int gold = -1;
        for (int k = 0; k < n; ++k)
            if (b.labels[r0 + static_cast<std::size_t>(k)] == 1) gold = k;
        EXPECT_GE(gold, 0) << "question at row " << r0 << " has no gold choice";
        s += row_cross_entropy(scores.data() + r0, n, gold);
        r0 += static_cast<std::size_t>(n);
    }
    EXPECT_EQ(r0, scores.size());
    return s;
}

// The batch's summed loss (cross-entropy, squared error for one label, or per question for a
// multiple-choice head) from the model's logits.
inline double host_loss(Model& m, const HostBatch& b, const ForwardOptions& o) {
    if (dynamic_cast<const MaskedLM*>(&m)) return host_mlm_loss(m, b, o);
    if (m.outputs_per_example() == 1 && !b.token_labels.empty()) return host_lm_loss(m, b, o);
    const std::vector<double> z = m.to_host(m.forward(b, o));
    if (m.config().multiple_choice) return host_choice_loss(z, b);
    const int K = m.config().num_labels();
    double s = 0;
    for (int i = 0; i < b.B; ++i) {
        const double* r = z.data() + i * K;
        if (K == 1) {
            s += (r[0] - b.targets[static_cast<std::size_t>(i)]) * (r[0] - b.targets[static_cast<std::size_t>(i)]);
            continue;
        }
        s += row_cross_entropy(r, K, b.labels[static_cast<std::size_t>(i)]);
    }
    return s;
}

// Random values for what a method starts at zero or one (LoRA B, (IA)3 vectors, adapter biases):
// every trainable parameter then has a non-trivial gradient, and no ReLU input sits exactly on
// its kink.
inline void perturb_method_parameters(Model& m) {
    std::mt19937_64 rng(99);
    std::normal_distribution<double> n(0.0, 0.2);
    for (Parameter& p : m.params().all())
        if (p.added) {
            // Adapter down-projection biases move up only: with ReLU adapters (OPT) a negative
            // shift can silence every unit of a small bottleneck, and a dead unit has an exactly
            // zero gradient that the check below would take for a missing one.
            const bool down_bias = p.name.size() > 10 && p.name.compare(p.name.size() - 10, 10, ".down.bias") == 0;
            double* v = p.value.ptr<double>();
            for (std::int64_t i = 0; i < p.shape.numel(); ++i) v[i] += down_bias ? std::abs(n(rng)) : n(rng);
        }
}

// Every trainable parameter's gradient (float64 model), in declaration order.
inline std::vector<double> trainable_grads(Model& m) {
    std::vector<double> g;
    for (const Parameter& p : m.params().all())
        if (p.trainable) g.insert(g.end(), p.grad.ptr<double>(), p.grad.ptr<double>() + p.shape.numel());
    return g;
}

struct ModelGradResult {
    int checked = 0;
    double worst = 0;
    std::string worst_name;
};

// Runs forward_backward (float64 model), then compares every element of every trainable
// parameter with central finite differences of host_loss (relative error < 1e-6, and a
// gradient that is not zero). The attention key bias is the exception: softmax ignores a shift
// shared by all keys of a row, so its gradient is exactly zero (BERT's attention.self.key.bias,
// OPT's and BART's self_attn.k_proj.bias, BART's encoder_attn.k_proj.bias), and so is a
// multiple-choice head's output bias. Frozen parameters must have no gradient buffer.
// h is the central-difference step: its truncation error grows as h² times the loss's third
// derivative, which deep stacks with large test weights make big.
inline ModelGradResult check_trainable_gradients(Model& m, const HostBatch& b, const ForwardOptions& o,
                                                 double h = 1e-5) {
    m.params().zero_grads();
    const double loss = m.forward_backward(b, o, 1.0);
    EXPECT_NEAR(loss, host_loss(m, b, o), 1e-12);
    ModelGradResult r;
    for (Parameter& p : m.params().all()) {
        if (!p.trainable) {
            EXPECT_FALSE(p.grad) << p.name << " is frozen but has a gradient buffer";
            continue;
        }
        const std::size_t n = static_cast<std::size_t>(p.shape.numel());
        std::vector<double> analytic(p.grad.ptr<double>(), p.grad.ptr<double>() + n);
        double* v = p.value.ptr<double>();
        std::vector<double> x(v, v + n);
        auto f = [&] {
            std::copy(x.begin(), x.end(), v);  // the perturbed copy goes into the model
            return host_loss(m, b, o);
        };
        const GradError e = check_grad(x, analytic, f, {}, h);
        std::copy(x.begin(), x.end(), v);
        ++r.checked;
        // Likewise a multiple-choice head's output bias: it shifts every score of a question alike.
        const bool shift_invariant_head = m.config().multiple_choice && (p.name == "classifier.bias" ||
                                                                          p.name == "classification_head.out_proj.bias");
        if (p.name.find("attention.self.key.bias") != std::string::npos ||
            p.name.find("self_attn.k_proj.bias") != std::string::npos ||
            p.name.find("encoder_attn.k_proj.bias") != std::string::npos || shift_invariant_head) {
            for (double a : analytic) EXPECT_LT(std::abs(a), 1e-12) << p.name;
            EXPECT_LT(e.max_abs, 1e-14 / h) << p.name;  // rounding noise of the differences
            continue;
        }
        EXPECT_LT(e.rel(), 1e-6) << p.name << " max abs err " << e.max_abs << " scale " << e.scale;
        EXPECT_GT(e.scale, 1e-10) << p.name << " has no gradient";
        if (e.rel() > r.worst) r.worst = e.rel(), r.worst_name = p.name;
    }
    return r;
}

}  // namespace meft::test
