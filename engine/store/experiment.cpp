#include "store/experiment.h"

#include "data/qa.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>

#include "core/backend_select.h"
#include "core/error.h"
#include "model/arch/arch.h"
#include "data/glue.h"
#include "data/qa.h"

namespace meft {

namespace {

// Reads typed values out of one JSON object, remembering which keys were used so that the
// leftovers can be reported as unknown.
class Section {
public:
    Section(const nlohmann::json& j, std::string where, std::string path)
        : j_(j), where_(std::move(where)), path_(std::move(path)) {
        if (!j_.is_object()) fail(path_.empty() ? "the file" : "'" + path_ + "'", "must be a JSON object");
    }
    bool has(const std::string& k) {
        seen_.insert(k);
        return j_.contains(k) && !j_[k].is_null();
    }
    double number(const std::string& k, double def, double lo, double hi) {
        if (!has(k)) return def;
        if (!j_[k].is_number()) fail(key(k), "must be a number, found " + j_[k].dump());
        const double v = j_[k].get<double>();
        if (v < lo || v > hi) fail(key(k), "must be in [" + fmt(lo) + ", " + fmt(hi) + "], found " + fmt(v));
        return v;
    }
    long long integer(const std::string& k, long long def, long long lo, long long hi) {
        if (!has(k)) return def;
        if (!j_[k].is_number_integer()) fail(key(k), "must be an integer, found " + j_[k].dump());
        if (j_[k].is_number_unsigned() && j_[k].get<unsigned long long>() > static_cast<unsigned long long>(hi))
            fail(key(k), "must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], found " + j_[k].dump());
        const long long v = j_[k].get<long long>();
        if (v < lo || v > hi) fail(key(k), "must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], found " + std::to_string(v));
        return v;
    }
    std::string string(const std::string& k, const std::string& def) {
        if (!has(k)) return def;
        if (!j_[k].is_string()) fail(key(k), "must be a string, found " + j_[k].dump());
        return j_[k].get<std::string>();
    }
    bool boolean(const std::string& k, bool def) {
        if (!has(k)) return def;
        if (!j_[k].is_boolean()) fail(key(k), "must be true or false, found " + j_[k].dump());
        return j_[k].get<bool>();
    }
    Section child(const std::string& k) {
        seen_.insert(k);
        static const nlohmann::json empty = nlohmann::json::object();
        return Section(j_.contains(k) ? j_[k] : empty, where_, path_.empty() ? k : path_ + "." + k);
    }
    void finish(const std::string& allowed) {
        for (auto it = j_.begin(); it != j_.end(); ++it)
            if (!seen_.count(it.key())) fail(key(it.key()), "is not a known key (expected one of: " + allowed + ")");
    }
    [[noreturn]] void fail(const std::string& what, const std::string& msg) const {
        throw Error(where_ + ": " + what + " " + msg);
    }
    std::string key(const std::string& k) const { return "'" + (path_.empty() ? k : path_ + "." + k) + "'"; }

private:
    static std::string fmt(double v) {
        std::ostringstream s;
        s << v;
        return s.str();
    }
    const nlohmann::json& j_;
    std::string where_, path_;
    std::set<std::string> seen_;
};

// task.name "mlm": the text sources and the masking.
void parse_mlm_task(Section& task, const nlohmann::json& j, TaskSpec& t) {
    if (!task.has("text") || !j["text"].is_array() || j["text"].empty())
        task.fail(task.key("text"), "must be a non-empty list of text sources: paths of files or folders, "
                                    "{\"path\": FILE.jsonl, \"field\": KEY} or {\"glue\": TASK, \"data_dir\": FOLDER}");
    for (std::size_t i = 0; i < j["text"].size(); ++i) {
        const nlohmann::json& s = j["text"][i];
        const std::string at = "text[" + std::to_string(i) + "]";
        TaskSpec::TextSource src;
        if (s.is_string()) {
            src.path = s.get<std::string>();
        } else if (s.is_object()) {
            Section one(s, "", "");
            try {
                src.glue = one.string("glue", "");
                src.path = one.string(src.glue.empty() ? "path" : "data_dir", "");
                src.field = one.string("field", "text");
                one.finish(src.glue.empty() ? "path, field" : "glue, data_dir");
            } catch (const Error& e) {  // Section's message, placed under task.text[i]
                task.fail(task.key(at), std::string(e.what()).substr(2));
            }
            if (!src.glue.empty()) {
                try {
                    src.glue = glue_task(src.glue).name;
                } catch (const Error&) {
                    std::string names;
                    for (const GlueTaskInfo& g : glue_tasks()) names += (names.empty() ? "" : ", ") + g.name;
                    task.fail(task.key(at + ".glue"), "must be a GLUE task (" + names + "), found \"" + src.glue + "\"");
                }
            }
        } else {
            task.fail(task.key(at), "must be a path or an object, found " + s.dump());
        }
        if (src.path.empty())
            task.fail(task.key(at), src.glue.empty() ? "needs a path" : "needs \"data_dir\": the GLUE task's folder");
        t.text.push_back(std::move(src));
    }
    t.held_out = task.number("held_out", t.held_out, 0.0, 0.5);
    t.mask_probability = task.number("mask_probability", t.mask_probability, 0.01, 1.0);
    t.whole_word_masking = task.boolean("whole_word_masking", t.whole_word_masking);
    t.max_train_examples = static_cast<int>(task.integer("max_train_examples", 0, 0, 1 << 30));
    t.max_dev_examples = static_cast<int>(task.integer("max_dev_examples", 0, 0, 1 << 30));
    const std::string enc = task.string("encoding", "utf-8");
    const std::optional<TextEncoding> te = text_encoding_from_name(enc);
    if (!te) task.fail(task.key("encoding"), std::string("must be ") + kTextEncodingNames + ", found \"" + enc + "\"");
    t.encoding = *te;
    task.finish("name, text, held_out, mask_probability, whole_word_masking, max_train_examples, max_dev_examples, encoding");
}

}  // namespace

Experiment parse_experiment(const nlohmann::json& j, const std::string& where) {
    Experiment e;
    Section top(j, where, "");
    e.name = top.string("name", "experiment");

    Section bb = top.child("backbone");
    const std::string arch = bb.string("arch", "bert");
    const ArchSpec* spec = find_arch(arch);
    if (!spec) bb.fail(bb.key("arch"), "must be " + listed(arch_names(), "\"") + ", found \"" + arch + "\"");
    e.backbone.arch = spec->arch();
    e.backbone.preset = bb.string("preset", "");
    e.backbone.path = bb.string("path", "");
    e.backbone.init_seed = static_cast<std::uint64_t>(bb.integer("seed", 0, 0, 1ll << 53));
    e.backbone.tokenizer = bb.string("tokenizer", "");
    if (e.backbone.preset.empty() == e.backbone.path.empty())
        bb.fail("'backbone'", "needs exactly one of \"preset\" (toy, tiny, base, large) or \"path\" (a Hugging Face model directory)");
    const std::string& pre = e.backbone.preset;
    const std::vector<std::string> presets = spec->presets();
    if (!pre.empty() && std::find(presets.begin(), presets.end(), pre) == presets.end())
        bb.fail(bb.key("preset"), "must be " + listed(presets) + " for " + arch + ", found \"" + pre + "\"");
    bb.finish("arch, preset, path, seed, tokenizer");

    Section task = top.child("task");
    e.task.name = task.string("name", "toy");
    if (e.task.is_mlm()) {
        parse_mlm_task(task, j["task"], e.task);
    } else if (!e.task.is_toy()) {
        try {
            e.task.name = glue_task(e.task.name).name;  // canonical spelling
        } catch (const Error&) {
            try {
                e.task.name = qa_task(e.task.name).name;
                e.task.qa = true;
            } catch (const Error&) {
                std::string names = "toy";
                for (const GlueTaskInfo& g : glue_tasks()) names += ", " + g.name;
                for (const QaTaskInfo& q : qa_tasks()) names += ", " + q.name;
                task.fail(task.key("name"), "must be one of " + names + ", found \"" + e.task.name + "\"");
            }
        }
        e.task.data_dir = task.string("data_dir", "");
        if (e.task.data_dir.empty())
            task.fail("'task'", e.task.qa ? "needs \"data_dir\": the QA task's folder (train.jsonl, dev.jsonl ...)"
                                          : "needs \"data_dir\": the GLUE task's folder (train.tsv, dev.tsv)");
        e.task.dev_split = task.string("dev_split", "");
        e.task.max_train_examples = static_cast<int>(task.integer("max_train_examples", 0, 0, 1 << 30));
        e.task.max_dev_examples = static_cast<int>(task.integer("max_dev_examples", 0, 0, 1 << 30));
        const std::string enc = task.string("encoding", "utf-8");
        const std::optional<TextEncoding> te = text_encoding_from_name(enc);
        if (!te) task.fail(task.key("encoding"), std::string("must be ") + kTextEncodingNames + ", found \"" + enc + "\"");
        e.task.encoding = *te;
        task.finish("name, data_dir, dev_split, max_train_examples, max_dev_examples, encoding");
    }
    if (e.task.is_toy()) {
        ToyTaskConfig& t = e.task.toy;
        t.num_labels = static_cast<int>(task.integer("num_labels", t.num_labels, 2, 100));
        t.train_examples = static_cast<int>(task.integer("train_examples", t.train_examples, 1, 10000000));
        t.dev_examples = static_cast<int>(task.integer("dev_examples", t.dev_examples, 1, 10000000));
        t.min_length = static_cast<int>(task.integer("min_length", t.min_length, 3, 100000));
        t.max_length = static_cast<int>(task.integer("max_length", t.max_length, 3, 100000));
        t.seed = static_cast<std::uint64_t>(task.integer("seed", static_cast<long long>(t.seed), 0, 1ll << 53));
        if (t.max_length < t.min_length) task.fail(task.key("max_length"), "must be >= min_length");
        task.finish("name, num_labels, train_examples, dev_examples, min_length, max_length, seed");
    }

    // Which head a task needs: decoders train QA as causal LM; encoders and BART classify, or score
    // (context, choice) pairs with a multiple-choice head; mlm needs the masked-LM head.
    if (e.task.is_mlm() && spec->mlm_head().empty())
        task.fail(task.key("name"), "\"mlm\" (masked-LM pre-training) needs a backbone with a masked-LM head (bert, roberta), found " + arch);
    else if (is_decoder_only(e.backbone.arch) && !e.task.qa)
        task.fail(task.key("name"), "\"" + e.task.name + "\" is a classification task; an " + arch + " backbone trains the "
                                    "multiple-choice QA tasks (openbookqa, arc_easy, arc_challenge, piqa, sciq) as causal LM");
    top.has("method");  // validated by parse_method, which names its own keys
    if (j.is_object() && j.contains("method")) e.method = parse_method(j["method"], where);

    Section tr = top.child("training");
    TrainConfig& c = e.train;
    c.learning_rate = tr.number("learning_rate", c.learning_rate, 0.0, 10.0);
    c.batch_size = static_cast<int>(tr.integer("batch_size", c.batch_size, 1, 1 << 20));
    c.gradient_accumulation = static_cast<int>(tr.integer("gradient_accumulation_steps", c.gradient_accumulation, 1, 1 << 20));
    if (c.gradient_accumulation > c.batch_size) tr.fail(tr.key("gradient_accumulation_steps"), "must not exceed batch_size");
    c.epochs = static_cast<int>(tr.integer("epochs", c.epochs, 1, 100000));
    c.max_steps = static_cast<int>(tr.integer("max_steps", c.max_steps, 0, 1 << 30));
    c.max_seq_length = static_cast<int>(tr.integer("max_seq_length", c.max_seq_length, 2, 1 << 16));
    c.warmup_ratio = tr.number("warmup_ratio", c.warmup_ratio, 0.0, 1.0);
    c.adamw.weight_decay = tr.number("weight_decay", c.adamw.weight_decay, 0.0, 10.0);
    c.adamw.beta1 = tr.number("adam_beta1", c.adamw.beta1, 0.0, 0.999999);
    c.adamw.beta2 = tr.number("adam_beta2", c.adamw.beta2, 0.0, 0.999999999);
    c.adamw.eps = tr.number("adam_epsilon", c.adamw.eps, 0.0, 1.0);
    c.max_grad_norm = tr.number("max_grad_norm", c.max_grad_norm, 0.0, 1e9);
    c.seed = static_cast<std::uint64_t>(tr.integer("seed", static_cast<long long>(c.seed), 0, 1ll << 53));
    c.eval_every = static_cast<int>(tr.integer("eval_every", c.eval_every, 0, 1 << 30));
    c.eval_batch_size = static_cast<int>(tr.integer("eval_batch_size", c.eval_batch_size, 1, 1 << 20));
    c.reconstruction_check_every = static_cast<int>(tr.integer("reconstruction_check_every", 0, 0, 1 << 30));
    c.checkpoint_every = static_cast<int>(tr.integer("checkpoint_every", 0, 0, 1 << 30));
    c.zero_shot = tr.boolean("zero_shot", false);
    if (tr.has("dropout")) e.dropout = tr.number("dropout", 0.1, 0.0, 0.99);
    {
        Section es = tr.child("early_stopping");
        c.early_stopping_metric = es.string("metric", "");
        c.early_stopping_patience = static_cast<int>(es.integer("patience", 0, 0, 1 << 20));
        es.finish("metric, patience");
    }
    const std::string dt = tr.string("dtype", "float32");
    if (dt == "float32") e.dtype = DType::F32;
    else if (dt == "float64") e.dtype = DType::F64;
    else tr.fail(tr.key("dtype"), "must be \"float32\" or \"float64\", found \"" + dt + "\"");
    e.backend = tr.string("backend", "auto");
    if (!is_backend_name(e.backend))
        tr.fail(tr.key("backend"), std::string("must be ") + kBackendNames + ", found \"" + e.backend + "\"");
    // How float32 GEMMs compute; weights, activations and everything else stay in `dtype`.
    e.gemm_precision = tr.string("gemm_precision", "float32");
    const std::string& gp = e.gemm_precision;
    if (gp != "float32" && gp != "tf32" && gp != "bf16")
        tr.fail(tr.key("gemm_precision"), "must be \"float32\", \"tf32\" or \"bf16\", found \"" + gp + "\"");
    if (gp != "float32" && e.dtype != DType::F32)
        tr.fail(tr.key("gemm_precision"), "\"" + gp + "\" needs 'training.dtype' \"float32\", found \"" + dt +
                                              "\" (float64 is the reference precision: its GEMMs are always exact)");
    // How attention computes: the same function either way; tiled never holds [T x T].
    const std::string at = tr.string("attention", "standard");
    if (at == "tiled") e.attention = AttentionKind::Tiled;
    else if (at != "standard") tr.fail(tr.key("attention"), "must be \"standard\" or \"tiled\", found \"" + at + "\"");
    tr.finish("learning_rate, batch_size, gradient_accumulation_steps, epochs, max_steps, max_seq_length, "
              "warmup_ratio, weight_decay, adam_beta1, adam_beta2, adam_epsilon, max_grad_norm, seed, eval_every, "
              "eval_batch_size, reconstruction_check_every, early_stopping, checkpoint_every, zero_shot, dropout, dtype, "
              "backend, gemm_precision, attention");

    if (top.has("tags")) {
        const auto& t = j["tags"];
        if (!t.is_array()) top.fail("'tags'", "must be an array of strings");
        for (const auto& x : t) {
            if (!x.is_string() || x.get<std::string>().empty() || x.get<std::string>().find(',') != std::string::npos)
                top.fail("'tags'", "must hold non-empty strings without commas, found " + x.dump());
            e.tags.push_back(x.get<std::string>());
        }
    }
    e.notes = top.string("notes", "");
    e.source = j;

    Section out = top.child("output");
    e.output_dir = out.string("dir", "");
    e.save_model = out.boolean("save_model", false);
    if (e.save_model && e.output_dir.empty()) out.fail("'output.save_model'", "needs 'output.dir'");
    out.finish("dir, save_model");

    top.finish("name, backbone, task, method, training, output, tags, notes");
    return e;
}

BackendOptions backend_options(const Experiment& e) {
    BackendOptions o;
    o.tf32 = e.gemm_precision == "tf32";
    o.bf16_gemm = e.gemm_precision == "bf16";
    return o;
}

std::string config_hash(const nlohmann::json& resolved) {
    nlohmann::json j = resolved;
    if (j.is_object() && j.contains("training") && j["training"].is_object()) {
        j["training"].erase("backend");
        j["training"].erase("attention");
    }
    std::uint64_t h = 1469598103934665603ull;  // FNV-1a 64
    for (const unsigned char c : j.dump()) {
        h ^= c;
        h *= 1099511628211ull;
    }
    char buf[20];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
    return buf;
}

nlohmann::json resolved_config(const Experiment& e) {
    nlohmann::json j;
    j["name"] = e.name;
    j["backbone"] = {{"arch", arch_name(e.backbone.arch)}, {"preset", e.backbone.preset}, {"path", e.backbone.path.string()},
                     {"seed", e.backbone.init_seed}, {"tokenizer", e.backbone.tokenizer.string()}};
    if (e.task.is_toy()) {
        const ToyTaskConfig& t = e.task.toy;
        j["task"] = {{"name", "toy"}, {"num_labels", t.num_labels}, {"train_examples", t.train_examples},
                     {"dev_examples", t.dev_examples}, {"min_length", t.min_length}, {"max_length", t.max_length},
                     {"seed", t.seed}};
    } else if (e.task.is_mlm()) {
        nlohmann::json text = nlohmann::json::array();
        for (const TaskSpec::TextSource& s : e.task.text)
            text.push_back(s.glue.empty() ? nlohmann::json{{"path", s.path.string()}, {"field", s.field}}
                                          : nlohmann::json{{"glue", s.glue}, {"data_dir", s.path.string()}});
        j["task"] = {{"name", "mlm"}, {"text", text}, {"held_out", e.task.held_out},
                     {"mask_probability", e.task.mask_probability}, {"whole_word_masking", e.task.whole_word_masking},
                     {"max_train_examples", e.task.max_train_examples}, {"max_dev_examples", e.task.max_dev_examples},
                     {"encoding", text_encoding_name(e.task.encoding)}};
    } else {
        j["task"] = {{"name", e.task.name}, {"data_dir", e.task.data_dir.string()}, {"dev_split", e.task.dev_split},
                     {"max_train_examples", e.task.max_train_examples}, {"max_dev_examples", e.task.max_dev_examples},
                     {"encoding", text_encoding_name(e.task.encoding)}};
    }
    j["method"] = e.source.contains("method") ? e.source["method"] : nlohmann::json{{"name", "full"}};
    j["method"]["name"] = e.method.name();
    const TrainConfig& c = e.train;
    j["training"] = {{"learning_rate", c.learning_rate}, {"batch_size", c.batch_size},
                     {"gradient_accumulation_steps", c.gradient_accumulation}, {"epochs", c.epochs},
                     {"max_steps", c.max_steps}, {"max_seq_length", c.max_seq_length}, {"warmup_ratio", c.warmup_ratio},
                     {"weight_decay", c.adamw.weight_decay}, {"adam_beta1", c.adamw.beta1}, {"adam_beta2", c.adamw.beta2},
                     {"adam_epsilon", c.adamw.eps}, {"max_grad_norm", c.max_grad_norm}, {"seed", c.seed},
                     {"eval_every", c.eval_every}, {"eval_batch_size", c.eval_batch_size},
                     {"reconstruction_check_every", c.reconstruction_check_every},
                     {"checkpoint_every", c.checkpoint_every}, {"zero_shot", c.zero_shot},
                     {"early_stopping", {{"metric", c.early_stopping_metric}, {"patience", c.early_stopping_patience}}},
                     {"dtype", e.dtype == DType::F64 ? "float64" : "float32"}, {"backend", e.backend},
                     {"gemm_precision", e.gemm_precision}, {"attention", attention_kind_name(e.attention)}};
    if (e.dropout) j["training"]["dropout"] = *e.dropout;
    j["tags"] = e.tags;
    j["notes"] = e.notes;
    return j;
}

namespace {
bool list_by_nature(const std::string& path) {
    return path == "tags" || path == "method.lora.targets" || path == "task.text";
}

// The largest grid expand_sweeps builds; a bigger one is an Error before it is expanded.
constexpr std::size_t kMaxSweepRuns = 4096;

struct Axis {
    nlohmann::json::json_pointer at;  // exact, whatever characters the keys hold
    std::string label;                // "training.seed", for messages and run labels
};

void collect_axes(const nlohmann::json& j, const nlohmann::json::json_pointer& at, const std::string& label,
                  std::vector<Axis>& axes) {
    if (j.is_object()) {
        for (auto it = j.begin(); it != j.end(); ++it)
            collect_axes(it.value(), at / it.key(), label.empty() ? it.key() : label + "." + it.key(), axes);
    } else if (j.is_array() && !list_by_nature(label)) {
        axes.push_back({at, label});
    }
}
}  // namespace

std::vector<SweepPoint> expand_sweeps(const nlohmann::json& j) {
    if (!j.is_object()) return {{j, ""}};  // parse_experiment reports it
    std::vector<Axis> axes;
    collect_axes(j, nlohmann::json::json_pointer(), "", axes);
    std::vector<SweepPoint> out{{j, ""}};
    for (const Axis& axis : axes) {
        const nlohmann::json& values = j.at(axis.at);
        if (values.empty()) throw Error("'" + axis.label + "' is an empty list: a sweep needs at least one value");
        // Refused before expanding: a few short lists in a small file multiply into millions of runs.
        if (out.size() * values.size() > kMaxSweepRuns)
            throw Error("the sweep expands into more than " + std::to_string(kMaxSweepRuns) + " runs (" +
                        std::to_string(out.size()) + " before '" + axis.label + "', which has " +
                        std::to_string(values.size()) + " values); split it into several files");
        std::vector<SweepPoint> next;
        for (const SweepPoint& p : out)
            for (const auto& v : values) {
                SweepPoint q = p;
                q.config[axis.at] = v;
                q.label += (q.label.empty() ? "" : ", ") + axis.label + "=" + (v.is_string() ? v.get<std::string>() : v.dump());
                next.push_back(std::move(q));
            }
        out = std::move(next);
    }
    return out;
}

namespace {
void resolve_paths(Experiment& e, const std::filesystem::path& file);
void check_paths(Experiment& e, const std::string& where);
}  // namespace

nlohmann::json::json_pointer key_pointer(const std::string& dotted) {
    nlohmann::json::json_pointer p;
    std::size_t start = 0;
    while (true) {
        const std::size_t dot = dotted.find('.', start);
        p /= dotted.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
        if (dot == std::string::npos) return p;
        start = dot + 1;
    }
}

void apply_overrides(nlohmann::json& j, const std::vector<std::string>& assignments) {
    for (const std::string& a : assignments) {
        const std::size_t eq = a.find('=');
        if (eq == std::string::npos || eq == 0)
            throw Error("override '" + a + "' must read KEY.PATH=VALUE, e.g. training.learning_rate=3e-4");
        const std::string path = a.substr(0, eq), text = a.substr(eq + 1);
        nlohmann::json value = nlohmann::json::parse(text, nullptr, false);
        if (value.is_discarded()) value = text;  // not JSON: a plain string such as a path
        // The file is JSON, so UTF-8; an override that is not would throw nlohmann's type_error
        // wherever the experiment is written out (messages, the run's recorded config).
        try {
            (void)nlohmann::json(path).dump();
            (void)value.dump();
        } catch (const nlohmann::json::type_error&) {
            throw Error("override '" + a + "' is not valid UTF-8 (experiment files are JSON, which is UTF-8)");
        }
        if (!j.is_object()) throw Error("override '" + a + "': the experiment is not a JSON object");
        nlohmann::json* at = &j;
        std::size_t start = 0;
        while (true) {
            const std::size_t dot = path.find('.', start);
            const std::string key = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
            if (key.empty()) throw Error("override '" + a + "': empty key in '" + path + "'");
            if (dot == std::string::npos) {
                (*at)[key] = value;
                break;
            }
            nlohmann::json& next = (*at)[key];
            if (next.is_null()) next = nlohmann::json::object();
            if (!next.is_object())
                throw Error("override '" + a + "': '" + path.substr(0, dot) + "' is not an object in the experiment");
            at = &next;
            start = dot + 1;
        }
    }
}

nlohmann::json rebase_paths(nlohmann::json j, const std::filesystem::path& from_file, const std::filesystem::path& to_file) {
    namespace fs = std::filesystem;
    const fs::path from = fs::absolute(from_file).parent_path().lexically_normal();
    const fs::path to = fs::absolute(to_file).parent_path().lexically_normal();
    const auto rebase = [&](nlohmann::json& v) {
        if (!v.is_string() || v.get<std::string>().empty()) return;
        const fs::path p = v.get<std::string>();
        if (p.is_absolute()) return;
        const fs::path moved = (from / p).lexically_normal().lexically_relative(to);
        v = (moved.empty() ? (from / p).lexically_normal() : moved).string();
    };
    for (const char* key : {"/backbone/path", "/backbone/tokenizer", "/task/data_dir"}) {
        const nlohmann::json::json_pointer ptr(key);
        if (!j.contains(ptr)) continue;
        nlohmann::json& v = j[ptr];
        if (v.is_array())  // a sweep over folders
            for (nlohmann::json& x : v) rebase(x);
        else
            rebase(v);
    }
    const nlohmann::json::json_pointer text("/task/text");  // mlm's sources: paths, or objects holding one
    if (j.contains(text) && j[text].is_array())
        for (nlohmann::json& s : j[text]) {
            if (s.is_string()) rebase(s);
            else if (s.is_object())
                for (const char* k : {"path", "data_dir"})
                    if (s.contains(k)) rebase(s[k]);
        }
    return j;
}

nlohmann::json read_experiment_json(const std::filesystem::path& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) throw Error(file.string() + ": cannot open experiment file");
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(text);
    } catch (const nlohmann::json::parse_error& err) {
        // Turn the byte offset into line:column for the message.
        std::size_t line = 1, col = 1;
        for (std::size_t i = 0; i + 1 < err.byte && i < text.size(); ++i) {
            if (text[i] == '\n') ++line, col = 1;
            else ++col;
        }
        std::string what = err.what();
        const auto p = what.find("parse error");
        throw Error(file.string() + ":" + std::to_string(line) + ":" + std::to_string(col) + ": invalid JSON: " +
                    (p == std::string::npos ? what : what.substr(p)));
    } catch (const nlohmann::json::exception& err) {  // out_of_range: a number like 1e999
        throw Error(file.string() + ": invalid JSON: " + err.what());
    }
    return j;
}

std::vector<Experiment> load_experiments(const std::filesystem::path& file, const std::vector<std::string>& overrides) {
    return experiments_from_json(read_experiment_json(file), file, overrides);
}

std::vector<Experiment> experiments_from_json(nlohmann::json j, const std::filesystem::path& file,
                                              const std::vector<std::string>& overrides) {
    try {
        apply_overrides(j, overrides);
    } catch (const Error& e) {
        throw Error(file.string() + ": " + e.what());
    }
    std::vector<SweepPoint> points;
    try {
        points = expand_sweeps(j);
    } catch (const Error& e) {
        throw Error(file.string() + ": " + e.what());
    }
    std::vector<Experiment> out;
    for (const SweepPoint& p : points) {
        const std::string where = file.string() + (p.label.empty() ? "" : " [" + p.label + "]");
        Experiment e = parse_experiment(p.config, where);
        e.sweep_label = p.label;
        resolve_paths(e, file);
        check_paths(e, where);
        out.push_back(std::move(e));
    }
    return out;
}

Experiment load_experiment(const std::filesystem::path& file) {
    std::vector<Experiment> all = load_experiments(file);
    return std::move(all.front());
}

namespace {

void resolve_paths(Experiment& e, const std::filesystem::path& file) {
    e.file = file;
    const auto base = file.parent_path();
    if (!e.backbone.path.empty() && e.backbone.path.is_relative()) e.backbone.path = base / e.backbone.path;
    if (!e.backbone.tokenizer.empty() && e.backbone.tokenizer.is_relative()) e.backbone.tokenizer = base / e.backbone.tokenizer;
    if (!e.task.data_dir.empty() && e.task.data_dir.is_relative()) e.task.data_dir = base / e.task.data_dir;
    for (TaskSpec::TextSource& s : e.task.text)
        if (s.path.is_relative()) s.path = base / s.path;
}

void check_paths(Experiment& e, const std::string& where) {
    namespace fs = std::filesystem;
    const auto fail = [&](const std::string& key, const fs::path& p, const std::string& what) {
        throw Error(where + ": '" + key + "' " + p.string() + " " + what);
    };
    if (!e.backbone.path.empty()) {
        if (!fs::is_directory(e.backbone.path)) fail("backbone.path", e.backbone.path, "is not a directory");
        if (!fs::exists(e.backbone.path / "config.json"))
            fail("backbone.path", e.backbone.path, "has no config.json (expected a Hugging Face model directory)");
    }
    if (!e.backbone.tokenizer.empty() && !fs::is_directory(e.backbone.tokenizer))
        fail("backbone.tokenizer", e.backbone.tokenizer, "is not a directory");
    for (std::size_t i = 0; i < e.task.text.size(); ++i) {
        TaskSpec::TextSource& s = e.task.text[i];
        const std::string key = "task.text[" + std::to_string(i) + "]";
        if (s.glue.empty()) {
            if (!fs::exists(s.path)) fail(key, s.path, "does not exist");
            continue;
        }
        const GlueTaskInfo& g = glue_task(s.glue);
        if (!fs::is_directory(s.path)) fail(key + ".data_dir", s.path, "is not a directory");
        if (!fs::exists(glue_split_file(g, s.path, "train"))) {
            if (!fs::exists(glue_split_file(g, s.path / g.dir_name, "train")))
                fail(key + ".data_dir", s.path,
                     "has neither " + glue_split_file(g, "", "train").string() + " nor a " + g.dir_name + "/ folder with one");
            s.path /= g.dir_name;  // the GLUE download's root folder
        }
    }
    if (e.task.qa) {
        const QaTaskInfo& q = qa_task(e.task.name);
        if (!fs::is_directory(e.task.data_dir)) fail("task.data_dir", e.task.data_dir, "is not a directory");
        if (fs::is_directory(e.task.data_dir / q.dir_name)) e.task.data_dir /= q.dir_name;  // a folder of all QA tasks
    } else if (!e.task.is_toy() && !e.task.is_mlm()) {
        const GlueTaskInfo& g = glue_task(e.task.name);
        if (!fs::is_directory(e.task.data_dir)) fail("task.data_dir", e.task.data_dir, "is not a directory");
        const auto has_train = [&](const fs::path& d) { return fs::exists(glue_split_file(g, d, "train")); };
        if (!has_train(e.task.data_dir)) {
            if (!has_train(e.task.data_dir / g.dir_name))
                fail("task.data_dir", e.task.data_dir,
                     "has neither " + glue_split_file(g, "", "train").string() + " nor a " + g.dir_name + "/ folder with one");
            e.task.data_dir /= g.dir_name;  // the GLUE download's root folder
        }
    }
}
}  // namespace

}  // namespace meft
