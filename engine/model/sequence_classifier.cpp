// sequence_classifier.cpp — forward and backward of BERT / RoBERTa / BART sequence classification.
// Forward and backward are flat scripts over the ops in core/backend.h; each saved activation
// is allocated from the activation arena under its (layer, name) tag.
#include "model/sequence_classifier.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/philox.h"

namespace meft {

namespace {
// Dropout positions of the embeddings (layer -1) and the head (layer L); the layers' positions
// are in transformer_layer.cpp.
enum Site { kEmbed = 0, kDecoderEmbed = 1, kHeadFirst = 0, kHeadSecond = 1 };
// BART's learned positions start at 2 (HF BartLearnedPositionalEmbedding offset).
constexpr int kBartPositionOffset = 2;
}  // namespace

SequenceClassifier::SequenceClassifier(ModelConfig config, Backend& backend, DType dtype,
                                       std::shared_ptr<const ModelEdit> edit)
    : Model(std::move(config), backend, dtype, std::move(edit)) {
    if (is_decoder_only(config_.arch))
        throw Error("model config: " + arch_name(config_.arch) + " is a causal language model, not a sequence classifier");
    declare_parameters();
    apply_method_trainability();
}

std::string SequenceClassifier::prefix() const { return bart() ? "model." : arch_name(config_.arch) + "."; }

bool SequenceClassifier::Embeddings::trains(const ParameterStore& ps) const {
    for (int i : {wte, wpe, wtt, ln_w, ln_b})
        if (i >= 0 && ps.at(i).trainable) return true;
    return false;
}

void SequenceClassifier::declare_parameters() {
    const std::int64_t C = config_.hidden_size, K = config_.num_labels();
    const Init w_init = Init::normal(config_.initializer_range);
    const int pad = config_.pad_token_id;
    if (bart()) {
        // model.shared is the token table of both sides (HF ties encoder/decoder.embed_tokens to
        // it); the position tables have max_position_embeddings + 2 rows and no padding row.
        enc_.wte = dec_.wte = params_.declare("model.shared.weight", {config_.vocab_size, C},
                                              Init::normal(config_.initializer_range, pad));
        for (auto [e, side] : {std::pair{&enc_, "model.encoder."}, std::pair{&dec_, "model.decoder."}}) {
            const std::string s = side;
            e->wpe = params_.declare(s + "embed_positions.weight", {config_.max_position_embeddings + kBartPositionOffset, C},
                                     w_init);
            e->ln_w = params_.declare(s + "layernorm_embedding.weight", {C}, Init::ones());
            e->ln_b = params_.declare(s + "layernorm_embedding.bias", {C}, Init::zeros());
        }
        enc_.site = kEmbed;
        dec_.site = kDecoderEmbed;
        stack_ = std::make_unique<LayerStack>(config_, edit_.get(), params_,
                                              StackSpec{"model.encoder.layers.", config_.num_layers, 0, false, false},
                                              arenas());
        decoder_ = std::make_unique<LayerStack>(
            config_, edit_.get(), params_,
            StackSpec{"model.decoder.layers.", config_.decoder_layers, config_.num_layers, true, true, "decoder_prefix_encoder."},
            arenas());
        dense_w_ = params_.declare("classification_head.dense.weight", {C, C}, w_init);
        dense_b_ = params_.declare("classification_head.dense.bias", {C}, Init::zeros());
        cls_w_ = params_.declare("classification_head.out_proj.weight", {K, C}, w_init);
        cls_b_ = params_.declare("classification_head.out_proj.bias", {K}, Init::zeros());
        return;
    }
    const std::string e = prefix() + "embeddings.";
    const bool roberta = config_.arch == Arch::Roberta;
    // nn.Embedding(padding_idx=pad): HF zeroes the padding row of word (and RoBERTa position) tables.
    enc_.wte = params_.declare(e + "word_embeddings.weight", {config_.vocab_size, C}, Init::normal(config_.initializer_range, pad));
    enc_.wpe = params_.declare(e + "position_embeddings.weight", {config_.max_position_embeddings, C},
                               Init::normal(config_.initializer_range, roberta ? pad : -1));
    enc_.wtt = params_.declare(e + "token_type_embeddings.weight", {config_.type_vocab_size, C}, w_init);
    enc_.ln_w = params_.declare(e + "LayerNorm.weight", {C}, Init::ones());
    enc_.ln_b = params_.declare(e + "LayerNorm.bias", {C}, Init::zeros());
    stack_ = std::make_unique<LayerStack>(config_, edit_.get(), params_,
                                          StackSpec{prefix() + "encoder.layer.", config_.num_layers, 0, false, false},
                                          arenas());
    if (config_.pooler_head()) {  // BERT; RoBERTa's multiple-choice head reads its pooler too
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
    return name.rfind("classifier.", 0) == 0 || name.rfind("classification_head.", 0) == 0 ||
           (!bart() && name.rfind(prefix() + "pooler.", 0) == 0);
}

// ---- inputs -----------------------------------------------------------------------------------

void SequenceClassifier::upload_inputs(const HostBatch& b) {
    const bool roberta = config_.arch == Arch::Roberta;
    check_batch(b, config_.max_tokens());
    const std::size_t n = static_cast<std::size_t>(b.B) * static_cast<std::size_t>(b.T);
    if (!bart() && b.token_type_ids.size() != n) throw Error("batch arrays do not match B*T");
    std::vector<std::int32_t> pos(n), dec_ids, eos_rows;
    for (int i = 0; i < b.B; ++i) {
        int running = 0;
        for (int t = 0; t < b.T; ++t) {
            const std::size_t j = static_cast<std::size_t>(i) * b.T + t;
            const std::int32_t id = b.input_ids[j];
            if (bart()) {  // positions do not skip padding
                pos[j] = t + kBartPositionOffset;
                continue;
            }
            if (b.token_type_ids[j] < 0 || b.token_type_ids[j] >= config_.type_vocab_size)
                throw Error("example " + std::to_string(b.example_offset + i) + ": token type " +
                            std::to_string(b.token_type_ids[j]) + " outside [0, " +
                            std::to_string(config_.type_vocab_size) + ")");
            if (roberta) {  // positions count real tokens after padding_idx
                const bool real = id != config_.pad_token_id;
                running += real;
                pos[j] = real ? config_.pad_token_id + running : config_.pad_token_id;
            } else {
                pos[j] = t;
            }
        }
    }
    enc_.ids = upload_i32(b.input_ids, {b.B, b.T}, "input_ids");
    mask_ = upload_i32(b.attention_mask, {b.B, b.T}, "attention_mask");
    enc_.pos = upload_i32(pos, {b.B, b.T}, "position_ids");
    if (!bart()) {
        enc_.types = upload_i32(b.token_type_ids, {b.B, b.T}, "token_type_ids");
        return;
    }
    // BART: the decoder reads the input shifted right (transformers' shift_tokens_right); the head
    // reads each example's last eos position (transformers requires equally many eos per example
    // and takes the last: the same position whenever that holds).
    dec_ids.resize(n);
    for (int i = 0; i < b.B; ++i) {
        const std::size_t row = static_cast<std::size_t>(i) * b.T;
        dec_ids[row] = config_.decoder_start_token_id;
        std::copy_n(b.input_ids.begin() + std::ptrdiff_t(row), b.T - 1, dec_ids.begin() + std::ptrdiff_t(row) + 1);
        int last = -1;
        for (int t = 0; t < b.T; ++t)
            if (b.input_ids[row + t] == config_.eos_token_id && b.attention_mask[row + t] != 0) last = t;
        if (last < 0)
            throw Error("example " + std::to_string(b.example_offset + i) + ": no eos token (id " +
                        std::to_string(config_.eos_token_id) +
                        "): BART's classification head reads the last one (was the sequence cut without it?)");
        eos_rows.push_back(static_cast<std::int32_t>(row) + last);
    }
    dec_.ids = upload_i32(dec_ids, {b.B, b.T}, "decoder_input_ids");
    dec_.pos = enc_.pos;
    eos_rows_ = upload_i32(eos_rows, {b.B}, "eos_positions");
}

// ---- forward ----------------------------------------------------------------------------------

Tensor SequenceClassifier::embed(Embeddings& e, bool keep_output, const ForwardOptions& o, int off) {
    const std::int64_t C = config_.hidden_size;
    const DType dt = dtype();
    // Frozen embeddings need nothing for backward; under MEFT their output is copied into the
    // streams. What backward does not read goes to scratch (reset before backward), not saved.
    Arena& E = e.trains(params_) ? *acts_ : *scratch_;
    const char* side = &e == &dec_ ? "decoder_embeddings." : "embeddings.";
    auto name = [&](const char* what) { return std::string(side) + what; };
    e.sum = E.alloc(dt, {B_, T_, C}, -1, name("sum"));
    e.mean = E.alloc(dt, {B_ * T_}, -1, name("ln_mean"));
    e.rstd = E.alloc(dt, {B_ * T_}, -1, name("ln_rstd"));
    Tensor x = (keep_output ? *acts_ : *scratch_).alloc(dt, {B_, T_, C}, -1, name("out"));
    backend_.embeddings_forward(e.sum, e.ids, e.pos, e.types, p(e.wte), p(e.wpe), e.wtt >= 0 ? p(e.wtt) : Tensor{});
    backend_.layernorm_forward(x, e.mean, e.rstd, e.sum, p(e.ln_w), p(e.ln_b), config_.layer_norm_eps);
    backend_.dropout_forward(x, x, drop(o, config_.hidden_dropout), key(o, -1, e.site), off);
    return x;
}

Tensor SequenceClassifier::forward(const HostBatch& batch, const ForwardOptions& o) {
    begin_forward();
    B_ = batch.B;
    T_ = batch.T;
    upload_inputs(batch);
    const int off = batch.example_offset;

    Tensor x = embed(enc_, stack_->keeps_input(o), o, off);
    x = stack_->forward(x, batch, mask_, o);
    if (bart()) {
        // The decoder's cross-attention reads the encoder's output until backward; MEFT's merged
        // output lives in scratch, so it is kept as a copy then.
        memory_ = x;
        if (stack_->runner() && !o.backbone_only) {
            memory_ = acts_->alloc(dtype(), x.shape, config_.num_layers - 1, "encoder.out");
            backend_.copy(memory_, x);
        }
        decoder_->set_memory(memory_, mask_);
        Tensor y = embed(dec_, decoder_->keeps_input(o), o, off);
        x = decoder_->forward(y, batch, mask_, o);
    }
    last_hidden_ = x;
    head_forward(x, o, off);
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
    if (bart())  // the last eos row of each example (an embedding lookup into the hidden states)
        backend_.embeddings_forward(a.cls, eos_rows_, {}, {}, h.view({std::int64_t{B_} * T_, C}), {}, {});
    else
        backend_.first_token_forward(a.cls, h);
    if (config_.pooler_head()) {  // pooler: tanh(W h0 + b); dropout; classifier
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
    std::size_t start = meter_.current;
    meter_.reset_peak();
    const std::int64_t C = config_.hidden_size;
    grad_stream_ = scratch_->alloc(dt, {B_, T_, C}, -1, "d.stream");
    grad_tmp_ = Tensor{};

    const int off = batch.example_offset;
    head_backward(dlogits, o, off);
    transient_[static_cast<std::size_t>(L + 1)] = meter_.peak - start;
    Tensor d_encoder = grad_stream_;
    if (bart()) {  // decoder first: it adds d(memory) for the encoder
        d_encoder = scratch_->zeros(dt, {B_, T_, C}, -1, "d.memory");
        decoder_->set_memory_grad(d_encoder);
        decoder_->backward(grad_stream_, o, off);
        embed_backward(dec_, grad_stream_, o, off);
    }
    stack_->backward(d_encoder, o, off);
    embed_backward(enc_, d_encoder, o, off);
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

void SequenceClassifier::embed_backward(const Embeddings& e, Tensor d, const ForwardOptions& o, int off) {
    // d holds d(embeddings.out); nothing to do when the embeddings are frozen
    if (!g(e.wte) && !g(e.wpe) && !(e.wtt >= 0 && g(e.wtt)) && !g(e.ln_w) && !g(e.ln_b)) return;
    const std::size_t start = meter_.current;
    meter_.reset_peak();
    if (!grad_tmp_) grad_tmp_ = scratch_->alloc(dtype(), {B_, T_, config_.hidden_size}, -1, "d.tmp");
    backend_.dropout_backward(d, d, drop(o, config_.hidden_dropout), key(o, -1, e.site), off);
    backend_.layernorm_backward(grad_tmp_, g(e.ln_w), g(e.ln_b), d, e.sum, p(e.ln_w), e.mean, e.rstd, false);
    if (g(e.wte)) backend_.embedding_backward(g(e.wte), grad_tmp_, e.ids);
    if (g(e.wpe)) backend_.embedding_backward(g(e.wpe), grad_tmp_, e.pos);
    if (e.wtt >= 0 && g(e.wtt)) backend_.embedding_backward(g(e.wtt), grad_tmp_, e.types);
    transient_[0] = std::max(transient_[0], meter_.peak - start);
}

void SequenceClassifier::head_backward(Tensor dlogits, const ForwardOptions& o, int off) {
    const std::int64_t C = config_.hidden_size;
    const int L = config_.total_layers();
    const double pd = drop(o, config_.head_dropout());
    HeadActs& a = head_;
    Tensor d1 = scratch_->alloc(dtype(), {B_, C}, L, "d.head1");
    Tensor d2 = scratch_->alloc(dtype(), {B_, C}, L, "d.head2");
    backend_.linear_backward(d1, g(cls_w_), g(cls_b_), dlogits, a.c, p(cls_w_), false);
    backend_.dropout_backward(d1, d1, pd, key(o, L, config_.pooler_head() ? kHeadFirst : kHeadSecond), off);
    backend_.tanh_backward(d2, d1, a.b);
    if (config_.pooler_head()) {
        backend_.linear_backward(d1, g(pool_w_), g(pool_b_), d2, a.cls, p(pool_w_), false);
    } else {
        backend_.linear_backward(d1, g(dense_w_), g(dense_b_), d2, a.a, p(dense_w_), false);
        backend_.dropout_backward(d1, d1, pd, key(o, L, kHeadFirst), off);
    }
    if (bart()) {  // scatter back to the eos rows
        backend_.fill(grad_stream_, 0.0);
        backend_.embedding_backward(grad_stream_.view({std::int64_t{B_} * T_, C}), d1, eos_rows_);
    } else {
        backend_.first_token_backward(grad_stream_, d1, false);
    }
}

}  // namespace meft
