// run_outputs.h — the files a run writes into its output.dir, the same from the command line and
// the workbench, each through the durable writer: results.json (the run's recorded results) and,
// with output.save_model, the trained model as store/saved_model.h describes it.
#pragma once
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "model/model.h"
#include "store/experiment.h"
#include "train/trainer.h"

namespace meft {

// What results.json holds: the run (uuid, experiment, method), its steps, losses, dev metrics,
// starting-point deviation and activation peak — the numbers the database recorded.
nlohmann::json results_json(const Experiment& e, const TrainResult& r, const std::string& run_uuid);

// results.json, and with e.save_model the model folder <output.dir>/model. Nothing without output.dir.
void write_run_outputs(const Experiment& e, Model& model, const TrainResult& r, const std::string& run_uuid);

}  // namespace meft
