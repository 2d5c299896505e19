// run_outputs.h — the files a run writes into its output.dir, the same from the command line and
// the workbench, each through the durable writer: results.json (the run's recorded results) and,
// with output.save_model, the trained model as store/saved_model.h describes it.
#pragma once
#include <filesystem>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "model/model.h"
#include "store/experiment.h"
#include "train/trainer.h"

namespace meft {

// What results.json holds: the run (uuid, experiment, method), its steps, losses, dev metrics,
// starting-point deviation and activation peak — the numbers the database recorded.
nlohmann::json results_json(const Experiment& e, const TrainResult& r, const std::string& run_uuid);

// results.json, and with e.save_model the model folder <output.dir>/model; for LoRA and (IA)3 also
// <output.dir>/merged (a plain transformers checkpoint); for LoRA, (IA)3 and prefix-tuning also
// <output.dir>/adapter (Hugging Face PEFT's layout, on the backbone folder, or for a preset on
// <output.dir>/base). What PEFT cannot express is told through `notice`. Nothing without output.dir.
void write_run_outputs(const Experiment& e, Model& model, const TrainResult& r, const std::string& run_uuid,
                       const std::function<void(const std::string&)>& notice = {});

// The Hugging Face exports of a trained model: `dir` receives the PEFT adapter (base: the
// experiment's backbone folder, or `base_dir` written for a preset) or the merged checkpoint, with
// the tokenizer files. Throw Error when the method has no such layout.
void export_peft_adapter(Model& model, const Experiment& e, const std::filesystem::path& dir,
                         const std::filesystem::path& base_dir);
void export_merged_model(Model& model, const Experiment& e, const std::filesystem::path& dir);

}  // namespace meft
