#include "ui/runs/run_data.h"

#include "core/error.h"

namespace meft::ui {

QString RunData::label_for(std::int64_t id, const nlohmann::json& config) {
    const auto get = [&](const char* a, const char* b) {
        return config.contains(a) && config[a].contains(b) && config[a][b].is_string()
                   ? QString::fromStdString(config[a][b].get<std::string>())
                   : QString("?");
    };
    return QString("#%1 %2 · %3").arg(id).arg(get("method", "name"), get("task", "name"));
}

RunData RunData::load(const ExperimentDb& db, std::int64_t run) {
    const auto info = db.run(run);
    if (!info) throw Error("no run " + std::to_string(run) + " in the experiment database");
    RunData d;
    d.id = run;
    d.status = info->status;
    d.config = info->config;
    d.final_metrics = info->final_metrics;
    d.label = label_for(run, d.config);
    d.info = *info;
    d.steps = db.steps(run);
    d.evals = db.evals(run);
    d.layer_memory = db.layer_memory(run);
    d.step_memory = db.step_memory(run);
    d.reconstruction = db.reconstruction(run);
    const nlohmann::json& m = d.final_metrics;
    if (m.is_object()) {
        if (m.contains("steps_per_epoch") && m["steps_per_epoch"].is_number()) d.steps_per_epoch = m["steps_per_epoch"].get<int>();
        if (m.contains("trainable_parameters") && m.contains("all_parameters") && m["all_parameters"].get<double>() > 0)
            d.trainable_share = m["trainable_parameters"].get<double>() / m["all_parameters"].get<double>();
    }
    return d;
}

void RunData::keep_until(int step) {
    std::erase_if(steps, [&](const StepRow& r) { return r.step > step; });
    std::erase_if(evals, [&](const auto& e) { return e.first > step; });
    std::erase_if(reconstruction, [&](const auto& e) { return e.first > step; });
}

RunTail RunTail::read(const ExperimentDb& db, std::int64_t run, int after_step, int after_eval, int after_reconstruction) {
    RunTail t;
    const auto info = db.run(run);
    if (!info) return t;
    t.status = info->status;
    t.steps = db.steps(run, after_step);
    t.evals = db.evals(run);
    std::erase_if(t.evals, [&](const auto& e) { return e.first <= after_eval; });
    t.reconstruction = db.reconstruction(run);
    std::erase_if(t.reconstruction, [&](const auto& e) { return e.first <= after_reconstruction; });
    return t;
}

}  // namespace meft::ui
