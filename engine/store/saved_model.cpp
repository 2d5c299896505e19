#include "store/saved_model.h"

#include <fstream>
#include <system_error>

#include "core/error.h"
#include "core/file_io.h"
#include "model/checkpoint.h"

namespace meft {

namespace fs = std::filesystem;

namespace {
const char* const kTokenizerFiles[] = {"vocab.txt",        "vocab.json",          "merges.txt",       "tokenizer.json",
                                       "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json"};

nlohmann::json read_json(const fs::path& file) {
    std::ifstream in(file);
    if (!in) throw Error(file.string() + ": cannot read");
    try {
        return nlohmann::json::parse(in);
    } catch (const nlohmann::json::parse_error& e) {
        throw Error(file.string() + ": not valid JSON: " + e.what());
    }
}

fs::path absolute_or_empty(const std::string& p) { return p.empty() ? fs::path() : fs::absolute(p).lexically_normal(); }
}  // namespace

nlohmann::json meft_section(const Experiment& e, const std::string& run_uuid) {
    const nlohmann::json resolved = resolved_config(e);
    nlohmann::json task = resolved["task"];
    if (task.contains("data_dir") && task["data_dir"].is_string())
        task["data_dir"] = absolute_or_empty(task["data_dir"].get<std::string>()).string();
    return {{"format", 1},
            {"method", resolved["method"]},
            {"evaluation", {{"task", task}, {"batch_size", e.train.eval_batch_size}, {"max_seq_length", e.train.max_seq_length}}},
            {"run", {{"uuid", run_uuid}, {"experiment", e.name}}}};
}

int copy_tokenizer_files(const fs::path& from, const fs::path& to) {
    int copied = 0;
    for (const char* name : kTokenizerFiles) {
        const fs::path src = from / name;
        std::error_code ec;
        if (!fs::is_regular_file(src, ec)) continue;
        std::ifstream in(src, std::ios::binary);
        const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        if (!in.good() && !in.eof()) throw Error(src.string() + ": cannot read");
        write_file_atomically(to / name, bytes);
        ++copied;
    }
    return copied;
}

bool holds_model(const fs::path& dir) {
    std::error_code ec;
    for (const char* f : {"config.json", "model.safetensors", "model.safetensors.index.json", "adapter_config.json"})
        if (fs::exists(dir / f, ec)) return true;
    return false;
}

void save_trained_model(Model& model, const Experiment& e, const fs::path& dir, const std::string& run_uuid) {
    save_model(model, dir, e.dtype == DType::F64 ? DType::F64 : DType::F32);
    nlohmann::json config = read_json(dir / "config.json");
    config["meft"] = meft_section(e, run_uuid);
    write_file_atomically(dir / "config.json", config.dump(2) + "\n");
    const fs::path tokenizer = !e.backbone.tokenizer.empty() ? e.backbone.tokenizer : e.backbone.path;
    if (!tokenizer.empty()) copy_tokenizer_files(tokenizer, dir);
}

SavedModel read_saved_model(const fs::path& dir) {
    SavedModel s;
    const fs::path file = dir / "config.json";
    std::error_code ec;
    if (!fs::exists(file, ec)) return s;  // not a model folder: loading it says so
    const nlohmann::json config = read_json(file);
    if (!config.is_object() || !config.contains("meft")) return s;
    const nlohmann::json& m = config["meft"];
    const std::string where = file.string() + ": meft";
    if (!m.is_object() || !m.contains("method"))
        throw Error(where + ": expected an object with \"method\" (written by meft run's output.save_model)");
    if (!m.contains("format") || m["format"] != 1)
        throw Error(where + ".format: " + (m.contains("format") ? m["format"].dump() : std::string("missing")) +
                    "; this program reads format 1 (a newer meft wrote it?)");
    s.has_section = true;
    s.method = parse_method(m["method"], where + ".method");
    s.method_json = m["method"];
    if (m.contains("evaluation")) s.evaluation = m["evaluation"];
    return s;
}

}  // namespace meft
