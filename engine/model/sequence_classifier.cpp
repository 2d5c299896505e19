// sequence_classifier.cpp — forward and backward of BERT / RoBERTa sequence classification.
// Forward and backward are flat scripts over the ops in core/backend.h; each saved activation
// is allocated from the activation arena under its (layer, name) tag.
#include "model/sequence_classifier.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/philox.h"

namespace meft {

namespace {
// Dropout positions inside one layer (part of the Philox key).
// Dropout positions of the embeddings (layer -1) and the head (layer L); the encoder layers'
// positions are in transformer_layer.cpp.
enum Site { kEmbed = 0, kHeadFirst = 0, kHeadSecond = 1 };
}  // namespace

SequenceClassifier::SequenceClassifier(ModelConfig config, Backend& backend, DType dtype, MethodConfig method)
    : Model(std::move(config), backend, dtype, std::move(method)) {
    if (is_decoder_only(config_.arch))
        throw Error("model config: " + arch_name(config_.arch) + " is a causal language model, not a sequence classifier");
    declare_parameters();
    apply_method_trainability();
}

void SequenceClassifier::declare_parameters() {
    const std::int64_t C = config_.hidden_size, K = config_.num_labels();
    const Init w_init = Init::normal(config_.initializer_range);
    const std::string e = prefix() + "embeddings.";
    const bool roberta = config_.arch == Arch::Roberta;
    // nn.Embedding(padding_idx=pad): HF zeroes the padding row of word (and RoBERTa position) tables.
    wte_ = params_.declare(e + "word_embeddings.weight", {config_.vocab_size, C},
                           Init::normal(config_.initializer_range, config_.pad_token_id));
    wpe_ = params_.declare(e + "position_embeddings.weight", {config_.max_position_embeddings, C},
                           Init::normal(config_.initializer_range, roberta ? config_.pad_token_id : -1));
    wtt_ = params_.declare(e + "token_type_embeddings.weight", {config_.type_vocab_size, C}, w_init);
    emb_ln_w_ = params_.declare(e + "LayerNorm.weight", {C}, Init::ones());
    emb_ln_b_ = params_.declare(e + "LayerNorm.bias", {C}, Init::zeros());
    stack_ = std::make_unique<LayerStack>(config_, method_, params_, prefix(), arenas());
    if (!roberta) {
        pool_w_ = params_.declare(prefix() + "pooler.dense.weight", {C, C}, w_init);
        pool_b_ = params_.declare(prefix() + "pooler.dense.bias", {C}, Init::zeros());
        cls_w_ = params_.declare("classifier.weight", {K, C}, w_init);
        cls_b_ = params_.declare("classifier.bias", {K}, Init::zeros());
    } else {  // RobertaClassificationHead; RobertaForSequenceClassification has no pooler
        dense_w_ = params_.declare("classifier.dense.weight", {C, C}, w_init);
        dense_b_ = params_.declare("classifier.dense.bias", {C}, Init::zeros());
        cls_w_ = params_.declare("classifier.out_proj.weight", {K, C}, w_init);
        cls_b_ = params_.declare("classifier.out_proj.bias", {K}, Init::zeros());
    }
}

bool SequenceClassifier::is_head_parameter(const std::string& name) const {
    return name.rfind("classifier.", 0) == 0 || name.rfind(prefix() + "pooler.", 0) == 0;
}

// ---- inputs -----------------------------------------------------------------------------------

void SequenceClassifier::upload_inputs(const HostBatch& b) {
    check_batch(b, config_.max_position_embeddings - (config_.arch == Arch::Roberta ? config_.pad_token_id + 1 : 0));
    const std::size_t n = static_cast<std::size_t>(b.B) * static_cast<std::size_t>(b.T);
    if (b.token_type_ids.size() != n) throw Error("batch arrays do not match B*T");
    std::vector<std::int32_t> pos(n);
    for (int i = 0; i < b.B; ++i) {
        int running = 0;
        for (int t = 0; t < b.T; ++t) {
            const std::size_t j = static_cast<std::size_t>(i) * b.T + t;
            const std::int32_t id = b.input_ids[j];
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
    ids_ = upload_i32(b.input_ids, {b.B, b.T}, "input_ids");
    types_ = upload_i32(b.token_type_ids, {b.B, b.T}, "token_type_ids");
    mask_ = upload_i32(b.attention_mask, {b.B, b.T}, "attention_mask");
    pos_ = upload_i32(pos, {b.B, b.T}, "position_ids");
}

// ---- forward ----------------------------------------------------------------------------------

Tensor SequenceClassifier::forward(const HostBatch& batch, const ForwardOptions& o) {
    begin_forward();
    B_ = batch.B;
    T_ = batch.T;
    upload_inputs(batch);
    const std::int64_t C = config_.hidden_size;
    const DType dt = dtype();
    const int off = batch.example_offset;
    Arena& A = *acts_;

    // Frozen embeddings need nothing for backward; under MEFT their output is copied into the
    // streams. What backward does not read goes to scratch (reset before backward), not saved.
    const bool emb_trains = params_.at(wte_).trainable || params_.at(wpe_).trainable || params_.at(wtt_).trainable ||
                            params_.at(emb_ln_w_).trainable || params_.at(emb_ln_b_).trainable;
    Arena& E = emb_trains ? A : *scratch_;
    emb_sum_ = E.alloc(dt, {B_, T_, C}, -1, "embeddings.sum");
    emb_mean_ = E.alloc(dt, {B_ * T_}, -1, "embeddings.ln_mean");
    emb_rstd_ = E.alloc(dt, {B_ * T_}, -1, "embeddings.ln_rstd");
    Tensor x = (stack_->keeps_input(o) ? A : *scratch_).alloc(dt, {B_, T_, C}, -1, "embeddings.out");
    backend_.embeddings_forward(emb_sum_, ids_, pos_, types_, p(wte_), p(wpe_), p(wtt_));
    backend_.layernorm_forward(x, emb_mean_, emb_rstd_, emb_sum_, p(emb_ln_w_), p(emb_ln_b_), config_.layer_norm_eps);
    backend_.dropout_forward(x, x, drop(o, config_.hidden_dropout), key(o, -1, kEmbed), off);

    x = stack_->forward(x, batch, mask_, o);
    last_hidden_ = x;
    head_forward(x, o, off);
    return head_.logits;
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
    const std::vector<double> losses = to_host(head_.losses);
    double sum = 0;
    for (double v : losses) sum += v;

    // Backward buffers: reused by every layer.
    scratch_->reset();
    std::size_t start = meter_.current;
    meter_.reset_peak();
    const std::int64_t C = config_.hidden_size;
    grad_stream_ = scratch_->alloc(dt, {B_, T_, C}, -1, "d.stream");

    const int off = batch.example_offset;
    head_backward(dlogits, o, off);
    transient_[static_cast<std::size_t>(L + 1)] = meter_.peak - start;
    stack_->backward(grad_stream_, o, off);
    // embeddings: grad_stream_ holds d(embeddings.out); nothing to do when they are frozen
    if (!g(wte_) && !g(wpe_) && !g(wtt_) && !g(emb_ln_w_) && !g(emb_ln_b_)) return sum;
    Tensor d = grad_stream_;
    start = meter_.current;
    meter_.reset_peak();
    grad_tmp_ = scratch_->alloc(dtype(), {B_, T_, config_.hidden_size}, -1, "d.tmp");
    backend_.dropout_backward(d, d, drop(o, config_.hidden_dropout), key(o, -1, kEmbed), off);
    backend_.layernorm_backward(grad_tmp_, g(emb_ln_w_), g(emb_ln_b_), d, emb_sum_, p(emb_ln_w_), emb_mean_, emb_rstd_,
                                false);
    if (g(wte_)) backend_.embedding_backward(g(wte_), grad_tmp_, ids_);
    if (g(wpe_)) backend_.embedding_backward(g(wpe_), grad_tmp_, pos_);
    if (g(wtt_)) backend_.embedding_backward(g(wtt_), grad_tmp_, types_);
    transient_[0] = meter_.peak - start;
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

}  // namespace meft
