// causal_lm.cpp — the tied LM head and its loss over a decoder backbone (OPT).
#include "model/causal_lm.h"

#include <algorithm>

#include "core/error.h"
#include "model/decoder.h"

namespace meft {

CausalLM::CausalLM(ModelConfig config, Backend& backend, DType dtype, std::shared_ptr<const ModelEdit> edit)
    : Model(std::move(config), backend, dtype, std::move(edit)) {
    if (!is_decoder_only(config_.arch))
        throw Error("model config: " + arch_name(config_.arch) + " is an encoder, not a causal language model");
    auto decoder = std::make_unique<Decoder>(config_, edit_.get(), arenas());
    decoder_ = decoder.get();
    backbone_ = std::move(decoder);
    apply_method_trainability();
}

// ---- inputs -----------------------------------------------------------------------------------

void CausalLM::upload_labels(const HostBatch& b) {
    const std::size_t n = static_cast<std::size_t>(b.B) * static_cast<std::size_t>(b.T);
    if (!b.token_labels.empty() && b.token_labels.size() != n) throw Error("token labels do not match B*T");
    std::vector<std::int32_t> rows, targets;
    row_example_.clear();
    for (int i = 0; i < b.B && !b.token_labels.empty(); ++i)
        for (int t = 0; t + 1 < b.T; ++t) {
            const std::size_t j = static_cast<std::size_t>(i) * b.T + t;
            const std::int32_t label = b.token_labels[j + 1];  // position t predicts token t+1
            if (label < 0) continue;
            if (label >= config_.vocab_size)
                throw Error("example " + std::to_string(b.example_offset + i) + ": label " + std::to_string(label) +
                            " at position " + std::to_string(t + 1) + " outside the vocabulary (size " +
                            std::to_string(config_.vocab_size) + ")");
            rows.push_back(static_cast<std::int32_t>(j));
            targets.push_back(label);
            row_example_.push_back(i);
        }
    M_ = static_cast<int>(rows.size());
    rows_ = targets_ = Tensor{};
    if (M_ > 0) {
        rows_ = upload_i32(rows, {M_}, "labelled_positions");
        targets_ = upload_i32(targets, {M_}, "labels");
    }
}

// ---- forward ----------------------------------------------------------------------------------

int CausalLM::loss_chunk_rows() const {
    if (loss_chunk_rows_ > 0) return loss_chunk_rows_;
    const std::size_t row = static_cast<std::size_t>(config_.vocab_size) * dtype_size(dtype());
    return static_cast<int>(std::max<std::size_t>(1, kLossChunkBytes / row));
}

void CausalLM::backbone_forward(const HostBatch& batch, const ForwardOptions& o) {
    begin_forward();
    B_ = batch.B;
    T_ = batch.T;
    backbone_->upload(batch);
    upload_labels(batch);
    const Tensor h = backbone_->forward(batch, o);
    const int L = config_.num_layers;
    const std::int64_t Dw = config_.embed_width(), N = std::int64_t(B_) * T_;
    last_hidden_ = h;
    selected_ = logits_ = Tensor{};
    if (M_ == 0) return;
    // gather the labelled positions' rows (an embedding lookup into the hidden states)
    selected_ = acts_->alloc(dtype(), {M_, Dw}, L, "head.selected");
    backend_.embeddings_forward(selected_, rows_, {}, {}, h.view({N, Dw}), {}, {});
}

Tensor CausalLM::forward(const HostBatch& batch, const ForwardOptions& o) {
    backbone_forward(batch, o);
    if (M_ == 0) return logits_;
    logits_ = acts_->alloc(dtype(), {M_, config_.vocab_size}, config_.num_layers, "head.logits");
    backend_.linear_forward(logits_, selected_, p(decoder_->token_table()), {});
    return logits_;
}

std::vector<double> CausalLM::example_outputs(const HostBatch& batch) {
    std::vector<double> out(static_cast<std::size_t>(batch.B), 0.0);
    backbone_forward(batch, {});
    if (M_ == 0) return out;
    const std::vector<double> nll = chunked_loss(false, 0.0);
    for (int r = 0; r < M_; ++r) out[static_cast<std::size_t>(row_example_[static_cast<std::size_t>(r)])] -= nll[static_cast<std::size_t>(r)];
    return out;
}

// ---- loss and backward ------------------------------------------------------------------------

std::vector<double> CausalLM::chunked_loss(bool backward, double loss_scale) {
    const int L = config_.num_layers, V = config_.vocab_size, wte = decoder_->token_table();
    const std::int64_t Dw = config_.embed_width();
    std::vector<double> losses;
    losses.reserve(static_cast<std::size_t>(M_));
    if (backward) dselected_ = scratch_->alloc(dtype(), {M_, Dw}, L, "d.selected");
    const int R = loss_chunk_rows();
    for (int r0 = 0; r0 < M_; r0 += R) {
        const int n = std::min(R, M_ - r0);
        tmp_->reset();
        const Tensor sel = selected_.rows(r0, n), targets = targets_.rows(r0, n);
        Tensor logits = tmp_->alloc(dtype(), {n, V}, L, "head.logits");
        Tensor probs = tmp_->alloc(dtype(), {n, V}, L, "loss.probs");
        Tensor chunk_losses = tmp_->alloc(dtype(), {n}, L, "loss.per_token");
        backend_.linear_forward(logits, sel, p(wte), {});
        backend_.cross_entropy_forward(chunk_losses, probs, logits, targets);
        for (double v : to_host(chunk_losses)) losses.push_back(v);
        if (!backward) continue;
        backend_.cross_entropy_backward(logits, probs, targets, loss_scale);  // d(logits), over the logits
        // tied: adds to the embedding's gradient
        backend_.linear_backward(dselected_.rows(r0, n), g(wte), {}, logits, sel, p(wte), false);
    }
    tmp_->reset();
    return losses;
}

double CausalLM::forward_backward(const HostBatch& batch, const ForwardOptions& o, double loss_scale) {
    if (batch.token_labels.empty()) throw Error("a causal LM batch needs token labels");
    backbone_forward(batch, o);
    if (M_ == 0) return 0.0;  // nothing predicted: no loss, no gradient
    const int L = config_.num_layers;
    const std::int64_t Dw = config_.embed_width(), N = std::int64_t(B_) * T_;

    scratch_->reset();  // backward buffers, reused by every layer
    mark_phase("backward");
    const std::size_t start = meter_.current;
    meter_.reset_peak();
    // The loss and its gradient a chunk of labelled positions at a time: [M, V] never exists.
    double sum = 0;
    for (double v : chunked_loss(true, loss_scale)) sum += v;
    backbone_->begin_backward();
    Tensor dout = scratch_->zeros(dtype(), {B_, T_, Dw}, L, "d.head_out");
    backend_.embedding_backward(dout.view({N, Dw}), dselected_, rows_);  // scatter back to the positions
    decoder_->output_backward(dout);
    transient_[static_cast<std::size_t>(L + 1)] = meter_.peak - start;
    backbone_->backward(o, batch.example_offset);
    return sum;
}

}  // namespace meft
