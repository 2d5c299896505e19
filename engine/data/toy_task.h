// toy_task.h — a generated, seeded classification task that a small model learns in seconds.
//
// Each example is [CLS] noise... [SEP] with one to three "signal" tokens of its class hidden at
// random positions among random noise tokens; the class is which signal family appears. A
// bag-of-words model cannot be fooled (signals never collide), so dev accuracy far above chance
// shows that embeddings, attention and the head all learn.
#pragma once
#include <cstdint>
#include <string>

#include "data/example.h"
#include "model/config.h"

namespace meft {

struct ToyTaskConfig {
    int num_labels = 2;
    int train_examples = 2000;
    int dev_examples = 400;
    int min_length = 8;       // tokens including [CLS] and [SEP]
    int max_length = 32;
    std::uint64_t seed = 1;
};

// Token ids follow the model family: BERT [CLS]=101 [SEP]=102, RoBERTa <s>=0 </s>=2. Noise and
// signal ids lie in [1000, 3000), inside both families' vocabularies (and any >= 3000).
TaskData make_toy_task(const ToyTaskConfig& cfg, const ModelConfig& model);

}  // namespace meft
