// run_setup.h — building the model an experiment names: a preset (random weights from a
// seed) or a Hugging Face directory (missing head initialised with a notice).
#pragma once
#include <functional>
#include <memory>
#include <string>

#include "core/backend.h"
#include "model/model.h"
#include "store/experiment.h"

namespace meft {

// `notice` receives what the loader wants the user to know (e.g. a fresh head); default: stderr.
std::unique_ptr<Model> build_model(const Experiment& e, Backend& backend, int num_labels,
                                   const std::function<void(const std::string&)>& notice = {});

// The model's configuration without its weights (for plans): the preset's, or the folder's config.json.
ModelConfig experiment_model_config(const Experiment& e);

// Labels the task needs (1 = regression).
int task_num_labels(const Experiment& e);

// The experiment's data: the generated toy task, a GLUE task, or a QA task as causal LM (opt),
// tokenized with the backbone's tokenizer (backbone.tokenizer, else the model folder). Notices go
// to stderr.
TaskData build_task(const Experiment& e, const ModelConfig& model,
                    const std::function<void(const std::string&)>& notice = {});

}  // namespace meft
