// checkpoint.h — load and save a model (BERT / RoBERTa classifier, OPT causal LM) in the Hugging
// Face directory layout (config.json + model.safetensors or a sharded index), with HF tensor names.
#pragma once
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "model/causal_lm.h"
#include "model/masked_lm.h"
#include "model/sequence_classifier.h"

namespace meft {

struct LoadReport {
    std::vector<std::string> initialised;  // head tensors absent from the checkpoint (or of another size), drawn fresh
    std::vector<std::string> initialised_how;  // for each, why and how: "not in the checkpoint; initialised zeros"
    std::vector<std::string> ignored;      // tensors in the checkpoint the model does not use
    int method_initialised = 0;            // parameters a fine-tuning method adds, drawn from their Init
    std::vector<std::string> notices() const;  // human-readable lines for the above
};

struct LoadOptions {
    std::shared_ptr<const ModelEdit> method;  // the fine-tuning method applied on top of the backbone (null: full)
    int num_labels = 0;            // > 0: override config.json's labels (a fresh head of this size)
    std::uint64_t head_seed = 0;   // seed for a missing head
    std::optional<double> dropout{};  // override every dropout rate (ModelConfig::set_dropout)
    // Set: the head the task needs, whatever config.json says — true: a multiple-choice head (one
    // score per pair; num_labels is ignored), false: sequence classification.
    std::optional<bool> multiple_choice{};
    // Set: true: the masked-LM head (pre-training; encoders), false: a task head (a masked-LM
    // checkpoint fine-tuned for a task drops its MLM head). Unset: as config.json says.
    std::optional<bool> masked_lm{};
    AttentionKind attention = AttentionKind::Standard;  // how the model's attention runs (not in the file)
};

// The model the config's architecture calls for: a SequenceClassifier for bert / roberta / bart (a
// MaskedLM when cfg.masked_lm), a CausalLM for opt. Parameters are declared, not allocated.
std::unique_ptr<Model> make_model(const ModelConfig& cfg, Backend& backend, DType dtype,
                                  std::shared_ptr<const ModelEdit> method = nullptr);

std::unique_ptr<Model> load_model(const std::filesystem::path& dir, Backend& backend, DType dtype,
                                  const LoadOptions& opts = {}, LoadReport* report = nullptr);
// load_model for a directory that must hold a classifier (an OPT checkpoint is an Error; a masked
// LM's gets a classification head unless opts.masked_lm says otherwise — then it is an Error).
std::unique_ptr<SequenceClassifier> load_classifier(const std::filesystem::path& dir, Backend& backend, DType dtype,
                                                    const LoadOptions& opts = {}, LoadReport* report = nullptr);

// Writes config.json and model.safetensors (F32, or F16/BF16 when asked); tensors keep HF names.
// OPT's tied LM head is not written (as transformers saves OPTForCausalLM).
void save_model(Model& model, const std::filesystem::path& dir, DType file_dtype = DType::F32,
                std::size_t max_shard_bytes = 0);

}  // namespace meft
