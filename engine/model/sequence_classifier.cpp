// sequence_classifier.cpp — forward and backward of the sequence head (classification, regression,
// multiple choice) over an encoder or encoder-decoder backbone.
// Forward and backward are flat scripts over the ops in core/backend.h; each saved activation
// is allocated from the activation arena under its (layer, name) tag.
#include "model/sequence_classifier.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/philox.h"
#include "model/arch/arch.h"
#include "model/backbone.h"

namespace meft {

namespace {
// Dropout positions of the head (layer L); the embeddings' are in the backbones, the layers' in
// transformer_layer.cpp.
enum Site { kHeadFirst = 0, kHeadSecond = 1 };
}  // namespace

SequenceClassifier::SequenceClassifier(ModelConfig config, Backend& backend, DType dtype,
                                       std::shared_ptr<const ModelEdit> edit)
    : Model(std::move(config), backend, dtype, std::move(edit)) {
    backbone_ = make_sequence_backbone(config_, edit_.get(), arenas());
    declare_head();
    apply_method_trainability();
}

void SequenceClassifier::declare_head() {
    const std::int64_t C = config_.hidden_size, K = config_.num_labels();
    const Init w_init = Init::normal(config_.initializer_range);
    const HeadNames h = arch_spec(config_.arch).head(config_);
    pooler_ = h.pooler;
    if (pooler_) {  // pooler -> dropout -> classifier
        pool_w_ = params_.declare(h.pooler_dense + ".weight", {C, C}, w_init);
        pool_b_ = params_.declare(h.pooler_dense + ".bias", {C}, Init::zeros());
    } else {  // dropout -> dense -> tanh -> dropout -> out_proj
        dense_w_ = params_.declare(h.dense + ".weight", {C, C}, w_init);
        dense_b_ = params_.declare(h.dense + ".bias", {C}, Init::zeros());
    }
    cls_w_ = params_.declare(h.out + ".weight", {K, C}, w_init);
    cls_b_ = params_.declare(h.out + ".bias", {K}, Init::zeros());
}

bool SequenceClassifier::is_head_parameter(const std::string& name) const {
    for (int i : {pool_w_, pool_b_, dense_w_, dense_b_, cls_w_, cls_b_})
        if (i >= 0 && params_.at(i).name == name) return true;
    return false;
}

// ---- forward ----------------------------------------------------------------------------------

Tensor SequenceClassifier::forward(const HostBatch& batch, const ForwardOptions& o) {
    begin_forward();
    B_ = batch.B;
    T_ = batch.T;
    backbone_->upload(batch);
    last_hidden_ = backbone_->forward(batch, o);
    head_forward(last_hidden_, o, batch.example_offset);
    return head_.logits;
}

void SequenceClassifier::head_forward(Tensor h, const ForwardOptions& o, int off) {
    const std::int64_t C = config_.hidden_size, K = config_.num_labels();
    const int L = config_.total_layers();
    const DType dt = dtype();
    Arena& A = *acts_;
    const double pd = drop(o, config_.head_dropout());
    HeadActs& a = head_;
    a.cls = A.alloc(dt, {B_, C}, L, "head.cls");
    a.a = A.alloc(dt, {B_, C}, L, "head.dense");
    a.b = A.alloc(dt, {B_, C}, L, "head.tanh");
    a.c = A.alloc(dt, {B_, C}, L, "head.dropout");
    a.logits = A.alloc(dt, {B_, K}, L, "head.logits");
    if (Tensor rows = backbone_->head_rows())  // one row per example (an embedding lookup into the hidden states)
        backend_.embeddings_forward(a.cls, rows, {}, {}, h.view({std::int64_t{B_} * T_, C}), {}, {});
    else
        backend_.first_token_forward(a.cls, h);
    if (pooler_) {  // pooler: tanh(W h0 + b); dropout; classifier
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
    const int L = config_.total_layers();
    const std::int64_t K = config_.num_labels();
    Arena& A = *acts_;
    Tensor dlogits = A.alloc(dt, {B_, K}, L, "loss.dlogits");
    double sum = 0;
    if (config_.multiple_choice) {
        sum = choice_loss(batch, logits, dlogits, loss_scale);
    } else {
        head_.losses = A.alloc(dt, {B_}, L, "loss.per_example");
        if (config_.is_regression()) {
            if (batch.targets.size() != static_cast<std::size_t>(B_)) throw Error("regression batch needs one target per example");
            targets_ = A.alloc(dt, {B_}, L, "loss.targets");
            from_host(targets_, batch.targets);
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
        for (double v : to_host(head_.losses)) sum += v;
    }

    // Backward buffers: reused by every layer.
    scratch_->reset();
    mark_phase("backward");
    const std::size_t start = meter_.current;
    meter_.reset_peak();
    Tensor d_hidden = backbone_->begin_backward();
    head_backward(dlogits, d_hidden, o, batch.example_offset);
    transient_[static_cast<std::size_t>(L + 1)] = meter_.peak - start;
    backbone_->backward(o, batch.example_offset);
    return sum;
}

double SequenceClassifier::choice_loss(const HostBatch& batch, Tensor scores, Tensor dscores, double loss_scale) {
    // Each question's rows hold its choices; the loss is the softmax cross-entropy of the gold one
    // over the question's scores (BertForMultipleChoice with a varying number of choices). The
    // scores are few (one per pair), so this runs on the host.
    const std::vector<int>& counts = batch.choice_counts;
    int rows = 0;
    for (int n : counts) rows += n;
    if (counts.empty() || rows != B_)
        throw Error("a multiple-choice batch needs its rows grouped by question (" + std::to_string(rows) + " of " +
                    std::to_string(B_) + " rows are)");
    if (batch.labels.size() != static_cast<std::size_t>(B_)) throw Error("multiple-choice batch needs one label per pair");
    const std::vector<double> z = to_host(scores);
    std::vector<double> d(z.size(), 0.0);
    double sum = 0;
    std::size_t r0 = 0;
    for (int n : counts) {
        const std::string where = "examples " + std::to_string(batch.example_offset + static_cast<int>(r0)) + ".." +
                                  std::to_string(batch.example_offset + static_cast<int>(r0) + n - 1) + " (one question): ";
        std::size_t gold = r0 + static_cast<std::size_t>(n);
        for (std::size_t r = r0; r < r0 + static_cast<std::size_t>(n); ++r) {
            const int y = batch.labels[r];
            if (y != 0 && y != 1)
                throw Error(where + "a choice's label must be 1 (gold) or 0, found " + std::to_string(y));
            if (y == 1 && gold != r0 + static_cast<std::size_t>(n)) throw Error(where + "more than one gold choice");
            if (y == 1) gold = r;
        }
        if (gold == r0 + static_cast<std::size_t>(n)) throw Error(where + "no gold choice");
        const double mx = *std::max_element(z.begin() + std::ptrdiff_t(r0), z.begin() + std::ptrdiff_t(r0) + n);
        double se = 0;
        for (std::size_t r = r0; r < r0 + static_cast<std::size_t>(n); ++r) se += std::exp(z[r] - mx);
        const double lse = mx + std::log(se);
        sum += lse - z[gold];
        for (std::size_t r = r0; r < r0 + static_cast<std::size_t>(n); ++r)
            d[r] = loss_scale * (std::exp(z[r] - lse) - (r == gold ? 1.0 : 0.0));
        r0 += static_cast<std::size_t>(n);
    }
    from_host(dscores, d);
    return sum;
}

void SequenceClassifier::head_backward(Tensor dlogits, Tensor d_hidden, const ForwardOptions& o, int off) {
    const std::int64_t C = config_.hidden_size;
    const int L = config_.total_layers();
    const double pd = drop(o, config_.head_dropout());
    HeadActs& a = head_;
    Tensor d1 = scratch_->alloc(dtype(), {B_, C}, L, "d.head1");
    Tensor d2 = scratch_->alloc(dtype(), {B_, C}, L, "d.head2");
    backend_.linear_backward(d1, g(cls_w_), g(cls_b_), dlogits, a.c, p(cls_w_), false);
    backend_.dropout_backward(d1, d1, pd, key(o, L, pooler_ ? kHeadFirst : kHeadSecond), off);
    backend_.tanh_backward(d2, d1, a.b);
    if (pooler_) {
        backend_.linear_backward(d1, g(pool_w_), g(pool_b_), d2, a.cls, p(pool_w_), false);
    } else {
        backend_.linear_backward(d1, g(dense_w_), g(dense_b_), d2, a.a, p(dense_w_), false);
        backend_.dropout_backward(d1, d1, pd, key(o, L, kHeadFirst), off);
    }
    if (Tensor rows = backbone_->head_rows()) {  // scatter back to the rows read
        backend_.fill(d_hidden, 0.0);
        backend_.embedding_backward(d_hidden.view({std::int64_t{B_} * T_, C}), d1, rows);
    } else {
        backend_.first_token_backward(d_hidden, d1, false);
    }
}

}  // namespace meft
