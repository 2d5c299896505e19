// encoder_decoder.cpp — the encoder-decoder backbone (BART): one token table for both sides; the
// encoder reads the input, the decoder the input shifted right (decoder_start_token_id first); each
// side adds its positions, applies its LayerNorm and dropout; the decoder's layers cross-attend to
// the encoder's output. The sequence head reads the decoder's state at each example's last eos.
#include <algorithm>

#include "core/error.h"
#include "model/backbone.h"

namespace meft {

namespace {
constexpr int kEncoderSite = 0, kDecoderSite = 1;  // dropout positions of the embeddings (layer -1)

class EncoderDecoder final : public Backbone {
public:
    EncoderDecoder(const ModelConfig& cfg, const ModelEdit* edit, ModelArenas ar) : Backbone(cfg, ar) {
        declare(enc_, spec_.embeddings(cfg_));
        declare(dec_, spec_.decoder_embeddings(cfg_), enc_.wte);  // the shared token table
        enc_.site = kEncoderSite;
        dec_.site = kDecoderSite;
        dec_.name = "decoder_embeddings.";
        encoder_ = std::make_unique<LayerStack>(cfg_, edit, ar_.ps,
                                                StackSpec{spec_.layers(), cfg_.num_layers, 0, false, false}, ar_);
        decoder_ = std::make_unique<LayerStack>(
            cfg_, edit, ar_.ps,
            StackSpec{spec_.decoder_layers(), cfg_.decoder_layers, cfg_.num_layers, true, true, "decoder_prefix_encoder."},
            ar_);
    }

    void upload(const HostBatch& b) override {
        check_batch(b);
        // The decoder reads the input shifted right (transformers' shift_tokens_right); the head reads
        // each example's last eos position (transformers requires equally many eos per example and
        // takes the last: the same position whenever that holds).
        const std::size_t n = b.input_ids.size();
        std::vector<std::int32_t> dec_ids(n), eos_rows;
        for (int i = 0; i < b.B; ++i) {
            const std::size_t row = static_cast<std::size_t>(i) * b.T;
            dec_ids[row] = cfg_.decoder_start_token_id;
            std::copy_n(b.input_ids.begin() + std::ptrdiff_t(row), b.T - 1, dec_ids.begin() + std::ptrdiff_t(row) + 1);
            int last = -1;
            for (int t = 0; t < b.T; ++t)
                if (b.input_ids[row + t] == cfg_.eos_token_id && b.attention_mask[row + t] != 0) last = t;
            if (last < 0)
                throw Error("example " + std::to_string(b.example_offset + i) + ": no eos token (id " +
                            std::to_string(cfg_.eos_token_id) +
                            "): BART's classification head reads the last one (was the sequence cut without it?)");
            eos_rows.push_back(static_cast<std::int32_t>(row) + last);
        }
        enc_.ids = upload_i32(b.input_ids, {b.B, b.T}, "input_ids");
        mask_ = upload_i32(b.attention_mask, {b.B, b.T}, "attention_mask");
        enc_.pos = upload_i32(spec_.positions(b, cfg_), {b.B, b.T}, "position_ids");
        dec_.ids = upload_i32(dec_ids, {b.B, b.T}, "decoder_input_ids");
        dec_.pos = enc_.pos;
        eos_rows_ = upload_i32(eos_rows, {b.B}, "eos_positions");
    }

    Tensor forward(const HostBatch& batch, const ForwardOptions& o) override {
        const int off = batch.example_offset;
        Tensor x = encoder_->forward(embed(enc_, encoder_->keeps_input(o), o, off), batch, mask_, o);
        // The decoder's cross-attention reads the encoder's output until backward; a runner's (MEFT's)
        // merged output lives in scratch, so it is kept as a copy then.
        memory_ = x;
        if (encoder_->runner() && !o.backbone_only) {
            memory_ = ar_.acts.alloc(dtype(), x.shape, cfg_.num_layers - 1, "encoder.out");
            ar_.be.copy(memory_, x);
        }
        decoder_->set_memory(memory_, mask_);
        Tensor y = embed(dec_, decoder_->keeps_input(o), o, off);
        return decoder_->forward(y, batch, mask_, o);
    }

    void backward(const ForwardOptions& o, int off) override {
        // The decoder first: it adds d(memory) for the encoder.
        Tensor d_encoder = ar_.scratch.zeros(dtype(), {B_, T_, cfg_.hidden_size}, -1, "d.memory");
        decoder_->set_memory_grad(d_encoder);
        decoder_->backward(grad_stream_, o, off);
        embed_backward(dec_, grad_stream_, o, off);
        encoder_->backward(d_encoder, o, off);
        embed_backward(enc_, d_encoder, o, off);
    }

    Tensor head_rows() const override { return eos_rows_; }
    std::vector<const LayerStack*> stacks() const override { return {encoder_.get(), decoder_.get()}; }

private:
    Embeddings enc_, dec_;
    std::unique_ptr<LayerStack> encoder_, decoder_;
    Tensor eos_rows_, memory_;
};
}  // namespace

std::unique_ptr<Backbone> make_encoder_decoder(const ModelConfig& cfg, const ModelEdit* edit, ModelArenas arenas) {
    return std::make_unique<EncoderDecoder>(cfg, edit, arenas);
}

}  // namespace meft
