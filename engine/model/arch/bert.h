// bert.h — the BERT family's spec, which RoBERTa (roberta.cpp) extends: the same encoder and
// config.json keys, other defaults, positions and head.
#pragma once
#include "model/arch/arch.h"

namespace meft {

class BertSpec : public ArchSpec {
public:
    Arch arch() const override { return Arch::Bert; }
    StackShape shape() const override { return StackShape::Encoder; }

    std::vector<std::string> presets() const override { return {"toy", "tiny", "mini", "base", "large"}; }
    ModelConfig preset(const std::string& name) const override;
    ModelConfig from_json(const nlohmann::json& j, const std::string& where) const override;
    nlohmann::json to_json(const ModelConfig& c) const override;
    void validate(const ModelConfig& c, const std::string& where) const override;

    std::string prefix() const override { return name() + "."; }
    const LayerNames& layer_names() const override;
    EmbeddingNames embeddings(const ModelConfig& c) const override;
    std::string layers() const override { return prefix() + "encoder.layer."; }
    HeadNames head(const ModelConfig& c) const override;
    MlmHeadNames mlm_head() const override {
        return {"cls.predictions.transform.dense", "cls.predictions.transform.LayerNorm", "cls.predictions.bias",
                "cls.predictions.decoder"};
    }
    bool is_tied_copy(const std::string& name) const override {
        return name == "cls.predictions.decoder.weight" || name == "cls.predictions.decoder.bias";
    }

    int position_rows(const ModelConfig& c) const override { return c.max_position_embeddings; }
    int first_position(const ModelConfig&) const override { return 0; }
    std::vector<std::int32_t> positions(const HostBatch& b, const ModelConfig& c) const override;

    int begin_token(const ModelConfig&) const override { return 101; }  // [CLS] in BERT's vocabulary
    int end_token(const ModelConfig&) const override { return 102; }    // [SEP]
    int plain_token(const ModelConfig&) const override { return 1; }    // [unused0]

protected:
    // The defaults of keys a config.json leaves out (transformers' BertConfig / RobertaConfig).
    virtual ModelConfig json_defaults() const;
    // The classification head reads the pooler (BERT; RoBERTa's multiple-choice head).
    virtual bool pooler_head(const ModelConfig&) const { return true; }
};

}  // namespace meft
