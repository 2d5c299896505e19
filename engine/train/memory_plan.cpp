#include "train/memory_plan.h"
#include "train/memory_timeline.h"

#include "core/error.h"
#include "core/shape_backend.h"
#include "model/arch/arch.h"
#include "model/checkpoint.h"

namespace meft {

namespace {

// A full-length batch: B rows of T real tokens (no padding), every label present.
HostBatch full_batch(const ModelConfig& cfg, int batch, int seq) {
    HostBatch b;
    b.B = batch;
    b.T = seq;
    const ArchSpec& spec = arch_spec(cfg.arch);
    const int plain = spec.plain_token(cfg);
    b.input_ids.assign(static_cast<std::size_t>(batch) * seq, plain);
    if (spec.shape() == StackShape::EncoderDecoder)  // its head reads each sequence's last end token
        for (int i = 0; i < batch; ++i) b.input_ids[static_cast<std::size_t>(i + 1) * seq - 1] = spec.end_token(cfg);
    b.token_type_ids.assign(b.input_ids.size(), 0);
    b.attention_mask.assign(b.input_ids.size(), 1);
    b.labels.assign(static_cast<std::size_t>(batch), 0);
    b.targets.assign(static_cast<std::size_t>(batch), 0.0);
    if (cfg.multiple_choice) {  // rows are (context, choice) pairs; memory does not depend on the grouping
        b.choice_counts.assign(static_cast<std::size_t>(batch), 1);
        b.labels.assign(static_cast<std::size_t>(batch), 1);
    }
    // A causal LM predicts every next token (plain LM fine-tuning: the LM head's largest case); a
    // masked LM's plan, likewise, every position (masking selects about 15% of them, at random).
    if (is_decoder_only(cfg.arch) || cfg.masked_lm) b.token_labels.assign(b.input_ids.size(), plain);
    return b;
}

std::unique_ptr<Model> built(Backend& backend, const ModelConfig& cfg, const MethodConfig& method, DType dtype) {
    std::unique_ptr<Model> model = make_model(cfg, backend, dtype, method);
    if (backend.is_host()) model->init_weights(0);  // the values do not change what is allocated
    else model->params().materialize();
    return model;
}

void train_step(Model& model, int batch, int seq) {
    model.params().zero_grads();
    model.forward_backward(full_batch(model.config(), batch, seq), ForwardOptions{true, 0, 0}, 1.0 / batch);
}

MemoryPlanResult result_of(Model& model) {
    MemoryPlanResult r;
    r.report = model.memory_report();
    r.trainable_parameters = model.params().count(true);
    r.parameters = model.params().count(false);
    return r;
}

void check_sizes(int batch, int seq) {
    if (batch < 1 || seq < 2) throw Error("memory plan: need batch >= 1 and sequence length >= 2");
}

}  // namespace

MemoryPlanResult measure_memory(Backend& backend, const ModelConfig& cfg, const MethodConfig& method, DType dtype,
                                int batch, int seq) {
    check_sizes(batch, seq);
    std::unique_ptr<Model> model = built(backend, cfg, method, dtype);
    train_step(*model, batch, seq);
    return result_of(*model);
}

MemoryPlanResult plan_memory(const ModelConfig& cfg, const MethodConfig& method, DType dtype, int batch, int seq,
                             const WorkspaceRule& rule) {
    auto shape = make_shape_backend(rule);
    return measure_memory(*shape, cfg, method, dtype, batch, seq);
}

MemoryPlanResult measure_run_memory(Backend& backend, const ModelConfig& cfg, const MethodConfig& method, DType dtype,
                                    int train_batch, int eval_batch, int seq) {
    check_sizes(train_batch, seq);
    check_sizes(eval_batch, seq);
    std::unique_ptr<Model> model = built(backend, cfg, method, dtype);
    // The order of a run: the starting-point check and evaluations run forwards of up to
    // eval_batch rows; training steps run micro-batches of train_batch. Arenas keep their chunks,
    // so after one of each (and one more step) they hold what every later step and evaluation needs.
    model->example_outputs(full_batch(cfg, eval_batch, seq));
    train_step(*model, train_batch, seq);
    model->example_outputs(full_batch(cfg, eval_batch, seq));
    train_step(*model, train_batch, seq);
    return result_of(*model);
}

MemoryPlanResult plan_run_memory(const ModelConfig& cfg, const MethodConfig& method, DType dtype, int train_batch,
                                 int eval_batch, int seq, const WorkspaceRule& rule) {
    auto shape = make_shape_backend(rule);
    return measure_run_memory(*shape, cfg, method, dtype, train_batch, eval_batch, seq);
}

StepTimeline measure_step_timeline(Backend& backend, const ModelConfig& cfg, const MethodConfig& method, DType dtype,
                                   int batch, int seq) {
    check_sizes(batch, seq);
    std::unique_ptr<Model> model = built(backend, cfg, method, dtype);
    std::vector<MeterEvent> events;
    model->set_memory_trace(&events);
    try {
        train_step(*model, batch, seq);
    } catch (...) {
        model->set_memory_trace(nullptr);
        throw;
    }
    model->set_memory_trace(nullptr);
    StepTimeline tl = timeline_of(events, cfg);
    tl.rows = batch;
    tl.seq = seq;
    return tl;
}

StepTimeline plan_step_timeline(const ModelConfig& cfg, const MethodConfig& method, DType dtype, int batch, int seq,
                                const WorkspaceRule& rule) {
    auto shape = make_shape_backend(rule);
    return measure_step_timeline(*shape, cfg, method, dtype, batch, seq);
}

}  // namespace meft
