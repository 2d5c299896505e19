// sequence_classifier.cpp — forward and backward of BERT / RoBERTa sequence classification.
// Forward and backward are flat scripts over the ops in core/backend.h; each saved activation
// is allocated from the activation arena under its (layer, name) tag.
#include "model/sequence_classifier.h"

#include <cmath>

#include "core/error.h"
#include "core/philox.h"

namespace meft {

namespace {
// Dropout positions inside one layer (part of the Philox key).
enum Site { kAttnProbs = 0, kAttnOut = 1, kFfnOut = 2, kEmbed = 0, kHeadFirst = 0, kHeadSecond = 1 };
}  // namespace

SequenceClassifier::SequenceClassifier(ModelConfig config, Backend& backend, DType dtype)
    : config_(std::move(config)), backend_(backend), params_(backend, dtype) {
    config_.validate("model config");
    acts_ = std::make_unique<Arena>("activations", backend.memory());
    scratch_ = std::make_unique<Arena>("backward scratch", backend.memory());
    declare_parameters();
}

void SequenceClassifier::declare_parameters() {
    const std::int64_t C = config_.hidden_size, I = config_.intermediate_size, K = config_.num_labels();
    const std::string e = prefix() + "embeddings.";
    wte_ = params_.declare(e + "word_embeddings.weight", {config_.vocab_size, C});
    wpe_ = params_.declare(e + "position_embeddings.weight", {config_.max_position_embeddings, C});
    wtt_ = params_.declare(e + "token_type_embeddings.weight", {config_.type_vocab_size, C});
    emb_ln_w_ = params_.declare(e + "LayerNorm.weight", {C});
    emb_ln_b_ = params_.declare(e + "LayerNorm.bias", {C});
    for (int l = 0; l < config_.num_layers; ++l) {
        const std::string s = prefix() + "encoder.layer." + std::to_string(l) + ".";
        LayerWeights w{};
        auto lin = [&](const std::string& n, std::int64_t out, std::int64_t in, int& wi, int& bi) {
            wi = params_.declare(s + n + ".weight", {out, in});
            bi = params_.declare(s + n + ".bias", {out});
        };
        lin("attention.self.query", C, C, w.q_w, w.q_b);
        lin("attention.self.key", C, C, w.k_w, w.k_b);
        lin("attention.self.value", C, C, w.v_w, w.v_b);
        lin("attention.output.dense", C, C, w.o_w, w.o_b);
        w.ln1_w = params_.declare(s + "attention.output.LayerNorm.weight", {C});
        w.ln1_b = params_.declare(s + "attention.output.LayerNorm.bias", {C});
        lin("intermediate.dense", I, C, w.i_w, w.i_b);
        lin("output.dense", C, I, w.f_w, w.f_b);
        w.ln2_w = params_.declare(s + "output.LayerNorm.weight", {C});
        w.ln2_b = params_.declare(s + "output.LayerNorm.bias", {C});
        layers_.push_back(w);
    }
    if (config_.arch == Arch::Bert) {
        pool_w_ = params_.declare(prefix() + "pooler.dense.weight", {C, C});
        pool_b_ = params_.declare(prefix() + "pooler.dense.bias", {C});
        cls_w_ = params_.declare("classifier.weight", {K, C});
        cls_b_ = params_.declare("classifier.bias", {K});
    } else {  // RobertaClassificationHead; RobertaForSequenceClassification has no pooler
        dense_w_ = params_.declare("classifier.dense.weight", {C, C});
        dense_b_ = params_.declare("classifier.dense.bias", {C});
        cls_w_ = params_.declare("classifier.out_proj.weight", {K, C});
        cls_b_ = params_.declare("classifier.out_proj.bias", {K});
    }
}

bool SequenceClassifier::is_head_parameter(const std::string& name) const {
    return name.rfind("classifier.", 0) == 0 || name.rfind(prefix() + "pooler.", 0) == 0;
}

// ---- initialisation ---------------------------------------------------------------------------

namespace {
// Deterministic N(0, 1) draw for element i of parameter `stream` (Box-Muller over Philox).
double normal_draw(std::uint64_t seed, std::uint32_t stream, std::uint64_t i) {
    const auto r = philox4x32({static_cast<std::uint32_t>(i), static_cast<std::uint32_t>(i >> 32), stream, 0x5eed},
                              static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32));
    const double u1 = (static_cast<double>(r[0]) + 1.0) / 4294967296.0;  // (0, 1]
    const double u2 = static_cast<double>(r[1]) / 4294967296.0;
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
}
}  // namespace

void SequenceClassifier::init_parameters(const std::vector<std::string>& names, std::uint64_t seed) {
    MEFT_CHECK(params_.materialized(), "init before materialize");
    for (const std::string& name : names) {
        int idx = -1;
        for (int i = 0; i < params_.size(); ++i)
            if (params_.at(i).name == name) idx = i;
        MEFT_CHECK(idx >= 0, "unknown parameter " + name);
        const Parameter& prm = params_.at(idx);
        std::vector<double> host(static_cast<std::size_t>(prm.shape.numel()), 0.0);
        const bool is_bias = name.size() > 5 && name.compare(name.size() - 5, 5, ".bias") == 0;
        if (name.find("LayerNorm.weight") != std::string::npos) {
            std::fill(host.begin(), host.end(), 1.0);
        } else if (!is_bias) {
            for (std::size_t i = 0; i < host.size(); ++i)
                host[i] = config_.initializer_range * normal_draw(seed, static_cast<std::uint32_t>(idx), i);
            // nn.Embedding(padding_idx=pad): HF zeroes the padding row of word (and RoBERTa position) tables.
            const bool word = idx == wte_, roberta_pos = idx == wpe_ && config_.arch == Arch::Roberta;
            if (word || roberta_pos) {
                const std::int64_t C = prm.shape[1];
                for (std::int64_t c = 0; c < C; ++c) host[static_cast<std::size_t>(config_.pad_token_id * C + c)] = 0.0;
            }
        }
        if (dtype() == DType::F64) {
            backend_.upload(prm.value, host.data());
        } else {
            std::vector<float> f(host.begin(), host.end());
            backend_.upload(prm.value, f.data());
        }
    }
}

void SequenceClassifier::init_weights(std::uint64_t seed) {
    if (!params_.materialized()) params_.materialize();
    std::vector<std::string> names;
    for (const Parameter& prm : params_.all()) names.push_back(prm.name);
    init_parameters(names, seed);
}

// ---- inputs -----------------------------------------------------------------------------------

void SequenceClassifier::upload_inputs(const HostBatch& b) {
    const std::size_t n = static_cast<std::size_t>(b.B) * static_cast<std::size_t>(b.T);
    if (b.B <= 0 || b.T <= 0) throw Error("empty batch");
    if (b.input_ids.size() != n || b.token_type_ids.size() != n || b.attention_mask.size() != n)
        throw Error("batch arrays do not match B*T");
    if (b.T > config_.max_position_embeddings - (config_.arch == Arch::Roberta ? config_.pad_token_id + 1 : 0))
        throw Error("sequence length " + std::to_string(b.T) + " exceeds the model's max_position_embeddings (" +
                    std::to_string(config_.max_position_embeddings) + ")");
    std::vector<std::int32_t> pos(n);
    for (int i = 0; i < b.B; ++i) {
        int running = 0;
        for (int t = 0; t < b.T; ++t) {
            const std::size_t j = static_cast<std::size_t>(i) * b.T + t;
            const std::int32_t id = b.input_ids[j];
            if (id < 0 || id >= config_.vocab_size)
                throw Error("example " + std::to_string(b.example_offset + i) + ": token id " + std::to_string(id) +
                            " outside the vocabulary (size " + std::to_string(config_.vocab_size) + ")");
            if (b.token_type_ids[j] < 0 || b.token_type_ids[j] >= config_.type_vocab_size)
                throw Error("example " + std::to_string(b.example_offset + i) + ": token type " +
                            std::to_string(b.token_type_ids[j]) + " outside [0, " +
                            std::to_string(config_.type_vocab_size) + ")");
            if (config_.arch == Arch::Roberta) {  // positions count real tokens after padding_idx
                const bool real = id != config_.pad_token_id;
                running += real;
                pos[j] = real ? config_.pad_token_id + running : config_.pad_token_id;
            } else {
                pos[j] = t;
            }
        }
    }
    auto up = [&](const std::vector<std::int32_t>& v, Shape s, const char* name) {
        Tensor t = acts_->alloc(DType::I32, s, -1, name);
        backend_.upload(t, v.data());
        return t;
    };
    ids_ = up(b.input_ids, {b.B, b.T}, "input_ids");
    types_ = up(b.token_type_ids, {b.B, b.T}, "token_type_ids");
    mask_ = up(b.attention_mask, {b.B, b.T}, "attention_mask");
    pos_ = up(pos, {b.B, b.T}, "position_ids");
}

PhiloxKey SequenceClassifier::key(const ForwardOptions& o, int layer, int position) const {
    return philox_key(o.seed, o.step, dropout_site(layer, position));
}

// ---- forward ----------------------------------------------------------------------------------

Tensor SequenceClassifier::forward(const HostBatch& batch, const ForwardOptions& o) {
    MEFT_CHECK(params_.materialized(), "forward before the parameters were materialized");
    acts_->reset();
    B_ = batch.B;
    T_ = batch.T;
    upload_inputs(batch);
    const std::int64_t C = config_.hidden_size;
    const DType dt = dtype();
    const int off = batch.example_offset;
    Arena& A = *acts_;

    emb_sum_ = A.alloc(dt, {B_, T_, C}, -1, "embeddings.sum");
    emb_mean_ = A.alloc(dt, {B_ * T_}, -1, "embeddings.ln_mean");
    emb_rstd_ = A.alloc(dt, {B_ * T_}, -1, "embeddings.ln_rstd");
    Tensor x = A.alloc(dt, {B_, T_, C}, -1, "embeddings.out");
    backend_.embeddings_forward(emb_sum_, ids_, pos_, types_, p(wte_), p(wpe_), p(wtt_));
    backend_.layernorm_forward(x, emb_mean_, emb_rstd_, emb_sum_, p(emb_ln_w_), p(emb_ln_b_), config_.layer_norm_eps);
    backend_.dropout_forward(x, x, drop(o, config_.hidden_dropout), key(o, -1, kEmbed), off);

    la_.assign(static_cast<std::size_t>(config_.num_layers), LayerActs{});
    for (int l = 0; l < config_.num_layers; ++l) {
        layer_forward(l, la_[static_cast<std::size_t>(l)], x, o, off);
        x = la_[static_cast<std::size_t>(l)].out;
    }
    head_forward(x, o, off);
    return head_.logits;
}

void SequenceClassifier::layer_forward(int l, LayerActs& a, Tensor x, const ForwardOptions& o, int off) {
    const LayerWeights& w = layers_[static_cast<std::size_t>(l)];
    const std::int64_t C = config_.hidden_size, I = config_.intermediate_size, N = std::int64_t(B_) * T_;
    const DType dt = dtype();
    Arena& A = *acts_;
    a.x = x;                                                                  // [B,T,C] (owned by the layer below)
    a.q = A.alloc(dt, {B_, T_, C}, l, "attn.q");
    a.k = A.alloc(dt, {B_, T_, C}, l, "attn.k");
    a.v = A.alloc(dt, {B_, T_, C}, l, "attn.v");
    a.probs = A.alloc(dt, {B_, config_.num_heads, T_, T_}, l, "attn.probs");
    a.ctx = A.alloc(dt, {B_, T_, C}, l, "attn.ctx");
    a.res1 = A.alloc(dt, {B_, T_, C}, l, "attn.residual");
    a.mean1 = A.alloc(dt, {N}, l, "attn.ln_mean");
    a.rstd1 = A.alloc(dt, {N}, l, "attn.ln_rstd");
    a.h1 = A.alloc(dt, {B_, T_, C}, l, "attn.out");
    a.pre = A.alloc(dt, {B_, T_, I}, l, "ffn.pre_gelu");
    a.act = A.alloc(dt, {B_, T_, I}, l, "ffn.gelu");
    a.res2 = A.alloc(dt, {B_, T_, C}, l, "ffn.residual");
    a.mean2 = A.alloc(dt, {N}, l, "ffn.ln_mean");
    a.rstd2 = A.alloc(dt, {N}, l, "ffn.ln_rstd");
    a.out = A.alloc(dt, {B_, T_, C}, l, "ffn.out");

    backend_.linear_forward(a.q, x, p(w.q_w), p(w.q_b));
    backend_.linear_forward(a.k, x, p(w.k_w), p(w.k_b));
    backend_.linear_forward(a.v, x, p(w.v_w), p(w.v_b));
    backend_.attention_forward(a.ctx, a.probs, a.q, a.k, a.v, mask_, config_.num_heads,
                               drop(o, config_.attention_dropout), key(o, l, kAttnProbs), off);
    backend_.linear_forward(a.res1, a.ctx, p(w.o_w), p(w.o_b));
    backend_.dropout_forward(a.res1, a.res1, drop(o, config_.hidden_dropout), key(o, l, kAttnOut), off);
    backend_.add(a.res1, a.res1, x);
    backend_.layernorm_forward(a.h1, a.mean1, a.rstd1, a.res1, p(w.ln1_w), p(w.ln1_b), config_.layer_norm_eps);
    backend_.linear_forward(a.pre, a.h1, p(w.i_w), p(w.i_b));
    backend_.gelu_forward(a.act, a.pre);
    backend_.linear_forward(a.res2, a.act, p(w.f_w), p(w.f_b));
    backend_.dropout_forward(a.res2, a.res2, drop(o, config_.hidden_dropout), key(o, l, kFfnOut), off);
    backend_.add(a.res2, a.res2, a.h1);
    backend_.layernorm_forward(a.out, a.mean2, a.rstd2, a.res2, p(w.ln2_w), p(w.ln2_b), config_.layer_norm_eps);
}

void SequenceClassifier::head_forward(Tensor h, const ForwardOptions& o, int off) {
    const std::int64_t C = config_.hidden_size, K = config_.num_labels();
    const int L = config_.num_layers;
    const DType dt = dtype();
    Arena& A = *acts_;
    const double pd = drop(o, config_.head_dropout());
    HeadActs& a = head_;
    a.cls = A.alloc(dt, {B_, C}, L, "head.cls");
    a.a = A.alloc(dt, {B_, C}, L, "head.dense");
    a.b = A.alloc(dt, {B_, C}, L, "head.tanh");
    a.c = A.alloc(dt, {B_, C}, L, "head.dropout");
    a.logits = A.alloc(dt, {B_, K}, L, "head.logits");
    backend_.first_token_forward(a.cls, h);
    if (config_.arch == Arch::Bert) {  // pooler: tanh(W h0 + b); dropout; classifier
        backend_.linear_forward(a.a, a.cls, p(pool_w_), p(pool_b_));
        backend_.tanh_forward(a.b, a.a);
        backend_.dropout_forward(a.c, a.b, pd, key(o, L, kHeadFirst), off);
        backend_.linear_forward(a.logits, a.c, p(cls_w_), p(cls_b_));
    } else {  // dropout; dense; tanh; dropout; out_proj — a holds dropout(cls)
        backend_.dropout_forward(a.a, a.cls, pd, key(o, L, kHeadFirst), off);
        Tensor dense = A.alloc(dt, {B_, C}, L, "head.dense");
        backend_.linear_forward(dense, a.a, p(dense_w_), p(dense_b_));
        backend_.tanh_forward(a.b, dense);
        backend_.dropout_forward(a.c, a.b, pd, key(o, L, kHeadSecond), off);
        backend_.linear_forward(a.logits, a.c, p(cls_w_), p(cls_b_));
    }
}

std::vector<double> SequenceClassifier::logits_to_host(Tensor logits) {
    std::vector<double> out(static_cast<std::size_t>(logits.numel()));
    if (logits.dtype == DType::F64) {
        backend_.download(out.data(), logits);
    } else {
        std::vector<float> f(out.size());
        backend_.download(f.data(), logits);
        std::copy(f.begin(), f.end(), out.begin());
    }
    return out;
}

// ---- loss and backward ------------------------------------------------------------------------

double SequenceClassifier::forward_backward(const HostBatch& batch, const ForwardOptions& o, double loss_scale) {
    Tensor logits = forward(batch, o);
    const DType dt = dtype();
    const int L = config_.num_layers;
    const std::int64_t K = config_.num_labels();
    Arena& A = *acts_;
    head_.losses = A.alloc(dt, {B_}, L, "loss.per_example");
    Tensor dlogits = A.alloc(dt, {B_, K}, L, "loss.dlogits");
    if (config_.is_regression()) {
        if (batch.targets.size() != static_cast<std::size_t>(B_)) throw Error("regression batch needs one target per example");
        targets_ = A.alloc(dt, {B_}, L, "loss.targets");
        if (dt == DType::F64) {
            backend_.upload(targets_, batch.targets.data());
        } else {
            std::vector<float> f(batch.targets.begin(), batch.targets.end());
            backend_.upload(targets_, f.data());
        }
        backend_.mse_forward(head_.losses, logits, targets_);
        backend_.mse_backward(dlogits, logits, targets_, loss_scale);
    } else {
        if (batch.labels.size() != static_cast<std::size_t>(B_)) throw Error("classification batch needs one label per example");
        for (int i = 0; i < B_; ++i)
            if (batch.labels[static_cast<std::size_t>(i)] < 0 || batch.labels[static_cast<std::size_t>(i)] >= K)
                throw Error("example " + std::to_string(batch.example_offset + i) + ": label " +
                            std::to_string(batch.labels[static_cast<std::size_t>(i)]) + " outside [0, " +
                            std::to_string(K) + ")");
        labels_ = A.alloc(DType::I32, {B_}, L, "loss.labels");
        backend_.upload(labels_, batch.labels.data());
        head_.probs = A.alloc(dt, {B_, K}, L, "loss.probs");
        backend_.cross_entropy_forward(head_.losses, head_.probs, logits, labels_);
        backend_.cross_entropy_backward(dlogits, head_.probs, labels_, loss_scale);
    }
    const std::vector<double> losses = logits_to_host(head_.losses);
    double sum = 0;
    for (double v : losses) sum += v;

    // Backward buffers: reused by every layer.
    scratch_->reset();
    const std::int64_t C = config_.hidden_size, I = config_.intermediate_size;
    grad_stream_ = scratch_->alloc(dt, {B_, T_, C}, -1, "d.stream");
    grad_tmp_ = scratch_->alloc(dt, {B_, T_, C}, -1, "d.tmp");
    grad_ctx_ = scratch_->alloc(dt, {B_, T_, C}, -1, "d.ctx");
    grad_q_ = scratch_->alloc(dt, {B_, T_, C}, -1, "d.q");
    grad_k_ = scratch_->alloc(dt, {B_, T_, C}, -1, "d.k");
    grad_v_ = scratch_->alloc(dt, {B_, T_, C}, -1, "d.v");
    grad_inter_ = scratch_->alloc(dt, {B_, T_, I}, -1, "d.inter");

    const int off = batch.example_offset;
    head_backward(dlogits, o, off);
    for (int l = L - 1; l >= 0; --l) layer_backward(l, la_[static_cast<std::size_t>(l)], o, off);

    // embeddings: grad_stream_ holds d(embeddings.out)
    Tensor d = grad_stream_;
    backend_.dropout_backward(d, d, drop(o, config_.hidden_dropout), key(o, -1, kEmbed), off);
    backend_.layernorm_backward(grad_tmp_, g(emb_ln_w_), g(emb_ln_b_), d, emb_sum_, p(emb_ln_w_), emb_mean_, emb_rstd_,
                                false);
    if (g(wte_)) backend_.embedding_backward(g(wte_), grad_tmp_, ids_);
    if (g(wpe_)) backend_.embedding_backward(g(wpe_), grad_tmp_, pos_);
    if (g(wtt_)) backend_.embedding_backward(g(wtt_), grad_tmp_, types_);
    return sum;
}

void SequenceClassifier::head_backward(Tensor dlogits, const ForwardOptions& o, int off) {
    const std::int64_t C = config_.hidden_size;
    const int L = config_.num_layers;
    const double pd = drop(o, config_.head_dropout());
    HeadActs& a = head_;
    Tensor d1 = scratch_->alloc(dtype(), {B_, C}, L, "d.head1");
    Tensor d2 = scratch_->alloc(dtype(), {B_, C}, L, "d.head2");
    backend_.linear_backward(d1, g(cls_w_), g(cls_b_), dlogits, a.c, p(cls_w_), false);
    backend_.dropout_backward(d1, d1, pd, key(o, L, config_.arch == Arch::Bert ? kHeadFirst : kHeadSecond), off);
    backend_.tanh_backward(d2, d1, a.b);
    if (config_.arch == Arch::Bert) {
        backend_.linear_backward(d1, g(pool_w_), g(pool_b_), d2, a.cls, p(pool_w_), false);
    } else {
        backend_.linear_backward(d1, g(dense_w_), g(dense_b_), d2, a.a, p(dense_w_), false);
        backend_.dropout_backward(d1, d1, pd, key(o, L, kHeadFirst), off);
    }
    backend_.first_token_backward(grad_stream_, d1, false);
}

void SequenceClassifier::layer_backward(int l, const LayerActs& a, const ForwardOptions& o, int off) {
    const LayerWeights& w = layers_[static_cast<std::size_t>(l)];
    Tensor G = grad_stream_, D = grad_tmp_;  // G: d(out) in, d(x) out
    backend_.layernorm_backward(D, g(w.ln2_w), g(w.ln2_b), G, a.res2, p(w.ln2_w), a.mean2, a.rstd2, false);
    backend_.copy(G, D);  // residual: d(h1) starts as d(res2)
    backend_.dropout_backward(D, D, drop(o, config_.hidden_dropout), key(o, l, kFfnOut), off);
    backend_.linear_backward(grad_inter_, g(w.f_w), g(w.f_b), D, a.act, p(w.f_w), false);
    backend_.gelu_backward(grad_inter_, grad_inter_, a.pre);
    backend_.linear_backward(G, g(w.i_w), g(w.i_b), grad_inter_, a.h1, p(w.i_w), true);
    backend_.layernorm_backward(D, g(w.ln1_w), g(w.ln1_b), G, a.res1, p(w.ln1_w), a.mean1, a.rstd1, false);
    backend_.copy(G, D);  // residual: d(x) starts as d(res1)
    backend_.dropout_backward(D, D, drop(o, config_.hidden_dropout), key(o, l, kAttnOut), off);
    backend_.linear_backward(grad_ctx_, g(w.o_w), g(w.o_b), D, a.ctx, p(w.o_w), false);
    backend_.attention_backward(grad_q_, grad_k_, grad_v_, grad_ctx_, a.q, a.k, a.v, a.probs, config_.num_heads,
                                drop(o, config_.attention_dropout), key(o, l, kAttnProbs), off);
    backend_.linear_backward(G, g(w.q_w), g(w.q_b), grad_q_, a.x, p(w.q_w), true);
    backend_.linear_backward(G, g(w.k_w), g(w.k_b), grad_k_, a.x, p(w.k_w), true);
    backend_.linear_backward(G, g(w.v_w), g(w.v_b), grad_v_, a.x, p(w.v_w), true);
}

}  // namespace meft
