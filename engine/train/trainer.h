// trainer.h — the training loop: batches -> forward/backward -> clip -> AdamW, with periodic
// evaluation. Reports through a plain observer interface (the GUI and CLI adapt it).
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "data/example.h"
#include "model/model.h"
#include "model/memory_report.h"
#include "train/optimizer.h"

namespace meft {

struct TrainConfig {
    double learning_rate = 5e-4;
    int batch_size = 32;                 // examples per optimizer step
    int gradient_accumulation = 1;       // micro-batches per step (batch_size split evenly)
    int epochs = 3;
    int max_steps = 0;                   // > 0 overrides epochs
    int max_seq_length = 128;
    double warmup_ratio = 0.1;
    double max_grad_norm = 1.0;          // <= 0: no clipping
    std::uint64_t seed = 42;
    int eval_every = 0;                  // steps; 0: at the end of each epoch
    int eval_batch_size = 64;
    int reconstruction_check_every = 0;  // MEFT: every N steps measure the rebuilt inputs (0: never)
    // Early stopping: stop when `metric` (a reported dev metric, or "loss") has not improved for
    // `patience` evaluations in a row (0: never). The best evaluation is kept either way.
    std::string early_stopping_metric;
    int early_stopping_patience = 0;
    int checkpoint_every = 0;            // meft run: a resumable checkpoint every N steps (0: only at the end)
    bool zero_shot = false;              // no training: evaluate the model as built (the paper's OPT zero-shot)
    AdamWConfig adamw;
};

struct StepReport {
    int step = 0, total_steps = 0, epoch = 0;
    double loss = 0;          // mean loss of this step's examples
    double learning_rate = 0; // the rate this update used
    double grad_norm = 0;     // before clipping
    std::int64_t tokens = 0;  // padded tokens processed so far
    double elapsed_s = 0;
    std::int64_t activation_bytes = 0;  // this step's activation peak: the largest of its micro-batches'
    int activation_rows = 0, activation_seq = 0;  // that micro-batch: rows x padded tokens
    std::int64_t resident_bytes = 0;    // weights, gradients and optimizer state
    std::vector<double> reconstruction_error;  // per layer, on steps that measured it (MEFT): check steps, or all with keep_true_inputs
};

struct EvalReport {
    int step = 0;
    double loss = 0;
    std::map<std::string, double> metrics;
};

// The largest activation peak of a run's training steps, where it occurred, and that step's
// per-layer report (what the run records as its measured memory).
struct ActivationPeak {
    std::int64_t bytes = 0;
    int step = 0;                 // 0: no training step yet
    int rows = 0, seq = 0;        // the micro-batch: rows x padded tokens
};

struct TrainResult {
    int steps = 0;                           // optimizer steps of the run in all (a resumed run: before and after)
    int first_step = 0;                      // steps done before this call (resumed from a checkpoint)
    double start_deviation = 0;              // starting_point_deviation on the first evaluation batch, before step 1
    MemoryReport memory;                     // the memory of the step with the largest activation peak (this call's)
    ActivationPeak memory_at;                // which step and micro-batch `memory` is of
    ActivationPeak activation_peak;          // the largest over every training step of the run
    double first_loss = 0, final_loss = 0;   // mean over the run's first / last 10% of steps (at least one)
    EvalReport final_eval;
    EvalReport best_eval;                    // by early_stopping_metric (default: the first metric)
    bool early_stopped = false;
    double elapsed_s = 0;
    double tokens_per_s = 0;
    bool stopped = false;
};

// Where training stands between two steps: enough, with the trainable weights and AdamW state,
// to continue exactly as if never stopped (shuffles and dropout are functions of seed and step).
struct TrainState {
    int step = 0;               // optimizer steps done
    int epoch = 0;              // epochs started
    std::size_t cursor = 0;     // position in the current epoch's order
    // What the run's results need from before the checkpoint: the starting point (measured on the
    // untrained model), early stopping's state, and the activation peak so far.
    double start_deviation = 0;
    int best_step = 0;          // the best evaluation so far (0: none)
    double best_value = 0;
    int evals_without_improvement = 0;
    ActivationPeak activation_peak{};
};

// Who a training checkpoint belongs to: written into its metadata, checked when it is loaded.
struct CheckpointIdentity {
    std::string run_uuid;       // the run's UUID in its database
    std::string config_hash;    // config_hash() of the run's resolved configuration
};

// Checkpoints: written every `every` steps (and when training stops) by `save`; `resume` makes
// training continue from a saved state (weights and optimizer state already restored).
struct TrainHooks {
    int every = 0;
    std::function<void(const TrainState&, const AdamW&)> save;
    const TrainState* resume = nullptr;
    int adam_steps = 0;         // with resume: AdamW steps already taken
    // With resume, from the run's record: the losses of steps 1..resume->step (for the run's
    // first/last-10% losses) and the best evaluation so far (resume->best_step).
    std::vector<double> earlier_losses;
    EvalReport earlier_best;
};

class TrainObserver {
public:
    virtual ~TrainObserver() = default;
    virtual void on_step(const StepReport&) {}
    virtual void on_eval(const EvalReport&) {}
    virtual bool should_stop() { return false; }
};

// Steps of a training run over train_units units (examples; multiple-choice questions: batching.h).
int total_steps_for(const TrainConfig& cfg, std::size_t train_units);

// How far the method's edits move the model at its current weights:
// ||h_method - h_backbone|| / ||h_backbone|| over the encoder outputs of the batch's real tokens
// (eval mode). 0 for methods that start exactly at the backbone (LoRA, (IA)3, zero-init adapters).
double starting_point_deviation(Model& model, const HostBatch& batch);

// Model::example_outputs for every example, in order (eval mode): a classifier's logits, a causal
// LM's summed log-likelihood of each example's labelled tokens.
std::vector<double> predict_outputs(Model& model, const std::vector<Example>& examples, int batch_size,
                                    int max_seq_length);
// metric_task: a GLUE task name to report its metrics (glue_metrics); "" = accuracy / pearson.
// Causal LM choice examples (token labels, Example::group): acc and acc_norm over the questions,
// loss = mean negative log-likelihood per token of the gold continuations. Choice pairs of a
// multiple-choice head: acc over the questions, loss = mean softmax cross-entropy per question.
EvalReport evaluate(Model& model, const std::vector<Example>& examples, int batch_size, int max_seq_length,
                    const std::string& metric_task = "");
// The task's dev split, and its second one when it has one (metric names then get suffixes).
EvalReport evaluate_task(Model& model, const TaskData& data, int batch_size, int max_seq_length);

TrainResult train(Model& model, const TaskData& data, const TrainConfig& cfg, TrainObserver* observer,
                  const TrainHooks* hooks = nullptr);

// A training checkpoint: trainable weights, AdamW m and v, the AdamW step count, the TrainState
// and whose it is, as one safetensors file (written durably: core/file_io.h).
void save_training_checkpoint(const std::filesystem::path& file, Model& model, const AdamW& opt,
                              const TrainState& state, const CheckpointIdentity& id = {});
// Restores weights and AdamW state into `model`; returns the state and sets *adam_steps.
TrainState load_training_checkpoint(const std::filesystem::path& file, Model& model, int* adam_steps);
// The identity in a checkpoint's metadata (empty fields for checkpoints written before it existed).
CheckpointIdentity read_checkpoint_identity(const std::filesystem::path& file);
// A checkpoint's step count, from its metadata.
int read_checkpoint_step(const std::filesystem::path& file);

// One optimizer step's gradient over `examples[indices]` (whole units), accumulated in
// micro-batches that never split a multiple-choice question: the gradient of the step's mean
// loss (per example, per question, or per predicted token for a causal LM; the
// step's total loss_weight goes to *weight). Returns the summed loss. *peak gets the largest
// micro-batch activation peak and its shape (when larger than what it holds), *peak_report that
// micro-batch's memory report. Exposed for tests (gradient accumulation equivalence).
double accumulate_gradients(Model& model, const std::vector<Example>& examples,
                            const std::vector<std::size_t>& indices, int micro_batches, int max_seq_length,
                            std::uint64_t seed, std::uint32_t step, std::int64_t* tokens = nullptr,
                            bool check_reconstruction = false, double* weight = nullptr,
                            ActivationPeak* peak = nullptr, MemoryReport* peak_report = nullptr);

}  // namespace meft
