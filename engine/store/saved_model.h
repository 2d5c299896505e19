// saved_model.h — a trained model as a run saves it, so that the saved model is the model that
// was trained: config.json (Hugging Face keys) with a "meft" section — the method and its knobs,
// and the evaluation the run used (task, batch size, sequence length) — every tensor (the
// backbone's under Hugging Face names, the method's as the engine names them), and the tokenizer's
// files. `meft predict` rebuilds the method from the section and reproduces the run's dev metrics
// exactly; a later run may continue fine-tuning it with the same method.
#pragma once
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "model/model.h"
#include "store/experiment.h"

namespace meft {

// {"format": 1, "method": {...as the experiment wrote it...}, "evaluation": {"task": {...resolved,
// data_dir absolute...}, "batch_size": B, "max_seq_length": T}, "run": {"uuid": ..., "experiment": ...}}
nlohmann::json meft_section(const Experiment& e, const std::string& run_uuid);

// The model folder: the model's tensors and config.json (F32; F64 for a float64 run), the
// section, and the tokenizer files of the experiment's tokenizer (or model) folder.
void save_trained_model(Model& model, const Experiment& e, const std::filesystem::path& dir, const std::string& run_uuid);

// What a model folder says of itself.
struct SavedModel {
    bool has_section = false;
    MethodConfig method;             // the method to rebuild (full when there is no section)
    nlohmann::json method_json;      // as written (null without a section)
    nlohmann::json evaluation;       // null without a section
};
SavedModel read_saved_model(const std::filesystem::path& dir);

// Copies the tokenizer files `from` has (vocab.txt, vocab.json, merges.txt, tokenizer.json,
// tokenizer_config.json, special_tokens_map.json, added_tokens.json) into `to`; returns how many.
int copy_tokenizer_files(const std::filesystem::path& from, const std::filesystem::path& to);

// Whether `dir` already holds a model (config.json or weights): writing a model there needs --force.
bool holds_model(const std::filesystem::path& dir);

}  // namespace meft
