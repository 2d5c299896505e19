// decoder.cpp — the decoder backbone's forward and backward (OPT).
#include "model/decoder.h"

#include <algorithm>

#include "core/error.h"

namespace meft {

Decoder::Decoder(const ModelConfig& cfg, const ModelEdit* edit, ModelArenas ar) : Backbone(cfg, ar) {
    const std::int64_t C = cfg_.hidden_size, Dw = cfg_.embed_width();
    const double range = cfg_.initializer_range;
    const EmbeddingNames n = spec_.embeddings(cfg_);
    ParameterStore& ps = ar_.ps;
    // nn.Embedding(padding_idx=pad): transformers zeroes the padding row of the token table.
    wte_ = ps.declare(n.tokens, {cfg_.vocab_size, Dw}, Init::normal(range, cfg_.pad_token_id));
    wpe_ = ps.declare(n.positions, {spec_.position_rows(cfg_), C}, Init::normal(range, spec_.position_padding_row(cfg_)));
    if (cfg_.projects_embeddings()) {  // bias-free projections between Dw and C
        proj_out_ = ps.declare(spec_.project_out() + ".weight", {Dw, C}, Init::normal(range));
        proj_in_ = ps.declare(n.project_in + ".weight", {C, Dw}, Init::normal(range));
    }
    if (cfg_.final_layer_norm) {
        lnf_w_ = ps.declare(spec_.final_layer_norm() + ".weight", {C}, Init::ones());
        lnf_b_ = ps.declare(spec_.final_layer_norm() + ".bias", {C}, Init::zeros());
    }
    stack_ = std::make_unique<LayerStack>(cfg_, edit, ps, StackSpec{spec_.layers(), cfg_.num_layers, 0, true, false}, ar_);
}

void Decoder::upload(const HostBatch& b) {
    check_batch(b);
    ids_ = upload_i32(b.input_ids, {b.B, b.T}, "input_ids");
    mask_ = upload_i32(b.attention_mask, {b.B, b.T}, "attention_mask");
    pos_ = upload_i32(spec_.positions(b, cfg_), {b.B, b.T}, "position_ids");
}

Tensor Decoder::forward(const HostBatch& batch, const ForwardOptions& o) {
    const std::int64_t C = cfg_.hidden_size, Dw = cfg_.embed_width(), N = std::int64_t(B_) * T_;
    const int L = cfg_.num_layers;
    const DType dt = dtype();
    Arena& A = ar_.acts;
    // Embeddings need nothing saved for backward except project_in's input when it trains; under
    // MEFT their output is copied into the streams, so it lives in scratch.
    Tensor x = (stack_->keeps_input(o) ? A : ar_.scratch).alloc(dt, {B_, T_, C}, -1, "embeddings.out");
    tokens_ = Tensor{};
    if (cfg_.projects_embeddings()) {
        Tensor tokens = (g(proj_in_) ? A : ar_.scratch).alloc(dt, {B_, T_, Dw}, -1, "embeddings.tokens");
        ar_.be.embeddings_forward(tokens, ids_, {}, {}, p(wte_), {}, {});
        ar_.be.linear_forward(x, tokens, p(proj_in_), {});
        if (g(proj_in_)) tokens_ = tokens;  // scratch does not survive until backward
        Tensor pe = ar_.tmp.alloc(dt, {B_, T_, C});
        ar_.be.embeddings_forward(pe, pos_, {}, {}, p(wpe_), {}, {});
        ar_.be.accumulate(x, pe);
        ar_.tmp.reset();
    } else {
        ar_.be.embeddings_forward(x, ids_, pos_, {}, p(wte_), p(wpe_), {});
    }
    Tensor h = stack_->forward(x, batch, mask_, o);

    h_ = hf_ = h;
    if (cfg_.final_layer_norm) {
        // Its backward reads h; a runner's (MEFT's) merged output lives in scratch, so keep a copy.
        if (o.train && stack_->runner() && !o.backbone_only) {
            h_ = A.alloc(dt, h.shape, L, "head.final_ln_input");
            ar_.be.copy(h_, h);
        }
        hf_ = A.alloc(dt, {B_, T_, C}, L, "head.final_ln");
        lnf_mean_ = A.alloc(dt, {N}, L, "head.final_ln_mean");
        lnf_rstd_ = A.alloc(dt, {N}, L, "head.final_ln_rstd");
        ar_.be.layernorm_forward(hf_, lnf_mean_, lnf_rstd_, h, p(lnf_w_), p(lnf_b_), cfg_.layer_norm_eps);
    }
    if (!cfg_.projects_embeddings()) return hf_;
    Tensor out = A.alloc(dt, {B_, T_, Dw}, L, "head.project_out");
    ar_.be.linear_forward(out, hf_, p(proj_out_), {});
    return out;
}

void Decoder::output_backward(Tensor d_out) {
    const int L = cfg_.num_layers;
    Tensor dhf = d_out;
    if (cfg_.projects_embeddings()) {
        dhf = ar_.scratch.alloc(dtype(), {B_, T_, cfg_.hidden_size}, L, "d.final_ln");
        ar_.be.linear_backward(dhf, g(proj_out_), {}, d_out, hf_, p(proj_out_), false);
    }
    if (cfg_.final_layer_norm)
        ar_.be.layernorm_backward(grad_stream_, g(lnf_w_), g(lnf_b_), dhf, h_, p(lnf_w_), lnf_mean_, lnf_rstd_, false);
    else
        ar_.be.copy(grad_stream_, dhf);
}

void Decoder::backward(const ForwardOptions& o, int off) {
    stack_->backward(grad_stream_, o, off);
    const std::size_t start = ar_.meter.current;
    ar_.meter.reset_peak();
    embeddings_backward();
    ar_.transient[0] = ar_.meter.peak - start;
}

void Decoder::embeddings_backward() {
    // grad_stream_ holds d(embeddings.out); nothing to do when the embeddings are frozen
    if (!g(wte_) && !g(wpe_) && !(proj_in_ >= 0 && g(proj_in_))) return;
    if (g(wpe_)) ar_.be.embedding_backward(g(wpe_), grad_stream_, pos_);
    if (!cfg_.projects_embeddings()) {
        if (g(wte_)) ar_.be.embedding_backward(g(wte_), grad_stream_, ids_);
        return;
    }
    const std::int64_t Dw = cfg_.embed_width();
    Tensor dtok = ar_.scratch.alloc(dtype(), {B_, T_, Dw}, -1, "d.tokens");
    Tensor tokens = tokens_;
    if (!tokens) {  // project_in frozen: its input was not kept; gather it again
        tokens = ar_.scratch.alloc(dtype(), {B_, T_, Dw}, -1, "embeddings.tokens");
        ar_.be.embeddings_forward(tokens, ids_, {}, {}, p(wte_), {}, {});
    }
    ar_.be.linear_backward(dtok, g(proj_in_), {}, grad_stream_, tokens, p(proj_in_), false);
    if (g(wte_)) ar_.be.embedding_backward(g(wte_), dtok, ids_);
}

}  // namespace meft
