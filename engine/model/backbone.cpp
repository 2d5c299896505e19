#include "model/backbone.h"

#include <algorithm>

#include "core/error.h"
#include "core/philox.h"

namespace meft {

std::unique_ptr<Backbone> make_encoder(const ModelConfig& cfg, const ModelEdit* edit, ModelArenas arenas);
std::unique_ptr<Backbone> make_encoder_decoder(const ModelConfig& cfg, const ModelEdit* edit, ModelArenas arenas);

std::unique_ptr<Backbone> make_sequence_backbone(const ModelConfig& cfg, const ModelEdit* edit, ModelArenas arenas) {
    switch (arch_spec(cfg.arch).shape()) {
        case StackShape::Encoder: return make_encoder(cfg, edit, arenas);
        case StackShape::EncoderDecoder: return make_encoder_decoder(cfg, edit, arenas);
        case StackShape::Decoder: break;
    }
    throw Error("model config: " + arch_name(cfg.arch) + " is a causal language model, not a sequence classifier");
}

Backbone::Backbone(const ModelConfig& cfg, ModelArenas arenas) : cfg_(cfg), spec_(arch_spec(cfg.arch)), ar_(arenas) {}

Backbone::~Backbone() = default;

Tensor Backbone::begin_backward() {
    grad_stream_ = ar_.scratch.alloc(dtype(), {B_, T_, cfg_.hidden_size}, -1, "d.stream");
    grad_tmp_ = Tensor{};
    return grad_stream_;
}

void Backbone::check_batch(const HostBatch& b) {
    const std::size_t n = static_cast<std::size_t>(b.B) * static_cast<std::size_t>(b.T);
    if (b.B <= 0 || b.T <= 0) throw Error("empty batch");
    if (b.input_ids.size() != n || b.attention_mask.size() != n) throw Error("batch arrays do not match B*T");
    const int max_tokens = cfg_.max_tokens();
    if (b.T > max_tokens)
        throw Error("sequence length " + std::to_string(b.T) + " exceeds the model's " + std::to_string(max_tokens) +
                    " positions (max_position_embeddings " + std::to_string(cfg_.max_position_embeddings) + ")");
    for (std::size_t j = 0; j < n; ++j)
        if (b.input_ids[j] < 0 || b.input_ids[j] >= cfg_.vocab_size)
            throw Error("example " + std::to_string(b.example_offset + static_cast<int>(j / static_cast<std::size_t>(b.T))) +
                        ": token id " + std::to_string(b.input_ids[j]) + " outside the vocabulary (size " +
                        std::to_string(cfg_.vocab_size) + ")");
    B_ = b.B;
    T_ = b.T;
}

Tensor Backbone::upload_i32(const std::vector<std::int32_t>& v, Shape s, const char* name) {
    Tensor t = ar_.acts.alloc(DType::I32, s, -1, name);
    ar_.be.upload(t, v.data());
    return t;
}

PhiloxKey Backbone::key(const ForwardOptions& o, int layer, int position) const {
    return philox_key(o.seed, o.step, dropout_site(layer, position));
}

// ---- the LayerNorm'd embeddings block (encoders, encoder-decoders) ----------------------------

bool Backbone::Embeddings::trains(const ParameterStore& ps) const {
    for (int i : {wte, wpe, wtt, ln_w, ln_b})
        if (i >= 0 && ps.at(i).trainable) return true;
    return false;
}

void Backbone::declare(Embeddings& e, const EmbeddingNames& n, int tokens) {
    const std::int64_t C = cfg_.hidden_size;
    const double range = cfg_.initializer_range;
    ParameterStore& ps = ar_.ps;
    // nn.Embedding(padding_idx=pad): transformers zeroes the padding row of the token table (and of
    // a position table that has one).
    e.wte = tokens >= 0 ? tokens : ps.declare(n.tokens, {cfg_.vocab_size, C}, Init::normal(range, cfg_.pad_token_id));
    e.wpe = ps.declare(n.positions, {spec_.position_rows(cfg_), C}, Init::normal(range, spec_.position_padding_row(cfg_)));
    if (!n.types.empty()) e.wtt = ps.declare(n.types, {cfg_.type_vocab_size, C}, Init::normal(range));
    e.ln_w = ps.declare(n.layer_norm + ".weight", {C}, Init::ones());
    e.ln_b = ps.declare(n.layer_norm + ".bias", {C}, Init::zeros());
}

Tensor Backbone::embed(Embeddings& e, bool keep_output, const ForwardOptions& o, int off) {
    const std::int64_t C = cfg_.hidden_size;
    const DType dt = dtype();
    // Frozen embeddings need nothing for backward; under MEFT their output is copied into the
    // streams. What backward does not read goes to scratch (reset before backward), not saved.
    Arena& E = e.trains(ar_.ps) ? ar_.acts : ar_.scratch;
    auto name = [&](const char* what) { return std::string(e.name) + what; };
    e.sum = E.alloc(dt, {B_, T_, C}, -1, name("sum"));
    e.mean = E.alloc(dt, {B_ * T_}, -1, name("ln_mean"));
    e.rstd = E.alloc(dt, {B_ * T_}, -1, name("ln_rstd"));
    Tensor x = (keep_output ? ar_.acts : ar_.scratch).alloc(dt, {B_, T_, C}, -1, name("out"));
    ar_.be.embeddings_forward(e.sum, e.ids, e.pos, e.types, p(e.wte), p(e.wpe), e.wtt >= 0 ? p(e.wtt) : Tensor{});
    ar_.be.layernorm_forward(x, e.mean, e.rstd, e.sum, p(e.ln_w), p(e.ln_b), cfg_.layer_norm_eps);
    ar_.be.dropout_forward(x, x, drop(o, cfg_.hidden_dropout), key(o, -1, e.site), off);
    return x;
}

void Backbone::embed_backward(const Embeddings& e, Tensor d, const ForwardOptions& o, int off) {
    // d holds d(embeddings.out); nothing to do when the embeddings are frozen
    if (!g(e.wte) && !g(e.wpe) && !(e.wtt >= 0 && g(e.wtt)) && !g(e.ln_w) && !g(e.ln_b)) return;
    const std::size_t start = ar_.meter.current;
    ar_.meter.reset_peak();
    if (!grad_tmp_) grad_tmp_ = ar_.scratch.alloc(dtype(), {B_, T_, cfg_.hidden_size}, -1, "d.tmp");
    ar_.be.dropout_backward(d, d, drop(o, cfg_.hidden_dropout), key(o, -1, e.site), off);
    ar_.be.layernorm_backward(grad_tmp_, g(e.ln_w), g(e.ln_b), d, e.sum, p(e.ln_w), e.mean, e.rstd, false);
    if (g(e.wte)) ar_.be.embedding_backward(g(e.wte), grad_tmp_, e.ids);
    if (g(e.wpe)) ar_.be.embedding_backward(g(e.wpe), grad_tmp_, e.pos);
    if (e.wtt >= 0 && g(e.wtt)) ar_.be.embedding_backward(g(e.wtt), grad_tmp_, e.types);
    ar_.transient[0] = std::max(ar_.transient[0], ar_.meter.peak - start);
}

}  // namespace meft
