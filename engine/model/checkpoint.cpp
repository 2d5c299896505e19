#include "model/checkpoint.h"

#include <cstring>
#include <set>

#include "core/error.h"
#include "model/arch/arch.h"
#include "model/safetensors.h"

namespace meft {

std::vector<std::string> LoadReport::notices() const {
    std::vector<std::string> out;
    for (std::size_t i = 0; i < initialised.size(); ++i)
        out.push_back("notice: " + initialised[i] + " " +
                      (i < initialised_how.size() ? initialised_how[i] : std::string("not in the checkpoint; initialised fresh")));
    if (!ignored.empty()) {
        std::string s = "notice: " + std::to_string(ignored.size()) + " checkpoint tensor(s) not used by the model:";
        for (std::size_t i = 0; i < ignored.size() && i < 8; ++i) s += " " + ignored[i];
        if (ignored.size() > 8) s += " ...";
        out.push_back(s);
    }
    return out;
}

namespace {
// Names under which a parameter may be stored: as named, without the model prefix (bare
// BertModel / RobertaModel checkpoints), and with old TF-era LayerNorm names gamma / beta.
std::vector<std::string> candidate_names(const std::string& name, const std::string& prefix) {
    std::vector<std::string> c{name};
    if (name == "model.shared.weight") c.push_back("model.encoder.embed_tokens.weight");  // BART, tied
    if (name.rfind(prefix, 0) == 0) c.push_back(name.substr(prefix.size()));
    const std::size_t n = c.size();
    for (std::size_t i = 0; i < n; ++i) {
        const std::string& s = c[i];
        const auto ln = s.find("LayerNorm.");
        if (ln == std::string::npos) continue;
        std::string old = s;
        if (s.size() >= 7 && s.compare(s.size() - 7, 7, ".weight") == 0) old = s.substr(0, s.size() - 7) + ".gamma";
        if (s.size() >= 5 && s.compare(s.size() - 5, 5, ".bias") == 0) old = s.substr(0, s.size() - 5) + ".beta";
        c.push_back(old);
    }
    return c;
}

// Host values of the model's dtype -> little-endian bytes of the checkpoint's dtype.
template <typename T> std::vector<std::byte> encode(const T* v, std::size_t n, DType to) {
    std::vector<std::byte> out(n * dtype_size(to));
    for (std::size_t i = 0; i < n; ++i) {
        std::byte* dst = out.data() + i * dtype_size(to);
        if (to == DType::F64) {
            const double d = static_cast<double>(v[i]);
            std::memcpy(dst, &d, 8);
        } else if (to == DType::F32) {
            const float f = static_cast<float>(v[i]);
            std::memcpy(dst, &f, 4);
        } else {
            const std::uint16_t h = to == DType::F16 ? float_to_half(static_cast<float>(v[i]))
                                                     : float_to_bf16(static_cast<float>(v[i]));
            std::memcpy(dst, &h, 2);
        }
    }
    return out;
}

std::string shape_str(const std::vector<std::int64_t>& s) {
    std::string out = "[";
    for (std::size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
    return out + "]";
}
}  // namespace

std::unique_ptr<Model> make_model(const ModelConfig& cfg, Backend& backend, DType dtype,
                                  std::shared_ptr<const ModelEdit> method) {
    if (is_decoder_only(cfg.arch)) return std::make_unique<CausalLM>(cfg, backend, dtype, method);
    if (cfg.masked_lm) return std::make_unique<MaskedLM>(cfg, backend, dtype, method);
    return std::make_unique<SequenceClassifier>(cfg, backend, dtype, method);
}

std::unique_ptr<SequenceClassifier> load_classifier(const std::filesystem::path& dir, Backend& backend, DType dtype,
                                                    const LoadOptions& opts, LoadReport* report) {
    const ModelConfig cfg = load_model_config(dir);
    if (is_decoder_only(cfg.arch))
        throw Error((dir / "config.json").string() + ": model_type '" + arch_name(cfg.arch) +
                    "' is a causal language model; a sequence classifier (bert, roberta, bart) is needed here");
    if (opts.masked_lm.value_or(false)) throw Error("load_classifier: a masked LM is not a classifier");
    LoadOptions o = opts;
    if (!o.masked_lm) o.masked_lm = false;  // a masked-LM checkpoint gets a classification head
    std::unique_ptr<Model> m = load_model(dir, backend, dtype, o, report);
    return std::unique_ptr<SequenceClassifier>(static_cast<SequenceClassifier*>(m.release()));
}

std::unique_ptr<Model> load_model(const std::filesystem::path& dir, Backend& backend, DType dtype,
                                  const LoadOptions& opts, LoadReport* report) {
    ModelConfig cfg = load_model_config(dir);
    // The task's head: a fresh one (drawn, not loaded) when its kind or size differs from the file's.
    const bool had_mc = cfg.multiple_choice, had_mlm = cfg.masked_lm;
    const int had_labels = cfg.num_labels();
    if (!is_decoder_only(cfg.arch)) {
        if (opts.masked_lm.value_or(false)) {
            if (arch_spec(cfg.arch).mlm_head().empty())
                throw Error((dir / "config.json").string() + ": model_type '" + arch_name(cfg.arch) +
                            "' has no masked-language-model head (bert and roberta have one)");
            cfg.set_masked_lm();
        } else {
            if (opts.masked_lm && cfg.masked_lm)  // a task head replaces the MLM head
                cfg.set_num_labels(opts.num_labels > 0 ? opts.num_labels : 2);
            if (!cfg.masked_lm) {  // (masked_lm unset: the file's MLM head stays)
                if (opts.multiple_choice.value_or(false)) cfg.set_multiple_choice();
                else if (opts.multiple_choice && cfg.multiple_choice)  // 2 labels without a count: transformers' default
                    cfg.set_num_labels(opts.num_labels > 0 ? opts.num_labels : 2);
                else if (opts.num_labels > 0 && opts.num_labels != cfg.num_labels()) cfg.set_num_labels(opts.num_labels);
            }
        }
    }
    const bool head_changes = cfg.multiple_choice != had_mc || cfg.masked_lm != had_mlm || cfg.num_labels() != had_labels;
    if (opts.dropout) cfg.set_dropout(*opts.dropout);
    cfg.attention = opts.attention;
    const SafetensorsReader reader = SafetensorsReader::open_dir(dir);
    std::unique_ptr<Model> model = make_model(cfg, backend, dtype, opts.method);
    ParameterStore& ps = model->params();
    std::vector<std::string> method_params;

    LoadReport local;
    LoadReport& rep = report ? *report : local;
    std::set<std::string> used;
    const std::string where = reader.source();
    // First match every parameter to its checkpoint tensor and check the shapes, before anything is
    // allocated: a config.json that disagrees with the weights (or a damaged one asking for a huge
    // model) is reported here, not by an allocation failure. found[i] is "" for a parameter that
    // is initialised rather than loaded.
    std::vector<std::string> found(ps.all().size());
    for (std::size_t i = 0; i < ps.all().size(); ++i) {
        const Parameter& prm = ps.all()[i];
        std::string name;
        for (const std::string& c : candidate_names(prm.name, model->prefix()))
            if (reader.contains(c)) {
                name = c;
                break;
            }
        const bool label_sized = prm.name.rfind("classifier.", 0) == 0 || prm.name.rfind("classification_head.", 0) == 0;
        const bool label_resized = head_changes && model->is_head_parameter(prm.name) && label_sized && !name.empty() &&
                                   reader.info(name).numel() != prm.shape.numel();
        if (name.empty() && prm.added) {
            method_params.push_back(prm.name);
            continue;
        }
        if (name.empty() || label_resized) {
            if (!model->is_head_parameter(prm.name))
                throw Error(where + ": missing tensor '" + prm.name + "' (expected shape " + prm.shape.str() + ")");
            rep.initialised.push_back(prm.name);
            // A head of another size is named as such (the task has other labels), not as missing.
            rep.initialised_how.push_back(
                (name.empty() ? std::string("not in the checkpoint")
                              : "in the checkpoint is " + shape_str(reader.info(name).shape) + " but the task's head needs " +
                                    prm.shape.str() + " (" + std::to_string(cfg.num_labels()) + " labels)") +
                "; initialised " + prm.init.describe());
            if (!name.empty()) used.insert(name);
            continue;
        }
        used.insert(name);
        const TensorInfo& info = reader.info(name);
        if (Shape s = prm.shape; static_cast<int>(info.shape.size()) != s.ndim || info.numel() != s.numel() ||
                                 [&] {
                                     for (int d = 0; d < s.ndim; ++d)
                                         if (info.shape[static_cast<std::size_t>(d)] != s[d]) return true;
                                     return false;
                                 }())
            throw Error(info.file + ": tensor '" + name + "' has shape " + shape_str(info.shape) + ", expected " +
                        prm.shape.str() + " from config.json");
        if (!info.supported)
            throw Error(info.file + ": tensor '" + name + "': dtype " + info.dtype_str +
                        " is not supported (expected one of F32, F64, F16, BF16, I32, I64)");
        found[i] = name;
    }

    ps.materialize();
    std::vector<double> host64;
    std::vector<float> host32;
    for (std::size_t i = 0; i < ps.all().size(); ++i) {
        if (found[i].empty()) continue;
        Parameter& prm = ps.all()[i];
        const std::size_t n = static_cast<std::size_t>(prm.shape.numel());
        if (dtype == DType::F64) {
            host64.resize(n);
            reader.read_into(found[i], DType::F64, host64.data(), n);
            backend.upload(prm.value, host64.data());
        } else {
            host32.resize(n);
            reader.read_into(found[i], DType::F32, host32.data(), n);
            backend.upload(prm.value, host32.data());
        }
    }
    for (const std::string& n : reader.names())
        if (!used.count(n) && !arch_spec(cfg.arch).is_tied_copy(n)) rep.ignored.push_back(n);
    if (!rep.initialised.empty()) model->init_parameters(rep.initialised, opts.head_seed);
    model->init_parameters(method_params, opts.head_seed);
    rep.method_initialised = static_cast<int>(method_params.size());
    return model;
}

void save_model(Model& model, const std::filesystem::path& dir, DType file_dtype, std::size_t max_shard_bytes) {
    MEFT_CHECK(file_dtype == DType::F32 || file_dtype == DType::F16 || file_dtype == DType::BF16 ||
                   file_dtype == DType::F64,
               "unsupported checkpoint dtype");
    std::filesystem::create_directories(dir);
    Backend& be = model.backend();
    std::vector<std::vector<std::byte>> buffers;
    std::vector<TensorRecord> records;
    buffers.reserve(static_cast<std::size_t>(model.params().size()));
    for (const Parameter& prm : model.params().all()) {
        const std::size_t n = static_cast<std::size_t>(prm.shape.numel());
        std::vector<std::byte> host(prm.value.bytes());
        be.download(host.data(), prm.value);
        std::vector<std::byte> bytes = prm.value.dtype == DType::F64
                                           ? encode(reinterpret_cast<const double*>(host.data()), n, file_dtype)
                                           : encode(reinterpret_cast<const float*>(host.data()), n, file_dtype);
        buffers.push_back(std::move(bytes));
        std::vector<std::int64_t> shape(prm.shape.d.begin(), prm.shape.d.begin() + prm.shape.ndim);
        records.push_back(TensorRecord{prm.name, file_dtype, shape, buffers.back().data()});
    }
    write_checkpoint_tensors(dir, records, max_shard_bytes);
    ModelConfig cfg = model.config();
    cfg.torch_dtype = file_dtype == DType::F16 ? "float16" : file_dtype == DType::BF16 ? "bfloat16"
                    : file_dtype == DType::F64 ? "float64" : "float32";
    save_model_config(cfg, dir);
}

}  // namespace meft
