// meft predict — logits (and prediction) for each line of a tokenized JSON-lines file; for a
// causal LM (OPT), each line's log-likelihood: the sum over its tokens t >= 1 of
// log p(token t | the tokens before it).
#include <cstdio>
#include <iostream>

#include "cli/commands.h"
#include "core/backend_select.h"
#include "core/file_io.h"
#include "data/choice_prompt.h"
#include "data/jsonl_examples.h"
#include "data/text_encoding.h"
#include "data/tokenizer.h"
#include "model/checkpoint.h"
#include "store/experiment.h"
#include "run/run_setup.h"
#include "store/saved_model.h"
#include "train/metrics.h"
#include "train/trainer.h"

namespace meft::cli {

namespace {
struct PredictArgs {
    std::string model, data, out, tokenizer;
    int batch_size = 32;
    int max_seq_length = 512;
    bool batch_size_given = false, max_seq_length_given = false;
    bool float64 = false;
    bool evaluate = false;       // re-run the evaluation the model's run recorded
    bool allow_unused = false;   // load a checkpoint with tensors the model does not use
    std::string backend = "auto";
    std::string encoding = "utf-8";
};

// The dev split the model's run evaluated, with its batch size and sequence length (the model
// folder's "meft" section), evaluated again: the run's own dev metrics, bit for bit.
int evaluate_as_recorded(const PredictArgs& a, const SavedModel& saved, Model& model) {
    const std::string where = (std::filesystem::path(a.model) / "config.json").string();
    if (saved.evaluation.is_null())
        throw Error(where + ": --evaluate needs the \"meft\" section a run's output.save_model writes (its evaluation "
                    "settings); this folder has none: pass --data instead");
    const nlohmann::json& ev = saved.evaluation;
    nlohmann::json j = {{"name", "evaluate"},
                        {"backbone", {{"path", a.model}}},
                        {"task", ev.at("task")},
                        {"method", saved.method_json},
                        {"training", {{"max_seq_length", ev.at("max_seq_length")}, {"eval_batch_size", ev.at("batch_size")},
                                      {"zero_shot", true}}}};
    if (!a.tokenizer.empty()) j["backbone"]["tokenizer"] = a.tokenizer;
    const Experiment e = parse_experiment(j, where + " (meft.evaluation)");
    const TaskData data = build_task(e, model.config());
    const EvalReport r = evaluate_task(model, data, e.train.eval_batch_size, e.train.max_seq_length);
    nlohmann::json out = r.metrics;
    out["dev_loss"] = r.loss;
    const std::string text = out.dump(2) + "\n";
    std::fwrite(text.data(), 1, text.size(), stdout);
    if (!a.out.empty()) write_file_atomically(a.out, text);
    std::fprintf(stderr, "evaluated %s on task %s (%zu dev examples, batch %d, length %d)\n", a.model.c_str(),
                 data.name.c_str(), data.dev.size() + data.dev_extra.size(), e.train.eval_batch_size, e.train.max_seq_length);
    return 0;
}

int run(const PredictArgs& a) {
    if (a.evaluate == !a.data.empty())
        throw Error("meft predict needs exactly one of --data FILE.jsonl (predict its lines) and --evaluate (the run's own dev split)");
    if (!a.data.empty() && a.out.empty()) throw Error("meft predict --data needs --out FILE.jsonl");
    auto backend = make_backend(a.backend);
    // A folder a run saved names its method: the model is rebuilt with it, so its adapters (or
    // MEFT's reversible layers) compute as they did in training.
    const SavedModel saved = read_saved_model(a.model);
    LoadOptions lo;
    lo.method = saved.method;
    LoadReport rep;
    auto model = load_model(a.model, *backend, a.float64 ? DType::F64 : DType::F32, lo, &rep);
    if (!rep.ignored.empty() && !a.allow_unused) {
        std::string names;
        for (std::size_t i = 0; i < rep.ignored.size() && i < 8; ++i) names += (i ? ", " : "") + rep.ignored[i];
        if (rep.ignored.size() > 8) names += ", ... (" + std::to_string(rep.ignored.size()) + " in all)";
        throw Error(a.model + ": the checkpoint has tensors this model does not use: " + names +
                    (saved.has_section ? std::string()
                                       : " (a model trained with a method such as LoRA or adapters, saved without its "
                                         "\"meft\" section, would predict as its base model)") +
                    "; pass --allow-unused to predict without them");
    }
    for (const std::string& n : rep.notices()) std::cerr << n << "\n";
    if (a.evaluate) return evaluate_as_recorded(a, saved, *model);
    if (model->config().masked_lm)
        throw Error(a.model + ": a masked language model (" + model->config().to_json()["architectures"][0].get<std::string>() +
                    ") has no task head to predict with: fine-tune it on a task first (backbone.path), or use "
                    "--evaluate for its held-out MLM metrics");
    const bool lm = is_decoder_only(model->config().arch);
    // The run's evaluation settings, unless given.
    int batch_size = a.batch_size, max_seq_length = a.max_seq_length;
    if (saved.evaluation.is_object()) {
        if (!a.batch_size_given) batch_size = saved.evaluation.value("batch_size", batch_size);
        if (!a.max_seq_length_given) max_seq_length = saved.evaluation.value("max_seq_length", max_seq_length);
    }
    // Text lines need a tokenizer: --tokenizer, or the model folder's own tokenizer files.
    std::unique_ptr<Tokenizer> tok;
    if (!a.tokenizer.empty()) {
        tok = load_tokenizer(a.tokenizer);
    } else {
        try {
            tok = load_tokenizer(a.model);
        } catch (const Error&) {
            // no tokenizer beside the model: fine as long as every line is already tokenized
        }
    }
    TextDecoding decoding;
    decoding.encoding = *text_encoding_from_name(a.encoding);  // CLI11 checked the name
    decoding.advice = "the file may be Latin-1 — pass --encoding latin-1 to read it as such";
    std::vector<Example> ex = read_jsonl_examples(a.data, tok.get(), max_seq_length, decoding, model->config().vocab_size);
    if (lm) {
        std::string lines;
        for (Example& e : ex) {  // every real token after the first is predicted
            e.token_labels = e.input_ids;
            for (std::size_t t = 0; t < e.token_labels.size(); ++t)
                if (t == 0 || (!e.attention_mask.empty() && e.attention_mask[t] == 0)) e.token_labels[t] = kIgnoreLabel;
        }
        const std::vector<double> ll = predict_outputs(*model, ex, batch_size, max_seq_length);
        for (std::size_t i = 0; i < ex.size(); ++i)
            lines += nlohmann::json{{"log_likelihood", ll[i]}, {"tokens", loss_weight(ex[i])}}.dump() + "\n";
        write_file_atomically(a.out, lines);
        std::fprintf(stderr, "wrote %zu log-likelihoods to %s\n", ex.size(), a.out.c_str());
        return 0;
    }
    const int K = model->config().num_labels();
    const std::vector<double> z = predict_outputs(*model, ex, batch_size, max_seq_length);
    const std::vector<int> pred = K > 1 ? argmax_rows(z, K) : std::vector<int>{};
    std::string lines;
    for (std::size_t i = 0; i < ex.size(); ++i) {
        nlohmann::json j;
        const std::vector<double> row(z.begin() + static_cast<std::ptrdiff_t>(i * K),
                                      z.begin() + static_cast<std::ptrdiff_t>((i + 1) * K));
        j["logits"] = row;
        if (K > 1) {
            j["prediction"] = pred[i];
            j["label"] = model->config().labels[static_cast<std::size_t>(pred[i])];
        } else {
            j["prediction"] = row[0];
        }
        lines += j.dump() + "\n";
    }
    write_file_atomically(a.out, lines);
    std::fprintf(stderr, "wrote %zu predictions to %s\n", ex.size(), a.out.c_str());
    return 0;
}
}  // namespace

Runner add_predict(CLI::App& app) {
    auto a = std::make_shared<PredictArgs>();
    app.add_option("--model", a->model, "Hugging Face model directory (config.json + model.safetensors); a folder a run "
                                        "saved rebuilds its method from config.json's \"meft\" section")
        ->required()
        ->check(CLI::ExistingDirectory);
    app.add_option("--data", a->data, "JSON lines: {\"input_ids\": [...], \"token_type_ids\": [...], \"attention_mask\": [...]} "
                                      "or {\"text\": ..., \"text_pair\": ...}")
        ->check(CLI::ExistingFile);
    app.add_flag("--evaluate", a->evaluate,
                 "instead of --data: evaluate the dev split the model's run evaluated, with its batch size and length, and "
                 "print the dev metrics as JSON (they equal the run's own)");
    app.add_option("--out", a->out, "output JSON lines: {\"logits\": [...], \"prediction\": ...}; causal LM: "
                                    "{\"log_likelihood\": ..., \"tokens\": ...}; with --evaluate, the metrics");
    app.add_option("--tokenizer", a->tokenizer, "tokenizer folder for text lines (default: the model folder)")
        ->check(CLI::ExistingDirectory);
    app.add_option("--batch-size", a->batch_size, "examples per forward pass (default: the run's evaluation batch size, else 32)")
        ->check(CLI::Range(1, 4096))
        ->each([a](const std::string&) { a->batch_size_given = true; });
    app.add_option("--max-seq-length", a->max_seq_length, "longer inputs are truncated (default: the run's, else 512)")
        ->check(CLI::Range(2, 65536))
        ->each([a](const std::string&) { a->max_seq_length_given = true; });
    app.add_flag("--float64", a->float64, "compute in float64 (reference precision)");
    app.add_flag("--allow-unused", a->allow_unused, "predict even when the checkpoint has tensors the model does not use");
    app.add_option("--backend", a->backend, "cpu, cuda or auto (CUDA when available, else CPU)")
        ->check(CLI::IsMember({"cpu", "cuda", "auto"}))
        ->capture_default_str();
    app.add_option("--encoding", a->encoding, "how --data is read: utf-8 (checked) or latin-1")
        ->check(CLI::IsMember({"utf-8", "latin-1"}))
        ->capture_default_str();
    return [a] { return run(*a); };
}

}  // namespace meft::cli
