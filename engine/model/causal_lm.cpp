// causal_lm.cpp — the tied LM head and its loss over a decoder backbone (OPT).
#include "model/causal_lm.h"

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

Tensor CausalLM::forward(const HostBatch& batch, const ForwardOptions& o) {
    begin_forward();
    B_ = batch.B;
    T_ = batch.T;
    backbone_->upload(batch);
    upload_labels(batch);
    Tensor h = backbone_->forward(batch, o);
    head_forward(h);
    return logits_;
}

void CausalLM::head_forward(Tensor h) {
    const int L = config_.num_layers;
    const std::int64_t Dw = config_.embed_width(), N = std::int64_t(B_) * T_;
    Arena& A = *acts_;
    last_hidden_ = h;
    selected_ = logits_ = Tensor{};
    if (M_ == 0) return;
    // gather the labelled positions' rows (an embedding lookup into the hidden states)
    selected_ = A.alloc(dtype(), {M_, Dw}, L, "head.selected");
    backend_.embeddings_forward(selected_, rows_, {}, {}, h.view({N, Dw}), {}, {});
    logits_ = A.alloc(dtype(), {M_, config_.vocab_size}, L, "head.logits");
    backend_.linear_forward(logits_, selected_, p(decoder_->token_table()), {});
}

std::vector<double> CausalLM::example_outputs(const HostBatch& batch) {
    std::vector<double> out(static_cast<std::size_t>(batch.B), 0.0);
    forward(batch, {});
    if (M_ == 0) return out;
    const std::vector<double> nll = token_losses();
    for (int r = 0; r < M_; ++r) out[static_cast<std::size_t>(row_example_[static_cast<std::size_t>(r)])] -= nll[static_cast<std::size_t>(r)];
    return out;
}

// ---- loss and backward ------------------------------------------------------------------------

std::vector<double> CausalLM::token_losses() {
    const int L = config_.num_layers;
    losses_ = acts_->alloc(dtype(), {M_}, L, "loss.per_token");
    probs_ = acts_->alloc(dtype(), logits_.shape, L, "loss.probs");
    backend_.cross_entropy_forward(losses_, probs_, logits_, targets_);
    return to_host(losses_);
}

double CausalLM::forward_backward(const HostBatch& batch, const ForwardOptions& o, double loss_scale) {
    if (batch.token_labels.empty()) throw Error("a causal LM batch needs token labels");
    forward(batch, o);
    if (M_ == 0) return 0.0;  // nothing predicted: no loss, no gradient
    const int L = config_.num_layers;
    double sum = 0;
    for (double v : token_losses()) sum += v;

    scratch_->reset();  // backward buffers, reused by every layer
    mark_phase("backward");
    const std::size_t start = meter_.current;
    meter_.reset_peak();
    Tensor dlogits = scratch_->alloc(dtype(), logits_.shape, L, "d.logits");
    backend_.cross_entropy_backward(dlogits, probs_, targets_, loss_scale);
    backbone_->begin_backward();
    decoder_->output_backward(head_backward(dlogits));
    transient_[static_cast<std::size_t>(L + 1)] = meter_.peak - start;
    backbone_->backward(o, batch.example_offset);
    return sum;
}

Tensor CausalLM::head_backward(Tensor dlogits) {
    const std::int64_t Dw = config_.embed_width(), N = std::int64_t(B_) * T_;
    const int L = config_.num_layers;
    const int wte = decoder_->token_table();
    Tensor dsel = scratch_->alloc(dtype(), {M_, Dw}, L, "d.selected");
    backend_.linear_backward(dsel, g(wte), {}, dlogits, selected_, p(wte), false);  // tied: adds to the embedding's gradient
    Tensor dout = scratch_->zeros(dtype(), {B_, T_, Dw}, L, "d.head_out");
    backend_.embedding_backward(dout.view({N, Dw}), dsel, rows_);  // scatter back to the positions
    return dout;
}

}  // namespace meft
