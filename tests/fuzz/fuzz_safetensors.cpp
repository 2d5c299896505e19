// SPDX-License-Identifier: GPL-3.0-or-later
// fuzz_safetensors.cpp — libFuzzer target for safetensors headers and shard indexes
// (model/safetensors.h).
// Input: a .safetensors file (8-byte header length, JSON header, data), opened with
// SafetensorsReader::open_file; or, when it starts with '{', a model.safetensors.index.json opened
// with open_dir beside two fixed valid shards (model-00001-of-00002.safetensors holding "a" and
// "b", model-00002-of-00002.safetensors holding "c"). Whatever opens is then read as a loader
// would: every tensor's info and raw bytes, and a conversion to F32 and F64 where supported.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "fuzz_support.h"
#include "model/safetensors.h"

namespace {

void read_everything(const meft::SafetensorsReader& r) {
    using namespace meft;
    (void)r.metadata();
    for (const std::string& name : r.names()) {
        const TensorInfo& info = r.info(name);
        const auto raw = r.raw(name);
        unsigned char sum = 0;
        for (std::byte b : raw) sum = static_cast<unsigned char>(sum + std::to_integer<unsigned char>(b));
        fuzz::require(raw.size() == info.nbytes, "raw() size differs from the header's byte count");
        if (!info.supported || info.numel() > (1 << 20)) continue;
        const auto n = static_cast<std::size_t>(info.numel());
        std::vector<float> f(n);
        std::vector<double> d(n);
        fuzz::expect_only_meft_errors("read_into F32", [&] { r.read_into(name, DType::F32, f.data(), n); });
        fuzz::expect_only_meft_errors("read_into F64", [&] { r.read_into(name, DType::F64, d.data(), n); });
        (void)sum;
    }
}

void write_fixed_shards(const std::filesystem::path& dir) {
    using namespace meft;
    const float a[2] = {1.0f, -2.0f};
    const double b[3] = {0.5, 0.25, -1.0};
    const std::int64_t c[1] = {7};
    write_safetensors(dir / "model-00001-of-00002.safetensors",
                      {TensorRecord{"a", DType::F32, {2}, a}, TensorRecord{"b", DType::F64, {3, 1}, b}});
    write_safetensors(dir / "model-00002-of-00002.safetensors", {TensorRecord{"c", DType::I64, {}, c}});
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace meft;
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    if (!bytes.empty() && bytes[0] == '{') {
        static const std::filesystem::path shards = [] {
            const auto d = fuzz::fresh_dir("safetensors-sharded");
            write_fixed_shards(d);
            return d;
        }();
        fuzz::write_file(shards / "model.safetensors.index.json", bytes);
        fuzz::expect_only_meft_errors("open_dir", [&] { read_everything(SafetensorsReader::open_dir(shards)); });
        return 0;
    }
    const auto dir = fuzz::fresh_dir("safetensors");
    fuzz::write_file(dir / "model.safetensors", bytes);
    fuzz::expect_only_meft_errors("open_file", [&] { read_everything(SafetensorsReader::open_file(dir / "model.safetensors")); });
    return 0;
}
