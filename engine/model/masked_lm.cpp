// masked_lm.cpp — the MLM head (transform, tied decoder, output bias) and its loss over an
// encoder backbone (BERT, RoBERTa).
#include "model/masked_lm.h"

#include <algorithm>

#include "core/error.h"
#include "model/arch/arch.h"
#include "model/backbone.h"

namespace meft {

MaskedLM::MaskedLM(ModelConfig config, Backend& backend, DType dtype, std::shared_ptr<const ModelEdit> edit)
    : Model(std::move(config), backend, dtype, std::move(edit)) {
    const ArchSpec& spec = arch_spec(config_.arch);
    const MlmHeadNames h = spec.mlm_head();
    if (spec.shape() != StackShape::Encoder || h.empty())
        throw Error("model config: " + arch_name(config_.arch) +
                    " has no masked-language-model head (BERT and RoBERTa have one)");
    backbone_ = make_sequence_backbone(config_, edit_.get(), arenas());
    wte_ = params_.index_of(spec.embeddings(config_).tokens);
    MEFT_CHECK(wte_ >= 0, "the encoder declares its token table");
    const std::int64_t C = config_.hidden_size, V = config_.vocab_size;
    dense_w_ = params_.declare(h.dense + ".weight", {C, C}, Init::normal(config_.initializer_range));
    dense_b_ = params_.declare(h.dense + ".bias", {C}, Init::zeros());
    ln_w_ = params_.declare(h.layer_norm + ".weight", {C}, Init::ones());
    ln_b_ = params_.declare(h.layer_norm + ".bias", {C}, Init::zeros());
    bias_ = params_.declare(h.bias, {V}, Init::zeros());
    apply_method_trainability();
}

bool MaskedLM::is_head_parameter(const std::string& name) const {
    for (int i : {dense_w_, dense_b_, ln_w_, ln_b_, bias_})
        if (params_.at(i).name == name) return true;
    return false;
}

// ---- inputs -----------------------------------------------------------------------------------

void MaskedLM::upload_labels(const HostBatch& b) {
    const std::size_t n = static_cast<std::size_t>(b.B) * static_cast<std::size_t>(b.T);
    if (!b.token_labels.empty() && b.token_labels.size() != n)
        throw Error("a masked-LM batch needs one token label per position (" + std::to_string(b.token_labels.size()) +
                    " for " + std::to_string(b.B) + " x " + std::to_string(b.T) + ")");
    std::vector<std::int32_t> rows, targets;
    row_example_.clear();
    for (int i = 0; i < b.B && !b.token_labels.empty(); ++i)
        for (int t = 0; t < b.T; ++t) {
            const std::size_t j = static_cast<std::size_t>(i) * static_cast<std::size_t>(b.T) + static_cast<std::size_t>(t);
            const std::int32_t label = b.token_labels[j];  // position t predicts its own original token
            if (label < 0) continue;
            if (label >= config_.vocab_size)
                throw Error("example " + std::to_string(b.example_offset + i) + ": label " + std::to_string(label) +
                            " at position " + std::to_string(t) + " outside the vocabulary (size " +
                            std::to_string(config_.vocab_size) + ")");
            rows.push_back(static_cast<std::int32_t>(j));
            targets.push_back(label);
            row_example_.push_back(i);
        }
    M_ = static_cast<int>(rows.size());
    rows_ = targets_ = Tensor{};
    if (M_ > 0) {
        rows_ = upload_i32(rows, {M_}, "masked_positions");
        targets_ = upload_i32(targets, {M_}, "labels");
    }
}

// ---- forward ----------------------------------------------------------------------------------

int MaskedLM::loss_chunk_rows() const {
    if (loss_chunk_rows_ > 0) return loss_chunk_rows_;
    const std::size_t row = static_cast<std::size_t>(config_.vocab_size) * dtype_size(dtype());
    return static_cast<int>(std::max<std::size_t>(1, kLossChunkBytes / row));
}

void MaskedLM::head_input_forward(const HostBatch& batch, const ForwardOptions& o) {
    begin_forward();
    B_ = batch.B;
    T_ = batch.T;
    backbone_->upload(batch);
    upload_labels(batch);
    const Tensor h = backbone_->forward(batch, o);
    last_hidden_ = h;
    selected_ = dense_ = act_ = mean_ = rstd_ = transformed_ = logits_ = Tensor{};
    if (M_ == 0) return;
    const int L = config_.total_layers();
    const std::int64_t C = config_.hidden_size, N = std::int64_t(B_) * T_;
    Arena& A = *acts_;
    const DType dt = dtype();
    selected_ = A.alloc(dt, {M_, C}, L, "head.selected");
    backend_.embeddings_forward(selected_, rows_, {}, {}, h.view({N, C}), {}, {});  // gather the masked rows
    dense_ = A.alloc(dt, {M_, C}, L, "head.dense");
    act_ = A.alloc(dt, {M_, C}, L, "head.gelu");
    mean_ = A.alloc(dt, {M_}, L, "head.ln_mean");
    rstd_ = A.alloc(dt, {M_}, L, "head.ln_rstd");
    transformed_ = A.alloc(dt, {M_, C}, L, "head.transformed");
    backend_.linear_forward(dense_, selected_, p(dense_w_), p(dense_b_));
    backend_.gelu_forward(act_, dense_);
    backend_.layernorm_forward(transformed_, mean_, rstd_, act_, p(ln_w_), p(ln_b_), config_.layer_norm_eps);
}

Tensor MaskedLM::forward(const HostBatch& batch, const ForwardOptions& o) {
    head_input_forward(batch, o);
    if (M_ == 0) return logits_;
    logits_ = acts_->alloc(dtype(), {M_, config_.vocab_size}, config_.total_layers(), "head.logits");
    backend_.linear_forward(logits_, transformed_, p(wte_), p(bias_));
    return logits_;
}

std::vector<double> MaskedLM::example_outputs(const HostBatch& batch) {
    std::vector<double> out(static_cast<std::size_t>(batch.B) * 3, 0.0);
    head_input_forward(batch, {});
    if (M_ == 0) return out;
    std::vector<char> correct;
    const std::vector<double> nll = chunked_loss(false, 0.0, &correct);
    for (int r = 0; r < M_; ++r) {
        const std::size_t e = static_cast<std::size_t>(row_example_[static_cast<std::size_t>(r)]) * 3;
        out[e] -= nll[static_cast<std::size_t>(r)];
        out[e + 1] += 1;
        out[e + 2] += correct[static_cast<std::size_t>(r)] ? 1 : 0;
    }
    return out;
}

// ---- loss and backward ------------------------------------------------------------------------

std::vector<double> MaskedLM::chunked_loss(bool backward, double loss_scale, std::vector<char>* correct) {
    const int L = config_.total_layers(), V = config_.vocab_size;
    const std::int64_t C = config_.hidden_size;
    std::vector<double> losses;
    losses.reserve(static_cast<std::size_t>(M_));
    std::vector<std::int32_t> labels;
    if (correct) {
        labels.resize(static_cast<std::size_t>(M_));
        backend_.download(labels.data(), targets_);
    }
    if (backward) dtransformed_ = scratch_->alloc(dtype(), {M_, C}, L, "d.transformed");
    const int R = loss_chunk_rows();
    for (int r0 = 0; r0 < M_; r0 += R) {
        const int n = std::min(R, M_ - r0);
        tmp_->reset();
        const Tensor z = transformed_.rows(r0, n), targets = targets_.rows(r0, n);
        Tensor logits = tmp_->alloc(dtype(), {n, V}, L, "head.logits");
        Tensor probs = tmp_->alloc(dtype(), {n, V}, L, "loss.probs");
        Tensor chunk_losses = tmp_->alloc(dtype(), {n}, L, "loss.per_token");
        backend_.linear_forward(logits, z, p(wte_), p(bias_));
        backend_.cross_entropy_forward(chunk_losses, probs, logits, targets);
        for (double v : to_host(chunk_losses)) losses.push_back(v);
        if (correct) {  // the label ranks first: its probability is the row's largest (ties count as wrong)
            const std::vector<double> pr = to_host(probs);
            for (int r = 0; r < n; ++r) {
                const double* row = pr.data() + std::size_t(r) * std::size_t(V);
                const std::int32_t y = labels[static_cast<std::size_t>(r0 + r)];
                bool first = true;
                for (int v = 0; v < V && first; ++v) first = v == y || row[v] < row[y];
                correct->push_back(first ? 1 : 0);
            }
        }
        if (!backward) continue;
        backend_.cross_entropy_backward(logits, probs, targets, loss_scale);  // d(logits), over the logits
        // the tied decoder adds to the token table's gradient; the output bias has its own
        backend_.linear_backward(dtransformed_.rows(r0, n), g(wte_), g(bias_), logits, z, p(wte_), false);
    }
    tmp_->reset();
    return losses;
}

double MaskedLM::forward_backward(const HostBatch& batch, const ForwardOptions& o, double loss_scale) {
    if (batch.token_labels.empty()) throw Error("a masked-LM batch needs token labels (the masked positions' tokens)");
    head_input_forward(batch, o);
    if (M_ == 0) return 0.0;  // nothing masked: no loss, no gradient
    const int L = config_.total_layers();
    const std::int64_t C = config_.hidden_size, N = std::int64_t(B_) * T_;

    scratch_->reset();  // backward buffers, reused by every layer
    mark_phase("backward");
    const std::size_t start = meter_.current;
    meter_.reset_peak();
    double sum = 0;
    for (double v : chunked_loss(true, loss_scale, nullptr)) sum += v;
    // the transform, backward: LayerNorm, GELU, dense
    Tensor d1 = scratch_->alloc(dtype(), {M_, C}, L, "d.head1");
    backend_.layernorm_backward(d1, g(ln_w_), g(ln_b_), dtransformed_, act_, p(ln_w_), mean_, rstd_, false);
    backend_.gelu_backward(dtransformed_, d1, dense_);
    backend_.linear_backward(d1, g(dense_w_), g(dense_b_), dtransformed_, selected_, p(dense_w_), false);
    Tensor d_hidden = backbone_->begin_backward();
    backend_.fill(d_hidden, 0.0);
    backend_.embedding_backward(d_hidden.view({N, C}), d1, rows_);  // scatter back to the masked positions
    transient_[static_cast<std::size_t>(L + 1)] = meter_.peak - start;
    backbone_->backward(o, batch.example_offset);
    return sum;
}

}  // namespace meft
