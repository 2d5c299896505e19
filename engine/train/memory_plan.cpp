#include "train/memory_plan.h"

#include "core/error.h"
#include "core/shape_backend.h"
#include "model/checkpoint.h"

namespace meft {

MemoryPlanResult measure_memory(Backend& backend, const ModelConfig& cfg, const MethodConfig& method, DType dtype,
                                int batch, int seq) {
    if (batch < 1 || seq < 2) throw Error("memory plan: need batch >= 1 and sequence length >= 2");
    std::unique_ptr<Model> owned = make_model(cfg, backend, dtype, method);
    Model& model = *owned;
    if (backend.is_host()) model.init_weights(0);  // the values do not change what is allocated
    else model.params().materialize();
    HostBatch b;
    b.B = batch;
    b.T = seq;
    const int first = cfg.arch == Arch::Roberta ? cfg.pad_token_id + 1 : 1;  // any non-padding id
    b.input_ids.assign(static_cast<std::size_t>(batch) * seq, first);
    if (cfg.arch == Arch::Bart)  // BART's head reads each sequence's last eos
        for (int i = 0; i < batch; ++i) b.input_ids[static_cast<std::size_t>(i + 1) * seq - 1] = cfg.eos_token_id;
    b.token_type_ids.assign(b.input_ids.size(), 0);
    b.attention_mask.assign(b.input_ids.size(), 1);
    b.labels.assign(static_cast<std::size_t>(batch), 0);
    b.targets.assign(static_cast<std::size_t>(batch), 0.0);
    if (cfg.multiple_choice) {  // rows are (context, choice) pairs; memory does not depend on the grouping
        b.choice_counts.assign(static_cast<std::size_t>(batch), 1);
        b.labels.assign(static_cast<std::size_t>(batch), 1);
    }
    // A causal LM predicts every next token (plain LM fine-tuning: the LM head's largest case).
    if (is_decoder_only(cfg.arch)) b.token_labels.assign(b.input_ids.size(), first);
    model.params().zero_grads();
    model.forward_backward(b, ForwardOptions{true, 0, 0}, 1.0 / batch);
    MemoryPlanResult r;
    r.report = model.memory_report();
    r.trainable_parameters = model.params().count(true);
    r.parameters = model.params().count(false);
    return r;
}

MemoryPlanResult plan_memory(const ModelConfig& cfg, const MethodConfig& method, DType dtype, int batch, int seq) {
    auto shape = make_shape_backend();
    return measure_memory(*shape, cfg, method, dtype, batch, seq);
}

}  // namespace meft
