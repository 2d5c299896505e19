#include "peft/peft_export.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <set>

#include "peft/method_edit.h"
#include "core/error.h"
#include "core/file_io.h"
#include "model/arch/arch.h"
#include "model/safetensors.h"

namespace meft {

namespace {

bool ends_with(const std::string& s, const std::string& t) {
    return s.size() >= t.size() && s.compare(s.size() - t.size(), t.size(), t) == 0;
}
bool starts_with(const std::string& s, const std::string& t) { return s.rfind(t, 0) == 0; }

std::vector<std::int64_t> dims(const Shape& s) { return {s.d.begin(), s.d.begin() + s.ndim}; }

// ---- PEFT's module matching rules ----------------------------------------------------------------
// PEFT decides which modules a config touches by their names in the Hugging Face model
// (`named_modules()`, e.g. "bert.encoder.layer.0.attention.self.query"). The engine's
// parameters carry those names, so the module names are every dotted prefix of a backbone
// parameter's name. (transformers also has modules without parameters — dropouts, activations,
// BART's tied embed_tokens, OPT's lm_head — none of which any name below could match.)

std::set<std::string> module_names(const Model& model) {
    std::set<std::string> out;
    for (const Parameter& p : model.params().all()) {
        if (p.added) continue;
        for (std::size_t dot = p.name.find('.'); dot != std::string::npos; dot = p.name.find('.', dot + 1))
            out.insert(p.name.substr(0, dot));
    }
    return out;
}

// tuners_utils.check_target_module_exists: a module named in modules_to_save, or inside one, is
// never an adapter target (`re.match(rf"(^|.*\.){m}($|\..*)", key)`).
bool inside_modules_to_save(const std::string& key, const std::vector<std::string>& modules_to_save) {
    for (const std::string& m : modules_to_save)
        if (key == m || starts_with(key, m + ".") || ends_with(key, "." + m) || key.find("." + m + ".") != std::string::npos)
            return true;
    return false;
}

// check_target_module_exists with a list of target_modules: the name itself or a dotted suffix.
bool target_matches(const std::string& key, const std::string& target) { return key == target || ends_with(key, "." + target); }

// IA3Model._check_target_module_feedforward with a list: a plain suffix (no dot required).
bool feedforward_matches(const std::string& key, const std::string& ff) { return ends_with(key, ff); }

// other._set_trainable: every module whose name ends with an entry of modules_to_save is wrapped.
bool saved_module_matches(const std::string& key, const std::string& m) { return ends_with(key, m); }

// The dotted suffixes of a module name, shortest first, leaving out those that begin with a
// layer number ("0.output.dense" reads as a typo; "layer.0.output.dense" does not).
std::vector<std::string> suffixes(const std::string& module) {
    std::vector<std::string> parts;
    for (std::size_t b = 0, e; b <= module.size(); b = e + 1) {
        e = module.find('.', b);
        if (e == std::string::npos) e = module.size();
        parts.push_back(module.substr(b, e - b));
    }
    std::vector<std::string> out;
    for (std::size_t k = parts.size(); k-- > 0;) {
        const std::string& first = parts[k];
        if (std::all_of(first.begin(), first.end(), [](char ch) { return ch >= '0' && ch <= '9'; })) continue;
        std::string s = first;
        for (std::size_t i = k + 1; i < parts.size(); ++i) s += "." + parts[i];
        out.push_back(s);
    }
    return out;
}

// A target_modules list whose PEFT matching selects exactly `wanted` among `universe`. Each
// wanted module contributes its shortest suffix that matches nothing outside `wanted`: "query",
// "q_proj" (self- and cross-attention alike when both are wanted), "attention.output.dense", or
// per layer "layer.3.output.dense" where "output.dense" would also catch the attention's output
// projection. The names do not lean on PEFT's rule that modules_to_save are never targets (it is
// recent): "dense" is not used even when the only other dense module is a saved pooler's.
std::vector<std::string> target_list(const std::set<std::string>& wanted, const std::set<std::string>& universe) {
    auto selected = [&](const std::string& t) {
        std::set<std::string> s;
        for (const std::string& k : universe)
            if (target_matches(k, t)) s.insert(k);
        return s;
    };
    std::set<std::string> names;
    for (const std::string& m : wanted) {
        std::string pick;
        for (const std::string& s : suffixes(m)) {
            const std::set<std::string> sel = selected(s);
            if (std::includes(wanted.begin(), wanted.end(), sel.begin(), sel.end())) {
                pick = s;
                break;
            }
        }
        MEFT_CHECK(!pick.empty(), "no PEFT target name selects only " + m);
        names.insert(pick);
    }
    std::set<std::string> all;
    for (const std::string& t : names) all.merge(selected(t));
    MEFT_CHECK(all == wanted, "PEFT target_modules do not select exactly the method's modules");
    return {names.begin(), names.end()};
}

// The name under which modules_to_save wraps `module`: its shortest suffix that no other module
// ends with.
std::string saved_module_name(const std::string& module, const std::set<std::string>& universe) {
    for (const std::string& s : suffixes(module)) {
        int n = 0;
        for (const std::string& k : universe) n += saved_module_matches(k, s);
        if (n == 1) return s;
    }
    MEFT_CHECK(false, "no unique modules_to_save name for " + module);
    return module;
}

// ---- the model's pieces ------------------------------------------------------------------------

enum class Task { SeqCls, CausalLm, None };

Task task_of(const Model& m) {
    const ModelConfig& c = m.config();
    if (is_decoder_only(c.arch)) return Task::CausalLm;
    // PEFT has no multiple-choice task type: BertForMultipleChoice / RobertaForMultipleChoice go
    // through the task-less PeftModel. BART's multiple-choice scorer is BartForSequenceClassification.
    if (c.multiple_choice && !is_encoder_decoder(c.arch)) return Task::None;
    return Task::SeqCls;
}

std::string architecture(const ModelConfig& c) { return c.to_json()["architectures"][0].get<std::string>(); }

std::vector<double> host_values(Model& model, const Parameter& p) { return model.to_host(p.value); }

const Parameter& param(Model& model, const std::string& name) {
    const Parameter* p = model.params().find(name);
    MEFT_CHECK(p != nullptr, "no parameter " + name);
    return *p;
}

// The (IA)3 vector of the FFN output scales that linear's input (PEFT's feedforward module);
// the others scale the key/value projections' outputs.
bool ia3_feedforward(const std::string& module) {
    return ends_with(module, ".fc2") || (ends_with(module, ".output.dense") && !ends_with(module, ".attention.output.dense"));
}

// Where the method's tensors sit: module name -> parameter.
std::map<std::string, const Parameter*> added_by_suffix(const Model& model, const std::string& suffix) {
    std::map<std::string, const Parameter*> out;
    for (const Parameter& p : model.params().all())
        if (p.added && ends_with(p.name, suffix)) out[p.name.substr(0, p.name.size() - suffix.size())] = &p;
    return out;
}

// The module a backbone parameter belongs to, as modules_to_save saves it: a head parameter's
// whole head ("classifier", "classification_head", "bert.pooler"), any other parameter's own
// module ("bert.encoder.layer.0.output.LayerNorm").
std::string owning_module(const Model& model, const std::string& name) {
    if (model.is_head_parameter(name)) {
        const std::string pre = starts_with(name, model.prefix()) ? model.prefix() : "";
        const std::string rest = name.substr(pre.size());
        return pre + rest.substr(0, rest.find('.'));
    }
    return name.substr(0, name.rfind('.'));
}

std::string quoted_list(const std::vector<std::string>& v) {
    std::string s;
    for (const std::string& x : v) s += (s.empty() ? "" : ", ") + x;
    return s;
}

// Prefix-tuning under PEFT: transformers gives the real tokens positions after the P cached ones
// (BertEmbeddings / create_position_ids_from_input_ids / OPT's cumsum over the extended mask all
// add past_key_values_length), while the engine keeps them where they were. The exported
// position table is the engine's moved down by P rows from the first real-token row, so the
// model PEFT builds reads exactly the rows the engine trained with. Returns the table's name and
// its first real-token row.
std::pair<std::string, int> position_table(const Model& model) {
    const ModelConfig& c = model.config();
    const ArchSpec& spec = arch_spec(c.arch);
    return {spec.embeddings(c).positions, spec.first_position(c)};
}

std::vector<double> shifted_positions(const std::vector<double>& table, std::int64_t rows, std::int64_t C, int first,
                                      int P) {
    std::vector<double> out = table;
    for (std::int64_t r = first + P; r < rows; ++r)
        std::copy_n(table.begin() + (r - P) * C, C, out.begin() + r * C);
    return out;
}

// prompt_embeddings [P, num_layers·2·C]: column (2l + kv)·C + c is layer l's key (kv = 0) or
// value (kv = 1) channel c, as peft_model.get_prompt views it ([P, num_layers·2, heads, head_dim],
// split per layer into key and value); the engine's per-layer prefixes, or its MLP's output.
HostTensor prompt_embeddings(Model& model) {
    const ModelConfig& c = model.config();
    const PrefixSettings& s = method_of(model).prefix;
    const std::int64_t P = s.length, C = c.hidden_size, L = c.num_layers, W = 2 * L * C;
    HostTensor t{"prompt_embeddings", {P, W}, std::vector<double>(static_cast<std::size_t>(P * W))};
    if (s.reparameterize) {  // tanh(E W1ᵀ + b1) W2ᵀ + b2
        const std::int64_t H = s.hidden;
        const auto E = host_values(model, param(model, "prefix_encoder.embedding.weight"));
        const auto W1 = host_values(model, param(model, "prefix_encoder.transform.0.weight"));
        const auto b1 = host_values(model, param(model, "prefix_encoder.transform.0.bias"));
        const auto W2 = host_values(model, param(model, "prefix_encoder.transform.2.weight"));
        const auto b2 = host_values(model, param(model, "prefix_encoder.transform.2.bias"));
        std::vector<double> h(static_cast<std::size_t>(H));
        for (std::int64_t p = 0; p < P; ++p) {
            for (std::int64_t j = 0; j < H; ++j) {
                double a = b1[j];
                for (std::int64_t k = 0; k < C; ++k) a += E[p * C + k] * W1[j * C + k];
                h[j] = std::tanh(a);
            }
            for (std::int64_t o = 0; o < W; ++o) {
                double a = b2[o];
                for (std::int64_t j = 0; j < H; ++j) a += h[j] * W2[o * H + j];
                t.values[p * W + o] = a;
            }
        }
        return t;
    }
    const ArchSpec& spec = arch_spec(c.arch);
    const std::string layers = spec.layers(), attention = std::string(".") + spec.layer_names().attention + ".";
    for (std::int64_t l = 0; l < L; ++l)
        for (int kv = 0; kv < 2; ++kv) {
            const std::string n = layers + std::to_string(l) + attention + (kv ? "prefix_value" : "prefix_key");
            const auto v = host_values(model, param(model, n));
            for (std::int64_t p = 0; p < P; ++p)
                std::copy_n(v.begin() + p * C, C, t.values.begin() + p * W + (2 * l + kv) * C);
        }
    return t;
}

// Bytes of `values` as file_dtype (F32 or F64), little-endian.
std::vector<std::byte> encode(const std::vector<double>& values, DType file_dtype) {
    std::vector<std::byte> out(values.size() * dtype_size(file_dtype));
    for (std::size_t i = 0; i < values.size(); ++i) {
        if (file_dtype == DType::F64) {
            std::memcpy(out.data() + 8 * i, &values[i], 8);
        } else {
            const float f = static_cast<float>(values[i]);
            std::memcpy(out.data() + 4 * i, &f, 4);
        }
    }
    return out;
}

void check_file_dtype(DType t, const char* what) {
    if (t != DType::F32 && t != DType::F64)
        throw Error(std::string(what) + ": tensors are written as F32 or F64, not " + std::string(dtype_name(t)));
}

// A Hugging Face checkpoint folder (config.json + model.safetensors) of these tensors.
void write_checkpoint(const Model& model, const std::vector<HostTensor>& tensors, const std::filesystem::path& dir,
                      DType file_dtype) {
    std::filesystem::create_directories(dir);
    std::vector<std::vector<std::byte>> bytes;
    bytes.reserve(tensors.size());
    std::vector<TensorRecord> records;
    for (const HostTensor& t : tensors) {
        bytes.push_back(encode(t.values, file_dtype));
        records.push_back(TensorRecord{t.name, file_dtype, t.shape, bytes.back().data()});
    }
    write_checkpoint_tensors(dir, records);
    ModelConfig cfg = model.config();
    cfg.torch_dtype = file_dtype == DType::F64 ? "float64" : "float32";
    save_model_config(cfg, dir);
}

// The backbone's parameters as they are, in declaration order (what save_model writes, less
// the method's tensors).
std::vector<HostTensor> backbone_tensors(Model& model) {
    std::vector<HostTensor> out;
    for (const Parameter& p : model.params().all())
        if (!p.added) out.push_back({p.name, dims(p.shape), host_values(model, p)});
    return out;
}

nlohmann::json list_or_null(const std::vector<std::string>& v) {
    return v.empty() ? nlohmann::json(nullptr) : nlohmann::json(v);
}

// A number as PEFT's config holds it: an int when integral (lora_alpha = 16), else a float.
nlohmann::json number(double x) {
    if (std::floor(x) == x && std::abs(x) < 1e15) return static_cast<std::int64_t>(x);
    return x;
}

}  // namespace

// ---- PEFT's adapter layout ---------------------------------------------------------------------

bool has_peft_layout(const MethodConfig& m) {
    return m.is_lora() || m.kind == MethodKind::VeRA || m.kind == MethodKind::IA3 || m.kind == MethodKind::Prefix;
}

PeftAdapter peft_adapter(Model& model, const std::string& base_model_name_or_path) {
    const MethodConfig& m = method_of(model);
    const ModelConfig& c = model.config();
    const std::string where = "PEFT adapter (" + m.name() + " on " + arch_name(c.arch) + ")";
    if (!has_peft_layout(m))
        throw Error(where + ": Hugging Face PEFT has no adapter layout for the '" + m.name() +
                    "' method (only the LoRA family, vera, ia3 and prefix have one)" +
                    (can_merge(m) ? "; save the model itself (or save_merged_model) instead" : ""));
    const Task task = task_of(model);
    const bool prefix = m.is_prefix();
    if (prefix && is_encoder_decoder(c.arch))
        throw Error(where + ": PEFT cannot hold this model: its prefix-tuning reaches a model only through "
                    "past_key_values, which BART reads in its decoder alone (the encoder's self-attention never "
                    "sees them), so the encoder's prefixes have no place in PEFT's layout");
    if (prefix && task == Task::None)
        throw Error(where + ": PEFT cannot hold this model: " + architecture(c) +
                    " has no PEFT task type, and PEFT's task-less model does not inject prefix-tuning's "
                    "past_key_values; only sequence classification and causal LM heads can be exported");

    const std::set<std::string> universe = module_names(model);
    // The method's own tensors, and the modules PEFT's adapters sit on.
    const auto lora_a = added_by_suffix(model, ".lora_A.weight");
    const auto lora_b = added_by_suffix(model, ".lora_B.weight");
    const auto magnitude = added_by_suffix(model, ".lora_magnitude_vector");  // DoRA
    const auto lambda_b = added_by_suffix(model, ".vera_lambda_b"), lambda_d = added_by_suffix(model, ".vera_lambda_d");
    const auto ia3 = added_by_suffix(model, ".ia3_l");
    std::set<std::string> targets, feedforward;
    for (const auto& [mod, p] : lora_a) targets.insert(mod);
    for (const auto& [mod, p] : lambda_b) targets.insert(mod);
    for (const auto& [mod, p] : ia3) {
        targets.insert(mod);
        if (ia3_feedforward(mod)) feedforward.insert(mod);
    }

    // modules_to_save: the head (a base checkpoint may lack it, and transformers would draw it at
    // random), every other module with a trained backbone tensor, and for prefix-tuning the
    // position table moved by P rows (see position_table()).
    std::set<std::string> saved;
    for (const Parameter& p : model.params().all())
        if (!p.added && (p.trainable || model.is_head_parameter(p.name))) saved.insert(owning_module(model, p.name));
    const auto [pos_name, pos_first] = position_table(model);
    if (prefix) saved.insert(pos_name.substr(0, pos_name.rfind('.')));
    std::vector<std::string> extra;  // their modules_to_save names, sorted
    for (const std::string& mod : saved) extra.push_back(saved_module_name(mod, universe));
    std::sort(extra.begin(), extra.end());
    std::vector<std::string> modules_to_save;
    if (task == Task::SeqCls) {
        // PeftModelForSequenceClassification appends its classifier names to what it is given.
        for (const std::string& e : extra)
            if (e != "classifier" && e != "score") modules_to_save.push_back(e);
        modules_to_save.push_back("classifier");
        modules_to_save.push_back("score");
    } else {
        modules_to_save = extra;
    }
    for (const std::string& t : targets)
        if (inside_modules_to_save(t, modules_to_save))
            throw Error(where + ": PEFT cannot hold this model: " + t + " carries the method's tensors inside a "
                        "module whose trained tensors PEFT must save whole (modules_to_save: " +
                        quoted_list(modules_to_save) + "), and PEFT puts no adapter inside such a module");

    // Tensors: save_and_load.get_peft_model_state_dict with the adapter name removed. A tuner's
    // model (LoRA, (IA)3) wraps the transformers model as base_model.model; prompt learning keeps
    // it as base_model.
    const std::string key_prefix = prefix ? "base_model." : "base_model.model.";
    PeftAdapter out;
    for (const auto& [mod, p] : lora_a) {
        out.tensors.push_back({key_prefix + mod + ".lora_A.weight", dims(p->shape), host_values(model, *p)});
        const Parameter& b = *lora_b.at(mod);
        out.tensors.push_back({key_prefix + mod + ".lora_B.weight", dims(b.shape), host_values(model, b)});
        if (magnitude.count(mod)) {  // DoRA: [out], saved without its adapter name as PEFT does
            const Parameter& g = *magnitude.at(mod);
            out.tensors.push_back({key_prefix + mod + ".lora_magnitude_vector", dims(g.shape), host_values(model, g)});
        }
    }
    for (const auto& [mod, p] : lambda_b) {  // VeRA: per module λ_b, λ_d; the shared A, B once (save_projection)
        out.tensors.push_back({key_prefix + mod + ".vera_lambda_b", dims(p->shape), host_values(model, *p)});
        const Parameter& d = *lambda_d.at(mod);
        out.tensors.push_back({key_prefix + mod + ".vera_lambda_d", dims(d.shape), host_values(model, d)});
    }
    if (!lambda_b.empty())
        for (const char* name : {"vera_A", "vera_B"}) {
            const Parameter& p = *model.params().find(name);
            out.tensors.push_back({std::string("base_model.") + name, dims(p.shape), host_values(model, p)});
        }
    for (const auto& [mod, p] : ia3) {
        // IA3Layer.update_layer: (1, in_features) for a feedforward module, (out_features, 1) else.
        const std::int64_t n = p->shape.numel();
        out.tensors.push_back({key_prefix + mod + ".ia3_l",
                               feedforward.count(mod) ? std::vector<std::int64_t>{1, n} : std::vector<std::int64_t>{n, 1},
                               host_values(model, *p)});
    }
    if (prefix) out.tensors.push_back(prompt_embeddings(model));
    for (const Parameter& p : model.params().all()) {
        if (p.added) continue;
        bool in_saved = false;
        for (const std::string& mod : saved) in_saved = in_saved || starts_with(p.name, mod + ".");
        if (!in_saved) continue;
        std::vector<double> v = host_values(model, p);
        if (prefix && p.name == pos_name) v = shifted_positions(v, p.shape[0], p.shape[1], pos_first, m.prefix.length);
        out.tensors.push_back({key_prefix + p.name, dims(p.shape), std::move(v)});
    }
    std::sort(out.tensors.begin(), out.tensors.end(), [](const HostTensor& a, const HostTensor& b) { return a.name < b.name; });

    // adapter_config.json: every field of PEFT's config dataclass (config.PeftConfigMixin.to_dict
    // is dataclasses.asdict), as save_pretrained leaves them: inference_mode true, task_type set,
    // sets written as lists. peft_version is left out: PEFT fills in its own version on load.
    nlohmann::json j;
    j["auto_mapping"] = nullptr;
    if (task == Task::None) {  // PeftModel.save_pretrained's auto_mapping_dict
        const std::string arch = arch_name(c.arch);
        j["auto_mapping"] = {{"base_model_class", architecture(c)},
                             {"parent_library", "transformers.models." + arch + ".modeling_" + arch}};
    }
    j["base_model_name_or_path"] = base_model_name_or_path;
    j["revision"] = nullptr;
    j["task_type"] = task == Task::SeqCls ? nlohmann::json("SEQ_CLS")
                     : task == Task::CausalLm ? nlohmann::json("CAUSAL_LM") : nlohmann::json(nullptr);
    j["inference_mode"] = true;
    j["modules_to_save"] = list_or_null(modules_to_save);
    if (m.is_lora()) {  // tuners/lora/config.py LoraConfig (to_dict drops runtime_config); LoRA-FA is plain LoRA to PEFT
        j["peft_type"] = "LORA";
        j["r"] = m.lora.r;
        j["lora_alpha"] = number(m.lora.alpha);
        j["lora_dropout"] = m.lora.dropout;
        j["target_modules"] = target_list(targets, universe);
        for (const char* k : {"alora_invocation_tokens", "arrow_config", "corda_config", "eva_config", "exclude_modules",
                              "kasa_config", "layer_replication", "layers_pattern", "layers_to_transform",
                              "lora_ga_config", "megatron_config", "monteclora_config", "target_parameters",
                              "trainable_token_indices", "use_bdlora", "velora_config"})
            j[k] = nullptr;
        for (const char* k : {"ensure_weight_tying", "fan_in_fan_out", "lora_bias", "use_qalora"})
            j[k] = false;
        j["use_dora"] = m.kind == MethodKind::DoRA;
        j["use_rslora"] = m.kind == MethodKind::RsLoRA;  // scaling lora_alpha / sqrt(r)
        j["alpha_pattern"] = j["rank_pattern"] = j["loftq_config"] = nlohmann::json::object();
        j["bias"] = "none";
        j["init_lora_weights"] = true;
        j["megatron_core"] = "megatron.core";
        j["qalora_group_size"] = 16;
    } else if (m.kind == MethodKind::VeRA) {  // tuners/vera/config.py VeraConfig
        j["peft_type"] = "VERA";
        j["r"] = m.vera.r;
        j["target_modules"] = target_list(targets, universe);
        j["projection_prng_key"] = 0;    // unused: the projections are saved (save_projection)
        j["save_projection"] = true;
        j["vera_dropout"] = m.vera.dropout;
        j["d_initial"] = m.vera.d_initial;
        j["fan_in_fan_out"] = false;
        j["bias"] = "none";
        j["init_weights"] = true;
        j["layers_to_transform"] = j["layers_pattern"] = nullptr;
    } else if (m.kind == MethodKind::IA3) {  // tuners/ia3/config.py IA3Config
        j["peft_type"] = "IA3";
        const std::vector<std::string> t = target_list(targets, universe);
        std::vector<std::string> ff;  // the same names, so that feedforward_modules ⊆ target_modules
        for (const std::string& name : t) {
            int n = 0, n_ff = 0;
            for (const std::string& k : targets)
                if (target_matches(k, name)) {
                    ++n;
                    n_ff += feedforward.count(k) > 0 ? 1 : 0;
                }
            MEFT_CHECK(n > 0 && (n_ff == 0 || n_ff == n), "an (IA)3 target name mixes FFN outputs and other modules: " + name);
            if (n_ff > 0) ff.push_back(name);
        }
        for (const std::string& k : targets) {  // feedforward_modules as a list: a plain suffix
            bool is_ff = false;
            for (const std::string& f : ff) is_ff = is_ff || feedforward_matches(k, f);
            MEFT_CHECK(is_ff == (feedforward.count(k) > 0), "feedforward_modules do not select the FFN outputs: " + k);
        }
        j["target_modules"] = t;
        j["feedforward_modules"] = ff;
        j["exclude_modules"] = nullptr;
        j["fan_in_fan_out"] = false;
        j["init_ia3_weights"] = true;
    } else {  // tuners/prefix_tuning/config.py PrefixTuningConfig, filled in as PEFT fills it
        j["peft_type"] = "PREFIX_TUNING";
        j["num_virtual_tokens"] = m.prefix.length;
        j["token_dim"] = c.hidden_size;
        j["num_layers"] = c.num_layers;
        j["num_attention_heads"] = c.num_heads;
        j["num_transformer_submodules"] = 1;  // not SEQ_2_SEQ_LM (peft_model._setup_prompt_encoder)
        j["prefix_projection"] = m.prefix.reparameterize;
        j["encoder_hidden_size"] = m.prefix.reparameterize ? nlohmann::json(m.prefix.hidden) : nlohmann::json(nullptr);
        j["init_weights"] = nullptr;
    }
    out.config = std::move(j);
    return out;
}

void save_peft_adapter(Model& model, const std::filesystem::path& dir, const std::string& base_model_name_or_path,
                       DType file_dtype) {
    check_file_dtype(file_dtype, "save_peft_adapter");
    const PeftAdapter a = peft_adapter(model, base_model_name_or_path);
    std::filesystem::create_directories(dir);
    std::vector<std::vector<std::byte>> bytes;
    bytes.reserve(a.tensors.size());
    std::vector<TensorRecord> records;
    for (const HostTensor& t : a.tensors) {
        bytes.push_back(encode(t.values, file_dtype));
        records.push_back(TensorRecord{t.name, file_dtype, t.shape, bytes.back().data()});
    }
    write_safetensors(dir / "adapter_model.safetensors", records);  // metadata {"format": "pt"}, as PEFT's
    // PeftConfigMixin.save_pretrained: json.dumps(indent=2, sort_keys=True), ASCII only, no newline.
    write_file_atomically(dir / "adapter_config.json", a.config.dump(2, ' ', true));
}

// ---- merged and base checkpoints ---------------------------------------------------------------

bool can_merge(const MethodConfig& m) {
    return m.kind == MethodKind::Full || m.kind == MethodKind::BitFit || m.is_lora() || m.kind == MethodKind::VeRA ||
           m.kind == MethodKind::IA3;
}

std::vector<HostTensor> merged_tensors(Model& model) {
    const MethodConfig& m = method_of(model);
    if (!can_merge(m))
        throw Error("merged model (" + m.name() + " on " + arch_name(model.config().arch) + "): the '" + m.name() +
                    "' method adds computation the backbone's tensors cannot absorb (only full, bitfit, the LoRA "
                    "family, vera and ia3 merge); save the model itself" + (has_peft_layout(m) ? " or its PEFT adapter" : "") + " instead");
    std::vector<HostTensor> out = backbone_tensors(model);
    std::map<std::string, HostTensor*> by_name;
    for (HostTensor& t : out) by_name[t.name] = &t;
    auto tensor = [&](const std::string& n) -> HostTensor& {
        MEFT_CHECK(by_name.count(n), "no backbone tensor " + n);
        return *by_name[n];
    };
    // LoRA: W [out, in] += (alpha / r) · B [out, r] · A [r, in] (rsLoRA: alpha / sqrt(r))
    const auto lora_a = added_by_suffix(model, ".lora_A.weight");
    const auto lora_b = added_by_suffix(model, ".lora_B.weight");
    const auto magnitude = added_by_suffix(model, ".lora_magnitude_vector");
    const double scale = m.lora_scale();
    for (const auto& [mod, pa] : lora_a) {
        HostTensor& W = tensor(mod + ".weight");
        const std::vector<double> A = host_values(model, *pa), B = host_values(model, *lora_b.at(mod));
        const std::int64_t out_f = W.shape[0], in_f = W.shape[1], r = pa->shape[0];
        for (std::int64_t o = 0; o < out_f; ++o)
            for (std::int64_t i = 0; i < in_f; ++i) {
                double d = 0;
                for (std::int64_t k = 0; k < r; ++k) d += B[o * r + k] * A[k * in_f + i];
                W.values[o * in_f + i] += scale * d;
            }
        if (!magnitude.count(mod)) continue;
        // DoRA: W' = m ⊙ (W + s·B·A) / ||W + s·B·A|| row by row (the bias stays).
        const std::vector<double> g = host_values(model, *magnitude.at(mod));
        for (std::int64_t o = 0; o < out_f; ++o) {
            double ss = 0;
            for (std::int64_t i = 0; i < in_f; ++i) ss += W.values[o * in_f + i] * W.values[o * in_f + i];
            const double f = g[o] / std::sqrt(ss);
            for (std::int64_t i = 0; i < in_f; ++i) W.values[o * in_f + i] *= f;
        }
    }
    // VeRA: W [out, in] += diag(λ_b) · B[:out] [out, r] · diag(λ_d) · A[:, :in] [r, in]
    const auto lambda_b = added_by_suffix(model, ".vera_lambda_b");
    if (!lambda_b.empty()) {
        const auto lambda_d = added_by_suffix(model, ".vera_lambda_d");
        const Parameter &pa = *model.params().find("vera_A"), &pb = *model.params().find("vera_B");
        const std::vector<double> A = host_values(model, pa), B = host_values(model, pb);
        const std::int64_t r = pa.shape[0], in_max = pa.shape[1];
        for (const auto& [mod, p] : lambda_b) {
            HostTensor& W = tensor(mod + ".weight");
            const std::vector<double> lb = host_values(model, *p), ld = host_values(model, *lambda_d.at(mod));
            const std::int64_t out_f = W.shape[0], in_f = W.shape[1];
            for (std::int64_t o = 0; o < out_f; ++o)
                for (std::int64_t i = 0; i < in_f; ++i) {
                    double d = 0;
                    for (std::int64_t k = 0; k < r; ++k) d += B[o * r + k] * ld[k] * A[k * in_max + i];
                    W.values[o * in_f + i] += lb[o] * d;
                }
        }
    }
    // (IA)3: keys/values (x Wᵀ + b) ⊙ l = x (diag(l) W)ᵀ + b ⊙ l; the FFN output
    // (a ⊙ l) Wᵀ + b = a (W diag(l))ᵀ + b.
    for (const auto& [mod, p] : added_by_suffix(model, ".ia3_l")) {
        const std::vector<double> l = host_values(model, *p);
        HostTensor& W = tensor(mod + ".weight");
        const std::int64_t out_f = W.shape[0], in_f = W.shape[1];
        if (ia3_feedforward(mod)) {
            MEFT_CHECK(static_cast<std::int64_t>(l.size()) == in_f, "ia3 vector size of " + mod);
            for (std::int64_t o = 0; o < out_f; ++o)
                for (std::int64_t i = 0; i < in_f; ++i) W.values[o * in_f + i] *= l[i];
        } else {
            MEFT_CHECK(static_cast<std::int64_t>(l.size()) == out_f, "ia3 vector size of " + mod);
            for (std::int64_t o = 0; o < out_f; ++o)
                for (std::int64_t i = 0; i < in_f; ++i) W.values[o * in_f + i] *= l[o];
            HostTensor& b = tensor(mod + ".bias");
            for (std::int64_t o = 0; o < out_f; ++o) b.values[o] *= l[o];
        }
    }
    return out;
}

void save_merged_model(Model& model, const std::filesystem::path& dir, DType file_dtype) {
    check_file_dtype(file_dtype, "save_merged_model");
    write_checkpoint(model, merged_tensors(model), dir, file_dtype);
}

void save_base_model(Model& model, const std::filesystem::path& dir, DType file_dtype) {
    check_file_dtype(file_dtype, "save_base_model");
    write_checkpoint(model, backbone_tensors(model), dir, file_dtype);
}

}  // namespace meft
