// model_setup.h — building the model an experiment names: a preset (random weights from a
// seed) or a Hugging Face directory (missing head initialised with a notice).
#pragma once
#include <memory>

#include "core/backend.h"
#include "model/sequence_classifier.h"
#include "store/experiment.h"

namespace meft::cli {

std::unique_ptr<SequenceClassifier> build_model(const Experiment& e, Backend& backend, int num_labels);

// Labels the task needs (1 = regression).
int task_num_labels(const Experiment& e);

// The experiment's data: the generated toy task, or a GLUE task tokenized with the backbone's
// tokenizer (backbone.tokenizer, else the model folder). Notices go to stderr.
TaskData build_task(const Experiment& e, const ModelConfig& model);

}  // namespace meft::cli
