// meft init-model — a random-initialised preset written as a Hugging Face model directory:
// BertForSequenceClassification, RobertaForSequenceClassification or OPTForCausalLM.
#include <algorithm>
#include <cstdio>
#include <fstream>

#include "cli/commands.h"
#include "core/cpu_backend.h"
#include "core/error.h"
#include "core/file_io.h"
#include "model/checkpoint.h"
#include "store/saved_model.h"

namespace meft::cli {

namespace {
struct InitArgs {
    std::string arch = "bert", preset = "toy", out, vocab;
    int labels = 2;
    std::uint64_t seed = 0;
    bool force = false;  // replace a model already in --out
};

std::string read_file(const std::filesystem::path& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) throw Error(file.string() + ": cannot read");
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// vocab.txt: one token per line (BERT); vocab.json: an object token -> id (RoBERTa).
int vocab_size_of(const std::filesystem::path& file) {
    std::ifstream in(file);
    if (!in) throw Error(file.string() + ": cannot open vocabulary");
    if (file.extension() == ".json") {
        nlohmann::json j;
        try {
            j = nlohmann::json::parse(in);
        } catch (const nlohmann::json::exception& e) {
            throw Error(file.string() + ": invalid JSON: " + e.what());
        }
        if (!j.is_object() || j.empty()) throw Error(file.string() + ": expected an object mapping tokens to ids");
        int max_id = -1;
        for (auto it = j.begin(); it != j.end(); ++it) {
            if (!it.value().is_number_integer()) throw Error(file.string() + ": id of token '" + it.key() + "' is not an integer");
            max_id = std::max(max_id, it.value().get<int>());
        }
        return max_id + 1;
    }
    int n = 0;
    std::string line;
    while (std::getline(in, line)) ++n;
    if (n == 0) throw Error(file.string() + ": vocabulary is empty");
    return n;
}

int run(const InitArgs& a) {
    if (holds_model(a.out) && !a.force)
        throw Error(a.out + " already holds a model (config.json or weights); pass --force to replace it, or choose another --out");
    const Arch arch = parse_arch(a.arch);
    const std::vector<std::string> presets = preset_names(arch);
    if (std::find(presets.begin(), presets.end(), a.preset) == presets.end())
        throw Error("--preset " + a.preset + " is not one of " + a.arch + "'s shapes (" + listed(presets) + ")");
    ModelConfig cfg = preset_config(arch, a.preset);
    if (!a.vocab.empty()) cfg.vocab_size = vocab_size_of(a.vocab);
    const bool lm = is_decoder_only(arch);
    if (!lm) {
        cfg.set_num_labels(a.labels);
        if (a.labels == 1) cfg.problem_type = "regression";
    }
    auto backend = make_cpu_backend();
    std::unique_ptr<Model> model = make_model(cfg, *backend, DType::F32);
    model->init_weights(a.seed);
    save_model(*model, a.out);
    if (!a.vocab.empty()) {  // the tokenizer files beside the weights: vocab.txt, or vocab.json + merges.txt
        const std::filesystem::path vocab(a.vocab), dir(a.out);
        write_file_atomically(dir / vocab.filename(), read_file(vocab));
        const auto merges = vocab.parent_path() / "merges.txt";
        if (vocab.extension() == ".json" && std::filesystem::exists(merges)) write_file_atomically(dir / "merges.txt", read_file(merges));
    }
    const std::string head = lm ? std::string("tied LM head")
                                : std::to_string(a.labels) + (a.labels == 1 ? " label, regression" : " labels");
    std::printf("wrote %s %s (%.2f M parameters, vocab %d, %s) to %s\n", a.arch.c_str(), a.preset.c_str(),
                double(model->params().count(false)) / 1e6, cfg.vocab_size, head.c_str(), a.out.c_str());
    return 0;
}
}  // namespace

Runner add_init_model(CLI::App& app) {
    auto a = std::make_shared<InitArgs>();
    app.add_option("--arch", a->arch, "backbone family")->check(CLI::IsMember(arch_names()))->capture_default_str();
    app.add_option("--preset", a->preset, "shape: toy (4x128), tiny (2x128), base (12x768), large (24x1024; bart 12+12), 1.3b (opt: 24x2048); bart splits the layers between encoder and decoder")
        ->check(CLI::IsMember(preset_names()))
        ->capture_default_str();
    app.add_option("--out", a->out, "output directory (created)")->required();
    app.add_option("--vocab", a->vocab, "vocab.txt or vocab.json: sets vocab_size and is copied beside the model")
        ->check(CLI::ExistingFile);
    app.add_option("--labels", a->labels, "number of labels (1 = regression; ignored for opt)")->check(CLI::Range(1, 1000))->capture_default_str();
    app.add_option("--seed", a->seed, "initialisation seed")->capture_default_str();
    app.add_flag("--force", a->force, "replace a model --out already holds");
    return [a] { return run(*a); };
}

}  // namespace meft::cli
