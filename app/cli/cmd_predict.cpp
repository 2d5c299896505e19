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
#include "train/metrics.h"
#include "train/trainer.h"

namespace meft::cli {

namespace {
struct PredictArgs {
    std::string model, data, out, tokenizer;
    int batch_size = 32;
    int max_seq_length = 512;
    bool float64 = false;
    std::string backend = "auto";
    std::string encoding = "utf-8";
};

int run(const PredictArgs& a) {
    auto backend = make_backend(a.backend);
    LoadReport rep;
    auto model = load_model(a.model, *backend, a.float64 ? DType::F64 : DType::F32, {}, &rep);
    const bool lm = is_decoder_only(model->config().arch);
    for (const std::string& n : rep.notices()) std::cerr << n << "\n";
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
    std::vector<Example> ex = read_jsonl_examples(a.data, tok.get(), a.max_seq_length, decoding);
    if (lm) {
        std::string lines;
        for (Example& e : ex) {  // every real token after the first is predicted
            e.token_labels = e.input_ids;
            for (std::size_t t = 0; t < e.token_labels.size(); ++t)
                if (t == 0 || (!e.attention_mask.empty() && e.attention_mask[t] == 0)) e.token_labels[t] = kIgnoreLabel;
        }
        const std::vector<double> ll = predict_outputs(*model, ex, a.batch_size, a.max_seq_length);
        for (std::size_t i = 0; i < ex.size(); ++i)
            lines += nlohmann::json{{"log_likelihood", ll[i]}, {"tokens", loss_weight(ex[i])}}.dump() + "\n";
        write_file_atomically(a.out, lines);
        std::fprintf(stderr, "wrote %zu log-likelihoods to %s\n", ex.size(), a.out.c_str());
        return 0;
    }
    const int K = model->config().num_labels();
    const std::vector<double> z = predict_outputs(*model, ex, a.batch_size, a.max_seq_length);
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
    app.add_option("--model", a->model, "Hugging Face model directory (config.json + model.safetensors)")
        ->required()
        ->check(CLI::ExistingDirectory);
    app.add_option("--data", a->data, "JSON lines: {\"input_ids\": [...], \"token_type_ids\": [...], \"attention_mask\": [...]}")
        ->required()
        ->check(CLI::ExistingFile);
    app.add_option("--out", a->out, "output JSON lines: {\"logits\": [...], \"prediction\": ...}; causal LM: "
                                    "{\"log_likelihood\": ..., \"tokens\": ...}")->required();
    app.add_option("--tokenizer", a->tokenizer, "tokenizer folder for text lines (default: the model folder)")
        ->check(CLI::ExistingDirectory);
    app.add_option("--batch-size", a->batch_size, "examples per forward pass")->check(CLI::Range(1, 4096))->capture_default_str();
    app.add_option("--max-seq-length", a->max_seq_length, "longer inputs are truncated")->check(CLI::Range(2, 65536))->capture_default_str();
    app.add_flag("--float64", a->float64, "compute in float64 (reference precision)");
    app.add_option("--backend", a->backend, "cpu, cuda or auto (CUDA when available, else CPU)")
        ->check(CLI::IsMember({"cpu", "cuda", "auto"}))
        ->capture_default_str();
    app.add_option("--encoding", a->encoding, "how --data is read: utf-8 (checked) or latin-1")
        ->check(CLI::IsMember({"utf-8", "latin-1"}))
        ->capture_default_str();
    return [a] { return run(*a); };
}

}  // namespace meft::cli
