#include "store/experiment.h"

#include <fstream>
#include <set>
#include <sstream>

#include "core/error.h"
#include "data/glue.h"

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

}  // namespace

Experiment parse_experiment(const nlohmann::json& j, const std::string& where) {
    Experiment e;
    Section top(j, where, "");
    e.name = top.string("name", "experiment");

    Section bb = top.child("backbone");
    const std::string arch = bb.string("arch", "bert");
    if (arch != "bert" && arch != "roberta") bb.fail(bb.key("arch"), "must be \"bert\" or \"roberta\", found \"" + arch + "\"");
    e.backbone.arch = parse_arch(arch);
    e.backbone.preset = bb.string("preset", "");
    e.backbone.path = bb.string("path", "");
    e.backbone.init_seed = static_cast<std::uint64_t>(bb.integer("seed", 0, 0, 1ll << 53));
    e.backbone.tokenizer = bb.string("tokenizer", "");
    if (e.backbone.preset.empty() == e.backbone.path.empty())
        bb.fail("'backbone'", "needs exactly one of \"preset\" (toy, tiny, base) or \"path\" (a Hugging Face model directory)");
    if (!e.backbone.preset.empty() && e.backbone.preset != "toy" && e.backbone.preset != "tiny" &&
        e.backbone.preset != "base")
        bb.fail(bb.key("preset"), "must be toy, tiny or base, found \"" + e.backbone.preset + "\"");
    bb.finish("arch, preset, path, seed, tokenizer");

    Section task = top.child("task");
    e.task.name = task.string("name", "toy");
    if (!e.task.is_toy()) {
        try {
            e.task.name = glue_task(e.task.name).name;  // canonical spelling
        } catch (const Error&) {
            std::string names = "toy";
            for (const GlueTaskInfo& g : glue_tasks()) names += ", " + g.name;
            task.fail(task.key("name"), "must be one of " + names + ", found \"" + e.task.name + "\"");
        }
        e.task.data_dir = task.string("data_dir", "");
        if (e.task.data_dir.empty()) task.fail("'task'", "needs \"data_dir\": the GLUE task's folder (train.tsv, dev.tsv)");
        e.task.dev_split = task.string("dev_split", "");
        e.task.max_train_examples = static_cast<int>(task.integer("max_train_examples", 0, 0, 1 << 30));
        e.task.max_dev_examples = static_cast<int>(task.integer("max_dev_examples", 0, 0, 1 << 30));
        task.finish("name, data_dir, dev_split, max_train_examples, max_dev_examples");
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
    tr.finish("learning_rate, batch_size, gradient_accumulation_steps, epochs, max_steps, max_seq_length, "
              "warmup_ratio, weight_decay, adam_beta1, adam_beta2, adam_epsilon, max_grad_norm, seed, eval_every, "
              "eval_batch_size, reconstruction_check_every, early_stopping, checkpoint_every, dropout, dtype");

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
    } else {
        j["task"] = {{"name", e.task.name}, {"data_dir", e.task.data_dir.string()}, {"dev_split", e.task.dev_split},
                     {"max_train_examples", e.task.max_train_examples}, {"max_dev_examples", e.task.max_dev_examples}};
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
                     {"checkpoint_every", c.checkpoint_every},
                     {"early_stopping", {{"metric", c.early_stopping_metric}, {"patience", c.early_stopping_patience}}},
                     {"dtype", e.dtype == DType::F64 ? "float64" : "float32"}};
    if (e.dropout) j["training"]["dropout"] = *e.dropout;
    j["tags"] = e.tags;
    j["notes"] = e.notes;
    return j;
}

namespace {
bool list_by_nature(const std::string& path) { return path == "tags" || path == "method.lora.targets"; }

void collect_axes(const nlohmann::json& j, const std::string& path, std::vector<std::string>& axes) {
    if (j.is_object()) {
        for (auto it = j.begin(); it != j.end(); ++it)
            collect_axes(it.value(), path.empty() ? it.key() : path + "." + it.key(), axes);
    } else if (j.is_array() && !list_by_nature(path)) {
        axes.push_back(path);
    }
}

nlohmann::json::json_pointer pointer_of(const std::string& path) {
    std::string p;
    std::size_t start = 0;
    while (start <= path.size()) {
        const std::size_t dot = path.find('.', start);
        p += "/" + path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
        if (dot == std::string::npos) break;
        start = dot + 1;
    }
    return nlohmann::json::json_pointer(p);
}
}  // namespace

std::vector<SweepPoint> expand_sweeps(const nlohmann::json& j) {
    if (!j.is_object()) return {{j, ""}};  // parse_experiment reports it
    std::vector<std::string> axes;
    collect_axes(j, "", axes);
    std::vector<SweepPoint> out{{j, ""}};
    for (const std::string& axis : axes) {
        const nlohmann::json values = j.at(pointer_of(axis));
        if (values.empty()) throw Error("'" + axis + "' is an empty list: a sweep needs at least one value");
        std::vector<SweepPoint> next;
        for (const SweepPoint& p : out)
            for (const auto& v : values) {
                SweepPoint q = p;
                q.config[pointer_of(axis)] = v;
                q.label += (q.label.empty() ? "" : ", ") + axis + "=" + (v.is_string() ? v.get<std::string>() : v.dump());
                next.push_back(std::move(q));
            }
        out = std::move(next);
    }
    return out;
}

namespace {
nlohmann::json read_experiment_json(const std::filesystem::path& file);
void resolve_paths(Experiment& e, const std::filesystem::path& file);
}  // namespace

std::vector<Experiment> load_experiments(const std::filesystem::path& file) {
    const nlohmann::json j = read_experiment_json(file);
    std::vector<SweepPoint> points;
    try {
        points = expand_sweeps(j);
    } catch (const Error& e) {
        throw Error(file.string() + ": " + e.what());
    }
    std::vector<Experiment> out;
    for (const SweepPoint& p : points) {
        Experiment e = parse_experiment(p.config, file.string() + (p.label.empty() ? "" : " [" + p.label + "]"));
        e.sweep_label = p.label;
        resolve_paths(e, file);
        out.push_back(std::move(e));
    }
    return out;
}

Experiment load_experiment(const std::filesystem::path& file) {
    std::vector<Experiment> all = load_experiments(file);
    return std::move(all.front());
}

namespace {
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
    }
    return j;
}

void resolve_paths(Experiment& e, const std::filesystem::path& file) {
    e.file = file;
    const auto base = file.parent_path();
    if (!e.backbone.path.empty() && e.backbone.path.is_relative()) e.backbone.path = base / e.backbone.path;
    if (!e.backbone.tokenizer.empty() && e.backbone.tokenizer.is_relative()) e.backbone.tokenizer = base / e.backbone.tokenizer;
    if (!e.task.data_dir.empty() && e.task.data_dir.is_relative()) e.task.data_dir = base / e.task.data_dir;
}
}  // namespace

}  // namespace meft
