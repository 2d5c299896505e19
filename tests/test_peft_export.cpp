// Hugging Face PEFT's adapter layout and merged checkpoints (engine/peft/peft_export.h): the
// tensor names, shapes and dtypes of adapter_model.safetensors and every key of
// adapter_config.json per method and backbone, against expectations written by hand from PEFT's
// source (the file and function are cited at each); the merged model computes what the unmerged
// one does, holds no added tensor and reloads without notices. What PEFT then computes from these
// files is checked independently by test_peft_export_cli (a numpy re-implementation of PEFT's
// loading).
#include <gtest/gtest.h>

#include <tuple>

#include <fstream>
#include <map>

#include "peft/method.h"
#include "core/cpu_backend.h"
#include "model/checkpoint.h"
#include "model/safetensors.h"
#include "peft/peft_export.h"
#include "peft_export_cases.h"
#include "test_support.h"

using namespace meft;
using meft::test::make_case_model;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

using Shapes = std::map<std::string, std::vector<std::int64_t>>;

// ---- PEFT's config classes at their defaults -----------------------------------------------------
// Every field of the dataclass, as PeftConfigMixin.save_pretrained writes it (config.py: to_dict =
// dataclasses.asdict, json.dumps(indent=2, sort_keys=True)) after PeftModel.save_pretrained set
// inference_mode = True. PEFT 0.20 (main, August 2026). peft_version is the one field left out.

// config.py PeftConfig / PeftConfigMixin
json peft_config_base(const std::string& peft_type, const json& task_type) {
    return {{"auto_mapping", nullptr}, {"base_model_name_or_path", "org/base-model"}, {"revision", nullptr},
            {"peft_type", peft_type},  {"task_type", task_type},                     {"inference_mode", true}};
}

// tuners/lora/config.py LoraConfig (to_dict pops runtime_config)
json lora_config(const json& task_type, int r, const json& alpha, double dropout, const json& targets,
                 const json& modules_to_save) {
    json j = peft_config_base("LORA", task_type);
    for (const char* k : {"alora_invocation_tokens", "arrow_config", "corda_config", "eva_config", "exclude_modules",
                          "kasa_config", "layer_replication", "layers_pattern", "layers_to_transform", "lora_ga_config",
                          "megatron_config", "monteclora_config", "target_parameters", "trainable_token_indices",
                          "use_bdlora", "velora_config"})
        j[k] = nullptr;
    for (const char* k : {"ensure_weight_tying", "fan_in_fan_out", "lora_bias", "use_dora", "use_qalora", "use_rslora"})
        j[k] = false;
    j["alpha_pattern"] = j["rank_pattern"] = j["loftq_config"] = json::object();
    j["bias"] = "none";
    j["init_lora_weights"] = true;
    j["megatron_core"] = "megatron.core";
    j["qalora_group_size"] = 16;
    j["r"] = r;
    j["lora_alpha"] = alpha;
    j["lora_dropout"] = dropout;
    j["target_modules"] = targets;
    j["modules_to_save"] = modules_to_save;
    return j;
}

// tuners/ia3/config.py IA3Config
json ia3_config(const json& task_type, const json& targets, const json& feedforward, const json& modules_to_save) {
    json j = peft_config_base("IA3", task_type);
    j["exclude_modules"] = nullptr;
    j["fan_in_fan_out"] = false;
    j["init_ia3_weights"] = true;
    j["target_modules"] = targets;
    j["feedforward_modules"] = feedforward;
    j["modules_to_save"] = modules_to_save;
    return j;
}

// tuners/prefix_tuning/config.py PrefixTuningConfig (config.py PromptLearningConfig), with the
// values utils/other.py _prepare_prompt_learning_config and peft_model._setup_prompt_encoder fill in.
json prefix_config(const json& task_type, int P, int C, int L, int heads, bool projection, const json& hidden,
                   const json& modules_to_save) {
    json j = peft_config_base("PREFIX_TUNING", task_type);
    j["num_virtual_tokens"] = P;
    j["token_dim"] = C;
    j["num_layers"] = L;
    j["num_attention_heads"] = heads;
    j["num_transformer_submodules"] = 1;
    j["prefix_projection"] = projection;
    j["encoder_hidden_size"] = hidden;
    j["init_weights"] = nullptr;
    j["modules_to_save"] = modules_to_save;
    return j;
}

// LoRA: base_model.model.<module>.lora_A.weight [r, in] and lora_B.weight [out, r]
// (save_and_load.get_peft_model_state_dict; the adapter name removed by
// tuners_utils._remove_adapter_name_from_state_dict_key).
void add_lora(Shapes& s, const std::string& module, std::int64_t in, std::int64_t out, std::int64_t r = 2) {
    s["base_model.model." + module + ".lora_A.weight"] = {r, in};
    s["base_model.model." + module + ".lora_B.weight"] = {out, r};
}

// modules_to_save: the wrapped module's own state dict under its name
// (utils/other.py ModulesToSaveWrapper.adapter_state_dict).
void add_bert_head(Shapes& s, const std::string& p, const std::string& backbone, int K) {
    s[p + backbone + ".pooler.dense.weight"] = {8, 8};
    s[p + backbone + ".pooler.dense.bias"] = {8};
    s[p + "classifier.weight"] = {K, 8};
    s[p + "classifier.bias"] = {K};
}
void add_dense_head(Shapes& s, const std::string& p, const std::string& head) {
    s[p + head + ".dense.weight"] = {8, 8};
    s[p + head + ".dense.bias"] = {8};
    s[p + head + ".out_proj.weight"] = {3, 8};
    s[p + head + ".out_proj.bias"] = {3};
}

std::vector<std::string> layers(Arch a) {
    if (a == Arch::Bert) return {"bert.encoder.layer.0.", "bert.encoder.layer.1."};
    if (a == Arch::Roberta) return {"roberta.encoder.layer.0.", "roberta.encoder.layer.1."};
    if (a == Arch::Opt) return {"model.decoder.layers.0.", "model.decoder.layers.1."};
    return {"model.encoder.layers.0.", "model.encoder.layers.1.", "model.decoder.layers.0.", "model.decoder.layers.1."};
}

class PeftExport : public meft::test::TempDirTest {
protected:
    void SetUp() override {
        TempDirTest::SetUp();
        be_ = make_cpu_backend();
    }
    std::unique_ptr<Model> model(Arch a, const std::string& method, DType dt = DType::F32, bool mc = false) {
        return make_case_model(a, method, dt, *be_, 5, mc);
    }
    // Writes the adapter, then checks the files: names, shapes and dtype of every tensor, the
    // safetensors metadata, and adapter_config.json — its object and its exact text.
    void expect_adapter(Model& m, const Shapes& shapes, const json& config, DType dt = DType::F32) {
        const fs::path d = dir_ / "adapter";
        save_peft_adapter(m, d, "org/base-model", dt);
        const SafetensorsReader r = SafetensorsReader::open_file(d / "adapter_model.safetensors");
        std::vector<std::string> want;
        for (const auto& [n, s] : shapes) want.push_back(n);
        EXPECT_EQ(r.names(), want);
        for (const auto& [n, s] : shapes) {
            if (!r.contains(n)) continue;
            EXPECT_EQ(r.info(n).shape, s) << n;
            EXPECT_EQ(r.info(n).dtype_str, std::string(dtype_name(dt))) << n;
        }
        EXPECT_EQ(r.metadata(), (std::map<std::string, std::string>{{"format", "pt"}}));
        const std::string text = meft::test::read_bytes(d / "adapter_config.json");
        const json got = json::parse(text);
        EXPECT_EQ(got, config) << "got:\n" << got.dump(2) << "\nexpected:\n" << config.dump(2);
        EXPECT_EQ(text, config.dump(2, ' ', true)) << "not json.dumps(indent=2, sort_keys=True)";
    }
    std::unique_ptr<Backend> be_;
};

// ---- which methods ---------------------------------------------------------------------------------

TEST(PeftLayout, LoraIa3AndPrefixHavePeftLayoutsLoraAndIa3Merge) {
    for (const std::string& n : method_names()) {
        const MethodConfig m = parse_method({{"name", n}}, "test");
        const bool lora = n == "lora" || n == "rslora" || n == "lora_fa" || n == "dora";
        EXPECT_EQ(has_peft_layout(m), lora || n == "vera" || n == "ia3" || n == "prefix") << n;
        EXPECT_EQ(can_merge(m), n == "full" || n == "bitfit" || lora || n == "vera" || n == "ia3") << n;
    }
}

// ---- LoRA ----------------------------------------------------------------------------------------

TEST_F(PeftExport, LoraOnBert) {
    auto m = model(Arch::Bert, "lora");
    Shapes s;
    for (const std::string& l : layers(Arch::Bert)) {
        add_lora(s, l + "attention.self.query", 8, 8);
        add_lora(s, l + "attention.self.value", 8, 8);
        add_lora(s, l + "output.dense", 16, 8);
    }
    add_bert_head(s, "base_model.model.", "bert", 3);
    // "output.dense" alone would also match attention.output.dense (check_target_module_exists:
    // key.endswith("." + target)), which the engine leaves alone: one name per layer instead.
    // PeftModelForSequenceClassification appends "classifier", "score" to modules_to_save.
    expect_adapter(*m, s,
                   lora_config("SEQ_CLS", 2, 3, 0.1,
                               {"layer.0.output.dense", "layer.1.output.dense", "query", "value"},
                               {"pooler", "classifier", "score"}));
    // The values are the engine's, bit for bit (F32 model, F32 file).
    const SafetensorsReader r = SafetensorsReader::open_file(dir_ / "adapter" / "adapter_model.safetensors");
    for (const char* n : {"bert.encoder.layer.1.attention.self.value.lora_B.weight", "classifier.weight"}) {
        const std::vector<float> got = r.read_f32("base_model.model." + std::string(n));
        const std::vector<double> want = m->to_host(m->params().find(n)->value);
        ASSERT_EQ(got.size(), want.size());
        for (std::size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], static_cast<float>(want[i])) << n;
    }
}

// rsLoRA is PEFT's LoRA with use_rslora (scaling lora_alpha / sqrt(r)); LoRA-FA is plain LoRA to
// PEFT (its A is a LoRA A that did not train).
TEST_F(PeftExport, RsLoraAndLoraFaAreLoraAdapters) {
    for (const char* name : {"rslora", "lora_fa"}) {
        auto m = model(Arch::Bert, name);
        Shapes s;
        for (const std::string& l : layers(Arch::Bert)) {
            add_lora(s, l + "attention.self.query", 8, 8);
            add_lora(s, l + "attention.self.value", 8, 8);
            add_lora(s, l + "output.dense", 16, 8);
        }
        add_bert_head(s, "base_model.model.", "bert", 3);
        json config = lora_config("SEQ_CLS", 2, 3, 0.1, {"layer.0.output.dense", "layer.1.output.dense", "query", "value"},
                                  {"pooler", "classifier", "score"});
        config["use_rslora"] = std::string(name) == "rslora";
        expect_adapter(*m, s, config);
        fs::remove_all(dir_ / "adapter");
    }
}

// DoRA is PEFT's LoRA with use_dora and a lora_magnitude_vector [out] per module
// (save_and_load.get_peft_model_state_dict: "lora_magnitude_vector.default.weight" renamed).
TEST_F(PeftExport, DoraIsALoraAdapterWithMagnitudes) {
    auto m = model(Arch::Bert, "dora");
    Shapes s;
    for (const std::string& l : layers(Arch::Bert))
        for (const auto& [mod, in, out] : {std::tuple{"attention.self.query", 8, 8}, std::tuple{"attention.self.value", 8, 8},
                                           std::tuple{"output.dense", 16, 8}}) {
            add_lora(s, l + mod, in, out);
            s["base_model.model." + l + mod + ".lora_magnitude_vector"] = {out};
        }
    add_bert_head(s, "base_model.model.", "bert", 3);
    json config = lora_config("SEQ_CLS", 2, 3, 0.1, {"layer.0.output.dense", "layer.1.output.dense", "query", "value"},
                              {"pooler", "classifier", "score"});
    config["use_dora"] = true;
    expect_adapter(*m, s, config);
    const SafetensorsReader r = SafetensorsReader::open_file(dir_ / "adapter" / "adapter_model.safetensors");
    const std::string n = "bert.encoder.layer.1.output.dense.lora_magnitude_vector";
    const std::vector<float> got = r.read_f32("base_model.model." + n);
    const std::vector<double> want = m->to_host(m->params().find(n)->value);
    ASSERT_EQ(got.size(), want.size());
    for (std::size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], static_cast<float>(want[i]));
}

// VeRA: tuners/vera/config.py VeraConfig; the shared projections once at base_model.vera_A [r,
// in_max] and base_model.vera_B [out_max, r] (save_projection), λ_b [out] and λ_d [r] per module.
TEST_F(PeftExport, VeraSavesItsSharedProjectionsAndPerModuleVectors) {
    auto m = model(Arch::Bert, "vera");
    Shapes s;
    for (const std::string& l : layers(Arch::Bert))
        for (const char* mod : {"attention.self.query", "attention.self.value", "output.dense"}) {
            s["base_model.model." + l + mod + ".vera_lambda_b"] = {8};
            s["base_model.model." + l + mod + ".vera_lambda_d"] = {3};
        }
    s["base_model.vera_A"] = {3, 16};  // ffn_out's input is the widest
    s["base_model.vera_B"] = {8, 3};
    add_bert_head(s, "base_model.model.", "bert", 3);
    json config = peft_config_base("VERA", "SEQ_CLS");
    config["r"] = 3;
    config["target_modules"] = {"layer.0.output.dense", "layer.1.output.dense", "query", "value"};
    config["projection_prng_key"] = 0;
    config["save_projection"] = true;
    config["vera_dropout"] = 0.1;
    config["d_initial"] = 0.1;
    config["fan_in_fan_out"] = false;
    config["bias"] = "none";
    config["init_weights"] = true;
    config["layers_to_transform"] = config["layers_pattern"] = nullptr;
    config["modules_to_save"] = {"pooler", "classifier", "score"};
    expect_adapter(*m, s, config);
}

TEST_F(PeftExport, LoraOnBertAllSitesInFloat64) {
    auto m = model(Arch::Bert, "lora_all", DType::F64);
    Shapes s;
    for (const std::string& l : layers(Arch::Bert)) {
        for (const char* n : {"attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"})
            add_lora(s, l + n, 8, 8);
        add_lora(s, l + "intermediate.dense", 8, 16);
        add_lora(s, l + "output.dense", 16, 8);
    }
    add_bert_head(s, "base_model.model.", "bert", 3);
    // "output.dense" now selects both wanted modules; "dense" would catch bert.pooler.dense.
    expect_adapter(*m, s,
                   lora_config("SEQ_CLS", 2, 3, 0.0, {"intermediate.dense", "key", "output.dense", "query", "value"},
                               {"pooler", "classifier", "score"}),
                   DType::F64);
}

TEST_F(PeftExport, LoraOnRoberta) {
    auto m = model(Arch::Roberta, "lora");
    Shapes s;
    for (const std::string& l : layers(Arch::Roberta)) {
        add_lora(s, l + "attention.self.query", 8, 8);
        add_lora(s, l + "attention.self.value", 8, 8);
        add_lora(s, l + "output.dense", 16, 8);
    }
    add_dense_head(s, "base_model.model.", "classifier");  // RobertaClassificationHead, no pooler
    expect_adapter(*m, s,
                   lora_config("SEQ_CLS", 2, 3, 0.1, {"layer.0.output.dense", "layer.1.output.dense", "query", "value"},
                               {"classifier", "score"}));
}

TEST_F(PeftExport, LoraOnBartCoversCrossAttentionAndSavesTheClassificationHead) {
    auto m = model(Arch::Bart, "lora_all");
    Shapes s;
    for (const std::string& l : layers(Arch::Bart)) {
        const bool decoder = l.find("decoder") != std::string::npos;
        for (const std::string& a : decoder ? std::vector<std::string>{"self_attn.", "encoder_attn."}
                                            : std::vector<std::string>{"self_attn."})
            for (const char* p : {"q_proj", "k_proj", "v_proj", "out_proj"}) add_lora(s, l + a + p, 8, 8);
        add_lora(s, l + "fc1", 8, 16);
        add_lora(s, l + "fc2", 16, 8);
    }
    add_dense_head(s, "base_model.model.", "classification_head");
    // "out_proj" would also name classification_head.out_proj; "q_proj" names self- and
    // cross-attention alike, as the engine's LoRA does.
    expect_adapter(*m, s,
                   lora_config("SEQ_CLS", 2, 3, 0.0,
                               {"encoder_attn.out_proj", "fc1", "fc2", "k_proj", "q_proj", "self_attn.out_proj", "v_proj"},
                               {"classification_head", "classifier", "score"}));
}

TEST_F(PeftExport, LoraOnOptIsACausalLmAdapterWithNothingElse) {
    auto m = model(Arch::Opt, "lora");
    Shapes s;
    for (const std::string& l : layers(Arch::Opt)) {
        add_lora(s, l + "self_attn.q_proj", 8, 8);
        add_lora(s, l + "self_attn.v_proj", 8, 8);
        add_lora(s, l + "fc2", 16, 8);
    }
    expect_adapter(*m, s, lora_config("CAUSAL_LM", 2, 3, 0.1, {"fc2", "q_proj", "v_proj"}, nullptr));
}

TEST_F(PeftExport, LoraOnAMultipleChoiceHeadHasNoTaskTypeButAnAutoMapping) {
    auto m = model(Arch::Bert, "lora", DType::F32, true);
    Shapes s;
    for (const std::string& l : layers(Arch::Bert)) {
        add_lora(s, l + "attention.self.query", 8, 8);
        add_lora(s, l + "attention.self.value", 8, 8);
        add_lora(s, l + "output.dense", 16, 8);
    }
    add_bert_head(s, "base_model.model.", "bert", 1);
    json c = lora_config(nullptr, 2, 3, 0.1, {"layer.0.output.dense", "layer.1.output.dense", "query", "value"},
                         {"classifier", "pooler"});
    // PeftModel.save_pretrained: task_type None -> auto_mapping of the base model's class
    c["auto_mapping"] = {{"base_model_class", "BertForMultipleChoice"},
                         {"parent_library", "transformers.models.bert.modeling_bert"}};
    expect_adapter(*m, s, c);
}

// ---- (IA)3 ---------------------------------------------------------------------------------------

// IA3Layer.update_layer: ia3_l is (out_features, 1) on a key/value projection, (1, in_features) on
// a feedforward module (tuners/ia3/layer.py).
TEST_F(PeftExport, Ia3OnBertAndRoberta) {
    for (Arch a : {Arch::Bert, Arch::Roberta}) {
        auto m = model(a, "ia3");
        Shapes s;
        for (const std::string& l : layers(a)) {
            s["base_model.model." + l + "attention.self.key.ia3_l"] = {8, 1};
            s["base_model.model." + l + "attention.self.value.ia3_l"] = {8, 1};
            s["base_model.model." + l + "output.dense.ia3_l"] = {1, 16};
        }
        if (a == Arch::Bert) add_bert_head(s, "base_model.model.", "bert", 3);
        else add_dense_head(s, "base_model.model.", "classifier");
        // PEFT's own default for bert (["key", "value", "output.dense"], feedforward
        // ["output.dense"]) would also scale attention.output.dense's input.
        const json ff = {"layer.0.output.dense", "layer.1.output.dense"};
        expect_adapter(*m, s,
                       ia3_config("SEQ_CLS", {"key", "layer.0.output.dense", "layer.1.output.dense", "value"}, ff,
                                  a == Arch::Bert ? json{"pooler", "classifier", "score"} : json{"classifier", "score"}));
        fs::remove_all(dir_ / "adapter");
    }
}

TEST_F(PeftExport, Ia3OnBartAndOpt) {
    for (Arch a : {Arch::Bart, Arch::Opt}) {
        auto m = model(a, "ia3");
        Shapes s;
        for (const std::string& l : layers(a)) {
            for (const char* p : {"self_attn.k_proj", "self_attn.v_proj"}) s["base_model.model." + l + p + ".ia3_l"] = {8, 1};
            if (l.find("decoder") != std::string::npos && a == Arch::Bart)
                for (const char* p : {"encoder_attn.k_proj", "encoder_attn.v_proj"})
                    s["base_model.model." + l + p + ".ia3_l"] = {8, 1};
            s["base_model.model." + l + "fc2.ia3_l"] = {1, 16};
        }
        if (a == Arch::Bart) add_dense_head(s, "base_model.model.", "classification_head");
        expect_adapter(*m, s,
                       ia3_config(a == Arch::Bart ? "SEQ_CLS" : "CAUSAL_LM", {"fc2", "k_proj", "v_proj"}, {"fc2"},
                                  a == Arch::Bart ? json{"classification_head", "classifier", "score"} : json(nullptr)));
        // the vectors are the engine's (IA)3 parameters
        const SafetensorsReader r = SafetensorsReader::open_file(dir_ / "adapter" / "adapter_model.safetensors");
        const std::string n = layers(a).back() + "fc2.ia3_l";
        const std::vector<float> got = r.read_f32("base_model.model." + n);
        const std::vector<double> want = m->to_host(m->params().find(n)->value);
        ASSERT_EQ(got.size(), want.size());
        for (std::size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], static_cast<float>(want[i]));
        fs::remove_all(dir_ / "adapter");
    }
}

// ---- prefix-tuning -------------------------------------------------------------------------------

// prompt_embeddings [P, num_layers·2·token_dim] (tuners_utils.BasePromptEncoder._get_adapter_state_dict
// with inference_mode, tuners/prefix_tuning/model.py PrefixEncoder), viewed by peft_model.get_prompt
// as [P, num_layers·2, heads, head_dim]: column (2l + kv)·C + c. Prompt learning keeps the
// transformers model as base_model, so modules_to_save are saved under "base_model.".
TEST_F(PeftExport, PrefixOnBertLaysKeysAndValuesOutPerLayerAndMovesThePositionTable) {
    auto m = model(Arch::Bert, "prefix", DType::F64);
    Shapes s{{"prompt_embeddings", {3, 2 * 2 * 8}}, {"base_model.bert.embeddings.position_embeddings.weight", {32, 8}}};
    add_bert_head(s, "base_model.", "bert", 3);
    expect_adapter(*m, s,
                   prefix_config("SEQ_CLS", 3, 8, 2, 2, false, nullptr,
                                 {"pooler", "position_embeddings", "classifier", "score"}),
                   DType::F64);
    const SafetensorsReader r = SafetensorsReader::open_file(dir_ / "adapter" / "adapter_model.safetensors");
    std::vector<double> pe(3 * 32);
    r.read_into("prompt_embeddings", DType::F64, pe.data(), pe.size());
    for (int l = 0; l < 2; ++l)
        for (int kv = 0; kv < 2; ++kv) {
            const std::string n = "bert.encoder.layer." + std::to_string(l) + ".attention.self." + (kv ? "prefix_value" : "prefix_key");
            const std::vector<double> v = m->to_host(m->params().find(n)->value);  // [P, C]
            for (int p = 0; p < 3; ++p)
                for (int c = 0; c < 8; ++c) EXPECT_EQ(pe[p * 32 + (2 * l + kv) * 8 + c], v[p * 8 + c]) << n;
        }
    // transformers gives the tokens positions P.. (BertEmbeddings: past_key_values_length); the
    // table moves down P rows so they read the rows the engine used.
    std::vector<double> pos(32 * 8);
    r.read_into("base_model.bert.embeddings.position_embeddings.weight", DType::F64, pos.data(), pos.size());
    const std::vector<double> orig = m->to_host(m->params().find("bert.embeddings.position_embeddings.weight")->value);
    for (int row = 0; row < 32; ++row)
        for (int c = 0; c < 8; ++c) EXPECT_EQ(pos[row * 8 + c], orig[(row < 3 ? row : row - 3) * 8 + c]) << row;
}

TEST_F(PeftExport, PrefixThroughTheMlpSavesTheMlpOutputAsPeftDoes) {
    auto m = model(Arch::Roberta, "prefix_mlp", DType::F64);
    Shapes s{{"prompt_embeddings", {3, 32}}, {"base_model.roberta.embeddings.position_embeddings.weight", {32, 8}}};
    add_dense_head(s, "base_model.", "classifier");
    expect_adapter(*m, s, prefix_config("SEQ_CLS", 3, 8, 2, 2, true, 5, {"position_embeddings", "classifier", "score"}),
                   DType::F64);
    // PeftModel.get_prompt_embedding_to_save: prompt_encoder(tokens) = transform(embedding)
    auto v = [&](const char* n) { return m->to_host(m->params().find(std::string("prefix_encoder.") + n)->value); };
    const auto E = v("embedding.weight"), W1 = v("transform.0.weight"), b1 = v("transform.0.bias"),
               W2 = v("transform.2.weight"), b2 = v("transform.2.bias");
    const SafetensorsReader r = SafetensorsReader::open_file(dir_ / "adapter" / "adapter_model.safetensors");
    std::vector<double> pe(3 * 32);
    r.read_into("prompt_embeddings", DType::F64, pe.data(), pe.size());
    for (int p = 0; p < 3; ++p)
        for (int o = 0; o < 32; ++o) {
            double y = b2[o];
            for (int j = 0; j < 5; ++j) {
                double a = b1[j];
                for (int k = 0; k < 8; ++k) a += W1[j * 8 + k] * E[p * 8 + k];
                y += W2[o * 5 + j] * std::tanh(a);
            }
            EXPECT_NEAR(pe[p * 32 + o], y, 1e-13);
        }
    // RoBERTa's real tokens start at row pad + 1 = 2; rows up to 2 + P stay.
    std::vector<double> pos(32 * 8);
    r.read_into("base_model.roberta.embeddings.position_embeddings.weight", DType::F64, pos.data(), pos.size());
    const std::vector<double> orig = m->to_host(m->params().find("roberta.embeddings.position_embeddings.weight")->value);
    for (int row = 0; row < 32; ++row) EXPECT_EQ(pos[row * 8], orig[(row < 5 ? row : row - 3) * 8]) << row;
}

TEST_F(PeftExport, PrefixOnOptIsACausalLmAdapter) {
    auto m = model(Arch::Opt, "prefix");
    const Shapes s{{"prompt_embeddings", {3, 32}}, {"base_model.model.decoder.embed_positions.weight", {34, 8}}};
    expect_adapter(*m, s, prefix_config("CAUSAL_LM", 3, 8, 2, 2, false, nullptr, {"embed_positions"}));
}

TEST_F(PeftExport, WhatPeftCannotHoldIsRefusedWithTheReason) {
    auto bart = model(Arch::Bart, "prefix");
    std::string msg = meft::test::error_of([&] { save_peft_adapter(*bart, dir_ / "a", "b"); });
    EXPECT_NE(msg.find("BART reads in its decoder alone"), std::string::npos) << msg;
    auto mc = model(Arch::Roberta, "prefix", DType::F32, true);
    msg = meft::test::error_of([&] { save_peft_adapter(*mc, dir_ / "a", "b"); });
    EXPECT_NE(msg.find("RobertaForMultipleChoice has no PEFT task type"), std::string::npos) << msg;
    for (const char* n : {"houlsby", "meft1", "full"}) {
        auto other = model(Arch::Bert, n);
        msg = meft::test::error_of([&] { save_peft_adapter(*other, dir_ / "a", "b"); });
        EXPECT_NE(msg.find("PEFT has no adapter layout for the '" + std::string(n) + "' method"), std::string::npos) << msg;
    }
    EXPECT_FALSE(fs::exists(dir_ / "a"));
}

// ---- merged models -------------------------------------------------------------------------------

struct MergeCase {
    Arch arch;
    std::string method;
};

class Merge : public ::testing::TestWithParam<MergeCase> {};

// The backbone's names, as a plain model of the same shape declares them.
std::vector<std::string> backbone_names(const ModelConfig& c) {
    auto be = make_cpu_backend();
    const auto m = make_model(c, *be, DType::F32);
    std::vector<std::string> out;
    for (const Parameter& p : m->params().all()) out.push_back(p.name);
    std::sort(out.begin(), out.end());
    return out;
}

double max_diff(const std::vector<double>& a, const std::vector<double>& b) {
    EXPECT_EQ(a.size(), b.size());
    double d = 0;
    for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) d = std::max(d, std::abs(a[i] - b[i]));
    return d;
}

TEST_P(Merge, TheMergedModelComputesWhatTheMethodDid) {
    const MergeCase& mc = GetParam();
    auto be = make_cpu_backend();
    // float64: the merged tensors in a plain model give the same outputs within 1e-10.
    auto m = make_case_model(mc.arch, mc.method, DType::F64, *be);
    const HostBatch b = meft::test::case_batch(m->config());
    const std::vector<double> want = meft::test::case_outputs(*m, b);
    const std::vector<double> base = meft::test::case_outputs(*m, b, true);
    EXPECT_GT(max_diff(want, base), 1e-2) << "the method's tensors should matter";
    auto plain = make_model(m->config(), *be, DType::F64);
    plain->params().materialize();
    const std::vector<HostTensor> merged = merged_tensors(*m);
    ASSERT_EQ(static_cast<int>(merged.size()), plain->params().size());
    for (const HostTensor& t : merged) plain->from_host(plain->params().find(t.name)->value, t.values);
    const double d64 = max_diff(meft::test::case_outputs(*plain, b), want);
    EXPECT_LE(d64, 1e-10);
    // float32: the saved checkpoint holds exactly the backbone's tensors and reloads without
    // notices to within 1e-5 of the unmerged model.
    auto m32 = make_case_model(mc.arch, mc.method, DType::F32, *be);
    const fs::path dir = fs::temp_directory_path() / ("meft_merge_" + std::to_string(::getpid()) + "_" +
                                                     arch_name(mc.arch) + "_" + mc.method);
    fs::remove_all(dir);
    save_merged_model(*m32, dir);
    const SafetensorsReader r = SafetensorsReader::open_dir(dir);
    EXPECT_EQ(r.names(), backbone_names(m->config()));
    for (const std::string& n : r.names()) EXPECT_EQ(r.info(n).dtype_str, "F32") << n;
    LoadReport rep;
    auto reloaded = load_model(dir, *be, DType::F32, {}, &rep);
    EXPECT_TRUE(rep.notices().empty()) << rep.notices().front();
    EXPECT_EQ(rep.method_initialised, 0);
    ModelConfig saved_cfg = m->config();  // config.json as save_model_config writes it
    saved_cfg.torch_dtype = "float32";
    EXPECT_EQ(meft::test::read_bytes(dir / "config.json"), saved_cfg.to_json().dump(2) + "\n");
    const double d32 = max_diff(meft::test::case_outputs(*reloaded, b), meft::test::case_outputs(*m32, b));
    EXPECT_LE(d32, 1e-5);
    std::printf("%s %s: merged vs unmerged max |diff| float64 %.2e, float32 reloaded %.2e\n",
                arch_name(mc.arch).c_str(), mc.method.c_str(), d64, d32);
    fs::remove_all(dir);
}

std::vector<MergeCase> merge_cases() {
    std::vector<MergeCase> out;
    for (Arch a : {Arch::Bert, Arch::Roberta, Arch::Bart, Arch::Opt})
        for (const char* n : {"lora_all", "ia3"}) out.push_back({a, n});
    for (Arch a : {Arch::Bert, Arch::Opt})
        for (const char* n : {"rslora_all", "lora_fa_all"}) out.push_back({a, n});
    for (Arch a : {Arch::Bert, Arch::Roberta, Arch::Bart, Arch::Opt})
        for (const char* n : {"dora_all", "vera_all"}) out.push_back({a, n});
    return out;
}

INSTANTIATE_TEST_SUITE_P(Methods, Merge, ::testing::ValuesIn(merge_cases()), [](const auto& info) {
    return arch_name(info.param.arch) + "_" + info.param.method;
});

TEST_F(PeftExport, FullAndBitfitMergeTriviallyOtherMethodsAreRefused) {
    for (const char* n : {"full", "bitfit"}) {
        auto m = model(Arch::Bert, n, DType::F64);
        const std::vector<HostTensor> t = merged_tensors(*m);
        ASSERT_EQ(static_cast<int>(t.size()), m->params().size());
        for (const HostTensor& h : t) EXPECT_EQ(h.values, m->to_host(m->params().find(h.name)->value)) << h.name;
    }
    for (const char* n : {"prefix", "houlsby", "meft2"}) {
        auto m = model(Arch::Bert, n);
        const std::string msg = meft::test::error_of([&] { save_merged_model(*m, dir_ / "merged"); });
        EXPECT_NE(msg.find("adds computation the backbone's tensors cannot absorb"), std::string::npos) << msg;
    }
    EXPECT_FALSE(fs::exists(dir_ / "merged"));
}

// The base an adapter applies to: the backbone without the method's tensors, unmerged.
TEST_F(PeftExport, TheBaseModelIsTheBackboneAlone) {
    for (Arch a : {Arch::Bert, Arch::Bart, Arch::Opt}) {
        auto m = model(a, "lora");
        const fs::path d = dir_ / ("base_" + arch_name(a));
        save_base_model(*m, d);
        EXPECT_EQ(SafetensorsReader::open_dir(d).names(), backbone_names(m->config()));
        LoadReport rep;
        auto base = load_model(d, *be_, DType::F32, {}, &rep);
        EXPECT_TRUE(rep.notices().empty());
        const HostBatch b = meft::test::case_batch(m->config());
        EXPECT_EQ(meft::test::case_outputs(*base, b), meft::test::case_outputs(*m, b, true)) << arch_name(a);
    }
}

}  // namespace
