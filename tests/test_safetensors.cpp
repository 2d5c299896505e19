// test_safetensors.cpp — safetensors reader/writer: round trips, hand-built files, shards, errors.
#include "model/safetensors.h"

#include <gtest/gtest.h>

#include "test_support.h"
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"

namespace fs = std::filesystem;
using meft::DType;
using meft::SafetensorsReader;
using meft::TensorRecord;

namespace {

using SafetensorsTest = meft::test::TempDirTest;

using meft::test::read_bytes;
using meft::test::u64_le;
using meft::test::write_bytes;

// A complete file: length prefix + header text + data bytes.
std::string st_file(const std::string& header, const std::string& data) {
    return u64_le(header.size()) + header + data;
}

std::string u16_le(std::uint16_t v) {
    return std::string{static_cast<char>(v & 0xff), static_cast<char>(v >> 8)};
}

// Runs fn, expects meft::Error whose message contains every one of `parts`.
void expect_error(const std::function<void()>& fn, const std::vector<std::string>& parts) {
    try {
        fn();
    } catch (const meft::Error& e) {
        const std::string msg = e.what();
        for (const std::string& p : parts)
            EXPECT_NE(msg.find(p), std::string::npos) << "message \"" << msg << "\" lacks \"" << p << "\"";
        return;
    }
    ADD_FAILURE() << "expected meft::Error";
}

template <typename T>
bool same_bytes(const std::vector<T>& v, std::span<const std::byte> raw) {
    return raw.size() == v.size() * sizeof(T) && (v.empty() || std::memcmp(v.data(), raw.data(), raw.size()) == 0);
}

float bits_to_float(std::uint32_t b) {
    float f;
    std::memcpy(&f, &b, 4);
    return f;
}

std::vector<std::string> dir_listing(const fs::path& dir) {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
}

}  // namespace

TEST_F(SafetensorsTest, RoundTripAllDtypesBitExact) {
    std::mt19937_64 rng(42);
    std::vector<float> f32 = {0.0f, -0.0f, 1.5f, -3.25e-39f /* subnormal */,
                              std::numeric_limits<float>::infinity(), bits_to_float(0x7fc12345u) /* nan */};
    std::vector<double> f64(7);
    for (auto& x : f64) x = std::uniform_real_distribution<double>(-1e300, 1e300)(rng);
    std::vector<std::uint16_t> f16(12), bf16(12);
    for (auto& x : f16) x = static_cast<std::uint16_t>(rng());
    for (auto& x : bf16) x = static_cast<std::uint16_t>(rng());
    f16[0] = 0x7e01;  // nan with payload
    std::vector<std::int64_t> i64 = {0, -1, std::numeric_limits<std::int64_t>::max(),
                                     std::numeric_limits<std::int64_t>::min(), 123456789012345};
    std::vector<std::int32_t> i32 = {7, -7, std::numeric_limits<std::int32_t>::min()};
    float scalar = 2.75f;

    const fs::path file = dir_ / "all.safetensors";
    meft::write_safetensors(file, {
                                      {"w.f32", DType::F32, {2, 3}, f32.data()},
                                      {"w.f64", DType::F64, {7}, f64.data()},
                                      {"w.f16", DType::F16, {3, 2, 2}, f16.data()},
                                      {"w.bf16", DType::BF16, {4, 3}, bf16.data()},
                                      {"ids.i64", DType::I64, {5}, i64.data()},
                                      {"ids.i32", DType::I32, {1, 3}, i32.data()},
                                      {"scalar", DType::F32, {}, &scalar},
                                      {"empty", DType::F32, {0, 4}, nullptr},
                                  });

    const SafetensorsReader r = SafetensorsReader::open_file(file);
    EXPECT_EQ(r.names(), (std::vector<std::string>{"empty", "ids.i32", "ids.i64", "scalar", "w.bf16", "w.f16",
                                                   "w.f32", "w.f64"}));
    EXPECT_EQ(r.size(), 8u);
    EXPECT_EQ(r.metadata(), (std::map<std::string, std::string>{{"format", "pt"}}));
    EXPECT_TRUE(r.contains("w.f16"));
    EXPECT_FALSE(r.contains("w"));

    EXPECT_TRUE(same_bytes(f32, r.raw("w.f32")));
    EXPECT_TRUE(same_bytes(f64, r.raw("w.f64")));
    EXPECT_TRUE(same_bytes(f16, r.raw("w.f16")));
    EXPECT_TRUE(same_bytes(bf16, r.raw("w.bf16")));
    EXPECT_TRUE(same_bytes(i64, r.raw("ids.i64")));
    EXPECT_TRUE(same_bytes(i32, r.raw("ids.i32")));

    const meft::TensorInfo& ti = r.info("w.f16");
    EXPECT_EQ(ti.name, "w.f16");
    EXPECT_EQ(ti.dtype, DType::F16);
    EXPECT_EQ(ti.dtype_str, "F16");
    EXPECT_TRUE(ti.supported);
    EXPECT_EQ(ti.shape, (std::vector<std::int64_t>{3, 2, 2}));
    EXPECT_EQ(ti.numel(), 12);
    EXPECT_EQ(ti.nbytes, 24u);
    EXPECT_EQ(ti.file, file.string());
    EXPECT_EQ(r.info("scalar").shape, std::vector<std::int64_t>{});
    EXPECT_EQ(r.info("scalar").numel(), 1);
    EXPECT_EQ(r.info("empty").numel(), 0);

    // Same-dtype reads are plain copies.
    std::vector<std::int64_t> i64_back(5);
    r.read_into("ids.i64", DType::I64, i64_back.data(), i64_back.size());
    EXPECT_EQ(i64_back, i64);
    std::vector<std::uint16_t> f16_back(12);
    r.read_into("w.f16", DType::F16, f16_back.data(), f16_back.size());
    EXPECT_EQ(f16_back, f16);
    std::vector<double> f64_back(7);
    r.read_into("w.f64", DType::F64, f64_back.data(), f64_back.size());
    EXPECT_EQ(std::memcmp(f64_back.data(), f64.data(), 7 * sizeof(double)), 0);
    std::vector<float> f32_back(6);
    r.read_into("w.f32", DType::F32, f32_back.data(), f32_back.size());
    EXPECT_EQ(std::memcmp(f32_back.data(), f32.data(), 6 * sizeof(float)), 0);
    EXPECT_EQ(r.read_f32("scalar"), std::vector<float>{2.75f});
    EXPECT_TRUE(r.read_f32("empty").empty());

    // Widening conversions.
    std::vector<float> conv = r.read_f32("w.bf16");
    for (std::size_t i = 0; i < bf16.size(); ++i) {
        const float want = meft::bf16_to_float(bf16[i]);
        EXPECT_EQ(std::memcmp(&conv[i], &want, 4), 0) << i;
    }
    std::vector<double> conv64(12);
    r.read_into("w.f16", DType::F64, conv64.data(), conv64.size());
    for (std::size_t i = 0; i < f16.size(); ++i) {
        const float want = meft::half_to_float(f16[i]);
        if (std::isnan(want)) {
            EXPECT_TRUE(std::isnan(conv64[i])) << i;
        } else {
            EXPECT_EQ(conv64[i], static_cast<double>(want)) << i;
        }
    }
    std::vector<double> ids64(5);
    r.read_into("ids.i64", DType::F64, ids64.data(), ids64.size());
    EXPECT_EQ(ids64[1], -1.0);
    EXPECT_EQ(ids64[4], 123456789012345.0);
    EXPECT_EQ(r.read_f32("ids.i32"), (std::vector<float>{7.0f, -7.0f, -2147483648.0f}));
    std::vector<double> f32_as_f64(6);
    r.read_into("w.f32", DType::F64, f32_as_f64.data(), f32_as_f64.size());
    EXPECT_EQ(f32_as_f64[2], 1.5);
    EXPECT_EQ(f32_as_f64[3], static_cast<double>(-3.25e-39f));
}

TEST_F(SafetensorsTest, WriterLayoutOrderPaddingOffsets) {
    const std::vector<float> a = {1, 2, 3};                  // 12 bytes
    const std::vector<std::uint16_t> b = {1, 2, 3, 4, 5};   // 10 bytes
    const std::vector<double> c = {4.0};                     // 8 bytes
    const fs::path file = dir_ / "layout.safetensors";
    meft::write_safetensors(file,
                            {{"zeta", DType::F32, {3}, a.data()},
                             {"alpha", DType::BF16, {5}, b.data()},
                             {"mid", DType::F64, {1, 1}, c.data()}},
                            {{"format", "pt"}, {"note", "hello"}});
    const std::string bytes = read_bytes(file);
    ASSERT_GE(bytes.size(), 8u);
    std::uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[i]);
    EXPECT_EQ(n % 8, 0u);
    EXPECT_EQ(bytes.size(), 8 + n + 12 + 10 + 8);
    const std::string header = bytes.substr(8, n);
    EXPECT_EQ(header.front(), '{');
    EXPECT_EQ(header.find_last_not_of(' '), header.find_last_of('}'));  // only spaces after the JSON

    const auto j = nlohmann::ordered_json::parse(header);
    std::vector<std::string> keys;
    for (const auto& [k, v] : j.items()) keys.push_back(k);
    EXPECT_EQ(keys, (std::vector<std::string>{"__metadata__", "zeta", "alpha", "mid"}));
    EXPECT_EQ(j["__metadata__"]["note"], "hello");
    EXPECT_EQ(j["zeta"]["dtype"], "F32");
    EXPECT_EQ(j["zeta"]["data_offsets"], nlohmann::json::parse("[0, 12]"));
    EXPECT_EQ(j["alpha"]["dtype"], "BF16");
    EXPECT_EQ(j["alpha"]["data_offsets"], nlohmann::json::parse("[12, 22]"));
    EXPECT_EQ(j["mid"]["dtype"], "F64");
    EXPECT_EQ(j["mid"]["shape"], nlohmann::json::parse("[1, 1]"));
    EXPECT_EQ(j["mid"]["data_offsets"], nlohmann::json::parse("[22, 30]"));
    EXPECT_EQ(std::memcmp(bytes.data() + 8 + n, a.data(), 12), 0);
    EXPECT_EQ(std::memcmp(bytes.data() + 8 + n + 12, b.data(), 10), 0);
    EXPECT_EQ(std::memcmp(bytes.data() + 8 + n + 22, c.data(), 8), 0);

    const SafetensorsReader r = SafetensorsReader::open_file(file);
    EXPECT_EQ(r.metadata().at("note"), "hello");
    // Only the file itself is left in the directory: the temporary was renamed.
    EXPECT_EQ(dir_listing(dir_), std::vector<std::string>{"layout.safetensors"});

    // Empty metadata: no "__metadata__" key at all.
    meft::write_safetensors(dir_ / "nometa.safetensors", {{"x", DType::F32, {3}, a.data()}}, {});
    const std::string bytes2 = read_bytes(dir_ / "nometa.safetensors");
    EXPECT_EQ(bytes2.find("__metadata__"), std::string::npos);
    EXPECT_TRUE(SafetensorsReader::open_file(dir_ / "nometa.safetensors").metadata().empty());
}

TEST_F(SafetensorsTest, ReadsHandWrittenF16File) {
    // 1.0 = 0x3C00, -2.5 = 0xC100 in IEEE half. Header is not padded, as some writers do.
    const std::string header = R"({"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}})";
    const fs::path file = dir_ / "hand.safetensors";
    write_bytes(file, st_file(header, u16_le(0x3C00) + u16_le(0xC100)));

    const SafetensorsReader r = SafetensorsReader::open_file(file);
    EXPECT_EQ(r.names(), std::vector<std::string>{"a"});
    EXPECT_TRUE(r.metadata().empty());
    EXPECT_EQ(r.info("a").dtype, DType::F16);
    EXPECT_EQ(r.info("a").shape, std::vector<std::int64_t>{2});
    EXPECT_EQ(r.info("a").offset, 8 + header.size());
    float f[2];
    r.read_into("a", DType::F32, f, 2);
    EXPECT_EQ(f[0], 1.0f);
    EXPECT_EQ(f[1], -2.5f);
    double d[2];
    r.read_into("a", DType::F64, d, 2);
    EXPECT_EQ(d[0], 1.0);
    EXPECT_EQ(d[1], -2.5);
}

TEST_F(SafetensorsTest, ReadsHandWrittenMixedFileWithMetadataAndUnalignedData) {
    // BF16 1.0 = 0x3F80, -2.5 = 0xC020; F32 3.5 = 0x40600000; I64 -7. The header length (odd) puts
    // the F32 and I64 data at unaligned addresses. Padding spaces after the JSON are allowed.
    const std::string header =
        R"({"__metadata__":{"format":"pt","k":"v"},)"
        R"("b":{"dtype":"BF16","shape":[2,1],"data_offsets":[0,4]},)"
        R"("x":{"dtype":"F32","shape":[],"data_offsets":[4,8]},)"
        R"("i":{"dtype":"I64","shape":[1],"data_offsets":[8,16]},)"
        R"("u":{"dtype":"U8","shape":[3],"data_offsets":[16,19]}}   )";
    std::string data = u16_le(0x3F80) + u16_le(0xC020);
    data += std::string("\x00\x00\x60\x40", 4);
    data += std::string("\xf9\xff\xff\xff\xff\xff\xff\xff", 8);
    data += std::string("\x01\x02\x03", 3);
    const fs::path file = dir_ / "mixed.safetensors";
    write_bytes(file, st_file(header, data));

    const SafetensorsReader r = SafetensorsReader::open_file(file);
    EXPECT_EQ(r.names(), (std::vector<std::string>{"b", "i", "u", "x"}));
    EXPECT_EQ(r.metadata(), (std::map<std::string, std::string>{{"format", "pt"}, {"k", "v"}}));
    EXPECT_EQ(r.read_f32("b"), (std::vector<float>{1.0f, -2.5f}));
    EXPECT_EQ(r.read_f32("x"), std::vector<float>{3.5f});
    EXPECT_EQ(r.read_f32("i"), std::vector<float>{-7.0f});
    std::int64_t iv = 0;
    r.read_into("i", DType::I64, &iv, 1);
    EXPECT_EQ(iv, -7);

    // A dtype the engine does not convert is listed and its bytes reachable, but not convertible.
    const meft::TensorInfo& u = r.info("u");
    EXPECT_FALSE(u.supported);
    EXPECT_EQ(u.dtype_str, "U8");
    ASSERT_EQ(r.raw("u").size(), 3u);
    EXPECT_EQ(std::to_integer<int>(r.raw("u")[2]), 3);
    float buf[3];
    expect_error([&] { r.read_into("u", DType::F32, buf, 3); }, {"mixed.safetensors", "'u'", "U8"});
}

TEST_F(SafetensorsTest, HalfAndBf16ConversionMatchesScalarReference) {
    std::vector<std::uint16_t> all(65536);
    for (std::uint32_t i = 0; i < 65536; ++i) all[i] = static_cast<std::uint16_t>(i);
    const fs::path file = dir_ / "all16.safetensors";
    meft::write_safetensors(file, {{"h", DType::F16, {65536}, all.data()}, {"b", DType::BF16, {256, 256}, all.data()}});
    const SafetensorsReader r = SafetensorsReader::open_file(file);
    const std::vector<float> h = r.read_f32("h");
    const std::vector<float> b = r.read_f32("b");
    int bad_h = 0, bad_b = 0;
    for (std::uint32_t i = 0; i < 65536; ++i) {
        const float wh = meft::half_to_float(static_cast<std::uint16_t>(i));
        const float wb = meft::bf16_to_float(static_cast<std::uint16_t>(i));
        bad_h += std::memcmp(&h[i], &wh, 4) != 0;
        bad_b += std::memcmp(&b[i], &wb, 4) != 0;
    }
    EXPECT_EQ(bad_h, 0);
    EXPECT_EQ(bad_b, 0);
}

TEST_F(SafetensorsTest, ReaderCopiesKeepMappingsAlive) {
    const std::vector<float> v = {1, 2, 3, 4};
    const fs::path file = dir_ / "m.safetensors";
    meft::write_safetensors(file, {{"v", DType::F32, {4}, v.data()}});
    SafetensorsReader copy;
    EXPECT_EQ(copy.size(), 0u);
    expect_error([&] { (void)copy.info("v"); }, {"'v'"});
    {
        SafetensorsReader original = SafetensorsReader::open_file(file);
        copy = original;
        SafetensorsReader moved = std::move(original);
        EXPECT_EQ(moved.read_f32("v"), v);
    }
    EXPECT_EQ(copy.read_f32("v"), v);

    // Overwriting the file replaces it atomically; an open reader keeps seeing the old contents.
    const std::vector<float> w = {5, 6, 7, 8};
    meft::write_safetensors(file, {{"v", DType::F32, {4}, w.data()}});
    EXPECT_EQ(copy.read_f32("v"), v);
    EXPECT_EQ(SafetensorsReader::open_file(file).read_f32("v"), w);
}

TEST_F(SafetensorsTest, CheckpointSingleAndShardedRoundTrip) {
    // Sizes: a 40 B, b 24 B, c 100 B, d 16 B, e 8 B = 188 B.
    std::vector<float> a(10), c(25);
    std::vector<double> b(3), e(1);
    std::vector<std::uint16_t> d(8);
    for (std::size_t i = 0; i < a.size(); ++i) a[i] = 0.5f * static_cast<float>(i);
    for (std::size_t i = 0; i < c.size(); ++i) c[i] = -1.0f * static_cast<float>(i);
    b = {1e-300, 2.0, 3.0};
    e = {42.0};
    for (std::size_t i = 0; i < d.size(); ++i) d[i] = meft::float_to_bf16(static_cast<float>(i));
    const std::vector<TensorRecord> recs = {{"layer.0.a", DType::F32, {2, 5}, a.data()},
                                            {"layer.0.b", DType::F64, {3}, b.data()},
                                            {"layer.1.c", DType::F32, {5, 5}, c.data()},
                                            {"layer.1.d", DType::BF16, {8}, d.data()},
                                            {"z.e", DType::F64, {1}, e.data()}};
    const fs::path ck = dir_ / "ckpt";

    // Fits: one file.
    meft::write_checkpoint_tensors(ck, recs, 1000);
    EXPECT_EQ(dir_listing(ck), std::vector<std::string>{"model.safetensors"});
    {
        const SafetensorsReader r = SafetensorsReader::open_dir(ck);
        EXPECT_EQ(r.size(), 5u);
        EXPECT_EQ(r.read_f32("layer.1.c"), c);
        EXPECT_EQ(r.metadata().at("format"), "pt");
    }

    // Limit 64 B: [a b] (64), [c] (100 > limit, alone), [d e] (24).
    meft::write_checkpoint_tensors(ck, recs, 64);
    EXPECT_EQ(dir_listing(ck),
              (std::vector<std::string>{"model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors",
                                        "model-00003-of-00003.safetensors", "model.safetensors.index.json"}));
    const auto idx = nlohmann::json::parse(read_bytes(ck / "model.safetensors.index.json"));
    EXPECT_EQ(idx["metadata"]["total_size"], 188);
    EXPECT_EQ(idx["weight_map"]["layer.0.a"], "model-00001-of-00003.safetensors");
    EXPECT_EQ(idx["weight_map"]["layer.0.b"], "model-00001-of-00003.safetensors");
    EXPECT_EQ(idx["weight_map"]["layer.1.c"], "model-00002-of-00003.safetensors");
    EXPECT_EQ(idx["weight_map"]["layer.1.d"], "model-00003-of-00003.safetensors");
    EXPECT_EQ(idx["weight_map"]["z.e"], "model-00003-of-00003.safetensors");
    {
        const SafetensorsReader r = SafetensorsReader::open_dir(ck);
        EXPECT_EQ(r.names(), (std::vector<std::string>{"layer.0.a", "layer.0.b", "layer.1.c", "layer.1.d", "z.e"}));
        EXPECT_TRUE(same_bytes(a, r.raw("layer.0.a")));
        EXPECT_TRUE(same_bytes(b, r.raw("layer.0.b")));
        EXPECT_TRUE(same_bytes(c, r.raw("layer.1.c")));
        EXPECT_TRUE(same_bytes(d, r.raw("layer.1.d")));
        EXPECT_TRUE(same_bytes(e, r.raw("z.e")));
        EXPECT_EQ(fs::path(r.info("layer.1.c").file).filename(), "model-00002-of-00003.safetensors");
        EXPECT_EQ(r.metadata().at("format"), "pt");
        std::vector<double> bb(3);
        r.read_into("layer.0.b", DType::F64, bb.data(), 3);
        EXPECT_EQ(bb, b);
        EXPECT_EQ(r.read_f32("layer.1.d")[7], 7.0f);
        // Each shard is itself a valid safetensors file.
        EXPECT_EQ(SafetensorsReader::open_file(ck / "model-00003-of-00003.safetensors").names(),
                  (std::vector<std::string>{"layer.1.d", "z.e"}));
    }

    // Fewer shards now: the old 3-shard files go away.
    meft::write_checkpoint_tensors(ck, recs, 150);
    EXPECT_EQ(dir_listing(ck),
              (std::vector<std::string>{"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
                                        "model.safetensors.index.json"}));
    EXPECT_EQ(SafetensorsReader::open_dir(ck).read_f32("layer.0.a"), a);

    // Back to one file (0 = never shard): the index and shards go away.
    std::vector<float> a2(10, 9.0f);
    std::vector<TensorRecord> recs2 = recs;
    recs2[0].data = a2.data();
    meft::write_checkpoint_tensors(ck, recs2);
    EXPECT_EQ(dir_listing(ck), std::vector<std::string>{"model.safetensors"});
    EXPECT_EQ(SafetensorsReader::open_dir(ck).read_f32("layer.0.a"), a2);
}

TEST_F(SafetensorsTest, ShardedWriteReplacesStaleSingleFile) {
    std::vector<float> a(4, 1.0f), b(4, 2.0f);
    const fs::path ck = dir_ / "ck";
    meft::write_checkpoint_tensors(ck, {{"a", DType::F32, {4}, a.data()}});
    ASSERT_TRUE(fs::exists(ck / "model.safetensors"));
    meft::write_checkpoint_tensors(ck, {{"a", DType::F32, {4}, a.data()}, {"b", DType::F32, {4}, b.data()}}, 16);
    EXPECT_FALSE(fs::exists(ck / "model.safetensors"));
    const SafetensorsReader r = SafetensorsReader::open_dir(ck);
    EXPECT_EQ(r.size(), 2u);
    EXPECT_EQ(r.read_f32("b"), b);
}

TEST_F(SafetensorsTest, OpenFileErrorsNameFileAndTensor) {
    const std::string f16_data = u16_le(0x3C00) + u16_le(0xC100);
    auto check = [&](const std::string& fname, const std::string& bytes, const std::vector<std::string>& parts) {
        write_bytes(dir_ / fname, bytes);
        std::vector<std::string> all = parts;
        all.push_back(fname);
        expect_error([&] { (void)SafetensorsReader::open_file(dir_ / fname); }, all);
    };
    check("missing.safetensors", "", {});  // written then removed below
    fs::remove(dir_ / "missing.safetensors");
    expect_error([&] { (void)SafetensorsReader::open_file(dir_ / "missing.safetensors"); },
                 {"missing.safetensors", "cannot open"});

    check("short.safetensors", std::string("\x10\x00\x00", 3), {"8-byte"});
    check("empty.safetensors", "", {"8-byte"});
    check("hdrlen.safetensors", u64_le(1000) + "{}", {"header length 1000"});
    check("badjson.safetensors", st_file("{\"a\":{", ""), {"JSON"});
    check("notobj.safetensors", st_file("[1,2]", ""), {"not a JSON object"});
    check("nodtype.safetensors", st_file(R"({"a":{"shape":[2],"data_offsets":[0,4]}})", f16_data),
          {"'a'", "dtype"});
    check("noshape.safetensors", st_file(R"({"a":{"dtype":"F16","data_offsets":[0,4]}})", f16_data),
          {"'a'", "shape"});
    check("negshape.safetensors", st_file(R"({"a":{"dtype":"F16","shape":[-2],"data_offsets":[0,4]}})", f16_data),
          {"'a'", "shape"});
    check("nooffs.safetensors", st_file(R"({"a":{"dtype":"F16","shape":[2]}})", f16_data),
          {"'a'", "data_offsets"});
    check("badoffs.safetensors", st_file(R"({"a":{"dtype":"F16","shape":[2],"data_offsets":[0]}})", f16_data),
          {"'a'", "data_offsets"});
    // Offsets past the data section (e.g. a truncated download).
    check("past.safetensors", st_file(R"({"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}})", f16_data.substr(0, 3)),
          {"'a'", "past the end"});
    check("past2.safetensors",
          st_file(R"({"ok":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},"bad":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                  f16_data),
          {"'bad'", "past the end"});
    // Offsets that disagree with dtype x shape.
    check("size.safetensors", st_file(R"({"a":{"dtype":"F16","shape":[3],"data_offsets":[0,4]}})", f16_data),
          {"'a'", "needs 6 bytes", "F16", "[3]"});
    check("reversed.safetensors", st_file(R"({"a":{"dtype":"F16","shape":[1],"data_offsets":[4,2]}})", f16_data),
          {"'a'", "begin is after end"});
    check("meta.safetensors", st_file(R"({"__metadata__":{"k":3}})", ""), {"__metadata__", "'k'"});
    check("entry.safetensors", st_file(R"({"a":[1,2]})", ""), {"'a'"});

    // The directory itself is not a file.
    expect_error([&] { (void)SafetensorsReader::open_file(dir_); }, {dir_.string()});
}

TEST_F(SafetensorsTest, LookupAndReadErrorsNameTensor) {
    const std::vector<float> v = {1, 2, 3};
    const fs::path file = dir_ / "look.safetensors";
    meft::write_safetensors(file, {{"w", DType::F32, {3}, v.data()}});
    const SafetensorsReader r = SafetensorsReader::open_file(file);
    expect_error([&] { (void)r.info("nope"); }, {"'nope'", "look.safetensors"});
    expect_error([&] { (void)r.raw("nope"); }, {"'nope'"});
    float buf[4];
    expect_error([&] { r.read_into("nope", DType::F32, buf, 3); }, {"'nope'"});
    expect_error([&] { r.read_into("w", DType::F32, buf, 4); }, {"'w'", "look.safetensors", "3 elements", "4"});
    std::int32_t ibuf[3];
    expect_error([&] { r.read_into("w", DType::I32, ibuf, 3); }, {"'w'", "F32", "I32"});
}

TEST_F(SafetensorsTest, OpenDirErrors) {
    const fs::path empty = dir_ / "empty";
    fs::create_directories(empty);
    expect_error([&] { (void)SafetensorsReader::open_dir(empty); },
                 {"empty", "model.safetensors", "model.safetensors.index.json"});
    expect_error([&] { (void)SafetensorsReader::open_dir(dir_ / "absent"); }, {"absent"});

    const std::vector<float> v = {1, 2};
    const fs::path ck = dir_ / "ck";
    fs::create_directories(ck);
    meft::write_safetensors(ck / "model-00001-of-00002.safetensors", {{"x", DType::F32, {2}, v.data()}});
    write_bytes(ck / "model.safetensors.index.json",
                R"({"metadata":{"total_size":16},"weight_map":{"x":"model-00001-of-00002.safetensors",)"
                R"("y":"model-00002-of-00002.safetensors"}})");
    expect_error([&] { (void)SafetensorsReader::open_dir(ck); },
                 {"model.safetensors.index.json", "'y'", "model-00002-of-00002.safetensors", "does not exist"});

    write_bytes(ck / "model.safetensors.index.json",
                R"({"weight_map":{"x":"model-00001-of-00002.safetensors","z":"model-00001-of-00002.safetensors"}})");
    expect_error([&] { (void)SafetensorsReader::open_dir(ck); },
                 {"'z'", "model-00001-of-00002.safetensors", "does not contain"});

    write_bytes(ck / "model.safetensors.index.json", R"({"metadata":{}})");
    expect_error([&] { (void)SafetensorsReader::open_dir(ck); }, {"model.safetensors.index.json", "weight_map"});
    write_bytes(ck / "model.safetensors.index.json", "{not json");
    expect_error([&] { (void)SafetensorsReader::open_dir(ck); }, {"model.safetensors.index.json", "JSON"});

    // A hand-written index selecting one of two tensors from a shard: only the mapped one is listed.
    meft::write_safetensors(ck / "model-00001-of-00002.safetensors",
                            {{"x", DType::F32, {2}, v.data()}, {"extra", DType::F32, {2}, v.data()}});
    write_bytes(ck / "model.safetensors.index.json", R"({"weight_map":{"x":"model-00001-of-00002.safetensors"}})");
    const SafetensorsReader r = SafetensorsReader::open_dir(ck);
    EXPECT_EQ(r.names(), std::vector<std::string>{"x"});
    expect_error([&] { (void)r.info("q"); }, {"'q'", "ck"});
}

TEST_F(SafetensorsTest, WriteErrors) {
    const std::vector<float> v = {1, 2};
    expect_error([&] { meft::write_safetensors(dir_ / "no_such_dir" / "x.safetensors", {{"a", DType::F32, {2}, v.data()}}); },
                 {"x.safetensors"});
    expect_error([&] {
        meft::write_safetensors(dir_ / "dup.safetensors", {{"a", DType::F32, {2}, v.data()}, {"a", DType::F32, {2}, v.data()}});
    }, {"dup.safetensors", "'a'", "duplicate"});
    expect_error([&] { meft::write_safetensors(dir_ / "null.safetensors", {{"a", DType::F32, {2}, nullptr}}); },
                 {"null.safetensors", "'a'"});
    expect_error([&] { meft::write_safetensors(dir_ / "neg.safetensors", {{"a", DType::F32, {-1}, v.data()}}); },
                 {"neg.safetensors", "'a'", "shape"});
    expect_error([&] { meft::write_safetensors(dir_ / "meta.safetensors", {{"__metadata__", DType::F32, {2}, v.data()}}); },
                 {"__metadata__"});
    // Nothing was left behind by the failed writes.
    EXPECT_TRUE(dir_listing(dir_).empty());
}
