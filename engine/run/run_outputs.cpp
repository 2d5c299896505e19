#include "run/run_outputs.h"

#include <cstdio>

#include "core/error.h"
#include "core/file_io.h"
#include "peft/peft_export.h"
#include "store/saved_model.h"

namespace meft {

nlohmann::json results_json(const Experiment& e, const TrainResult& r, const std::string& run_uuid) {
    nlohmann::json j;
    j["experiment"] = e.name;
    j["run_uuid"] = run_uuid;
    j["steps"] = r.steps;
    j["method"] = e.method.name();
    j["starting_point_deviation"] = r.start_deviation;
    j["stopped"] = r.stopped;
    j["train_loss_first"] = r.first_loss;
    j["train_loss_last"] = r.final_loss;
    j["dev_loss"] = r.final_eval.loss;
    j["dev_metrics"] = r.final_eval.metrics;
    j["elapsed_s"] = r.elapsed_s;
    j["tokens_per_s"] = r.tokens_per_s;
    j["activation_peak_bytes"] = r.activation_peak.bytes;  // the largest training step's
    j["activation_peak_step"] = r.activation_peak.step;
    j["activation_peak_batch"] = std::to_string(r.activation_peak.rows) + " x " + std::to_string(r.activation_peak.seq);
    j["activation_held_bytes"] = r.memory.held_total;      // saved for backward at that step
    return j;
}

namespace {
std::filesystem::path tokenizer_dir(const Experiment& e) { return !e.backbone.tokenizer.empty() ? e.backbone.tokenizer : e.backbone.path; }
DType file_dtype(const Experiment& e) { return e.dtype == DType::F64 ? DType::F64 : DType::F32; }
}  // namespace

void export_peft_adapter(Model& model, const Experiment& e, const std::filesystem::path& dir,
                         const std::filesystem::path& base_dir) {
    std::filesystem::path base;
    if (!e.backbone.path.empty()) {
        base = std::filesystem::absolute(e.backbone.path).lexically_normal();
    } else {  // a preset has no folder: its weights (as the run started from them) become the base
        base = std::filesystem::absolute(base_dir).lexically_normal();
        peft_adapter(model, base.string());  // refuse before writing anything when PEFT cannot express it
        save_base_model(model, base, file_dtype(e));
        if (!tokenizer_dir(e).empty()) copy_tokenizer_files(tokenizer_dir(e), base);
    }
    save_peft_adapter(model, dir, base.string(), file_dtype(e));
    if (!tokenizer_dir(e).empty()) copy_tokenizer_files(tokenizer_dir(e), dir);
}

void export_merged_model(Model& model, const Experiment& e, const std::filesystem::path& dir) {
    save_merged_model(model, dir, file_dtype(e));
    if (!tokenizer_dir(e).empty()) copy_tokenizer_files(tokenizer_dir(e), dir);
}

void write_run_outputs(const Experiment& e, Model& model, const TrainResult& r, const std::string& run_uuid,
                       const std::function<void(const std::string&)>& notice) {
    if (e.output_dir.empty()) return;
    write_file_atomically(e.output_dir / "results.json", results_json(e, r, run_uuid).dump(2) + "\n");
    if (!e.save_model) return;
    save_trained_model(model, e, e.output_dir / "model", run_uuid);
    const MethodKind k = e.method.kind;
    if (is_lora_kind(k) || k == MethodKind::VeRA || k == MethodKind::IA3) export_merged_model(model, e, e.output_dir / "merged");
    if (has_peft_layout(e.method)) {
        try {
            export_peft_adapter(model, e, e.output_dir / "adapter", e.output_dir / "base");
        } catch (const Error& ex) {  // e.g. prefix-tuning on BART: PEFT cannot express it; model/ has everything
            const std::string line = std::string("notice: no PEFT adapter written: ") + ex.what();
            if (notice) notice(line);
            else std::fprintf(stderr, "%s\n", line.c_str());
        }
    }
}

}  // namespace meft
