// run_data.h — one run as the workbench's views need it: its config, its curves, its memory.
// Filled from the experiment database (stored runs) or step by step (a live run).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <QString>
#include <nlohmann/json.hpp>

#include "store/database.h"

namespace meft::ui {

struct RunData {
    std::int64_t id = 0;
    QString label;                 // "#12 lora · sst2"
    std::string status;
    nlohmann::json config;         // the resolved experiment (store/experiment.h resolved_config)
    nlohmann::json final_metrics;  // may be null while running
    std::vector<StepRow> steps;
    std::vector<std::pair<int, std::map<std::string, double>>> evals;  // step -> metric -> value ("loss" too)
    std::vector<LayerMemoryRow> layer_memory;                          // planned and measured
    std::vector<StepMemoryRow> step_memory;                            // the parts of each peak (store/step_memory.h)
    std::vector<std::pair<int, std::vector<double>>> reconstruction;   // step -> per-layer relative error
    int steps_per_epoch = 0;       // 0 when unknown
    double trainable_share = 0;    // trainable / all parameters, 0..1 (0 when unknown)
    RunInfo info;                  // the run's row: status and its message, times, environment (stored runs)

    // Everything the database holds about the run (throws meft::Error when there is no such run).
    static RunData load(const ExperimentDb& db, std::int64_t run);
    // "#12 lora · sst2" from the config.
    static QString label_for(std::int64_t id, const nlohmann::json& config);

    // Only what was recorded up to `step`: steps, evaluations and reconstruction after it dropped
    // (a resumed run's history before the steps it adds live).
    void keep_until(int step);
};

// What a stored run recorded after the points a view already shows (a running run followed live).
struct RunTail {
    std::string status;  // the run's status now ("" when it is no longer in the database)
    std::vector<StepRow> steps;                                        // steps > after_step
    std::vector<std::pair<int, std::map<std::string, double>>> evals;  // evaluations at steps > after_eval
    std::vector<std::pair<int, std::vector<double>>> reconstruction;   // at steps > after_reconstruction
    static RunTail read(const ExperimentDb& db, std::int64_t run, int after_step, int after_eval, int after_reconstruction);
};

}  // namespace meft::ui
