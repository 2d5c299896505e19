// SPDX-License-Identifier: GPL-3.0-or-later
// test_malformed_checkpoints.cpp — malformed and truncated model files through the real loaders
// (SafetensorsReader, load_model_config, load_classifier), malformed experiment files through
// load_experiments, JSON that the parser itself refuses (also in meft predict's input), and a few
// hundred seeded random mutations of valid files: every input is either accepted or a meft::Error
// naming the file and what is wrong — never another exception, never a crash.
//
// Built twice (tests/asan.cmake): test_malformed_checkpoints against meft_engine, and
// test_parsers_asan against a copy of the parser sources compiled with AddressSanitizer and
// UndefinedBehaviorSanitizer, where an out-of-bounds read or an overflow aborts the test. Models
// are built on the shape-only backend, so neither build needs BLAS.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <new>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/shape_backend.h"
#include "data/jsonl_examples.h"
#include "malformed_cases.h"
#include "model/checkpoint.h"
#include "model/config.h"
#include "model/safetensors.h"
#include "store/experiment.h"
#include "test_support.h"

namespace fs = std::filesystem;
using namespace meft;
using nlohmann::json;

namespace {

// ---- helpers --------------------------------------------------------------------------------------

using meft::test::read_bytes;
using meft::test::u64_le;
using meft::test::write_bytes;

std::uint64_t header_length(const std::string& file_bytes) {
    std::uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(file_bytes[static_cast<std::size_t>(i)]);
    return n;
}

// A complete safetensors file: length prefix + header text + data bytes.
std::string st_file(const std::string& header, const std::string& data) { return u64_le(header.size()) + header + data; }

// Runs fn; expects a meft::Error whose message holds every one of `parts`. Returns the message.
// Any other exception, or none, is a test failure.
std::string expect_error(const std::string& label, const std::function<void()>& fn, const std::vector<std::string>& parts) {
    std::string msg;
    try {
        fn();
        ADD_FAILURE() << label << ": accepted, expected a meft::Error";
        return {};
    } catch (const Error& e) {
        msg = e.what();
    } catch (const std::exception& e) {
        ADD_FAILURE() << label << ": not a meft::Error: " << e.what();
        return {};
    }
    for (const std::string& p : parts)
        EXPECT_NE(msg.find(p), std::string::npos) << label << ": message \"" << msg << "\" lacks \"" << p << "\"";
    std::printf("  %-28s %s\n", label.c_str(), msg.c_str());
    return msg;
}

// A small BERT: every parameter shape differs enough to tell them apart in messages.
ModelConfig small_config() {
    ModelConfig c = preset_config(Arch::Bert, "tiny");
    c.vocab_size = 64;
    c.hidden_size = 16;
    c.num_heads = 2;
    c.num_layers = 1;
    c.intermediate_size = 32;
    c.max_position_embeddings = 40;
    c.set_num_labels(2);
    return c;
}

// Writes a loadable checkpoint of small_config() into dir: config.json + model.safetensors (F32,
// deterministic values). The model is declared on the shape-only backend: no BLAS, no real memory.
void write_valid_checkpoint(const fs::path& dir, std::size_t max_shard_bytes = 0) {
    auto backend = make_shape_backend();
    const ModelConfig cfg = small_config();
    SequenceClassifier model(cfg, *backend, DType::F32);
    std::vector<std::vector<float>> data;
    std::vector<TensorRecord> records;
    data.reserve(static_cast<std::size_t>(model.params().size()));
    for (const Parameter& p : model.params().all()) {
        std::vector<float> v(static_cast<std::size_t>(p.shape.numel()));
        for (std::size_t i = 0; i < v.size(); ++i) v[i] = 0.001f * static_cast<float>(i % 97) - 0.04f;
        data.push_back(std::move(v));
        records.push_back(TensorRecord{p.name, DType::F32, {p.shape.d.begin(), p.shape.d.begin() + p.shape.ndim},
                                       data.back().data()});
    }
    write_checkpoint_tensors(dir, records, max_shard_bytes);
    save_model_config(cfg, dir);
}

std::unique_ptr<SequenceClassifier> load(const fs::path& dir) {
    static auto backend = make_shape_backend();
    return load_classifier(dir, *backend, DType::F32);
}

// Reads everything a reader offers (what a caller could do after a successful open).
void read_all(const SafetensorsReader& r) {
    (void)r.metadata();
    for (const std::string& name : r.names()) {
        const TensorInfo& info = r.info(name);
        const auto raw = r.raw(name);
        volatile unsigned char sink = 0;
        for (std::byte b : raw) sink = sink ^ std::to_integer<unsigned char>(b);  // touch every byte
        (void)sink;
        if (!info.supported) {
            try {
                (void)r.read_f32(name);
                ADD_FAILURE() << "read_f32 accepted unsupported dtype " << info.dtype_str;
            } catch (const Error&) {
            }
            continue;
        }
        (void)r.read_f32(name);
        std::vector<double> d(static_cast<std::size_t>(info.numel()));
        r.read_into(name, DType::F64, d.data(), d.size());
    }
}

class MalformedTest : public test::TempDirTest {};

// ---- safetensors files ------------------------------------------------------------------------------

// Tensor "a": F32 [2, 3] (24 bytes), "b": F16 [4] (8 bytes), laid out back to back.
const std::string kA = R"("a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]})";
const std::string kB = R"("b":{"dtype":"F16","shape":[4],"data_offsets":[24,32]})";
const std::string kData(32, '\x01');

TEST_F(MalformedTest, SafetensorsFilesAreClearErrors) {
    struct Case {
        std::string label;
        std::string bytes;
        std::vector<std::string> parts;
    };
    const std::string good = st_file("{" + kA + "," + kB + "}", kData);
    const std::uint64_t hlen = header_length(good);
    const std::vector<Case> cases = {
        {"empty file", "", {"0 bytes", "8-byte header-length prefix"}},
        {"cut in length prefix", good.substr(0, 3), {"3 bytes", "8-byte header-length prefix"}},
        {"cut before header", good.substr(0, 7), {"7 bytes", "8-byte"}},
        {"header length too big", u64_le(9999999) + good.substr(8), {"header length 9999999 exceeds", "truncated"}},
        {"header length 2^64-1", u64_le(~0ull) + good.substr(8), {"header length 18446744073709551615 exceeds"}},
        {"cut inside header", good.substr(0, static_cast<std::size_t>(8 + hlen / 2)), {"header length", "exceeds"}},
        {"cut at data start", good.substr(0, static_cast<std::size_t>(8 + hlen)),
         {"tensor 'a'", "data_offsets [0, 24] reach past the end of the data section (0 bytes"}},
        {"cut inside data", good.substr(0, good.size() - 1), {"tensor 'b'", "reach past the end of the data section (31 bytes"}},
        {"not a safetensors file", "hello, this is a text file and not a model at all\n", {"header length", "exceeds"}},
        {"header JSON syntax error", st_file(R"({"a":{"dtype":"F32",)", kData), {"header is not valid JSON"}},
        {"header trailing garbage", st_file("{" + kA + "} x", kData), {"header is not valid JSON"}},
        {"header invalid UTF-8", st_file("{\"\xff\xfe\":{}}", ""), {"header is not valid JSON"}},
        {"header is an array", st_file("[1,2]", ""), {"header is not a JSON object"}},
        {"header is a string", st_file("\"abc\"", ""), {"header is not a JSON object"}},
        {"entry not an object", st_file(R"({"a":5})", ""), {"tensor 'a'", "expected a JSON object, found number"}},
        {"missing dtype", st_file(R"({"a":{"shape":[2,3],"data_offsets":[0,24]}})", kData), {"tensor 'a'", "missing \"dtype\""}},
        {"dtype not a string", st_file(R"({"a":{"dtype":32,"shape":[2,3],"data_offsets":[0,24]}})", kData),
         {"tensor 'a'", "\"dtype\" is not a string"}},
        {"missing shape", st_file(R"({"a":{"dtype":"F32","data_offsets":[0,24]}})", kData), {"tensor 'a'", "missing \"shape\""}},
        {"shape not an array", st_file(R"({"a":{"dtype":"F32","shape":"2x3","data_offsets":[0,24]}})", kData),
         {"tensor 'a'", "\"shape\" is not an array"}},
        {"negative shape", st_file(R"({"a":{"dtype":"F32","shape":[-2,3],"data_offsets":[0,24]}})", kData),
         {"tensor 'a'", "\"shape\" [-2,3]", "non-negative integer"}},
        {"fractional shape", st_file(R"({"a":{"dtype":"F32","shape":[2.5,3],"data_offsets":[0,24]}})", kData),
         {"tensor 'a'", "\"shape\" [2.5,3]", "non-negative integer"}},
        {"string in shape", st_file(R"({"a":{"dtype":"F32","shape":["2",3],"data_offsets":[0,24]}})", kData),
         {"tensor 'a'", "non-negative integer"}},
        {"shape overflows int64", st_file(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,24]}})", kData),
         {"tensor 'a'", "shape [4294967296, 4294967296] has too many elements"}},
        {"bytes overflow u64", st_file(R"({"a":{"dtype":"F64","shape":[1152921504606846976,2],"data_offsets":[0,24]}})", kData),
         {"tensor 'a'", "needs more than 2^61 bytes"}},
        {"missing data_offsets", st_file(R"({"a":{"dtype":"F32","shape":[2,3]}})", kData), {"tensor 'a'", "missing \"data_offsets\""}},
        {"one data offset", st_file(R"({"a":{"dtype":"F32","shape":[2,3],"data_offsets":[24]}})", kData),
         {"tensor 'a'", "\"data_offsets\" must be [begin, end] of non-negative integers, found [24]"}},
        {"negative data offset", st_file(R"({"a":{"dtype":"F32","shape":[2,3],"data_offsets":[-8,16]}})", kData),
         {"tensor 'a'", "\"data_offsets\" must be [begin, end]"}},
        {"offset beyond 2^64", st_file(R"({"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,18446744073709551616]}})", kData),
         {"tensor 'a'", "\"data_offsets\" must be [begin, end]"}},
        {"offsets near 2^64", st_file(R"({"a":{"dtype":"F32","shape":[2,3],"data_offsets":[18446744073709551592,18446744073709551615]}})", kData),
         {"tensor 'a'", "data_offsets [18446744073709551592, 18446744073709551615] reach past the end"}},
        {"end near 2^64", st_file(R"({"a":{"dtype":"F32","shape":[2,3],"data_offsets":[8,18446744073709551615]}})", kData),
         {"tensor 'a'", "reach past the end of the data section (32 bytes"}},
        {"offsets outside data", st_file(R"({"a":{"dtype":"F32","shape":[2,3],"data_offsets":[24,48]}})", kData),
         {"tensor 'a'", "data_offsets [24, 48] reach past the end of the data section (32 bytes"}},
        {"begin after end", st_file(R"({"a":{"dtype":"F32","shape":[2,3],"data_offsets":[24,0]}})", kData),
         {"tensor 'a'", "data_offsets [24, 0]: begin is after end"}},
        {"shape vs offsets", st_file(R"({"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}})", kData),
         {"tensor 'a'", "span 20 bytes, but dtype F32 with shape [2, 3] needs 24 bytes"}},
        {"overlapping offsets",
         st_file(R"({"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"b":{"dtype":"F16","shape":[4],"data_offsets":[16,24]}})", kData),
         {"tensors 'a' (data_offsets [0, 24]) and 'b' (data_offsets [16, 24]) overlap"}},
        {"same offsets twice",
         st_file(R"({"a":{"dtype":"F16","shape":[4],"data_offsets":[0,8]},"b":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}})", kData),
         {"'a'", "'b'", "overlap"}},
        {"metadata not an object", st_file(R"({"__metadata__":[1]})", ""), {"\"__metadata__\" is not a JSON object"}},
        {"metadata value not string", st_file(R"({"__metadata__":{"format":1}})", ""),
         {"\"__metadata__\" key 'format': expected a string value, found number"}},
    };
    int i = 0;
    for (const Case& c : cases) {
        const fs::path file = dir_ / ("bad" + std::to_string(i++) + ".safetensors");
        write_bytes(file, c.bytes);
        std::vector<std::string> parts = c.parts;
        parts.push_back(file.filename().string());  // every message names the file
        expect_error(c.label, [&] { read_all(SafetensorsReader::open_file(file)); }, parts);
    }

    // The well-formed file itself opens and reads.
    write_bytes(dir_ / "good.safetensors", good);
    read_all(SafetensorsReader::open_file(dir_ / "good.safetensors"));
}

// An unknown dtype opens (the tensor may never be read) but reading it is a clear error, even
// when its shape claims more elements than memory could hold.
TEST_F(MalformedTest, UnsupportedDtypeIsAnErrorOnRead) {
    const fs::path file = dir_ / "f8.safetensors";
    write_bytes(file, st_file(R"({"x":{"dtype":"F8","shape":[1099511627776,1024],"data_offsets":[0,32]}})", kData));
    const SafetensorsReader r = SafetensorsReader::open_file(file);
    EXPECT_EQ(r.info("x").dtype_str, "F8");
    EXPECT_EQ(r.raw("x").size(), 32u);
    expect_error("unknown dtype F8", [&] { (void)r.read_f32("x"); }, {"f8.safetensors", "tensor 'x'", "dtype F8 is not supported"});
    float buf[1];
    expect_error("unknown dtype read_into", [&] { r.read_into("x", DType::F32, buf, 1); }, {"tensor 'x'", "dtype F8"});
}

// Truncating a real checkpoint anywhere is an error naming the file, whichever part is cut.
TEST_F(MalformedTest, TruncatedCheckpointAtEveryPart) {
    const fs::path src = dir_ / "src";
    write_valid_checkpoint(src);
    const std::string full = read_bytes(src / "model.safetensors");
    const std::uint64_t hlen = header_length(full);
    ASSERT_GT(full.size(), 8 + hlen + 100);
    const std::vector<std::size_t> cuts = {0, 1, 4, 7, 8, 9, static_cast<std::size_t>(8 + hlen / 2),
                                           static_cast<std::size_t>(8 + hlen - 1), static_cast<std::size_t>(8 + hlen),
                                           static_cast<std::size_t>(8 + hlen + 1), (8 + hlen + full.size()) / 2,
                                           full.size() - 4, full.size() - 1};
    for (std::size_t cut : cuts) {
        const fs::path dir = dir_ / ("cut" + std::to_string(cut));
        fs::create_directories(dir);
        fs::copy_file(src / "config.json", dir / "config.json");
        write_bytes(dir / "model.safetensors", full.substr(0, cut));
        const std::string label = "truncated at " + std::to_string(cut) + "/" + std::to_string(full.size());
        const std::string msg = expect_error(label, [&] { load(dir); }, {(dir / "model.safetensors").string()});
        if (cut < 8) EXPECT_NE(msg.find("8-byte"), std::string::npos) << msg;
        else if (cut < 8 + hlen) EXPECT_NE(msg.find("header length"), std::string::npos) << msg;
        else EXPECT_NE(msg.find("past the end of the data section"), std::string::npos) << msg;
    }
    // Sanity: the untouched copy loads.
    EXPECT_NO_THROW(load(src));
}

// ---- sharded checkpoints --------------------------------------------------------------------------

TEST_F(MalformedTest, ShardIndexErrors) {
    const fs::path src = dir_ / "src";
    write_valid_checkpoint(src, 4000);  // several shards
    const fs::path index = src / "model.safetensors.index.json";
    ASSERT_TRUE(fs::exists(index));
    const std::string good_index = read_bytes(index);
    EXPECT_NO_THROW(load(src));

    auto with_index = [&](const std::string& label, const std::string& text, const std::vector<std::string>& parts) {
        write_bytes(index, text);
        std::vector<std::string> all = parts;
        all.push_back(index.string());
        expect_error(label, [&] { load(src); }, all);
    };
    with_index("index JSON malformed", "{\"weight_map\": {", {"not valid JSON"});
    with_index("index not an object", "[\"model-00001-of-00002.safetensors\"]", {"not a JSON object"});
    with_index("index without weight_map", R"({"metadata":{"total_size":1}})", {"missing \"weight_map\""});
    with_index("weight_map not an object", R"({"weight_map":["a"]})", {"\"weight_map\" is not a JSON object"});
    with_index("shard name not a string", R"({"weight_map":{"bert.pooler.dense.bias":7}})",
               {"tensor 'bert.pooler.dense.bias'", "expected a shard file name, found number"});
    with_index("absolute shard path", R"({"weight_map":{"bert.pooler.dense.bias":"/etc/passwd"}})",
               {"'/etc/passwd'", "must be a file name in the checkpoint directory"});
    with_index("shard path leaving the folder", R"({"weight_map":{"bert.pooler.dense.bias":"../model.safetensors"}})",
               {"'../model.safetensors'", "must be a file name in the checkpoint directory (no folders, no ..)"});
    json missing = json::parse(good_index);
    missing["weight_map"]["bert.pooler.dense.bias"] = "model-00009-of-00009.safetensors";
    with_index("index names a missing shard", missing.dump(),
               {"tensor 'bert.pooler.dense.bias' is mapped to shard 'model-00009-of-00009.safetensors', which does not exist"});
    json wrong = json::parse(good_index);
    const std::string shard1 = wrong["weight_map"]["bert.embeddings.word_embeddings.weight"].get<std::string>();
    std::string other;
    for (const auto& [name, shard] : wrong["weight_map"].items())
        if (shard.get<std::string>() != shard1) other = name;
    ASSERT_FALSE(other.empty());
    wrong["weight_map"][other] = shard1;
    with_index("shard lacks a tensor", wrong.dump(), {"tensor '" + other + "'", shard1, "does not contain it"});

    // A truncated shard: the message names the shard, not just the index.
    write_bytes(index, good_index);
    const std::string shard_bytes = read_bytes(src / shard1);
    write_bytes(src / shard1, shard_bytes.substr(0, shard_bytes.size() / 2));
    expect_error("truncated shard", [&] { load(src); }, {(src / shard1).string(), "past the end of the data section"});
    write_bytes(src / shard1, shard_bytes);

    fs::remove(index);
    expect_error("no weights at all", [&] { load(src); },
                 {src.string(), "found neither model.safetensors nor model.safetensors.index.json"});
}

// ---- config.json ----------------------------------------------------------------------------------

TEST_F(MalformedTest, ConfigJsonErrors) {
    write_valid_checkpoint(dir_);
    const fs::path config = dir_ / "config.json";
    const json good = json::parse(read_bytes(config));
    auto with_config = [&](const std::string& label, const std::string& text, const std::vector<std::string>& parts) {
        write_bytes(config, text);
        std::vector<std::string> all = parts;
        all.push_back(config.string());
        expect_error(label, [&] { load(dir_); }, all);
    };
    auto edited = [&](const std::function<void(json&)>& edit) {
        json j = good;
        edit(j);
        return j.dump();
    };
    with_config("config truncated", good.dump().substr(0, 40), {"invalid JSON"});
    with_config("config not an object", "[1, 2, 3]", {"expected a JSON object"});
    with_config("config missing model_type", edited([](json& j) { j.erase("model_type"); }), {"missing key 'model_type'"});
    with_config("config model_type gpt2", edited([](json& j) { j["model_type"] = "gpt2"; }), {"model_type 'gpt2' is not supported"});
    with_config("config string for int", edited([](json& j) { j["num_hidden_layers"] = "two"; }),
                {"key 'num_hidden_layers' has the wrong type (\"two\", expected an integer)"});
    with_config("config fraction for int", edited([](json& j) { j["hidden_size"] = 16.5; }),
                {"key 'hidden_size' has the wrong type (16.5, expected an integer)"});
    with_config("config bool for int", edited([](json& j) { j["vocab_size"] = true; }),
                {"key 'vocab_size' has the wrong type (true, expected an integer)"});
    with_config("config string for float", edited([](json& j) { j["layer_norm_eps"] = "1e-12"; }),
                {"key 'layer_norm_eps' has the wrong type", "expected a number"});
    with_config("config int out of range", edited([](json& j) { j["vocab_size"] = 99999999999LL; }),
                {"key 'vocab_size' is out of range (99999999999)"});
    with_config("config absurd layer count", edited([](json& j) { j["num_hidden_layers"] = 2000000000; }),
                {"num_hidden_layers = 2000000000 is beyond what this engine accepts"});
    with_config("config heads vs hidden", edited([](json& j) { j["num_attention_heads"] = 3; }),
                {"hidden_size (16) must be a positive multiple of num_attention_heads (3)"});
    with_config("config id2label key", edited([](json& j) { j["id2label"] = {{"zero", "a"}, {"1", "b"}}; }),
                {"id2label key 'zero' is not a label id"});
    with_config("config id2label duplicate", edited([](json& j) { j["id2label"] = {{"0", "a"}, {"00", "b"}}; }),
                {"id2label ids must be 0..1, each once"});
    with_config("config num_labels 0", edited([](json& j) {
                    j.erase("id2label");
                    j["num_labels"] = 0;
                }),
                {"num_labels must be at least 1"});
    with_config("config eps 0", edited([](json& j) { j["layer_norm_eps"] = 0; }), {"layer_norm_eps must be positive"});
    fs::remove(config);
    expect_error("config missing", [&] { load(dir_); }, {config.string(), "cannot open"});
}

// ---- the model against the checkpoint -----------------------------------------------------------

TEST_F(MalformedTest, TensorsThatDoNotFitTheModel) {
    const fs::path src = dir_ / "src";
    write_valid_checkpoint(src);
    const SafetensorsReader good = SafetensorsReader::open_dir(src);
    const std::string query = "bert.encoder.layer.0.attention.self.query.weight";

    // Rewrites src's tensors into `name` with one tensor replaced (or dropped when `replace` is null).
    auto variant = [&](const std::string& name, const std::string& victim, const TensorRecord* replace) {
        const fs::path d = dir_ / name;
        std::vector<std::vector<std::byte>> keep;
        std::vector<TensorRecord> recs;
        keep.reserve(good.size());
        for (const std::string& n : good.names()) {
            if (n == victim) {
                if (replace) recs.push_back(*replace);
                continue;
            }
            const auto raw = good.raw(n);
            keep.emplace_back(raw.begin(), raw.end());
            recs.push_back(TensorRecord{n, good.info(n).dtype, good.info(n).shape, keep.back().data()});
        }
        write_checkpoint_tensors(d, recs);
        fs::copy_file(src / "config.json", d / "config.json");
        return d;
    };
    const std::vector<float> wrong(16 * 8, 0.5f);
    const TensorRecord misshapen{query, DType::F32, {16, 8}, wrong.data()};
    fs::path d = variant("misshapen", query, &misshapen);
    expect_error("right name, wrong shape", [&] { load(d); },
                 {(d / "model.safetensors").string(), "tensor '" + query + "' has shape [16, 8], expected [16, 16]"});

    const std::vector<float> flat(256, 0.5f);
    const TensorRecord reshaped{query, DType::F32, {256}, flat.data()};
    d = variant("reshaped", query, &reshaped);
    expect_error("right numel, wrong rank", [&] { load(d); }, {"tensor '" + query + "' has shape [256], expected [16, 16]"});

    d = variant("missing", query, nullptr);
    expect_error("missing backbone tensor", [&] { load(d); },
                 {(d / "model.safetensors").string(), "missing tensor '" + query + "' (expected shape [16, 16])"});

    // A tensor of the right shape in a dtype the engine cannot read (hand-written file).
    {
        const fs::path f8 = dir_ / "f8";
        fs::create_directories(f8);
        fs::copy_file(src / "config.json", f8 / "config.json");
        json header = json::object();
        std::string data;
        for (const std::string& n : good.names()) {
            const TensorInfo& info = good.info(n);
            const auto raw = good.raw(n);
            std::string bytes(reinterpret_cast<const char*>(raw.data()), raw.size());
            std::string dtype = "F32";
            if (n == query) {
                dtype = "F8_E4M3";
                bytes.resize(bytes.size() / 4);
            }
            header[n] = {{"dtype", dtype}, {"shape", info.shape}, {"data_offsets", {data.size(), data.size() + bytes.size()}}};
            data += bytes;
        }
        write_bytes(f8 / "model.safetensors", st_file(header.dump(), data));
        expect_error("unsupported dtype for model", [&] { load(f8); },
                     {"model.safetensors", "tensor '" + query + "'", "dtype F8_E4M3 is not supported"});
    }

    // A config asking for a far bigger model than the weights: a shape error before anything is
    // allocated (not an allocation failure).
    {
        d = variant("bigvocab", "", nullptr);
        json cfg = json::parse(read_bytes(d / "config.json"));
        cfg["vocab_size"] = 16000000;
        cfg["intermediate_size"] = 1000000;
        write_bytes(d / "config.json", cfg.dump());
        expect_error("config bigger than weights", [&] { load(d); },
                     {"tensor 'bert.embeddings.word_embeddings.weight' has shape [64, 16], expected [16000000, 16]"});
    }
}

// ---- malformed experiment files ---------------------------------------------------------------------

TEST_F(MalformedTest, MalformedExperimentFiles) {
    int i = 0;
    for (const std::string& text : test::malformed_experiment_texts()) {
        const fs::path file = dir_ / ("bad" + std::to_string(i) + ".json");
        write_bytes(file, text);
        expect_error("experiment case " + std::to_string(i), [&] { (void)load_experiments(file); },
                     {file.filename().string()});
        ++i;
    }
    EXPECT_GE(i, 15);
}

// Known gaps in files outside this suite (engine/store/experiment.cpp: sweep expansion builds a
// JSON pointer from the dotted key path; engine/peft/method.cpp: j.value("name", ...) on a
// non-string): these escape as nlohmann::json exceptions, not a meft::Error naming the file.
// meft run still exits 1 with the message. Enable once fixed.
TEST_F(MalformedTest, ExperimentKeysThatBreakSweepExpansion) {
    const std::vector<std::string> cases = {
        R"({"backbone": {"preset": "tiny"}, "a.b": [1, 2]})",
        R"({"backbone": {"preset": "tiny"}, "x/y": [1, 2]})",
        R"({"backbone": {"preset": "tiny"}, "x~": [1, 2]})",
        R"({"backbone": {"preset": "tiny"}, "method": {"name": 5}})",
        R"({"backbone": {"preset": "tiny"}, "training": {"seed": 18446744073709551615}})",
    };
    int i = 0;
    for (const std::string& text : cases) {
        const fs::path file = dir_ / ("gap" + std::to_string(i) + ".json");
        write_bytes(file, text);
        expect_error("experiment gap " + std::to_string(i++), [&] { (void)load_experiments(file); },
                     {file.filename().string()});
    }
}

// ---- seeded random mutations ------------------------------------------------------------------------

// splitmix64: the same sequence on every platform and standard library.
class Rng {
public:
    explicit Rng(std::uint64_t seed) : s_(seed) {}
    std::uint64_t next() {
        std::uint64_t z = (s_ += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
    std::size_t below(std::size_t n) { return n == 0 ? 0 : static_cast<std::size_t>(next() % n); }

private:
    std::uint64_t s_;
};

// One random mutation of `in`: bit flips, a truncation, inserted bytes, bytes overwritten with
// characters that matter to JSON, or a digit run replaced by a huge number. With `focus` > 0,
// three mutations in four land in the first `focus` bytes (a safetensors header).
std::string mutate(const std::string& in, Rng& rng, std::size_t focus = 0) {
    std::string s = in;
    auto pos = [&](std::size_t extra) {
        const std::size_t n = s.size() + extra;
        if (focus > 0 && focus < n && rng.below(4) != 0) return rng.below(focus);
        return rng.below(n);
    };
    static const char kSpecial[] = "\"{}[],:-.0123456789eE\\ \x00\xff";
    const int rounds = 1 + static_cast<int>(rng.below(3));
    for (int r = 0; r < rounds; ++r) {
        switch (rng.below(6)) {
            case 0:  // flip 1-4 bits
                for (std::size_t k = 1 + rng.below(4); k > 0 && !s.empty(); --k) {
                    const std::size_t p = pos(0);
                    if (p < s.size()) s[p] = static_cast<char>(s[p] ^ (1 << rng.below(8)));
                }
                break;
            case 1:  // truncate
                s.resize(pos(1));
                break;
            case 2: {  // insert 1-8 random bytes
                std::string ins;
                for (std::size_t k = 1 + rng.below(8); k > 0; --k) ins.push_back(static_cast<char>(rng.next() & 0xff));
                s.insert(std::min(pos(1), s.size()), ins);
                break;
            }
            case 3:  // overwrite with JSON punctuation
            case 4: {
                const std::size_t p = pos(0);
                if (p < s.size()) s[p] = kSpecial[rng.below(sizeof kSpecial - 1)];
                break;
            }
            default: {  // a number becomes huge, negative or fractional
                const std::size_t p = pos(0);
                if (p >= s.size()) break;
                const char* repl[] = {"18446744073709551615", "18446744073709551616", "-1", "1e308", "2.5",
                                      "9223372036854775807", "4294967296", "0"};
                std::size_t q = p;
                while (q < s.size() && s[q] >= '0' && s[q] <= '9') ++q;
                if (q == p) break;
                s.replace(p, q - p, repl[rng.below(8)]);
                break;
            }
        }
    }
    return s;
}

struct Tally {
    int accepted = 0, rejected = 0;
};

// Runs fn; a meft::Error counts as rejected, anything else thrown is a test failure.
void survive(const std::string& what, const std::string& input, const std::function<void()>& fn, Tally& t) {
    try {
        fn();
        ++t.accepted;
    } catch (const Error&) {
        ++t.rejected;
    } catch (const std::exception& e) {
        std::string shown;
        for (unsigned char c : input.substr(0, 400)) shown += (c >= 32 && c < 127) ? static_cast<char>(c) : '?';
        ADD_FAILURE() << what << ": not a meft::Error: " << e.what() << "\ninput (" << input.size() << " bytes): " << shown;
    }
}

TEST_F(MalformedTest, MutatedSafetensorsFiles) {
    // A file with several dtypes, metadata, an unsupported dtype and a scalar.
    std::vector<float> f(12);
    std::vector<double> d(3);
    std::vector<std::uint16_t> h(5);
    std::vector<std::int64_t> l(2);
    for (std::size_t i = 0; i < f.size(); ++i) f[i] = 0.25f * static_cast<float>(i);
    for (std::size_t i = 0; i < d.size(); ++i) d[i] = -1.5 * static_cast<double>(i);
    for (std::size_t i = 0; i < h.size(); ++i) h[i] = static_cast<std::uint16_t>(0x3C00 + i);
    l = {7, -9};
    float scalar = 3.0f;
    const fs::path base_file = dir_ / "base.safetensors";
    write_safetensors(base_file,
                      {{"w.f32", DType::F32, {3, 4}, f.data()},
                       {"w.f64", DType::F64, {3}, d.data()},
                       {"w.f16", DType::F16, {5}, h.data()},
                       {"w.bf16", DType::BF16, {5}, h.data()},
                       {"ids", DType::I64, {2}, l.data()},
                       {"scalar", DType::F32, {}, &scalar},
                       {"empty", DType::F32, {0, 4}, f.data()}},
                      {{"format", "pt"}, {"note", "mutation base"}});
    const std::string base = read_bytes(base_file);
    read_all(SafetensorsReader::open_file(base_file));
    const std::size_t focus = static_cast<std::size_t>(8 + header_length(base));

    Rng rng(20240611);
    Tally t;
    const fs::path file = dir_ / "m.safetensors";
    for (int i = 0; i < 400; ++i) {
        const std::string bytes = mutate(base, rng, focus);
        write_bytes(file, bytes);
        survive("mutation " + std::to_string(i), bytes, [&] { read_all(SafetensorsReader::open_file(file)); }, t);
    }
    std::printf("  safetensors mutations: %d accepted, %d rejected\n", t.accepted, t.rejected);
    EXPECT_GT(t.rejected, 100);
    EXPECT_GT(t.accepted, 10);
}

TEST_F(MalformedTest, MutatedCheckpointsAndConfigs) {
    const fs::path ck = dir_ / "ck";
    write_valid_checkpoint(ck);
    const std::string weights = read_bytes(ck / "model.safetensors");
    const std::string config = read_bytes(ck / "config.json");
    const std::size_t focus = static_cast<std::size_t>(8 + header_length(weights));

    Rng rng(7);
    Tally tw, tc;
    for (int i = 0; i < 150; ++i) {
        const std::string bytes = mutate(weights, rng, focus);
        write_bytes(ck / "model.safetensors", bytes);
        survive("weights mutation " + std::to_string(i), bytes, [&] { load(ck); }, tw);
    }
    write_bytes(ck / "model.safetensors", weights);
    for (int i = 0; i < 150; ++i) {
        const std::string text = mutate(config, rng);
        write_bytes(ck / "config.json", text);
        survive("config mutation " + std::to_string(i), text, [&] { load(ck); }, tc);
    }
    std::printf("  checkpoint mutations: %d accepted, %d rejected; config.json mutations: %d accepted, %d rejected\n",
                tw.accepted, tw.rejected, tc.accepted, tc.rejected);
    EXPECT_GT(tw.rejected, 50);
    EXPECT_GT(tc.rejected, 50);
}

TEST_F(MalformedTest, MutatedExperimentFiles) {
    const std::string base = R"({
  "name": "mutation-base",
  "tags": ["fuzz", "asan"],
  "notes": "a valid experiment touching most keys",
  "backbone": {"arch": "bert", "preset": "tiny", "seed": 3},
  "task": {"name": "toy", "num_labels": 3, "train_examples": 200, "dev_examples": 40,
           "min_length": 4, "max_length": 24, "seed": 1},
  "method": {"name": "lora", "lora": {"r": 4, "alpha": 8, "dropout": 0.1, "targets": ["query", "value"]},
             "gradient_checkpointing": false},
  "training": {"learning_rate": 0.001, "batch_size": 8, "gradient_accumulation_steps": 2, "epochs": 2,
               "max_steps": 10, "max_seq_length": 32, "warmup_ratio": 0.1, "weight_decay": 0.01,
               "adam_beta1": 0.9, "adam_beta2": 0.999, "adam_epsilon": 1e-8, "max_grad_norm": 1.0,
               "seed": [1, 2], "eval_every": 5, "eval_batch_size": 16, "dropout": 0.1, "dtype": "float32",
               "early_stopping": {"metric": "accuracy", "patience": 2}},
  "output": {"dir": "out", "save_model": false}
})";
    const fs::path file = dir_ / "exp.json";
    write_bytes(file, base);
    ASSERT_EQ(load_experiments(file).size(), 2u);  // the seed list expands

    Rng rng(99);
    Tally t;
    for (int i = 0; i < 400; ++i) {
        const std::string text = mutate(base, rng);
        write_bytes(file, text);
        survive("experiment mutation " + std::to_string(i), text, [&] { (void)load_experiments(file); }, t);
    }
    std::printf("  experiment mutations: %d accepted, %d rejected\n", t.accepted, t.rejected);
    EXPECT_GT(t.rejected, 100);
}

// ---- JSON numbers past double's range ---------------------------------------------------------------

// nlohmann::json reports 1e999 as out_of_range (406), not parse_error; the loaders caught only the
// latter, so it escaped as a foreign exception (found by fuzz_model_config).
TEST_F(MalformedTest, JsonNumberOverflowIsAnError) {
    write_bytes(dir_ / "config.json", R"({"model_type": "bert", "vocab_size": 1e999})");
    expect_error("config.json 1e999", [&] { (void)load_model_config(dir_); }, {"config.json", "invalid JSON"});
    write_bytes(dir_ / "exp.json", "{\"backbone\": {\"preset\": \"tiny\"},\n \"training\": {\"learning_rate\": -1e999}}");
    expect_error("experiment 1e999", [&] { (void)load_experiments(dir_ / "exp.json"); }, {"exp.json", "invalid JSON"});
    write_bytes(dir_ / "in.jsonl", "{\"input_ids\": [1, 2]}\n{\"input_ids\": [1e999]}\n");
    expect_error("predict 1e999", [&] { (void)read_jsonl_examples(dir_ / "in.jsonl"); }, {"in.jsonl:2", "invalid JSON"});
}

// ---- the allocation functions under AddressSanitizer ---------------------------------------------

// core/host_memory.cpp replaces the global allocation functions with malloc/free. Under a sanitizer
// runtime, which brings its own nothrow operator new, memory from new(std::nothrow) used to reach
// our operator delete and free(): AddressSanitizer's alloc-dealloc-mismatch in test_parsers_asan
// and in the fuzz targets. std::stable_sort (the BPE tokenizer sorts its added tokens with it)
// takes its buffer from new(std::nothrow).
TEST(HostMemory, NothrowNewPairsWithDelete) {
    char* volatile one = new (std::nothrow) char(1);
    delete one;
    int* volatile many = new (std::nothrow) int[100];
    many[99] = 1;
    delete[] many;
    std::vector<std::string> names;
    for (int i = 0; i < 100; ++i) names.push_back(std::to_string((i * 37) % 100));
    std::stable_sort(names.begin(), names.end());
    EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
}

}  // namespace
