// causal_lm.cpp — forward and backward of OPT's causal language modelling.
#include "model/causal_lm.h"

#include "core/error.h"

namespace meft {

CausalLM::CausalLM(ModelConfig config, Backend& backend, DType dtype,
                                       std::shared_ptr<const ModelEdit> edit)
    : Model(std::move(config), backend, dtype, std::move(edit)) {
    if (!is_decoder_only(config_.arch))
        throw Error("model config: " + arch_name(config_.arch) + " is an encoder, not a causal language model");
    declare_parameters();
    apply_method_trainability();
}

void CausalLM::declare_parameters() {
    const std::int64_t C = config_.hidden_size, Dw = config_.embed_width();
    const std::string d = prefix() + "decoder.";
    // nn.Embedding(padding_idx=pad): HF zeroes the padding row of the token table; the position
    // table has max_position_embeddings + 2 rows (offset 2) and no padding row.
    wte_ = params_.declare(d + "embed_tokens.weight", {config_.vocab_size, Dw},
                           Init::normal(config_.initializer_range, config_.pad_token_id));
    wpe_ = params_.declare(d + "embed_positions.weight",
                           {config_.max_position_embeddings + ModelConfig::kOptPositionOffset, C},
                           Init::normal(config_.initializer_range));
    if (config_.projects_embeddings()) {  // bias-free projections between Dw and C
        proj_out_ = params_.declare(d + "project_out.weight", {Dw, C}, Init::normal(config_.initializer_range));
        proj_in_ = params_.declare(d + "project_in.weight", {C, Dw}, Init::normal(config_.initializer_range));
    }
    if (config_.final_layer_norm) {
        lnf_w_ = params_.declare(d + "final_layer_norm.weight", {C}, Init::ones());
        lnf_b_ = params_.declare(d + "final_layer_norm.bias", {C}, Init::zeros());
    }
    stack_ = std::make_unique<LayerStack>(config_, edit_.get(), params_,
                                          StackSpec{d + "layers.", config_.num_layers, 0, true, false}, arenas());
}

// ---- inputs -----------------------------------------------------------------------------------

void CausalLM::upload_inputs(const HostBatch& b) {
    check_batch(b, config_.max_tokens());
    const std::size_t n = static_cast<std::size_t>(b.B) * static_cast<std::size_t>(b.T);
    if (!b.token_labels.empty() && b.token_labels.size() != n) throw Error("token labels do not match B*T");
    std::vector<std::int32_t> pos(n), rows, targets;
    row_example_.clear();
    for (int i = 0; i < b.B; ++i) {
        int real = 0;
        for (int t = 0; t < b.T; ++t) {
            const std::size_t j = static_cast<std::size_t>(i) * b.T + t;
            // HF: positions = cumsum(mask) * mask - 1, plus the offset
            real += b.attention_mask[j] != 0;
            pos[j] = (b.attention_mask[j] != 0 ? real - 1 : -1) + ModelConfig::kOptPositionOffset;
            if (b.token_labels.empty() || t + 1 >= b.T) continue;
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
    }
    ids_ = upload_i32(b.input_ids, {b.B, b.T}, "input_ids");
    mask_ = upload_i32(b.attention_mask, {b.B, b.T}, "attention_mask");
    pos_ = upload_i32(pos, {b.B, b.T}, "position_ids");
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
    upload_inputs(batch);
    const std::int64_t C = config_.hidden_size, Dw = config_.embed_width();
    const DType dt = dtype();
    Arena& A = *acts_;
    // Embeddings need nothing saved for backward except project_in's input when it trains; under
    // MEFT their output is copied into the streams, so it lives in scratch.
    Tensor x = (stack_->keeps_input(o) ? A : *scratch_).alloc(dt, {B_, T_, C}, -1, "embeddings.out");
    tokens_ = Tensor{};
    if (config_.projects_embeddings()) {
        Tensor tokens = (g(proj_in_) ? A : *scratch_).alloc(dt, {B_, T_, Dw}, -1, "embeddings.tokens");
        backend_.embeddings_forward(tokens, ids_, {}, {}, p(wte_), {}, {});
        backend_.linear_forward(x, tokens, p(proj_in_), {});
        if (g(proj_in_)) tokens_ = tokens;  // scratch does not survive until backward
        Tensor pe = tmp_->alloc(dt, {B_, T_, C});
        backend_.embeddings_forward(pe, pos_, {}, {}, p(wpe_), {}, {});
        backend_.accumulate(x, pe);
        tmp_->reset();
    } else {
        backend_.embeddings_forward(x, ids_, pos_, {}, p(wte_), p(wpe_), {});
    }
    Tensor h = stack_->forward(x, batch, mask_, o);
    head_forward(h, o);
    return logits_;
}

void CausalLM::head_forward(Tensor h, const ForwardOptions& o) {
    const int L = config_.num_layers;
    const std::int64_t C = config_.hidden_size, Dw = config_.embed_width(), N = std::int64_t(B_) * T_;
    const DType dt = dtype();
    Arena& A = *acts_;
    h_ = h;
    hf_ = h;
    if (config_.final_layer_norm) {
        // Its backward reads h; MEFT's merged output lives in scratch, so keep a copy.
        if (o.train && stack_runner() && !o.backbone_only) {
            h_ = A.alloc(dt, h.shape, L, "head.final_ln_input");
            backend_.copy(h_, h);
        }
        hf_ = A.alloc(dt, {B_, T_, C}, L, "head.final_ln");
        lnf_mean_ = A.alloc(dt, {N}, L, "head.final_ln_mean");
        lnf_rstd_ = A.alloc(dt, {N}, L, "head.final_ln_rstd");
        backend_.layernorm_forward(hf_, lnf_mean_, lnf_rstd_, h, p(lnf_w_), p(lnf_b_), config_.layer_norm_eps);
    }
    ho_ = hf_;
    if (config_.projects_embeddings()) {
        ho_ = A.alloc(dt, {B_, T_, Dw}, L, "head.project_out");
        backend_.linear_forward(ho_, hf_, p(proj_out_), {});
    }
    last_hidden_ = ho_;
    selected_ = logits_ = Tensor{};
    if (M_ == 0) return;
    // gather the labelled positions' rows (an embedding lookup into the hidden states)
    selected_ = A.alloc(dt, {M_, Dw}, L, "head.selected");
    backend_.embeddings_forward(selected_, rows_, {}, {}, ho_.view({N, Dw}), {}, {});
    logits_ = A.alloc(dt, {M_, config_.vocab_size}, L, "head.logits");
    backend_.linear_forward(logits_, selected_, p(wte_), {});
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
    const DType dt = dtype();
    double sum = 0;
    for (double v : token_losses()) sum += v;

    scratch_->reset();  // backward buffers, reused by every layer
    std::size_t start = meter_.current;
    meter_.reset_peak();
    Tensor dlogits = scratch_->alloc(dt, logits_.shape, L, "d.logits");
    backend_.cross_entropy_backward(dlogits, probs_, targets_, loss_scale);
    grad_stream_ = scratch_->alloc(dt, {B_, T_, config_.hidden_size}, -1, "d.stream");
    head_backward(dlogits);
    transient_[static_cast<std::size_t>(L + 1)] = meter_.peak - start;
    stack_->backward(grad_stream_, o, batch.example_offset);
    start = meter_.current;
    meter_.reset_peak();
    embeddings_backward();
    transient_[0] = meter_.peak - start;
    return sum;
}

void CausalLM::head_backward(Tensor dlogits) {
    const std::int64_t C = config_.hidden_size, Dw = config_.embed_width(), N = std::int64_t(B_) * T_;
    const DType dt = dtype();
    const int L = config_.num_layers;
    Tensor dsel = scratch_->alloc(dt, {M_, Dw}, L, "d.selected");
    backend_.linear_backward(dsel, g(wte_), {}, dlogits, selected_, p(wte_), false);  // tied: adds to the embedding's gradient
    Tensor dho = scratch_->zeros(dt, {B_, T_, Dw}, L, "d.head_out");
    backend_.embedding_backward(dho.view({N, Dw}), dsel, rows_);  // scatter back to the positions
    Tensor dhf = dho;
    if (config_.projects_embeddings()) {
        dhf = scratch_->alloc(dt, {B_, T_, C}, L, "d.final_ln");
        backend_.linear_backward(dhf, g(proj_out_), {}, dho, hf_, p(proj_out_), false);
    }
    if (config_.final_layer_norm)
        backend_.layernorm_backward(grad_stream_, g(lnf_w_), g(lnf_b_), dhf, h_, p(lnf_w_), lnf_mean_, lnf_rstd_, false);
    else
        backend_.copy(grad_stream_, dhf);
}

void CausalLM::embeddings_backward() {
    // grad_stream_ holds d(embeddings.out); nothing to do when the embeddings are frozen
    if (!g(wte_) && !g(wpe_) && !(proj_in_ >= 0 && g(proj_in_))) return;
    if (g(wpe_)) backend_.embedding_backward(g(wpe_), grad_stream_, pos_);
    if (!config_.projects_embeddings()) {
        if (g(wte_)) backend_.embedding_backward(g(wte_), grad_stream_, ids_);
        return;
    }
    const std::int64_t Dw = config_.embed_width();
    Tensor dtok = scratch_->alloc(dtype(), {B_, T_, Dw}, -1, "d.tokens");
    Tensor tokens = tokens_;
    if (!tokens) {  // project_in frozen: its input was not kept; gather it again
        tokens = scratch_->alloc(dtype(), {B_, T_, Dw}, -1, "embeddings.tokens");
        backend_.embeddings_forward(tokens, ids_, {}, {}, p(wte_), {}, {});
    }
    backend_.linear_backward(dtok, g(proj_in_), {}, grad_stream_, tokens, p(proj_in_), false);
    if (g(wte_)) backend_.embedding_backward(g(wte_), dtok, ids_);
}

}  // namespace meft
