// backbone.h — a model's trunk: embeddings and transformer stack(s), token ids in, hidden states
// out. One per stack shape (model/arch/arch.h):
//
//   Encoder         (encoder.cpp)         embeddings (tokens + positions [+ types], LN, dropout)
//                                         -> the layers                              BERT, RoBERTa
//   EncoderDecoder  (encoder_decoder.cpp) the encoder over the input; the decoder over it shifted
//                                         right, cross-attending to the encoder's output    BART
//   Decoder         (decoder.h)           tokens [project_in] + positions -> causal layers
//                                         -> final LN [project_out]                           OPT
//
// The heads compose with a backbone: SequenceClassifier (classification, regression, multiple
// choice) with an encoder or an encoder-decoder, CausalLM with a decoder. Names, positions and
// special tokens come from the family's ArchSpec; no backbone names a family.
//
// A step: upload() the batch (before the head uploads its own inputs), forward(); then for
// backward begin_backward() (d(stream), [B,T,C] in scratch), the head writes d(output) there (a
// decoder's output side runs through output_backward()), and backward() runs the stacks and
// embeddings. Activation tags: -1 the embeddings, 0..total_layers()-1 the layers.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "model/arch/arch.h"
#include "model/layer_stack.h"
#include "model/model.h"

namespace meft {

class Backbone {
public:
    Backbone(const ModelConfig& cfg, ModelArenas arenas);
    virtual ~Backbone();
    Backbone(const Backbone&) = delete;
    Backbone& operator=(const Backbone&) = delete;

    // Checks the batch (errors name the example) and uploads what the embeddings read.
    virtual void upload(const HostBatch& batch) = 0;
    // The hidden states the head reads, [B,T,C] (a decoder's: after its output side).
    virtual Tensor forward(const HostBatch& batch, const ForwardOptions& o) = 0;
    // Allocates d(stream) [B,T,C] in scratch; the head (a decoder's output_backward) writes it in full.
    Tensor begin_backward();
    // d(stream) through the layers and embeddings; parameter gradients accumulate.
    virtual void backward(const ForwardOptions& o, int example_offset) = 0;

    Tensor key_mask() const { return mask_; }
    // The row (into [B*T]) of each example the sequence head reads, [B] I32; empty: the first token.
    virtual Tensor head_rows() const { return {}; }
    // The stacks, input side first.
    virtual std::vector<const LayerStack*> stacks() const = 0;

protected:
    // One LayerNorm'd embeddings block: token (+ position) (+ type) rows, LayerNorm, dropout.
    struct Embeddings {
        int wte = -1, wpe = -1, wtt = -1, ln_w = -1, ln_b = -1;
        int site = 0;                    // dropout position (layer -1)
        const char* name = "embeddings.";  // activation names
        Tensor ids, pos, types;          // the current step's inputs
        Tensor sum, mean, rstd;          // kept for backward when the block trains
        bool trains(const ParameterStore& ps) const;
    };
    // Declares the block's tensors by `names` (the token table unless `tokens` is one already declared).
    void declare(Embeddings& e, const EmbeddingNames& names, int tokens = -1);
    Tensor embed(Embeddings& e, bool keep_output, const ForwardOptions& o, int off);
    void embed_backward(const Embeddings& e, Tensor d, const ForwardOptions& o, int off);

    // Errors naming the example for a batch the model cannot read: empty, arrays that are not
    // B*T long, more than max_tokens positions, token ids outside the vocabulary. Sets B_, T_.
    void check_batch(const HostBatch& b);
    Tensor upload_i32(const std::vector<std::int32_t>& v, Shape s, const char* name);  // into the activations (tag -1)
    PhiloxKey key(const ForwardOptions& o, int layer, int position) const;
    static double drop(const ForwardOptions& o, double p) { return o.train ? p : 0.0; }
    Tensor p(int i) const { return ar_.ps.value(i); }
    Tensor g(int i) const { return ar_.ps.grad(i); }
    DType dtype() const { return ar_.ps.dtype(); }

    ModelConfig cfg_;
    const ArchSpec& spec_;
    ModelArenas ar_;
    int B_ = 0, T_ = 0;
    Tensor mask_, grad_stream_, grad_tmp_;  // grad_tmp_: one [B,T,C] temporary for embeddings' backward
};

// The backbone a sequence head reads: an encoder or an encoder-decoder, as the family's shape says.
// Declares its parameters (with the edit's) in the store.
std::unique_ptr<Backbone> make_sequence_backbone(const ModelConfig& cfg, const ModelEdit* edit, ModelArenas arenas);

}  // namespace meft
