// roberta.cpp — RoBERTa (transformers' RobertaModel with RobertaForSequenceClassification /
// RobertaForMultipleChoice): BERT's encoder with other defaults, positions that count real tokens
// after the padding id, and a dense -> tanh -> out_proj head over <s> (the pooler only for
// multiple choice).
#include "model/arch/bert.h"
#include "core/error.h"

namespace meft {

namespace {
class RobertaSpec final : public BertSpec {
public:
    Arch arch() const override { return Arch::Roberta; }

    void validate(const ModelConfig& c, const std::string& where) const override {
        BertSpec::validate(c, where);
        // The padding row is also a row of the position table (nn.Embedding padding_idx).
        if (c.pad_token_id >= c.max_position_embeddings)
            throw Error(where + ": pad_token_id must be below max_position_embeddings for roberta");
    }

    // Positions count real tokens after padding_idx: the first real token sits at pad + 1.
    int first_position(const ModelConfig& c) const override { return c.pad_token_id + 1; }
    int position_padding_row(const ModelConfig& c) const override { return c.pad_token_id; }
    std::vector<std::int32_t> positions(const HostBatch& b, const ModelConfig& c) const override {
        std::vector<std::int32_t> pos(static_cast<std::size_t>(b.B) * static_cast<std::size_t>(b.T));
        for (int i = 0; i < b.B; ++i) {
            int running = 0;
            for (int t = 0; t < b.T; ++t) {
                const std::size_t j = static_cast<std::size_t>(i) * b.T + t;
                const bool real = b.input_ids[j] != c.pad_token_id;
                running += real;
                pos[j] = real ? c.pad_token_id + running : c.pad_token_id;
            }
        }
        return pos;
    }
    std::string position_note(const ModelConfig& c) const override {
        return ", less RoBERTa's padding offset " + std::to_string(first_position(c));
    }

    int begin_token(const ModelConfig&) const override { return 0; }  // <s>
    int end_token(const ModelConfig&) const override { return 2; }    // </s>
    int plain_token(const ModelConfig& c) const override { return c.pad_token_id + 1; }

    // RobertaForMultipleChoice drops with hidden_dropout_prob; RobertaForSequenceClassification
    // with classifier_dropout when set.
    double head_dropout(const ModelConfig& c) const override {
        return c.multiple_choice ? c.hidden_dropout : BertSpec::head_dropout(c);
    }

protected:
    ModelConfig json_defaults() const override {  // transformers' RobertaConfig differs from BertConfig here
        ModelConfig c = BertSpec::json_defaults();
        c.pad_token_id = 1;
        c.layer_norm_eps = 1e-5;
        return c;
    }
    bool pooler_head(const ModelConfig& c) const override { return c.multiple_choice; }
    MlmHeadNames mlm_head() const override { return {"lm_head.dense", "lm_head.layer_norm", "lm_head.bias", "lm_head.decoder"}; }
    bool is_tied_copy(const std::string& name) const override {
        return name == "lm_head.decoder.weight" || name == "lm_head.decoder.bias";
    }
};
}  // namespace

const ArchSpec& roberta_spec() {
    static const RobertaSpec spec;
    return spec;
}

}  // namespace meft
