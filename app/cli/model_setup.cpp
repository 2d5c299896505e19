#include "cli/model_setup.h"

#include <iostream>

#include "model/checkpoint.h"

namespace meft::cli {

std::unique_ptr<SequenceClassifier> build_model(const Experiment& e, Backend& backend, int num_labels) {
    std::unique_ptr<SequenceClassifier> model;
    if (!e.backbone.preset.empty()) {
        ModelConfig cfg = preset_config(e.backbone.arch, e.backbone.preset);
        cfg.set_num_labels(num_labels);
        if (e.dropout) cfg.hidden_dropout = cfg.attention_dropout = *e.dropout;
        model = std::make_unique<SequenceClassifier>(cfg, backend, e.dtype, e.method);
        model->init_weights(e.backbone.init_seed);
    } else {
        LoadOptions lo;
        lo.num_labels = num_labels;
        lo.head_seed = e.backbone.init_seed;
        lo.method = e.method;
        LoadReport rep;
        model = load_classifier(e.backbone.path, backend, e.dtype, lo, &rep);
        for (const std::string& n : rep.notices()) std::cerr << n << "\n";
        if (e.dropout) model->set_dropout(*e.dropout);
    }
    return model;
}

}  // namespace meft::cli
