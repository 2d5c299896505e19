#include "run/run_setup.h"

#include <algorithm>
#include <iostream>

#include "core/error.h"
#include "core/host_memory.h"
#include "data/glue.h"
#include "data/mlm_task.h"
#include "data/qa.h"
#include "data/qa_lm_task.h"
#include "data/qa_pair_task.h"
#include "data/text_task.h"
#include "data/tokenizer.h"
#include "data/toy_task.h"
#include "model/checkpoint.h"
#include "store/saved_model.h"
#include "train/memory_plan.h"

namespace meft {

namespace {
void tell(const std::function<void(const std::string&)>& notice, const std::string& what) {
    if (notice) notice(what);
    else std::cerr << what << "\n";
}
// A model folder a run saved (its config.json has a "meft" section) holds its method's trained
// tensors: fine-tuning it further keeps them only under the same method. Another method would
// silently drop them (a LoRA-trained model would start again from its base) — refused, naming both.
void check_saved_method(const Experiment& e) {
    const SavedModel saved = read_saved_model(e.backbone.path);
    if (!saved.has_section) return;
    const MethodKind k = saved.method.kind;
    if (k == MethodKind::Full || k == MethodKind::BitFit) return;  // plain weights: any method applies
    if (same_architecture(saved.method, e.method)) return;
    const nlohmann::json mine = resolved_config(e)["method"];
    const bool mergeable = is_lora_kind(k) || k == MethodKind::VeRA || k == MethodKind::IA3;
    throw Error((e.backbone.path / "config.json").string() + ": this model was fine-tuned with " + saved.method_json.dump() +
                " (its \"meft\" section); method " + mine.dump() + " would drop that method's trained tensors. Use the same "
                "method to continue training it" +
                (mergeable ? ", or fine-tune from the merged checkpoint the run saved beside it (merged/)" : std::string()));
}
}  // namespace


std::unique_ptr<Model> build_model(const Experiment& e, Backend& backend, int num_labels,
                                   const std::function<void(const std::string&)>& notice) {
    std::unique_ptr<Model> model;
    if (!e.backbone.preset.empty()) {
        ModelConfig cfg = preset_config(e.backbone.arch, e.backbone.preset);
        cfg.set_num_labels(num_labels);
        if (task_multiple_choice(e)) cfg.set_multiple_choice();
        if (e.task.is_mlm()) cfg.set_masked_lm();
        if (e.dropout) cfg.set_dropout(*e.dropout);
        cfg.attention = e.attention;
        model = make_model(cfg, backend, e.dtype, e.method);
        model->init_weights(e.backbone.init_seed);
    } else {
        check_saved_method(e);
        LoadOptions lo;
        lo.num_labels = num_labels;
        lo.head_seed = e.backbone.init_seed;
        lo.method = e.method;
        lo.dropout = e.dropout;
        lo.multiple_choice = task_multiple_choice(e);  // the task's head, whatever the folder's was
        lo.masked_lm = e.task.is_mlm();
        lo.attention = e.attention;
        LoadReport rep;
        model = load_model(e.backbone.path, backend, e.dtype, lo, &rep);
        for (const std::string& n : rep.notices()) tell(notice, n);
    }
    return model;
}

ModelConfig experiment_model_config(const Experiment& e) {
    ModelConfig cfg = e.backbone.preset.empty() ? load_model_config(e.backbone.path)
                                                : preset_config(e.backbone.arch, e.backbone.preset);
    cfg.set_num_labels(task_num_labels(e));
    if (task_multiple_choice(e)) cfg.set_multiple_choice();
    if (e.task.is_mlm()) cfg.set_masked_lm();
    cfg.attention = e.attention;
    return cfg;
}

bool task_multiple_choice(const Experiment& e) { return e.task.qa && !is_decoder_only(e.backbone.arch); }

int rows_per_unit(const Experiment& e) { return task_multiple_choice(e) ? qa_task(e.task.name).most_choices() : 1; }

int task_num_labels(const Experiment& e) {
    if (e.task.is_toy()) return e.task.toy.num_labels;
    if (e.task.is_mlm()) return 2;  // unused: the masked-LM head predicts tokens
    if (task_multiple_choice(e)) return 1;  // one score per (context, choice) pair
    if (e.task.qa) return 2;  // causal LM: the labels are tokens; 2 = gold or not, per choice
    const GlueTaskInfo& g = glue_task(e.task.name);
    return g.regression ? 1 : g.num_labels();
}

TaskData build_task(const Experiment& e, const ModelConfig& model, const std::function<void(const std::string&)>& notice) {
    if (e.task.is_toy()) return make_toy_task(e.task.toy, model);
    const std::filesystem::path tok_dir = !e.backbone.tokenizer.empty() ? e.backbone.tokenizer : e.backbone.path;
    if (tok_dir.empty())
        throw Error(e.file.string() + ": task '" + e.task.name +
                    "' needs a tokenizer: set backbone.tokenizer to a tokenizer folder (vocab.txt, or vocab.json + merges.txt, or tokenizer.json)");
    const auto tok = load_tokenizer(tok_dir);
    if (tok->vocab_size() > model.vocab_size)
        throw Error(tok_dir.string() + ": the tokenizer has " + std::to_string(tok->vocab_size()) +
                    " tokens but the model's vocabulary has " + std::to_string(model.vocab_size));
    if (e.task.is_mlm()) {
        MlmTaskRequest m;
        for (const TaskSpec::TextSource& s : e.task.text) {
            if (s.glue.empty()) m.files.push_back({s.path, s.field});
            else m.glue_train.emplace_back(s.glue, s.path);
        }
        m.held_out = e.task.held_out;
        m.mask_probability = e.task.mask_probability;
        m.whole_word = e.task.whole_word_masking;
        m.block_tokens = std::min(e.train.max_seq_length, model.max_tokens());
        m.seed = e.train.seed;
        m.max_train_blocks = e.task.max_train_examples;
        m.max_dev_blocks = e.task.max_dev_examples;
        m.decoding.encoding = e.task.encoding;
        m.decoding.advice = "the file may be Latin-1 — set task.encoding to \"latin-1\" to read it as such";
        return load_mlm_task(m, *tok);
    }
    if (e.task.qa) {
        QaTaskRequest q;
        q.task = e.task.name;
        q.dir = e.task.data_dir;
        q.dev_split = e.task.dev_split;
        q.max_train_examples = e.task.max_train_examples;
        q.max_dev_examples = e.task.max_dev_examples;
        q.max_seq_length = e.train.max_seq_length;
        q.load_train = !e.train.zero_shot;
        q.bos = model.bos_token_id;
        q.decoding.encoding = e.task.encoding;
        return is_decoder_only(model.arch) ? load_qa_lm_task(q, *tok) : load_qa_pair_task(q, *tok);
    }
    GlueTaskRequest r;
    r.task = e.task.name;
    r.dir = e.task.data_dir;
    r.dev_split = e.task.dev_split;
    r.max_train_examples = e.task.max_train_examples;
    r.max_dev_examples = e.task.max_dev_examples;
    r.max_seq_length = e.train.max_seq_length;
    r.decoding.encoding = e.task.encoding;
    std::vector<std::string> warnings;
    TaskData t = load_glue_task(r, *tok, &warnings);
    for (const std::string& w : warnings) tell(notice, "notice: " + w);
    return t;
}

StepTimeline experiment_step_timeline(const Experiment& e, Backend* backend) {
    const ModelConfig cfg = experiment_model_config(e);
    const int batch = e.train.batch_size * rows_per_unit(e);
    const int seq = std::min(e.train.max_seq_length, cfg.max_tokens());
    if (!backend) return plan_step_timeline(cfg, e.method, e.dtype, batch, seq);
    if (backend->is_host()) {  // a measurement allocates for real: refuse one this computer cannot hold
        const std::size_t need = plan_memory(cfg, e.method, e.dtype, batch, seq).report.footprint();
        const HostMemory host = host_memory();
        if (host.available > 0 && need > host.available)
            throw Error("measuring this step (" + std::to_string(batch) + " x " + std::to_string(seq) + ") on the CPU needs " +
                        size_text(need) + " and " + size_text(host.available) + " is free" +
                        (host.limited_by.empty() ? std::string() : " (" + host.limited_by + ")") +
                        "; the plan shows the same timeline without allocating it");
    }
    return measure_step_timeline(*backend, cfg, e.method, e.dtype, batch, seq);
}

}  // namespace meft
