// run_setup.h — building the model an experiment names: a preset (random weights from a
// seed) or a Hugging Face directory (missing head initialised with a notice).
#pragma once
#include <functional>
#include <memory>
#include <string>

#include "core/backend.h"
#include "model/model.h"
#include "store/experiment.h"
#include "train/memory_timeline.h"

namespace meft {

// `notice` receives what the loader wants the user to know (e.g. a fresh head); default: stderr.
std::unique_ptr<Model> build_model(const Experiment& e, Backend& backend, int num_labels,
                                   const std::function<void(const std::string&)>& notice = {});

// The model's configuration without its weights (for plans): the preset's, or the folder's config.json.
ModelConfig experiment_model_config(const Experiment& e);

// Labels the task needs (1 = regression, or one score per pair for a multiple-choice head).
int task_num_labels(const Experiment& e);
// Whether the model needs a multiple-choice head: a QA task on an encoder or BART (opt trains QA
// as causal LM).
bool task_multiple_choice(const Experiment& e);
// Rows one training unit can take: a multiple-choice question's pairs (at most; ARC: 5), else 1.
// Memory plans of a step multiply the batch by it.
int rows_per_unit(const Experiment& e);

// One training step's memory timeline (train/memory_timeline.h) at the shape the run's plan uses:
// batch_size x rows_per_unit rows of max_seq_length tokens (at most the model's positions) —
// planned on the shape-only backend, or, with `backend`, measured on it.
StepTimeline experiment_step_timeline(const Experiment& e, Backend* backend = nullptr);

// The experiment's data: the generated toy task, a GLUE task, or a QA task — as causal LM (opt)
// or as (context, choice) pairs for a multiple-choice head (bert, roberta, bart) — tokenized with the backbone's tokenizer (backbone.tokenizer, else the model folder). Notices go
// to stderr.
TaskData build_task(const Experiment& e, const ModelConfig& model,
                    const std::function<void(const std::string&)>& notice = {});

}  // namespace meft
