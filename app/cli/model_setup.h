// model_setup.h — building the model an experiment names: a preset (random weights from a
// seed) or a Hugging Face directory (missing head initialised with a notice).
#pragma once
#include <memory>

#include "core/backend.h"
#include "model/sequence_classifier.h"
#include "store/experiment.h"

namespace meft::cli {

std::unique_ptr<SequenceClassifier> build_model(const Experiment& e, Backend& backend, int num_labels);

}  // namespace meft::cli
