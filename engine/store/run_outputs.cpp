#include "store/run_outputs.h"

#include "core/file_io.h"
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

void write_run_outputs(const Experiment& e, Model& model, const TrainResult& r, const std::string& run_uuid) {
    if (e.output_dir.empty()) return;
    write_file_atomically(e.output_dir / "results.json", results_json(e, r, run_uuid).dump(2) + "\n");
    if (e.save_model) save_trained_model(model, e, e.output_dir / "model", run_uuid);
}

}  // namespace meft
