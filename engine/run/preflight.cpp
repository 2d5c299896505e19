#include "run/preflight.h"

#include <algorithm>
#include <map>

#include "core/error.h"
#include "model/arch/arch.h"
#include "core/host_memory.h"
#include "model/safetensors.h"
#include "train/metrics.h"
#include "run/run_setup.h"

namespace meft {

std::string Preflight::message() const {
    std::string s;
    for (const std::string& p : problems) s += (s.empty() ? "" : "\n") + p;
    return s;
}

namespace {

void check_positions(const Experiment& e, const ModelConfig& cfg, int seq, Preflight& p) {
    const int most = cfg.max_tokens();
    if (seq <= most) return;
    const std::string model = e.backbone.preset.empty() ? e.backbone.path.string() : arch_name(cfg.arch) + " preset '" + e.backbone.preset + "'";
    p.problems.push_back("training.max_seq_length is " + std::to_string(seq) + " but the model (" + model + ") has " +
                         std::to_string(most) + " positions (max_position_embeddings " +
                         std::to_string(cfg.max_position_embeddings) +
                         arch_spec(cfg.arch).position_note(cfg) +
                         "); set training.max_seq_length to at most " + std::to_string(most));
}

// Zero-shot evaluation uses the checkpoint's head as it is: it must exist and have the task's labels.
void check_zero_shot_head(const Experiment& e, Preflight& p) {
    if (!e.train.zero_shot || !e.backbone.preset.empty() || is_decoder_only(e.backbone.arch)) return;
    const ModelConfig saved = load_model_config(e.backbone.path);
    if (is_decoder_only(saved.arch)) return;
    const bool mc = task_multiple_choice(e);
    const int need = task_num_labels(e);
    const std::string where = (e.backbone.path / "config.json").string();
    if (saved.multiple_choice != mc) {
        p.problems.push_back("training.zero_shot evaluates the checkpoint's own head, but " + where + " has a " +
                             (saved.multiple_choice ? "multiple-choice" : "sequence-classification") + " head and task " +
                             e.task.name + " needs a " + (mc ? "multiple-choice" : "sequence-classification") +
                             " head; train it first (training.zero_shot: false)");
        return;
    }
    if (!mc && saved.num_labels() != need) {
        p.problems.push_back("training.zero_shot evaluates the checkpoint's own head, but " + where + " has " +
                             std::to_string(saved.num_labels()) + " labels and task " + e.task.name + " has " +
                             std::to_string(need) + "; pick the checkpoint trained on this task, or train a new head "
                             "(training.zero_shot: false)");
        return;
    }
    const SafetensorsReader reader = SafetensorsReader::open_dir(e.backbone.path);
    const std::string head = arch_spec(saved.arch).head(saved).out + ".weight";
    if (!reader.contains(head))
        p.problems.push_back("training.zero_shot evaluates the checkpoint's own head, but " + reader.source() +
                             " has no '" + head + "' (a bare backbone); train a head first (training.zero_shot: false)");
}

// The metrics an evaluation of the task reports (evaluate_task), besides "loss".
std::vector<std::string> reported_metrics(const Experiment& e) {
    std::map<std::string, double> m;
    if (e.task.qa) return task_multiple_choice(e) ? std::vector<std::string>{"acc"} : std::vector<std::string>{"acc", "acc_norm"};
    if (e.task.is_mlm()) return {"masked_accuracy", "perplexity"};  // trainer.cpp's evaluate_masked_lm
    const int K = task_num_labels(e);
    const std::vector<double> logits(static_cast<std::size_t>(2 * K), 0.0);
    const std::vector<int> labels = {0, K > 1 ? 1 : 0};
    const std::vector<double> targets = {0.0, 1.0};
    m = e.task.is_toy() ? task_metrics(logits, K, labels, targets) : glue_metrics(e.task.name, logits, K, labels, targets);
    std::vector<std::string> names;
    const bool two_devs = !e.task.is_toy() && e.task.name == "mnli" && e.task.dev_split.empty();  // matched and mismatched
    for (const auto& [k, v] : m) {
        if (two_devs) {
            names.push_back(k + "_matched");
            names.push_back(k + "_mismatched");
        } else {
            names.push_back(k);
        }
    }
    return names;
}

void check_early_stopping(const Experiment& e, Preflight& p) {
    const std::string& metric = e.train.early_stopping_metric;
    if (metric.empty() || metric == "loss") return;
    const std::vector<std::string> names = reported_metrics(e);
    if (std::find(names.begin(), names.end(), metric) != names.end()) return;
    std::string have = "loss";
    for (const std::string& n : names) have += ", " + n;
    p.problems.push_back("training.early_stopping.metric '" + metric + "' is not a metric task " + e.task.name +
                         " reports (it reports: " + have + ")");
}

std::string memory_breakdown(const MemoryReport& m) {
    const std::size_t used = m.resident() + m.activation_peak;
    return "weights " + size_text(m.frozen_weights + m.trainable_weights) + ", gradients " + size_text(m.gradients) +
           ", optimizer state " + size_text(m.optimizer_state) + ", activations " + size_text(m.activation_peak) +
           ", arena chunk rounding " + size_text(m.reserved > used ? m.reserved - used : 0) + ", op workspaces " +
           size_text(m.workspace);
}

}  // namespace

Preflight preflight(const Experiment& e, Backend& backend) {
    Preflight p;
    const ModelConfig cfg = experiment_model_config(e);
    const TrainConfig& c = e.train;
    p.seq = e.task.is_toy() ? std::min(c.max_seq_length, e.task.toy.max_length) : c.max_seq_length;
    check_positions(e, cfg, p.seq, p);
    check_zero_shot_head(e, p);
    check_early_stopping(e, p);
    if (!p.ok()) return p;  // a plan of an impossible shape would only repeat the problem

    // Memory: the largest micro-batch (multiple choice: questions x the task's most choices) at
    // the longest sequence, and an evaluation batch, on this backend's workspace rule.
    p.train_rows = (c.batch_size + c.gradient_accumulation - 1) / c.gradient_accumulation * rows_per_unit(e);
    p.eval_rows = std::max(1, c.eval_batch_size);
    const bool bf16 = e.gemm_precision == "bf16";
    const WorkspaceRule rule = backend.is_host() ? WorkspaceRule::cpu(bf16) : WorkspaceRule::cuda_device(bf16);
    p.plan = c.zero_shot ? plan_run_memory(cfg, e.method, e.dtype, 1, p.eval_rows, p.seq, rule)
                         : plan_run_memory(cfg, e.method, e.dtype, p.train_rows, p.eval_rows, p.seq, rule);
    std::size_t total = 0;
    if (backend.device_memory(&p.available, &total)) {
        p.memory_where = "the " + backend.name() + " device (" + size_text(p.available) + " free of " + size_text(total) + ")";
    } else {
        const HostMemory h = host_memory();
        p.available = h.available;
        p.memory_where = "this computer (" + size_text(h.available) + " available of " + size_text(h.total) +
                         (h.limited_by.empty() ? "" : ", " + h.limited_by) + ")";
    }
    const MemoryReport& m = p.plan.report;
    if (m.footprint() > p.available)
        p.problems.push_back("the run needs " + size_text(m.footprint()) + " (" + memory_breakdown(m) +
                             "; a training micro-batch of " + std::to_string(p.train_rows) + " x " + std::to_string(p.seq) +
                             " tokens, evaluation batches of " + std::to_string(p.eval_rows) + ") but " + p.memory_where +
                             " cannot hold it; lower training.batch_size, training.eval_batch_size or training.max_seq_length, "
                             "raise training.gradient_accumulation_steps, or pick a method that keeps fewer activations "
                             "(meft plan --all-methods compares them)");
    return p;
}

std::vector<std::string> static_problems(const Experiment& e) {
    Preflight p;
    try {
        const ModelConfig cfg = experiment_model_config(e);
        const int seq = e.task.is_toy() ? std::min(e.train.max_seq_length, e.task.toy.max_length) : e.train.max_seq_length;
        check_positions(e, cfg, seq, p);
        check_zero_shot_head(e, p);
        check_early_stopping(e, p);
        if (p.ok()) plan_memory(cfg, e.method, e.dtype, 1, std::min(seq, 8));  // builds the model with the method
    } catch (const std::exception& ex) {
        p.problems.push_back(ex.what());
    }
    return p.problems;
}

std::string grid_problems(const std::vector<Experiment>& exps, int first_index) {
    std::vector<std::pair<std::string, std::vector<int>>> found;  // in the order first seen
    for (std::size_t i = 0; i < exps.size(); ++i)
        for (const std::string& p : static_problems(exps[i])) {
            auto it = std::find_if(found.begin(), found.end(), [&](const auto& f) { return f.first == p; });
            if (it == found.end()) it = found.insert(found.end(), {p, {}});
            it->second.push_back(first_index + static_cast<int>(i));
        }
    std::string out;
    for (const auto& [problem, where] : found) {
        std::string list;
        for (std::size_t k = 0; k < where.size();) {  // runs of consecutive numbers as a-b
            std::size_t end = k;
            while (end + 1 < where.size() && where[end + 1] == where[end] + 1) ++end;
            list += (list.empty() ? "" : ", ") + std::to_string(where[k]) + (end > k ? "-" + std::to_string(where[end]) : "");
            k = end + 1;
        }
        out += "\n  " + std::string(where.size() == 1 ? "expansion " : "expansions ") + list +
               (exps.size() > 1 && where.size() == exps.size() ? " (all)" : "") + ": " + problem;
    }
    return out;
}

}  // namespace meft
