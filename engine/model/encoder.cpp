// encoder.cpp — the encoder backbone (BERT, RoBERTa): token + position + type embeddings, LayerNorm,
// dropout, then the post-LN layers. Positions and names are the family's (model/arch/).
#include "core/error.h"
#include "model/backbone.h"

namespace meft {

namespace {
constexpr int kEmbedSite = 0;  // dropout position of the embeddings (layer -1)

class Encoder final : public Backbone {
public:
    Encoder(const ModelConfig& cfg, const ModelEdit* edit, ModelArenas ar) : Backbone(cfg, ar) {
        declare(emb_, spec_.embeddings(cfg_));
        emb_.site = kEmbedSite;
        stack_ = std::make_unique<LayerStack>(cfg_, edit, ar_.ps, StackSpec{spec_.layers(), cfg_.num_layers, 0, false, false},
                                              ar_);
    }

    void upload(const HostBatch& b) override {
        check_batch(b);
        if (b.token_type_ids.size() != b.input_ids.size()) throw Error("batch arrays do not match B*T");
        for (std::size_t j = 0; j < b.token_type_ids.size(); ++j)
            if (b.token_type_ids[j] < 0 || b.token_type_ids[j] >= cfg_.type_vocab_size)
                throw Error("example " + std::to_string(b.example_offset + static_cast<int>(j / static_cast<std::size_t>(b.T))) +
                            ": token type " + std::to_string(b.token_type_ids[j]) + " outside [0, " +
                            std::to_string(cfg_.type_vocab_size) + ")");
        emb_.ids = upload_i32(b.input_ids, {b.B, b.T}, "input_ids");
        mask_ = upload_i32(b.attention_mask, {b.B, b.T}, "attention_mask");
        emb_.pos = upload_i32(spec_.positions(b, cfg_), {b.B, b.T}, "position_ids");
        emb_.types = upload_i32(b.token_type_ids, {b.B, b.T}, "token_type_ids");
    }

    Tensor forward(const HostBatch& batch, const ForwardOptions& o) override {
        Tensor x = embed(emb_, stack_->keeps_input(o), o, batch.example_offset);
        return stack_->forward(x, batch, mask_, o);
    }

    void backward(const ForwardOptions& o, int off) override {
        stack_->backward(grad_stream_, o, off);
        embed_backward(emb_, grad_stream_, o, off);
    }

    std::vector<const LayerStack*> stacks() const override { return {stack_.get()}; }

private:
    Embeddings emb_;
    std::unique_ptr<LayerStack> stack_;
};
}  // namespace

std::unique_ptr<Backbone> make_encoder(const ModelConfig& cfg, const ModelEdit* edit, ModelArenas arenas) {
    return std::make_unique<Encoder>(cfg, edit, arenas);
}

}  // namespace meft
