// SPDX-License-Identifier: GPL-3.0-or-later
// test_checkpoint.cpp — saving and loading SequenceClassifier checkpoints in Hugging Face layout:
// bit-exact round trips, HF tensor names/shapes of the base presets, half-precision files, bare
// backbone checkpoints, sharded files and the errors a user can cause.
#include "model/checkpoint.h"

#include <gtest/gtest.h>

#include "test_support.h"
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "core/cpu_backend.h"
#include "core/dtype.h"
#include "core/error.h"
#include "model/safetensors.h"

namespace fs = std::filesystem;
using namespace meft;

namespace {

// A model small enough to save and load in milliseconds.
ModelConfig small_config(Arch arch, int labels = 3) {
    ModelConfig c = preset_config(arch, "tiny");
    c.vocab_size = 64;
    c.hidden_size = 16;
    c.num_heads = 2;
    c.num_layers = 2;
    c.intermediate_size = 32;
    c.max_position_embeddings = 40;
    c.set_num_labels(labels);
    return c;
}

// A padded batch whose ids, positions and token types fit small_config(arch).
HostBatch small_batch(const ModelConfig& c) {
    HostBatch b;
    b.B = 3;
    b.T = 7;
    const bool bert = c.arch == Arch::Bert;
    const int pad = c.pad_token_id, cls = bert ? 2 : 0, sep = bert ? 3 : 2;
    b.input_ids = {cls, 10, 11, 12, 13, sep, pad,  //
                   cls, 20, 21, sep, pad, pad, pad,  //
                   cls, 30, 31, 32, 33, 34, sep};
    b.attention_mask = {1, 1, 1, 1, 1, 1, 0,  //
                        1, 1, 1, 1, 0, 0, 0,  //
                        1, 1, 1, 1, 1, 1, 1};
    if (bert)
        b.token_type_ids = {0, 0, 0, 1, 1, 1, 0,  //
                            0, 0, 1, 1, 0, 0, 0,  //
                            0, 0, 0, 0, 1, 1, 1};
    else
        b.token_type_ids.assign(21, 0);
    return b;
}

std::vector<std::byte> param_bytes(Backend& be, const Parameter& p) {
    std::vector<std::byte> out(p.value.bytes());
    be.download(out.data(), p.value);
    return out;
}

std::vector<float> param_f32(Backend& be, const Parameter& p) {
    std::vector<float> out(static_cast<std::size_t>(p.value.numel()));
    be.download(out.data(), p.value);
    return out;
}

std::vector<std::int64_t> dims(const Shape& s) { return {s.d.begin(), s.d.begin() + s.ndim}; }

nlohmann::json read_json(const fs::path& p) {
    std::ifstream in(p);
    EXPECT_TRUE(in.good()) << p;
    return nlohmann::json::parse(in);
}

void write_text(const fs::path& p, const std::string& s) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out << s;
    ASSERT_TRUE(out.good()) << p;
}

// Every tensor of `reader` as records (data owned by `keep`), optionally renamed or filtered:
// `rename` returns "" to drop a tensor.
std::vector<TensorRecord> records_of(const SafetensorsReader& reader, std::vector<std::vector<std::byte>>& keep,
                                     const std::function<std::string(const std::string&)>& rename) {
    std::vector<TensorRecord> out;
    keep.reserve(reader.size());
    for (const std::string& n : reader.names()) {
        const std::string to = rename(n);
        if (to.empty()) continue;
        const TensorInfo& info = reader.info(n);
        const auto raw = reader.raw(n);
        keep.emplace_back(raw.begin(), raw.end());
        out.push_back(TensorRecord{to, info.dtype, info.shape, keep.back().data()});
    }
    return out;
}

using meft::test::error_of;

class CheckpointTest : public meft::test::TempDirTest {
protected:
    void SetUp() override {
        TempDirTest::SetUp();
        be_ = make_cpu_backend();
    }

    std::unique_ptr<SequenceClassifier> fresh(const ModelConfig& c, std::uint64_t seed = 11, DType dt = DType::F32) {
        auto m = std::make_unique<SequenceClassifier>(c, *be_, dt);
        m->init_weights(seed);
        return m;
    }

    // Every parameter of a and b has the same name, shape and bytes.
    void expect_same_parameters(SequenceClassifier& a, SequenceClassifier& b) {
        ASSERT_EQ(a.params().size(), b.params().size());
        for (int i = 0; i < a.params().size(); ++i) {
            const Parameter& pa = a.params().at(i);
            const Parameter& pb = b.params().at(i);
            ASSERT_EQ(pa.name, pb.name);
            ASSERT_EQ(pa.shape, pb.shape) << pa.name;
            EXPECT_TRUE(param_bytes(*be_, pa) == param_bytes(*be_, pb)) << "parameter " << pa.name << " differs";
        }
    }

    void expect_same_logits(SequenceClassifier& a, SequenceClassifier& b) {
        const HostBatch batch = small_batch(a.config());
        const std::vector<double> za = a.to_host(a.forward(batch, {}));
        const std::vector<double> zb = b.to_host(b.forward(batch, {}));
        ASSERT_EQ(za.size(), static_cast<std::size_t>(batch.B * a.config().num_labels()));
        ASSERT_EQ(za.size(), zb.size());
        for (std::size_t i = 0; i < za.size(); ++i) EXPECT_EQ(za[i], zb[i]) << "logit " << i;
    }

    std::unique_ptr<Backend> be_;
};

// ---- round trips --------------------------------------------------------------------------------

TEST_F(CheckpointTest, RoundTripIsBitExactBertAndRoberta) {
    for (Arch arch : {Arch::Bert, Arch::Roberta}) {
        SCOPED_TRACE(arch_name(arch));
        const ModelConfig cfg = small_config(arch);
        auto model = fresh(cfg, 1234);
        const fs::path d = dir_ / arch_name(arch);
        save_model(*model, d);
        ASSERT_TRUE(fs::exists(d / "config.json"));
        ASSERT_TRUE(fs::exists(d / "model.safetensors"));

        LoadReport rep;
        auto loaded = load_classifier(d, *be_, DType::F32, {}, &rep);
        EXPECT_TRUE(rep.initialised.empty());
        EXPECT_TRUE(rep.ignored.empty());
        EXPECT_TRUE(rep.notices().empty());

        const ModelConfig& lc = loaded->config();
        EXPECT_EQ(lc.arch, arch);
        EXPECT_EQ(lc.vocab_size, 64);
        EXPECT_EQ(lc.hidden_size, 16);
        EXPECT_EQ(lc.num_heads, 2);
        EXPECT_EQ(lc.num_layers, 2);
        EXPECT_EQ(lc.intermediate_size, 32);
        EXPECT_EQ(lc.max_position_embeddings, 40);
        EXPECT_EQ(lc.type_vocab_size, cfg.type_vocab_size);
        EXPECT_EQ(lc.pad_token_id, cfg.pad_token_id);
        EXPECT_EQ(lc.layer_norm_eps, cfg.layer_norm_eps);
        EXPECT_EQ(lc.labels, cfg.labels);

        expect_same_parameters(*model, *loaded);
        expect_same_logits(*model, *loaded);
    }
}

TEST_F(CheckpointTest, RoundTripFloat64IsBitExact) {
    auto model = fresh(small_config(Arch::Bert, 2), 5, DType::F64);
    save_model(*model, dir_, DType::F64);
    const SafetensorsReader r = SafetensorsReader::open_dir(dir_);
    EXPECT_EQ(r.info("classifier.weight").dtype_str, "F64");
    auto loaded = load_classifier(dir_, *be_, DType::F64);
    expect_same_parameters(*model, *loaded);
    expect_same_logits(*model, *loaded);
}

TEST_F(CheckpointTest, RegressionHeadRoundTrips) {
    ModelConfig c = small_config(Arch::Roberta, 1);
    c.problem_type = "regression";
    auto model = fresh(c, 9);
    save_model(*model, dir_);
    auto loaded = load_classifier(dir_, *be_, DType::F32);
    EXPECT_EQ(loaded->config().num_labels(), 1);
    EXPECT_TRUE(loaded->config().is_regression());
    expect_same_parameters(*model, *loaded);
    expect_same_logits(*model, *loaded);
}

TEST_F(CheckpointTest, SavedFileHoldsF32TensorsUnderModelNames) {
    auto model = fresh(small_config(Arch::Bert), 3);
    save_model(*model, dir_);
    const SafetensorsReader r = SafetensorsReader::open_dir(dir_);
    EXPECT_EQ(r.size(), static_cast<std::size_t>(model->params().size()));
    for (const Parameter& p : model->params().all()) {
        ASSERT_TRUE(r.contains(p.name)) << p.name;
        const TensorInfo& info = r.info(p.name);
        EXPECT_EQ(info.dtype_str, "F32") << p.name;
        EXPECT_EQ(info.shape, dims(p.shape)) << p.name;
        EXPECT_EQ(r.read_f32(p.name), param_f32(*be_, p)) << p.name;
    }
    const auto meta = r.metadata();
    ASSERT_TRUE(meta.count("format"));
    EXPECT_EQ(meta.at("format"), "pt");
}

// ---- tensor names and shapes of the base presets, written out from Hugging Face's models ---------

struct Expected {
    std::map<std::string, std::vector<std::int64_t>> shapes;
    void add(const std::string& n, std::vector<std::int64_t> s) {
        ASSERT_TRUE(shapes.emplace(n, std::move(s)).second) << "duplicate expected name " << n;
    }
    std::int64_t numel() const {
        std::int64_t t = 0;
        for (const auto& [n, s] : shapes) {
            std::int64_t k = 1;
            for (auto x : s) k *= x;
            t += k;
        }
        return t;
    }
};

// The 12 encoder layers of BERT-base / RoBERTa-base under `p` ("bert." or "roberta.").
void add_base_encoder(Expected& e, const std::string& p) {
    for (int l = 0; l < 12; ++l) {
        const std::string s = p + "encoder.layer." + std::to_string(l) + ".";
        e.add(s + "attention.self.query.weight", {768, 768});
        e.add(s + "attention.self.query.bias", {768});
        e.add(s + "attention.self.key.weight", {768, 768});
        e.add(s + "attention.self.key.bias", {768});
        e.add(s + "attention.self.value.weight", {768, 768});
        e.add(s + "attention.self.value.bias", {768});
        e.add(s + "attention.output.dense.weight", {768, 768});
        e.add(s + "attention.output.dense.bias", {768});
        e.add(s + "attention.output.LayerNorm.weight", {768});
        e.add(s + "attention.output.LayerNorm.bias", {768});
        e.add(s + "intermediate.dense.weight", {3072, 768});
        e.add(s + "intermediate.dense.bias", {3072});
        e.add(s + "output.dense.weight", {768, 3072});
        e.add(s + "output.dense.bias", {768});
        e.add(s + "output.LayerNorm.weight", {768});
        e.add(s + "output.LayerNorm.bias", {768});
    }
}

Expected hf_bert_base_for_sequence_classification() {
    Expected e;
    e.add("bert.embeddings.word_embeddings.weight", {30522, 768});
    e.add("bert.embeddings.position_embeddings.weight", {512, 768});
    e.add("bert.embeddings.token_type_embeddings.weight", {2, 768});
    e.add("bert.embeddings.LayerNorm.weight", {768});
    e.add("bert.embeddings.LayerNorm.bias", {768});
    add_base_encoder(e, "bert.");
    e.add("bert.pooler.dense.weight", {768, 768});
    e.add("bert.pooler.dense.bias", {768});
    e.add("classifier.weight", {2, 768});
    e.add("classifier.bias", {2});
    return e;
}

Expected hf_roberta_base_for_sequence_classification() {
    Expected e;
    e.add("roberta.embeddings.word_embeddings.weight", {50265, 768});
    e.add("roberta.embeddings.position_embeddings.weight", {514, 768});
    e.add("roberta.embeddings.token_type_embeddings.weight", {1, 768});
    e.add("roberta.embeddings.LayerNorm.weight", {768});
    e.add("roberta.embeddings.LayerNorm.bias", {768});
    add_base_encoder(e, "roberta.");
    e.add("classifier.dense.weight", {768, 768});
    e.add("classifier.dense.bias", {768});
    e.add("classifier.out_proj.weight", {2, 768});
    e.add("classifier.out_proj.bias", {2});
    return e;
}

// Saves an all-zero base preset (values only, no gradients or optimizer state) and checks the
// file's tensor set against `expected` exactly.
void check_base_layout(Backend& be, const fs::path& dir, Arch arch, const Expected& expected) {
    ModelConfig cfg = preset_config(arch, "base");
    cfg.set_num_labels(2);
    {
        SequenceClassifier model(cfg, be, DType::F32);
        model.params().set_trainable([](const Parameter&) { return false; });
        model.params().materialize();
        save_model(model, dir);
    }
    const SafetensorsReader r = SafetensorsReader::open_dir(dir);
    const std::vector<std::string> names = r.names();
    std::set<std::string> found(names.begin(), names.end());
    for (const auto& [name, shape] : expected.shapes) {
        if (!r.contains(name)) {
            ADD_FAILURE() << "saved checkpoint lacks " << name;
            continue;
        }
        const TensorInfo& info = r.info(name);
        EXPECT_EQ(info.shape, shape) << name;
        EXPECT_EQ(info.dtype_str, "F32") << name;
        found.erase(name);
    }
    for (const std::string& extra : found) ADD_FAILURE() << "saved checkpoint has unexpected tensor " << extra;
    EXPECT_EQ(r.size(), expected.shapes.size());
}

TEST_F(CheckpointTest, BertBaseTensorNamesAndShapesMatchHuggingFace) {
    const Expected e = hf_bert_base_for_sequence_classification();
    EXPECT_EQ(e.shapes.size(), 5u + 12u * 16u + 2u + 2u);
    EXPECT_EQ(e.numel(), 109483778);  // BertForSequenceClassification(bert-base-uncased, 2 labels)
    check_base_layout(*be_, dir_, Arch::Bert, e);

    const nlohmann::json j = read_json(dir_ / "config.json");
    EXPECT_EQ(j.at("model_type"), "bert");
    EXPECT_EQ(j.at("architectures"), nlohmann::json::array({"BertForSequenceClassification"}));
    EXPECT_EQ(j.at("vocab_size"), 30522);
    EXPECT_EQ(j.at("hidden_size"), 768);
    EXPECT_EQ(j.at("num_hidden_layers"), 12);
    EXPECT_EQ(j.at("num_attention_heads"), 12);
    EXPECT_EQ(j.at("intermediate_size"), 3072);
    EXPECT_EQ(j.at("max_position_embeddings"), 512);
    EXPECT_EQ(j.at("type_vocab_size"), 2);
    EXPECT_EQ(j.at("hidden_act"), "gelu");
    EXPECT_EQ(j.at("pad_token_id"), 0);
    EXPECT_DOUBLE_EQ(j.at("layer_norm_eps").get<double>(), 1e-12);
    EXPECT_DOUBLE_EQ(j.at("hidden_dropout_prob").get<double>(), 0.1);
    EXPECT_DOUBLE_EQ(j.at("attention_probs_dropout_prob").get<double>(), 0.1);
    EXPECT_DOUBLE_EQ(j.at("initializer_range").get<double>(), 0.02);
    EXPECT_EQ(j.at("position_embedding_type"), "absolute");
    EXPECT_EQ(j.at("id2label"), (nlohmann::json{{"0", "LABEL_0"}, {"1", "LABEL_1"}}));
    EXPECT_EQ(j.at("label2id"), (nlohmann::json{{"LABEL_0", 0}, {"LABEL_1", 1}}));
    fs::remove_all(dir_);  // ~440 MB
}

TEST_F(CheckpointTest, RobertaBaseTensorNamesAndShapesMatchHuggingFace) {
    const Expected e = hf_roberta_base_for_sequence_classification();
    EXPECT_EQ(e.shapes.size(), 5u + 12u * 16u + 4u);
    EXPECT_EQ(e.numel(), 124647170);  // RobertaForSequenceClassification(roberta-base, 2 labels)
    check_base_layout(*be_, dir_, Arch::Roberta, e);

    const nlohmann::json j = read_json(dir_ / "config.json");
    EXPECT_EQ(j.at("model_type"), "roberta");
    EXPECT_EQ(j.at("architectures"), nlohmann::json::array({"RobertaForSequenceClassification"}));
    EXPECT_EQ(j.at("vocab_size"), 50265);
    EXPECT_EQ(j.at("hidden_size"), 768);
    EXPECT_EQ(j.at("num_hidden_layers"), 12);
    EXPECT_EQ(j.at("num_attention_heads"), 12);
    EXPECT_EQ(j.at("intermediate_size"), 3072);
    EXPECT_EQ(j.at("max_position_embeddings"), 514);
    EXPECT_EQ(j.at("type_vocab_size"), 1);
    EXPECT_EQ(j.at("hidden_act"), "gelu");
    EXPECT_EQ(j.at("pad_token_id"), 1);
    EXPECT_EQ(j.at("bos_token_id"), 0);
    EXPECT_EQ(j.at("eos_token_id"), 2);
    EXPECT_DOUBLE_EQ(j.at("layer_norm_eps").get<double>(), 1e-5);
    EXPECT_EQ(j.at("id2label"), (nlohmann::json{{"0", "LABEL_0"}, {"1", "LABEL_1"}}));
    fs::remove_all(dir_);  // ~500 MB
}

// ---- half-precision files -------------------------------------------------------------------------

TEST_F(CheckpointTest, LoadsF16AndBF16CheckpointsIntoF32AndF64) {
    for (DType file_dtype : {DType::F16, DType::BF16}) {
        for (Arch arch : {Arch::Bert, Arch::Roberta}) {
            SCOPED_TRACE(std::string(dtype_name(file_dtype)) + " " + arch_name(arch));
            auto model = fresh(small_config(arch), 77);
            const fs::path d = dir_ / (std::string(dtype_name(file_dtype)) + arch_name(arch));
            save_model(*model, d, file_dtype);
            const SafetensorsReader r = SafetensorsReader::open_dir(d);
            for (const std::string& n : r.names()) EXPECT_EQ(r.info(n).dtype_str, dtype_name(file_dtype)) << n;

            auto as32 = load_classifier(d, *be_, DType::F32);
            auto as64 = load_classifier(d, *be_, DType::F64);
            ASSERT_EQ(as32->params().size(), model->params().size());
            std::size_t changed = 0, total = 0;
            for (int i = 0; i < model->params().size(); ++i) {
                const Parameter& orig = model->params().at(i);
                const std::vector<float> want_src = param_f32(*be_, orig);
                const std::vector<float> got32 = param_f32(*be_, as32->params().at(i));
                std::vector<double> got64(want_src.size());
                be_->download(got64.data(), as64->params().at(i).value);
                for (std::size_t k = 0; k < want_src.size(); ++k) {
                    const float want = file_dtype == DType::F16 ? half_to_float(float_to_half(want_src[k]))
                                                                : bf16_to_float(float_to_bf16(want_src[k]));
                    ASSERT_EQ(got32[k], want) << orig.name << "[" << k << "]";
                    ASSERT_EQ(got64[k], static_cast<double>(want)) << orig.name << "[" << k << "] (f64)";
                    changed += got32[k] != want_src[k];
                    ++total;
                }
            }
            // The rounding really happened (most N(0, 0.02) floats are not representable in 16 bits).
            EXPECT_GT(changed, total / 2);
        }
    }
}

// ---- a bare BertModel / RobertaModel checkpoint ------------------------------------------------

TEST_F(CheckpointTest, BareBertModelCheckpointGetsAFreshClassifier) {
    auto model = fresh(small_config(Arch::Bert, 2), 21);
    const fs::path full = dir_ / "full", bare = dir_ / "bare";
    save_model(*model, full);
    {
        // HF BertModel: no "bert." prefix, keeps the pooler, has no classifier.
        const SafetensorsReader r = SafetensorsReader::open_dir(full);
        std::vector<std::vector<std::byte>> keep;
        const auto recs = records_of(r, keep, [](const std::string& n) -> std::string {
            if (n.rfind("classifier.", 0) == 0) return "";
            EXPECT_EQ(n.rfind("bert.", 0), 0u) << n;
            return n.substr(5);
        });
        write_checkpoint_tensors(bare, recs);
        nlohmann::json cfg = read_json(full / "config.json");
        cfg["architectures"] = {"BertModel"};
        cfg.erase("id2label");
        cfg.erase("label2id");
        write_text(bare / "config.json", cfg.dump(2));
    }
    const SafetensorsReader br = SafetensorsReader::open_dir(bare);
    ASSERT_TRUE(br.contains("pooler.dense.weight"));
    ASSERT_TRUE(br.contains("embeddings.word_embeddings.weight"));
    ASSERT_FALSE(br.contains("classifier.weight"));

    LoadReport rep;
    LoadOptions lo;
    lo.head_seed = 4;
    auto loaded = load_classifier(bare, *be_, DType::F32, lo, &rep);
    EXPECT_EQ(rep.initialised, (std::vector<std::string>{"classifier.weight", "classifier.bias"}));
    EXPECT_TRUE(rep.ignored.empty());
    ASSERT_EQ(rep.notices().size(), 2u);
    // Each notice says how its tensor was drawn, as transformers does it: the bias is zero.
    EXPECT_EQ(rep.notices()[0], "notice: classifier.weight not in the checkpoint; initialised N(0, 0.02)");
    EXPECT_EQ(rep.notices()[1], "notice: classifier.bias not in the checkpoint; initialised zeros");
    EXPECT_EQ(loaded->config().num_labels(), 2);

    // Backbone and pooler come from the file; the classifier is freshly drawn (bias zero).
    for (int i = 0; i < model->params().size(); ++i) {
        const Parameter& p = model->params().at(i);
        const Parameter& q = loaded->params().at(i);
        ASSERT_EQ(p.name, q.name);
        if (p.name.rfind("classifier.", 0) == 0) continue;
        EXPECT_TRUE(param_bytes(*be_, p) == param_bytes(*be_, q)) << p.name;
    }
    const std::vector<float> w = param_f32(*be_, *loaded->params().find("classifier.weight"));
    const std::vector<float> b = param_f32(*be_, *loaded->params().find("classifier.bias"));
    EXPECT_NE(w, std::vector<float>(w.size(), 0.0f));
    EXPECT_EQ(b, std::vector<float>(b.size(), 0.0f));
    double ss = 0;
    for (float x : w) ss += double(x) * x;
    EXPECT_LT(std::sqrt(ss / double(w.size())), 0.1);  // N(0, 0.02)-sized

    // The head seed makes the draw reproducible.
    auto again = load_classifier(bare, *be_, DType::F32, lo);
    EXPECT_EQ(param_f32(*be_, *again->params().find("classifier.weight")), w);
}

TEST_F(CheckpointTest, BareRobertaModelCheckpointIgnoresPoolerAndInitialisesHead) {
    auto model = fresh(small_config(Arch::Roberta, 2), 22);
    const fs::path full = dir_ / "full", bare = dir_ / "bare";
    save_model(*model, full);
    {
        // HF RobertaModel: no prefix, a pooler (which RobertaForSequenceClassification drops), no head.
        const SafetensorsReader r = SafetensorsReader::open_dir(full);
        std::vector<std::vector<std::byte>> keep;
        auto recs = records_of(r, keep, [](const std::string& n) -> std::string {
            if (n.rfind("classifier.", 0) == 0) return "";
            return n.substr(8);
        });
        std::vector<float> pool_w(16 * 16, 0.5f), pool_b(16, 0.25f);
        recs.push_back(TensorRecord{"pooler.dense.weight", DType::F32, {16, 16}, pool_w.data()});
        recs.push_back(TensorRecord{"pooler.dense.bias", DType::F32, {16}, pool_b.data()});
        write_checkpoint_tensors(bare, recs);
        fs::copy_file(full / "config.json", bare / "config.json");
    }
    LoadReport rep;
    auto loaded = load_classifier(bare, *be_, DType::F32, {}, &rep);
    EXPECT_EQ(std::set<std::string>(rep.initialised.begin(), rep.initialised.end()),
              (std::set<std::string>{"classifier.dense.weight", "classifier.dense.bias", "classifier.out_proj.weight",
                                     "classifier.out_proj.bias"}));
    EXPECT_EQ(std::set<std::string>(rep.ignored.begin(), rep.ignored.end()),
              (std::set<std::string>{"pooler.dense.weight", "pooler.dense.bias"}));
    for (int i = 0; i < model->params().size(); ++i) {
        const Parameter& p = model->params().at(i);
        if (p.name.rfind("classifier.", 0) == 0) continue;
        EXPECT_TRUE(param_bytes(*be_, p) == param_bytes(*be_, loaded->params().at(i))) << p.name;
    }
}

TEST_F(CheckpointTest, NumLabelsOverrideRedrawsTheClassifierOnly) {
    auto model = fresh(small_config(Arch::Bert, 2), 8);
    save_model(*model, dir_);
    LoadOptions lo;
    lo.num_labels = 5;
    LoadReport rep;
    auto loaded = load_classifier(dir_, *be_, DType::F32, lo, &rep);
    EXPECT_EQ(loaded->config().num_labels(), 5);
    EXPECT_EQ(loaded->params().find("classifier.weight")->shape, (Shape{5, 16}));
    EXPECT_EQ(std::set<std::string>(rep.initialised.begin(), rep.initialised.end()),
              (std::set<std::string>{"classifier.weight", "classifier.bias"}));
    EXPECT_TRUE(rep.ignored.empty());
    // The head is there, of another size: said so, not called missing.
    ASSERT_EQ(rep.notices().size(), 2u);
    EXPECT_EQ(rep.notices()[0], "notice: classifier.weight in the checkpoint is [2, 16] but the task's head needs [5, 16] "
                                "(5 labels); initialised N(0, 0.02)");
    EXPECT_EQ(rep.notices()[1], "notice: classifier.bias in the checkpoint is [2] but the task's head needs [5] (5 labels); "
                                "initialised zeros");
    // The pooler is kept.
    EXPECT_EQ(param_bytes(*be_, *model->params().find("bert.pooler.dense.weight")),
              param_bytes(*be_, *loaded->params().find("bert.pooler.dense.weight")));
}

// ---- errors ---------------------------------------------------------------------------------------

TEST_F(CheckpointTest, MissingBackboneTensorNamesTensorAndShape) {
    auto model = fresh(small_config(Arch::Bert), 2);
    const fs::path full = dir_ / "full", broken = dir_ / "broken";
    save_model(*model, full);
    const std::string victim = "bert.encoder.layer.1.intermediate.dense.weight";
    {
        const SafetensorsReader r = SafetensorsReader::open_dir(full);
        std::vector<std::vector<std::byte>> keep;
        write_checkpoint_tensors(broken, records_of(r, keep, [&](const std::string& n) {
                                     return n == victim ? std::string() : n;
                                 }));
        fs::copy_file(full / "config.json", broken / "config.json");
    }
    const std::string msg = error_of([&] { load_classifier(broken, *be_, DType::F32); });
    EXPECT_NE(msg.find(victim), std::string::npos) << msg;
    EXPECT_NE(msg.find("[32, 16]"), std::string::npos) << msg;
    EXPECT_NE(msg.find("missing"), std::string::npos) << msg;
}

TEST_F(CheckpointTest, MisShapedTensorNamesTensorExpectedAndFoundShape) {
    auto model = fresh(small_config(Arch::Roberta), 2);
    const fs::path full = dir_ / "full", broken = dir_ / "broken";
    save_model(*model, full);
    const std::string victim = "roberta.encoder.layer.0.attention.self.key.weight";
    {
        const SafetensorsReader r = SafetensorsReader::open_dir(full);
        std::vector<std::vector<std::byte>> keep;
        auto recs = records_of(r, keep, [&](const std::string& n) { return n == victim ? std::string() : n; });
        std::vector<float> wrong(16 * 12, 0.0f);
        recs.push_back(TensorRecord{victim, DType::F32, {16, 12}, wrong.data()});
        write_checkpoint_tensors(broken, recs);
        fs::copy_file(full / "config.json", broken / "config.json");
    }
    const std::string msg = error_of([&] { load_classifier(broken, *be_, DType::F32); });
    EXPECT_NE(msg.find(victim), std::string::npos) << msg;
    EXPECT_NE(msg.find("[16, 12]"), std::string::npos) << "found shape: " << msg;
    EXPECT_NE(msg.find("[16, 16]"), std::string::npos) << "expected shape: " << msg;
}

TEST_F(CheckpointTest, MisShapedHeadIsAnErrorWithoutLabelOverride) {
    // A 3-label checkpoint whose config claims 2 labels: the head does not fit and is not silently redrawn.
    auto model = fresh(small_config(Arch::Bert, 3), 2);
    save_model(*model, dir_);
    nlohmann::json cfg = read_json(dir_ / "config.json");
    cfg["id2label"] = {{"0", "a"}, {"1", "b"}};
    cfg["label2id"] = {{"a", 0}, {"b", 1}};
    write_text(dir_ / "config.json", cfg.dump());
    const std::string msg = error_of([&] { load_classifier(dir_, *be_, DType::F32); });
    EXPECT_NE(msg.find("classifier."), std::string::npos) << msg;
    EXPECT_NE(msg.find("[3, 16]"), std::string::npos) << msg;
}

TEST_F(CheckpointTest, ConfigErrorsNameTheFile) {
    auto model = fresh(small_config(Arch::Bert), 2);
    save_model(*model, dir_);
    const std::string config = (dir_ / "config.json").string();
    const nlohmann::json good = read_json(dir_ / "config.json");

    fs::remove(dir_ / "config.json");
    std::string msg = error_of([&] { load_classifier(dir_, *be_, DType::F32); });
    EXPECT_NE(msg.find(config), std::string::npos) << "missing config.json: " << msg;

    write_text(dir_ / "config.json", "{\"model_type\": \"bert\",, }");
    msg = error_of([&] { load_classifier(dir_, *be_, DType::F32); });
    EXPECT_NE(msg.find(config), std::string::npos) << "invalid JSON: " << msg;
    EXPECT_NE(msg.find("JSON"), std::string::npos) << msg;

    nlohmann::json gpt = good;
    gpt["model_type"] = "gpt2";
    write_text(dir_ / "config.json", gpt.dump());
    msg = error_of([&] { load_classifier(dir_, *be_, DType::F32); });
    EXPECT_NE(msg.find(config), std::string::npos) << "unsupported model_type: " << msg;
    EXPECT_NE(msg.find("gpt2"), std::string::npos) << msg;

    nlohmann::json typed = good;
    typed["hidden_size"] = "sixteen";
    write_text(dir_ / "config.json", typed.dump());
    msg = error_of([&] { load_classifier(dir_, *be_, DType::F32); });
    EXPECT_NE(msg.find(config), std::string::npos) << "wrong type: " << msg;
    EXPECT_NE(msg.find("hidden_size"), std::string::npos) << msg;

    // With a valid config again, a missing weights file is an error too.
    write_text(dir_ / "config.json", good.dump());
    fs::remove(dir_ / "model.safetensors");
    msg = error_of([&] { load_classifier(dir_, *be_, DType::F32); });
    EXPECT_NE(msg.find(dir_.string()), std::string::npos) << "no weights: " << msg;
}

// ---- sharded checkpoints --------------------------------------------------------------------------

TEST_F(CheckpointTest, ShardedSaveLoadsBackIdentically) {
    for (Arch arch : {Arch::Bert, Arch::Roberta}) {
        SCOPED_TRACE(arch_name(arch));
        auto model = fresh(small_config(arch), 31);
        const fs::path d = dir_ / arch_name(arch);
        save_model(*model, d, DType::F32, 6000);  // the model is ~31 KB: several shards
        ASSERT_TRUE(fs::exists(d / "model.safetensors.index.json"));
        EXPECT_FALSE(fs::exists(d / "model.safetensors"));
        int shards = 0;
        for (const auto& ent : fs::directory_iterator(d)) {
            const std::string n = ent.path().filename().string();
            if (n.rfind("model-", 0) == 0 && ent.path().extension() == ".safetensors") ++shards;
        }
        EXPECT_GT(shards, 2);
        const nlohmann::json index = read_json(d / "model.safetensors.index.json");
        ASSERT_TRUE(index.contains("weight_map"));
        EXPECT_EQ(index["weight_map"].size(), static_cast<std::size_t>(model->params().size()));

        LoadReport rep;
        auto loaded = load_classifier(d, *be_, DType::F32, {}, &rep);
        EXPECT_TRUE(rep.initialised.empty());
        EXPECT_TRUE(rep.ignored.empty());
        expect_same_parameters(*model, *loaded);
        expect_same_logits(*model, *loaded);

        // Saving again unsharded into the same directory replaces the shards.
        auto other = fresh(small_config(arch), 32);
        save_model(*other, d);
        EXPECT_TRUE(fs::exists(d / "model.safetensors"));
        EXPECT_FALSE(fs::exists(d / "model.safetensors.index.json"));
        auto reloaded = load_classifier(d, *be_, DType::F32);
        expect_same_parameters(*other, *reloaded);
    }
}

}  // namespace
