// peft_export.h — a model trained with a fine-tuning method, written the way the Hugging Face
// ecosystem loads it: Hugging Face PEFT's adapter layout (adapter_config.json +
// adapter_model.safetensors, for LoRA, (IA)3 and prefix-tuning) and, for the methods that fold
// into the backbone's own tensors, a merged plain checkpoint that transformers loads alone.
//
// The formats (tensor names and shapes, config keys, which modules PEFT's matching rules select)
// follow PEFT's source; docs/methods.md "Saved models and adapters" lists them with the files they
// were read from. Where PEFT cannot express what the engine trained (prefix-tuning on BART, a
// multiple-choice head under prefix-tuning, adapters, MEFT), the functions throw a meft::Error
// saying so rather than write an approximation.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/dtype.h"
#include "model/model.h"
#include "peft/method.h"

namespace meft {

// A tensor on the host: Hugging Face (or PEFT) name, shape, values.
struct HostTensor {
    std::string name;
    std::vector<std::int64_t> shape;
    std::vector<double> values;
};

// ---- PEFT's adapter layout ---------------------------------------------------------------------

// Whether the method has Hugging Face PEFT's adapter layout: LoRA, (IA)3, prefix-tuning.
bool has_peft_layout(const MethodConfig& m);

// What save_peft_adapter writes, in memory: adapter_config.json's object and
// adapter_model.safetensors' tensors (sorted by name).
struct PeftAdapter {
    nlohmann::json config;
    std::vector<HostTensor> tensors;
};

// The adapter for `model` (trained with LoRA, (IA)3 or prefix-tuning) exactly as PEFT's
// save_pretrained writes it for this backbone and task: PEFT's tensor names
// ("base_model.model.<HF module>.lora_A.weight", "….ia3_l", "prompt_embeddings"), every key of
// PEFT's config class (task_type SEQ_CLS for sequence classifiers, CAUSAL_LM for OPT, none plus
// auto_mapping for a BERT/RoBERTa multiple-choice head), base_model_name_or_path as given, and the
// head (and any other trained backbone module) as PEFT saves modules_to_save. Throws Error when
// the method has no PEFT layout or PEFT cannot express this model with it.
PeftAdapter peft_adapter(Model& model, const std::string& base_model_name_or_path);

// Writes peft_adapter()'s result into dir (created if needed): adapter_model.safetensors (tensors
// in file_dtype: F32 as PEFT saves a float32 model, or F64) and then adapter_config.json (2-space
// indent, sorted keys, as PEFT writes it), each through the durable writer.
void save_peft_adapter(Model& model, const std::filesystem::path& dir, const std::string& base_model_name_or_path,
                       DType file_dtype = DType::F32);

// ---- merged and base checkpoints ---------------------------------------------------------------

// Whether the method folds into the backbone's own tensors: LoRA and (IA)3 (full and BitFit
// trivially: they add nothing).
bool can_merge(const MethodConfig& m);

// The backbone's Hugging Face tensors with the method folded in: LoRA's (alpha / r)·B·A added to
// each target weight; (IA)3's key/value vectors scaling the rows of the key/value weights and
// their biases, its FFN vector scaling the columns of the FFN output weight. No added tensor.
// Throws Error when the method cannot be merged.
std::vector<HostTensor> merged_tensors(Model& model);

// The merged model as a plain Hugging Face checkpoint that transformers loads as the fine-tuned
// model: config.json (save_model_config) and model.safetensors with only merged_tensors(), in
// file_dtype (F32, or F64).
void save_merged_model(Model& model, const std::filesystem::path& dir, DType file_dtype = DType::F32);

// The backbone as it is, without the method's tensors and without merging them: the base a
// PEFT adapter of this model applies to (config.json + model.safetensors in file_dtype).
void save_base_model(Model& model, const std::filesystem::path& dir, DType file_dtype = DType::F32);

}  // namespace meft
