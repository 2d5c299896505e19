#include "train/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <new>
#include <numeric>

#include "core/error.h"
#include "core/host_memory.h"
#include "data/batching.h"
#include "data/choice_prompt.h"
#include "data/mlm_task.h"
#include "model/safetensors.h"
#include "train/metrics.h"
#include "train/non_finite.h"
#include "train/schedule.h"

namespace meft {

namespace {
using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// -log softmax(z[0..n))[gold]
double softmax_nll(const double* z, std::size_t n, std::size_t gold) {
    const double mx = *std::max_element(z, z + n);
    double s = 0;
    for (std::size_t j = 0; j < n; ++j) s += std::exp(z[j] - mx);
    return std::log(s) + mx - z[gold];
}

// Runs `body` (one step's or one evaluation's work) so that whatever fails in it says when:
// "step 12: ...". A diverged MEFT stream also says what to change; running out of host memory
// says how many bytes were asked for and how many are available, never a bare std::bad_alloc.
template <typename F> auto during(const std::string& when, const TrainConfig& cfg, F&& body) -> decltype(body()) {
    try {
        return body();
    } catch (const StreamRangeError& e) {
        char lr[32];
        std::snprintf(lr, sizeof lr, "%g", cfg.learning_rate);
        throw Error(when + ": the run diverged: " + e.what() +
                    ". Lower training.learning_rate (now " + lr + ")" +
                    (cfg.max_grad_norm > 0 ? std::string() : ", set training.max_grad_norm (now 0: no clipping)") +
                    ", or set method.meft.streams to \"float64\" (no fixed range; the rebuilt inputs then drift by rounding)");
    } catch (const std::bad_alloc&) {
        throw OutOfMemoryError(out_of_memory_message(when));
    } catch (const OutOfMemoryError&) {
        throw;
    } catch (const Error& e) {
        const std::string what = e.what();
        if (what.rfind(when, 0) == 0) throw;
        throw Error(when + ": " + what);
    }
}

double host_loss(const std::vector<double>& logits, int K, const Example& e, std::size_t row) {
    const double* z = logits.data() + row * static_cast<std::size_t>(K);
    if (K == 1) return (z[0] - e.target) * (z[0] - e.target);
    return softmax_nll(z, static_cast<std::size_t>(K), static_cast<std::size_t>(e.label));
}
}  // namespace

int total_steps_for(const TrainConfig& cfg, std::size_t n) {
    if (cfg.zero_shot) return 0;
    if (cfg.max_steps > 0) return cfg.max_steps;
    const std::size_t per_epoch = (n + static_cast<std::size_t>(cfg.batch_size) - 1) / static_cast<std::size_t>(cfg.batch_size);
    return static_cast<int>(per_epoch) * cfg.epochs;
}

double starting_point_deviation(Model& model, const HostBatch& batch) {
    auto hidden = [&](bool backbone_only) {
        ForwardOptions o;
        o.backbone_only = backbone_only;
        model.forward(batch, o);
        return model.to_host(model.last_hidden());  // [B*T*C] as doubles
    };
    const std::vector<double> edited = hidden(false), base = hidden(true);
    const std::size_t C = static_cast<std::size_t>(model.last_hidden().dim(2));
    double diff = 0, norm = 0;
    for (std::size_t i = 0; i < base.size(); ++i) {
        if (!batch.attention_mask[i / C]) continue;
        diff += (edited[i] - base[i]) * (edited[i] - base[i]);
        norm += base[i] * base[i];
    }
    return norm > 0 ? std::sqrt(diff / norm) : 0.0;
}

std::vector<double> predict_outputs(Model& model, const std::vector<Example>& examples, int batch_size,
                                    int max_seq_length) {
    // Sort by length so batches carry little padding; results go back to input order.
    std::vector<std::size_t> order(examples.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
        return examples[a].input_ids.size() < examples[b].input_ids.size();
    });
    const int K = model.outputs_per_example();
    std::vector<double> out(examples.size() * static_cast<std::size_t>(K));
    for (std::size_t s = 0; s < order.size(); s += static_cast<std::size_t>(batch_size)) {
        const std::size_t n = std::min<std::size_t>(static_cast<std::size_t>(batch_size), order.size() - s);
        const std::span<const std::size_t> idx(order.data() + s, n);
        const HostBatch b = make_batch(examples, idx, model.config().pad_token_id, max_seq_length);
        const std::vector<double> z = model.example_outputs(b);  // evaluation: no dropout
        for (std::size_t r = 0; r < n; ++r)
            std::copy_n(z.begin() + static_cast<std::ptrdiff_t>(r * static_cast<std::size_t>(K)), K,
                        out.begin() + static_cast<std::ptrdiff_t>(idx[r] * static_cast<std::size_t>(K)));
    }
    return out;
}

namespace {
// Each question's examples (Example::group -> indices), in choice order.
std::map<int, std::vector<std::size_t>> questions_of(const std::vector<Example>& examples) {
    std::map<int, std::vector<std::size_t>> questions;
    for (std::size_t i = 0; i < examples.size(); ++i) {
        if (examples[i].group < 0) throw Error("multiple-choice example " + std::to_string(i) + " has no question index");
        questions[examples[i].group].push_back(i);
    }
    for (auto& [group, idx] : questions)
        std::sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) { return examples[a].choice < examples[b].choice; });
    return questions;
}

// Multiple choice by likelihood (lm-evaluation-harness): each question's choices are scored by
// the summed log-likelihood of their tokens; acc takes the best sum, acc_norm the best sum per
// byte. The loss is the mean negative log-likelihood per token of the gold continuations.
EvalReport evaluate_choices(Model& model, const std::vector<Example>& examples, int batch_size, int max_seq_length) {
    EvalReport r;
    const std::vector<double> ll = predict_outputs(model, examples, batch_size, max_seq_length);
    double nll = 0, tokens = 0, correct = 0, correct_norm = 0;
    int scored = 0;
    for (const auto& [group, idx] : questions_of(examples)) {
        std::vector<double> scores;
        std::vector<std::size_t> bytes;
        int gold = -1;
        for (std::size_t k = 0; k < idx.size(); ++k) {
            const Example& e = examples[idx[k]];
            scores.push_back(ll[idx[k]]);
            bytes.push_back(static_cast<std::size_t>(e.continuation_bytes));
            if (e.label == 1) {
                gold = static_cast<int>(k);
                nll -= ll[idx[k]];
                tokens += loss_weight(e);
            }
        }
        if (gold < 0) continue;  // unlabelled question
        const ChoiceScores cs = score_choices(scores, bytes);
        correct += cs.pred == gold;
        correct_norm += cs.pred_norm == gold;
        ++scored;
    }
    r.loss = tokens > 0 ? nll / tokens : 0.0;
    if (scored > 0) {
        r.metrics["acc"] = correct / scored;
        r.metrics["acc_norm"] = correct_norm / scored;
    }
    return r;
}

// A multiple-choice head: each pair's score (eval mode, so a pair's score does not depend on the
// batch it is in); acc takes each question's highest score, the loss is the mean over questions of
// the softmax cross-entropy of the gold choice.
EvalReport evaluate_choice_pairs(Model& model, const std::vector<Example>& examples, int batch_size, int max_seq_length) {
    EvalReport r;
    const std::vector<double> z = predict_outputs(model, examples, batch_size, max_seq_length);
    std::vector<std::vector<double>> scores;
    std::vector<int> answers;
    double nll = 0;
    for (const auto& [group, idx] : questions_of(examples)) {
        std::vector<double> s;
        int gold = -1;
        for (std::size_t k = 0; k < idx.size(); ++k) {
            s.push_back(z[idx[k]]);
            if (examples[idx[k]].label == 1) gold = static_cast<int>(k);
        }
        if (gold < 0) continue;  // unlabelled question
        nll += softmax_nll(s.data(), s.size(), static_cast<std::size_t>(gold));
        scores.push_back(std::move(s));
        answers.push_back(gold);
    }
    if (scores.empty()) return r;
    r.loss = nll / double(scores.size());
    r.metrics["acc"] = qa_accuracy(scores, answers);
    return r;
}
}  // namespace

namespace {
// A masked LM's held-out blocks: loss = mean negative log-likelihood per masked token (Hugging
// Face's eval_loss), masked_accuracy = the share of masked tokens the head ranks first,
// perplexity = exp(loss) (run_mlm.py's).
EvalReport evaluate_masked_lm(Model& model, const std::vector<Example>& examples, int batch_size, int max_seq_length) {
    if (model.outputs_per_example() != 3) throw Error("masked-LM examples need a masked-LM head");
    const std::vector<double> z = predict_outputs(model, examples, batch_size, max_seq_length);
    double ll = 0, count = 0, hits = 0;
    for (std::size_t i = 0; i < examples.size(); ++i) {
        ll += z[i * 3];
        count += z[i * 3 + 1];
        hits += z[i * 3 + 2];
    }
    EvalReport r;
    if (count == 0) return r;
    r.loss = -ll / count;
    r.metrics["masked_accuracy"] = hits / count;
    r.metrics["perplexity"] = std::exp(r.loss);
    return r;
}
}  // namespace

EvalReport evaluate(Model& model, const std::vector<Example>& examples, int batch_size,
                    int max_seq_length, const std::string& metric_task) {
    if (!examples.empty() && examples.front().masked_lm) return evaluate_masked_lm(model, examples, batch_size, max_seq_length);
    if (!examples.empty() && !examples.front().token_labels.empty())
        return evaluate_choices(model, examples, batch_size, max_seq_length);
    if (!examples.empty() && is_choice_pair(examples.front()))
        return evaluate_choice_pairs(model, examples, batch_size, max_seq_length);
    EvalReport r;
    const int K = model.config().num_labels();
    const std::vector<double> z = predict_outputs(model, examples, batch_size, max_seq_length);
    std::vector<int> labels;
    std::vector<double> targets;
    double loss = 0;
    for (std::size_t i = 0; i < examples.size(); ++i) {
        labels.push_back(examples[i].label);
        targets.push_back(examples[i].target);
        loss += host_loss(z, K, examples[i], i);
    }
    r.loss = examples.empty() ? 0.0 : loss / double(examples.size());
    r.metrics = metric_task.empty() ? task_metrics(z, K, labels, targets) : glue_metrics(metric_task, z, K, labels, targets);
    return r;
}

EvalReport evaluate_task(Model& model, const TaskData& data, int batch_size, int max_seq_length) {
    EvalReport r = evaluate(model, data.dev, batch_size, max_seq_length, data.metric_task);
    if (data.dev_extra.empty()) return r;
    const EvalReport extra = evaluate(model, data.dev_extra, batch_size, max_seq_length, data.metric_task);
    std::map<std::string, double> named;
    for (const auto& [k, v] : r.metrics) named[k + "_" + data.dev_name] = v;
    for (const auto& [k, v] : extra.metrics) named[k + "_" + data.dev_extra_name] = v;
    r.metrics = std::move(named);
    return r;
}

namespace {
constexpr const char* kCheckpointFormat = "meft-training-checkpoint-1";

std::string number_text(double v) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    return buf;
}

// The metadata of a training checkpoint file, checked to be one.
std::map<std::string, std::string> checkpoint_metadata(const SafetensorsReader& r, const std::filesystem::path& file) {
    const auto& meta = r.metadata();
    if (meta.count("format") == 0 || meta.at("format") != kCheckpointFormat)
        throw Error(file.string() + ": not a meft training checkpoint (format metadata missing or unknown)");
    return std::map<std::string, std::string>(meta.begin(), meta.end());
}

// A metadata number; `fallback` when absent and not required.
double metadata_number(const std::map<std::string, std::string>& meta, const std::filesystem::path& file, const char* key,
                       bool required, double fallback = 0) {
    const auto it = meta.find(key);
    if (it == meta.end()) {
        if (required) throw Error(file.string() + ": not a training checkpoint (no '" + key + "' in its metadata)");
        return fallback;
    }
    try {
        std::size_t used = 0;
        const double v = std::stod(it->second, &used);
        if (used != it->second.size()) throw std::invalid_argument(key);
        return v;
    } catch (const std::exception&) {
        throw Error(file.string() + ": metadata '" + key + "' is not a number: " + it->second);
    }
}
}  // namespace

void save_training_checkpoint(const std::filesystem::path& file, Model& model, const AdamW& opt,
                              const TrainState& state, const CheckpointIdentity& id) {
    Backend& be = model.backend();
    std::vector<std::vector<std::byte>> buffers;
    std::vector<TensorRecord> records;
    for (const Parameter& p : model.params().all()) {
        if (!p.trainable) continue;
        const std::vector<std::int64_t> shape(p.shape.d.begin(), p.shape.d.begin() + p.shape.ndim);
        for (const auto& [suffix, t] : {std::pair<const char*, Tensor>{"", p.value}, {".adam_m", p.m}, {".adam_v", p.v}}) {
            buffers.emplace_back(t.bytes());
            be.download(buffers.back().data(), t);
            records.push_back(TensorRecord{p.name + suffix, t.dtype, shape, buffers.back().data()});
        }
    }
    std::filesystem::create_directories(file.parent_path());
    const ActivationPeak& pk = state.activation_peak;
    write_safetensors(file, records,
                      {{"format", kCheckpointFormat}, {"step", std::to_string(state.step)},
                       {"epoch", std::to_string(state.epoch)}, {"cursor", std::to_string(state.cursor)},
                       {"adam_steps", std::to_string(opt.steps_done())}, {"run_uuid", id.run_uuid},
                       {"config_hash", id.config_hash}, {"starting_point_deviation", number_text(state.start_deviation)},
                       {"best_step", std::to_string(state.best_step)}, {"best_value", number_text(state.best_value)},
                       {"evals_without_improvement", std::to_string(state.evals_without_improvement)},
                       {"activation_peak_bytes", std::to_string(pk.bytes)}, {"activation_peak_step", std::to_string(pk.step)},
                       {"activation_peak_rows", std::to_string(pk.rows)}, {"activation_peak_seq", std::to_string(pk.seq)}});
}

CheckpointIdentity read_checkpoint_identity(const std::filesystem::path& file) {
    const SafetensorsReader r = SafetensorsReader::open_file(file);
    const auto meta = checkpoint_metadata(r, file);
    CheckpointIdentity id;
    if (meta.count("run_uuid")) id.run_uuid = meta.at("run_uuid");
    if (meta.count("config_hash")) id.config_hash = meta.at("config_hash");
    return id;
}

int read_checkpoint_step(const std::filesystem::path& file) {
    const SafetensorsReader r = SafetensorsReader::open_file(file);
    return static_cast<int>(metadata_number(checkpoint_metadata(r, file), file, "step", true));
}

TrainState load_training_checkpoint(const std::filesystem::path& file, Model& model, int* adam_steps) {
    const SafetensorsReader r = SafetensorsReader::open_file(file);
    const auto meta = checkpoint_metadata(r, file);
    Backend& be = model.backend();
    for (Parameter& p : model.params().all()) {
        if (!p.trainable) continue;
        for (const auto& [suffix, t] : {std::pair<const char*, Tensor>{"", p.value}, {".adam_m", p.m}, {".adam_v", p.v}}) {
            const std::string name = p.name + suffix;
            if (!r.contains(name)) throw Error(file.string() + ": missing tensor '" + name + "' (a checkpoint of another method or model?)");
            std::vector<std::byte> host(t.bytes());
            r.read_into(name, t.dtype, host.data(), static_cast<std::size_t>(t.numel()));
            be.upload(t, host.data());
        }
    }
    const auto num = [&](const char* key, bool required) { return metadata_number(meta, file, key, required); };
    TrainState s;
    s.step = static_cast<int>(num("step", true));
    s.epoch = static_cast<int>(num("epoch", true));
    s.cursor = static_cast<std::size_t>(num("cursor", true));
    // Written since checkpoints carry the run's identity; 0 in older ones.
    s.start_deviation = num("starting_point_deviation", false);
    s.best_step = static_cast<int>(num("best_step", false));
    s.best_value = num("best_value", false);
    s.evals_without_improvement = static_cast<int>(num("evals_without_improvement", false));
    s.activation_peak.bytes = static_cast<std::int64_t>(num("activation_peak_bytes", false));
    s.activation_peak.step = static_cast<int>(num("activation_peak_step", false));
    s.activation_peak.rows = static_cast<int>(num("activation_peak_rows", false));
    s.activation_peak.seq = static_cast<int>(num("activation_peak_seq", false));
    if (adam_steps) *adam_steps = static_cast<int>(num("adam_steps", true));
    return s;
}

double accumulate_gradients(Model& model, const std::vector<Example>& examples,
                            const std::vector<std::size_t>& indices, int micro_batches, int max_seq_length,
                            std::uint64_t seed, std::uint32_t step, std::int64_t* tokens,
                            bool check_reconstruction, double* weight_out, ActivationPeak* peak,
                            MemoryReport* peak_report) {
    ForwardOptions o{true, seed, step};
    o.check_reconstruction = check_reconstruction;
    // Losses are summed over examples (or predicted tokens) and scaled by the step's total
    // weight, so the gradient is the same however the step is split into micro-batches.
    double weight = 0;
    for (std::size_t i : indices) weight += loss_weight(examples[i]);
    if (weight_out) *weight_out = weight;
    if (weight <= 0) return 0.0;  // nothing to predict in this step
    double loss = 0;
    for (const auto& [b, e] : micro_batch_ranges(examples, indices, micro_batches)) {
        HostBatch batch = make_batch(examples, std::span<const std::size_t>(indices.data() + b, e - b),
                                     model.config().pad_token_id, max_seq_length);
        batch.example_offset = static_cast<int>(b);  // same dropout masks however the step is split
        loss += model.forward_backward(batch, o, 1.0 / weight);
        if (tokens) *tokens += std::int64_t(batch.B) * batch.T;
        if (peak || peak_report) {  // each micro-batch restarts the meter: keep the largest
            MemoryReport m = model.memory_report();
            if (peak && static_cast<std::int64_t>(m.activation_peak) > peak->bytes) {
                *peak = ActivationPeak{static_cast<std::int64_t>(m.activation_peak), peak->step, batch.B, batch.T};
                if (peak_report) *peak_report = std::move(m);
            }
        }
    }
    return loss;
}

TrainResult train(Model& model, const TaskData& data, const TrainConfig& cfg, TrainObserver* observer,
                  const TrainHooks* hooks) {
    if (cfg.zero_shot) {  // evaluation only
        TrainResult res;
        if (data.dev.empty()) throw Error("zero_shot: the task has no evaluation split");
        EvalReport ev = during("the zero-shot evaluation", cfg, [&] {
            return evaluate_task(model, data, cfg.eval_batch_size, cfg.max_seq_length);
        });
        res.final_eval = res.best_eval = ev;
        if (observer) observer->on_eval(ev);
        res.memory = model.memory_report();
        return res;
    }
    if (data.train.empty()) throw Error("training set is empty");
    if (cfg.batch_size < 1) throw Error("batch_size must be at least 1");
    if (cfg.gradient_accumulation < 1 || cfg.gradient_accumulation > cfg.batch_size)
        throw Error("gradient_accumulation_steps must be in [1, batch_size]");
    // Steps take batch_size units: examples, or whole multiple-choice questions (batching.h).
    const std::vector<std::size_t> units = unit_starts(data.train);
    const std::size_t num_units = units.size() - 1;
    const int total = total_steps_for(cfg, num_units);
    const LinearSchedule sched{cfg.learning_rate, warmup_steps_for(cfg.warmup_ratio, total), total};
    AdamW opt(model.params(), cfg.adamw);
    ParameterStore& ps = model.params();

    TrainResult res;
    const bool resuming = hooks && hooks->resume;
    if (resuming) {
        res.start_deviation = hooks->resume->start_deviation;  // measured before step 1, kept in the checkpoint
    } else {  // the method's starting point, on the first evaluation batch
        const std::vector<Example>& probe = data.dev.empty() ? data.train : data.dev;
        std::vector<std::size_t> idx;
        for (std::size_t i = 0; i < probe.size() && i < static_cast<std::size_t>(cfg.eval_batch_size); ++i) idx.push_back(i);
        res.start_deviation = during("the starting-point check before training", cfg, [&] {
            return starting_point_deviation(model, make_batch(probe, idx, model.config().pad_token_id, cfg.max_seq_length));
        });
    }
    std::vector<double> losses;
    std::int64_t tokens = 0;
    double best_value = 0;
    int evals_without_improvement = 0;
    if (resuming) {  // early stopping and the activation peak continue where they were
        best_value = hooks->resume->best_value;
        evals_without_improvement = hooks->resume->evals_without_improvement;
        res.activation_peak = hooks->resume->activation_peak;
        if (hooks->resume->best_step > 0) {
            res.best_eval = hooks->earlier_best;
            res.best_eval.step = hooks->resume->best_step;
        }
    }
    std::int64_t this_call_peak = -1;  // the largest step of this call (its per-layer report is kept)
    const auto t0 = Clock::now();
    const std::size_t bs = static_cast<std::size_t>(cfg.batch_size);
    std::vector<std::size_t> order;
    std::size_t cursor = 0;
    int epoch = 0;
    int first_step = 0;
    if (hooks && hooks->resume) {  // continue where the checkpoint left off
        first_step = hooks->resume->step;
        epoch = hooks->resume->epoch;
        cursor = hooks->resume->cursor;
        if (epoch > 0) order = shuffled_indices(num_units, cfg.seed + 1000003ull * static_cast<std::uint64_t>(epoch - 1));
        opt.set_steps_done(hooks->adam_steps);
    }
    auto checkpoint = [&](int steps_done) {
        if (!hooks || !hooks->save) return;
        TrainState st{steps_done, epoch, cursor};
        st.start_deviation = res.start_deviation;
        st.best_step = res.best_eval.step;
        st.best_value = best_value;
        st.evals_without_improvement = evals_without_improvement;
        st.activation_peak = res.activation_peak;
        hooks->save(st, opt);
    };
    for (int step = first_step; step < total; ++step) {
        if (cursor >= order.size()) {  // new epoch: reshuffle
            order = shuffled_indices(num_units, cfg.seed + 1000003ull * static_cast<std::uint64_t>(epoch));
            cursor = 0;
            ++epoch;
        }
        const std::size_t n = std::min(bs, order.size() - cursor);
        std::vector<std::size_t> idx = unit_rows(units, std::span<const std::size_t>(order.data() + cursor, n));
        cursor += n;
        // Masked-LM pre-training: this step's blocks masked anew (mlm_task.h).
        std::vector<Example> masked;
        if (data.masking) {
            masked = masked_step_examples(data.train, idx, *data.masking, cfg.seed, static_cast<std::uint32_t>(step));
            std::iota(idx.begin(), idx.end(), std::size_t{0});
        }
        const std::vector<Example>& step_examples = data.masking ? masked : data.train;

        const bool check = cfg.reconstruction_check_every > 0 && model.stack_runner() &&
                           (step + 1) % cfg.reconstruction_check_every == 0;
        double weight = 0, loss_sum = 0, norm = 0;
        const double lr = sched.lr(step);
        ActivationPeak step_peak;
        MemoryReport step_memory;
        during("step " + std::to_string(step + 1), cfg, [&] {
            ps.zero_grads();
            loss_sum = accumulate_gradients(model, step_examples, idx, cfg.gradient_accumulation, cfg.max_seq_length,
                                            cfg.seed, static_cast<std::uint32_t>(step), &tokens, check, &weight,
                                            &step_peak, &step_memory);
            // A NaN or Inf fails the run before it reaches the weights, naming where it first appears.
            const auto fail_non_finite = [&](const std::string& what, double value) {
                const std::string where = locate_non_finite(model, step_examples, idx, cfg.gradient_accumulation,
                                                            cfg.max_seq_length, cfg.seed, static_cast<std::uint32_t>(step));
                throw Error("step " + std::to_string(step + 1) + ": the " + what + " is " + (std::isnan(value) ? "nan" : "inf") +
                            (where.empty() ? std::string("; every weight, activation and gradient looked at is finite")
                                           : "; first non-finite tensor: " + where));
            };
            if (!std::isfinite(loss_sum)) fail_non_finite("loss", loss_sum);
            norm = clip_grad_norm(ps, cfg.max_grad_norm);
            if (!std::isfinite(norm)) fail_non_finite("gradient norm", norm);
            opt.step(lr);
        });

        StepReport r;
        r.step = step + 1;
        r.total_steps = total;
        r.epoch = epoch;
        r.loss = weight > 0 ? loss_sum / weight : 0.0;
        r.learning_rate = lr;
        r.grad_norm = norm;
        r.tokens = tokens;
        r.elapsed_s = seconds_since(t0);
        r.activation_bytes = step_peak.bytes;
        r.activation_rows = step_peak.rows;
        r.activation_seq = step_peak.seq;
        r.resident_bytes = static_cast<std::int64_t>(step_memory.resident());
        if (step_peak.bytes > this_call_peak) {  // the largest step: its per-layer report is the run's record
            this_call_peak = step_peak.bytes;
            res.memory = step_memory;
            res.memory_at = ActivationPeak{step_peak.bytes, r.step, step_peak.rows, step_peak.seq};
        }
        if (step_peak.bytes > res.activation_peak.bytes) res.activation_peak = ActivationPeak{step_peak.bytes, r.step, step_peak.rows, step_peak.seq};
        // Whatever this step measured: a check step's, or every step's when the method keeps the
        // true inputs (MEFT's keep_true_inputs); the model clears it on steps that measure nothing.
        r.reconstruction_error = model.reconstruction_error();
        losses.push_back(r.loss);
        if (observer) observer->on_step(r);

        const bool epoch_end = cursor >= order.size();
        const bool last = step + 1 == total;
        const bool due = cfg.eval_every > 0 ? (r.step % cfg.eval_every == 0) : epoch_end;
        if ((due || last) && !data.dev.empty()) {
            EvalReport ev = during("the evaluation after step " + std::to_string(r.step), cfg, [&] {
                return evaluate_task(model, data, cfg.eval_batch_size, cfg.max_seq_length);
            });
            ev.step = r.step;
            res.final_eval = ev;
            if (observer) observer->on_eval(ev);
            const std::string metric = !cfg.early_stopping_metric.empty() ? cfg.early_stopping_metric
                                       : ev.metrics.empty()             ? std::string("loss")
                                                                        : ev.metrics.begin()->first;
            const bool lower_is_better = metric == "loss" || metric == "mse";
            double value = ev.loss;
            if (metric != "loss") {
                const auto it = ev.metrics.find(metric);
                if (it == ev.metrics.end()) {
                    std::string have = "loss";
                    for (const auto& [k, v] : ev.metrics) have += ", " + k;
                    throw Error("early_stopping.metric '" + metric + "' is not reported by task " + data.name +
                                " (it reports: " + have + ")");
                }
                value = it->second;
            }
            const bool improved = res.best_eval.step == 0 || (lower_is_better ? value < best_value : value > best_value);
            if (improved) {
                best_value = value;
                res.best_eval = ev;
                evals_without_improvement = 0;
            } else if (++evals_without_improvement >= cfg.early_stopping_patience && cfg.early_stopping_patience > 0) {
                res.early_stopped = true;
                break;
            }
        }
        if (hooks && hooks->every > 0 && r.step % hooks->every == 0 && r.step < total) checkpoint(r.step);
        if (observer && observer->should_stop()) {
            res.stopped = true;
            checkpoint(r.step);
            break;
        }
    }
    if (!res.stopped && !losses.empty()) checkpoint(first_step + static_cast<int>(losses.size()));
    res.first_step = first_step;
    res.steps = first_step + static_cast<int>(losses.size());
    if (losses.empty()) res.memory = model.memory_report();
    if (losses.empty() && first_step >= total && !data.dev.empty()) {
        // Resumed from the final checkpoint (the process died before recording the end): the
        // training is done; evaluate so the run's results are recorded.
        EvalReport ev = during("the final evaluation", cfg, [&] {
            return evaluate_task(model, data, cfg.eval_batch_size, cfg.max_seq_length);
        });
        ev.step = first_step;
        res.final_eval = res.best_eval = ev;
        if (observer) observer->on_eval(ev);
    }
    if (losses.empty()) return res;
    // The run's losses: those before a resume (from its record), then this call's.
    std::vector<double> all = resuming ? hooks->earlier_losses : std::vector<double>{};
    all.insert(all.end(), losses.begin(), losses.end());
    const std::size_t k = std::max<std::size_t>(1, all.size() / 10);
    res.first_loss = std::accumulate(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(k), 0.0) / double(k);
    res.final_loss = std::accumulate(all.end() - static_cast<std::ptrdiff_t>(k), all.end(), 0.0) / double(k);
    res.elapsed_s = seconds_since(t0);
    res.tokens_per_s = res.elapsed_s > 0 ? double(tokens) / res.elapsed_s : 0.0;
    return res;
}

}  // namespace meft
