// experiment.h — the experiment file: backbone, task and training settings as one JSON object.
// Format and defaults: docs/experiment-format.md. Every key is checked: an unknown key, a wrong
// type or an out-of-range value is an Error naming the file, the key path and what was expected.
#pragma once
#include <filesystem>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "core/backend_select.h"
#include "data/text_encoding.h"
#include "data/toy_task.h"
#include "model/config.h"
#include "peft/method.h"
#include "train/trainer.h"

namespace meft {

struct BackboneSpec {
    Arch arch = Arch::Bert;
    std::string preset;             // "toy" | "tiny" | "base" (opt also "1.3b"), or empty when `path` is set
    std::filesystem::path path;     // a Hugging Face model directory
    std::uint64_t init_seed = 0;    // preset weights / missing head
    std::filesystem::path tokenizer; // text tasks: a tokenizer folder ("" = the model folder)
};

struct TaskSpec {
    // "toy", a GLUE task (cola, sst2, mrpc, stsb, qqp, mnli, qnli, rte, wnli) or a multiple-choice
    // QA task (openbookqa, arc_easy, arc_challenge, piqa, sciq)
    std::string name = "toy";
    bool qa = false;                   // name is a QA task
    ToyTaskConfig toy;
    std::filesystem::path data_dir;    // GLUE / QA: the task's folder (train.tsv, dev.tsv / train.jsonl ...)
    std::string dev_split;             // "" = the task's dev split (MNLI: dev_matched)
    int max_train_examples = 0;        // > 0: only the first N training examples
    int max_dev_examples = 0;          // > 0: only the first N evaluation examples
    TextEncoding encoding = TextEncoding::utf8;  // GLUE / QA / mlm: how the files' bytes are read ("utf-8", "latin-1")
    // "mlm": masked-LM pre-training (BERT, RoBERTa) on task.text — plain-text files, .jsonl files
    // (their `field`), folders, and GLUE tasks' training splits (`glue` with its data_dir) — with
    // a held-out share of documents for evaluation; max_*_examples then count blocks.
    struct TextSource {
        std::filesystem::path path;  // a file or folder, or a GLUE task's folder
        std::string field = "text";  // .jsonl files
        std::string glue;            // a GLUE task's name: its training split's sentences
    };
    std::vector<TextSource> text;
    double held_out = 0.05;
    double mask_probability = 0.15;
    bool whole_word_masking = false;
    bool is_toy() const { return name == "toy"; }
    bool is_mlm() const { return name == "mlm"; }
};

struct Experiment {
    std::string name;
    std::filesystem::path file;     // where it was read from ("" when built in code)
    BackboneSpec backbone;
    TaskSpec task;
    MethodConfig method;
    TrainConfig train;
    std::optional<double> dropout;  // overrides the backbone's hidden/attention/classifier dropout
    DType dtype = DType::F32;       // training.dtype: the precision
    std::string backend = "auto";   // training.backend: "cpu", "cuda" or "auto"
    std::string gemm_precision = "float32";  // training.gemm_precision: "float32", "tf32" or "bf16"
    AttentionKind attention = AttentionKind::Standard;  // training.attention: "standard" or "tiled"
    std::filesystem::path output_dir;  // "" = do not write outputs
    std::vector<std::string> tags;
    std::string notes;
    nlohmann::json source;          // the file's JSON as written (this expansion's)
    std::string sweep_label;        // which expansion of a sweep this is ("" when the file has none)
    bool save_model = false;
};

Experiment parse_experiment(const nlohmann::json& j, const std::string& where);
// The backend options the experiment asks for (training.gemm_precision), for make_backend().
BackendOptions backend_options(const Experiment& e);
// The resolved settings (defaults filled in) as recorded with each run.
nlohmann::json resolved_config(const Experiment& e);
// A fingerprint of a resolved configuration (16 hex digits, FNV-1a 64 of its JSON) that a training
// checkpoint carries; training.backend and training.attention are left out (how a step computes,
// not what: a run may resume on another backend or attention).
std::string config_hash(const nlohmann::json& resolved);
// Sweeps: wherever a single value is expected, a list of values expands the file into the grid
// of all combinations (in the order the keys appear); `tags` and `method.lora.targets` are
// lists by nature and never expand. Each expansion is validated before any of them runs.
struct SweepPoint {
    nlohmann::json config;        // one fully expanded experiment object
    std::string label;            // "training.learning_rate=0.001, training.seed=2" ("" without sweeps)
};
std::vector<SweepPoint> expand_sweeps(const nlohmann::json& j);

// "training.learning_rate" -> the JSON pointer /training/learning_rate (keys without dots).
nlohmann::json::json_pointer key_pointer(const std::string& dotted);

// Command-line overrides ("training.learning_rate=3e-4", "backbone.path=/models/bert"): each
// sets one key path of the file's JSON before sweeps expand. The value is read as JSON when it
// parses as JSON (numbers, true, lists: "[1,2]" makes a sweep), else as a string.
void apply_overrides(nlohmann::json& j, const std::vector<std::string>& assignments);

// An experiment file's JSON; Error naming the file (and line:column of a JSON error).
nlohmann::json read_experiment_json(const std::filesystem::path& file);

// Every expansion of the file, parsed (relative paths resolved as below), with `overrides` applied.
// Paths are checked: a backbone folder needs config.json, a GLUE data_dir its train split (or a
// sub-folder named as in the GLUE download, e.g. SST-2/, so one data_dir can serve a sweep over tasks).
std::vector<Experiment> load_experiments(const std::filesystem::path& file,
                                         const std::vector<std::string>& overrides = {});

// The experiment JSON of `from_file` as it must read at `to_file`: its relative paths
// (backbone.path, backbone.tokenizer, task.data_dir; in sweeps, each one) rewritten so they name
// the same folders from the new file's folder. Absolute paths and every other key are unchanged.
nlohmann::json rebase_paths(nlohmann::json j, const std::filesystem::path& from_file, const std::filesystem::path& to_file);

// The same from JSON already in memory (the workbench's form): `file` is where it would live —
// relative paths resolve against its folder and messages name it.
std::vector<Experiment> experiments_from_json(nlohmann::json j, const std::filesystem::path& file,
                                              const std::vector<std::string>& overrides = {});

// A relative backbone.path resolves against the file's folder (the model travels with the
// experiment); a relative output.dir against the working directory (where the user runs).
Experiment load_experiment(const std::filesystem::path& file);

}  // namespace meft
