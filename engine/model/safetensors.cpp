// safetensors.cpp — see safetensors.h for the format and the guarantees.
#include "model/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <utility>

#include "core/error.h"
#include "core/file_io.h"

static_assert(std::endian::native == std::endian::little,
              "safetensors I/O assumes a little-endian host (the file format is little-endian)");

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace meft {

namespace detail {

// A read-only private mapping of a whole file; unmapped when the last owner lets go.
struct MappedFile {
    std::string path;
    const std::byte* data = nullptr;
    std::size_t size = 0;

    MappedFile() = default;
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;
    ~MappedFile() {
        if (data != nullptr) ::munmap(const_cast<std::byte*>(data), size);
    }
};

}  // namespace detail

namespace {

constexpr std::string_view kSingleFile = "model.safetensors";
constexpr std::string_view kIndexFile = "model.safetensors.index.json";

std::string errno_text(int err) { return std::strerror(err); }

// Appended (GCC 12's false -Wrestrict on a string literal plus a temporary string at -O3).
std::string qpath(const fs::path& p) { return std::string("'").append(p.string()).append("'"); }

std::string shape_str(const std::vector<std::int64_t>& shape) {
    std::string s = "[";
    for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
}

// Closes a file descriptor on scope exit.
struct Fd {
    int fd = -1;
    explicit Fd(int f) : fd(f) {}
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() {
        if (fd >= 0) ::close(fd);
    }
};

std::shared_ptr<const detail::MappedFile> map_file(const fs::path& file) {
    const std::string name = qpath(file);
    Fd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.fd < 0) {
        const int err = errno;
        throw Error("safetensors file " + name + ": cannot open: " + errno_text(err));
    }
    struct stat st {};
    if (::fstat(fd.fd, &st) != 0) {
        const int err = errno;
        throw Error("safetensors file " + name + ": cannot stat: " + errno_text(err));
    }
    if (!S_ISREG(st.st_mode)) throw Error("safetensors file " + name + ": not a regular file");
    const auto size = static_cast<std::uint64_t>(st.st_size);
    if (size < 8)
        throw Error("safetensors file " + name + ": file is " + std::to_string(size) +
                    " bytes, shorter than the 8-byte header-length prefix (truncated?)");
    if (size > std::numeric_limits<std::size_t>::max())
        throw Error("safetensors file " + name + ": too large to map");
    auto m = std::make_shared<detail::MappedFile>();
    m->path = file.string();
    void* p = ::mmap(nullptr, static_cast<std::size_t>(size), PROT_READ, MAP_PRIVATE, fd.fd, 0);
    if (p == MAP_FAILED) {
        const int err = errno;
        throw Error("safetensors file " + name + ": cannot memory-map " + std::to_string(size) +
                    " bytes: " + errno_text(err));
    }
    m->data = static_cast<const std::byte*>(p);
    m->size = static_cast<std::size_t>(size);
    return m;
}

// Bits per element of the safetensors dtypes, including those the engine cannot convert (they are
// still validated on open so that a malformed file is reported early). 0 = unknown dtype.
unsigned dtype_bits(std::string_view s) {
    static constexpr std::pair<std::string_view, unsigned> table[] = {
        {"BOOL", 8},     {"U8", 8},       {"I8", 8},       {"F8_E5M2", 8}, {"F8_E4M3", 8},
        {"F8_E8M0", 8},  {"I16", 16},     {"U16", 16},     {"F16", 16},    {"BF16", 16},
        {"I32", 32},     {"U32", 32},     {"F32", 32},     {"F64", 64},    {"I64", 64},
        {"U64", 64},     {"C64", 64},     {"F4", 4},       {"F6_E2M3", 6}, {"F6_E3M2", 6},
    };
    for (const auto& [n, b] : table)
        if (n == s) return b;
    return 0;
}

bool json_u64(const json& v, std::uint64_t& out) {
    if (v.is_number_unsigned()) {
        out = v.get<std::uint64_t>();
        return true;
    }
    if (v.is_number_integer()) {
        const auto s = v.get<std::int64_t>();
        if (s < 0) return false;
        out = static_cast<std::uint64_t>(s);
        return true;
    }
    return false;
}

// numel of `shape`, or nullopt when it overflows int64.
std::optional<std::uint64_t> checked_numel(const std::vector<std::int64_t>& shape) {
    std::uint64_t n = 1;
    for (std::int64_t d : shape) {
        if (d < 0) return std::nullopt;
        const auto ud = static_cast<std::uint64_t>(d);
        if (ud != 0 && n > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) / ud)
            return std::nullopt;
        n *= ud;
    }
    return n;
}

// ---- conversion -------------------------------------------------------------------------------

const float* half_table() {
    static const std::vector<float> table = [] {
        std::vector<float> t(65536);
        for (std::uint32_t i = 0; i < 65536; ++i) t[i] = half_to_float(static_cast<std::uint16_t>(i));
        return t;
    }();
    return table.data();
}

// Source bytes may be unaligned, so every load goes through memcpy (compiled to a plain load).
template <typename S, typename D>
void cast_copy(const std::byte* src, D* dst, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
        S v;
        std::memcpy(&v, src + i * sizeof(S), sizeof(S));
        dst[i] = static_cast<D>(v);
    }
}

template <typename D>
void convert_to(DType src_dtype, const std::byte* src, D* dst, std::size_t n) {
    switch (src_dtype) {
        case DType::F32: cast_copy<float>(src, dst, n); break;
        case DType::F64: cast_copy<double>(src, dst, n); break;
        case DType::I32: cast_copy<std::int32_t>(src, dst, n); break;
        case DType::I64: cast_copy<std::int64_t>(src, dst, n); break;
        case DType::U8: cast_copy<std::uint8_t>(src, dst, n); break;
        case DType::F16: {
            const float* table = half_table();
            for (std::size_t i = 0; i < n; ++i) {
                std::uint16_t h;
                std::memcpy(&h, src + 2 * i, 2);
                dst[i] = static_cast<D>(table[h]);
            }
            break;
        }
        case DType::BF16:
            for (std::size_t i = 0; i < n; ++i) {
                std::uint16_t h;
                std::memcpy(&h, src + 2 * i, 2);
                const std::uint32_t bits = static_cast<std::uint32_t>(h) << 16;
                float f;
                std::memcpy(&f, &bits, 4);
                dst[i] = static_cast<D>(f);
            }
            break;
    }
}

// ---- writing ----------------------------------------------------------------------------------

using StagedFile = DurableFile;  // core/file_io.h: the one durable writer

bool valid_utf8_json_string(const std::string& s) {
    try {
        (void)json(s).dump();
        return true;
    } catch (const json::exception&) {
        return false;
    }
}

// Bytes of one record's data, validating the record.
std::uint64_t record_bytes(const TensorRecord& t, const fs::path& file) {
    const std::string where = "cannot write " + qpath(file) + ": tensor '" + t.name + "': ";
    const auto n = checked_numel(t.shape);
    if (!n) throw Error(where + "invalid shape " + shape_str(t.shape));
    const std::uint64_t esize = dtype_size(t.dtype);
    if (esize == 0) throw Error(where + "invalid dtype");
    if (*n > std::numeric_limits<std::uint64_t>::max() / esize)
        throw Error(where + "shape " + shape_str(t.shape) + " is too large");
    const std::uint64_t bytes = *n * esize;
    if (bytes > 0 && t.data == nullptr) throw Error(where + "data pointer is null");
    return bytes;
}

StagedFile stage_safetensors(const fs::path& file, const std::vector<TensorRecord>& tensors,
                             const std::map<std::string, std::string>& metadata) {
    nlohmann::ordered_json header = nlohmann::ordered_json::object();
    if (!metadata.empty()) {
        nlohmann::ordered_json m = nlohmann::ordered_json::object();
        for (const auto& [k, v] : metadata) {
            if (!valid_utf8_json_string(k) || !valid_utf8_json_string(v))
                throw Error("cannot write " + qpath(file) + ": metadata key '" + k +
                            "' or its value is not valid UTF-8");
            m[k] = v;
        }
        header["__metadata__"] = std::move(m);
    }
    std::set<std::string> seen;
    std::vector<std::uint64_t> sizes;
    sizes.reserve(tensors.size());
    std::uint64_t offset = 0;
    for (const TensorRecord& t : tensors) {
        const std::string where = "cannot write " + qpath(file) + ": tensor '" + t.name + "': ";
        if (t.name.empty()) throw Error("cannot write " + qpath(file) + ": a tensor has an empty name");
        if (t.name == "__metadata__") throw Error(where + "the name is reserved by the format");
        if (!seen.insert(t.name).second) throw Error(where + "duplicate tensor name");
        if (!valid_utf8_json_string(t.name)) throw Error(where + "the name is not valid UTF-8");
        const std::uint64_t bytes = record_bytes(t, file);
        if (bytes > std::numeric_limits<std::uint64_t>::max() - offset)
            throw Error(where + "total data size overflows");
        nlohmann::ordered_json e = nlohmann::ordered_json::object();
        e["dtype"] = std::string(dtype_name(t.dtype));
        e["shape"] = t.shape;
        e["data_offsets"] = {offset, offset + bytes};
        header[t.name] = std::move(e);
        offset += bytes;
        sizes.push_back(bytes);
    }
    std::string text = header.dump();
    text.append((8 - text.size() % 8) % 8, ' ');  // keep the data 8-byte aligned in the file

    unsigned char prefix[8];
    std::uint64_t n = text.size();
    for (int i = 0; i < 8; ++i) prefix[i] = static_cast<unsigned char>(n >> (8 * i));

    StagedFile out(file);
    out.write(prefix, 8);
    out.write(text.data(), text.size());
    for (std::size_t i = 0; i < tensors.size(); ++i)
        if (sizes[i] > 0) out.write(tensors[i].data, static_cast<std::size_t>(sizes[i]));
    out.finish();
    return out;
}

std::string read_text_file(const fs::path& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) throw Error("cannot read " + qpath(file));
    std::ostringstream ss;
    ss << in.rdbuf();
    if (in.bad()) throw Error("cannot read " + qpath(file));
    return ss.str();
}

// "model-00001-of-00003.safetensors" and the like.
bool is_shard_name(const std::string& s) {
    auto digits = [&](std::size_t pos, std::size_t n) {
        if (pos + n > s.size()) return false;
        for (std::size_t i = 0; i < n; ++i)
            if (s[pos + i] < '0' || s[pos + i] > '9') return false;
        return true;
    };
    return s.size() == 32 && s.compare(0, 6, "model-") == 0 && digits(6, 5) &&
           s.compare(11, 4, "-of-") == 0 && digits(15, 5) && s.compare(20, 12, ".safetensors") == 0;
}

// Shard file names listed by an existing index in dir; empty if there is none or it is unreadable.
std::set<std::string> existing_shards(const fs::path& dir) {
    std::set<std::string> out;
    std::error_code ec;
    const fs::path index = dir / kIndexFile;
    if (!fs::is_regular_file(index, ec)) return out;
    try {
        const json j = json::parse(read_text_file(index));
        const auto wm = j.find("weight_map");
        if (wm == j.end() || !wm->is_object()) return out;
        for (const auto& [name, shard] : wm->items())
            if (shard.is_string() && is_shard_name(shard.get<std::string>()))
                out.insert(shard.get<std::string>());
    } catch (const std::exception&) {
        // A damaged old index is simply not cleaned up.
    }
    return out;
}

}  // namespace

// ---- public -----------------------------------------------------------------------------------

std::optional<DType> dtype_from_name(std::string_view name) {
    for (DType t : {DType::F32, DType::F64, DType::F16, DType::BF16, DType::I32, DType::I64})
        if (dtype_name(t) == name) return t;
    return std::nullopt;
}

std::int64_t TensorInfo::numel() const {
    std::int64_t n = 1;
    for (std::int64_t d : shape) n *= d;
    return n;
}

SafetensorsReader::SafetensorsReader() = default;

void SafetensorsReader::load_file(const fs::path& file, std::map<std::string, Entry>& entries,
                                  std::map<std::string, std::string>& metadata) {
    const std::shared_ptr<const detail::MappedFile> map = map_file(file);
    const std::string prefix = "safetensors file " + qpath(file) + ": ";

    std::uint64_t header_len = 0;
    for (int i = 7; i >= 0; --i)
        header_len = (header_len << 8) | std::to_integer<std::uint64_t>(map->data[i]);
    const std::uint64_t after_prefix = map->size - 8;
    if (header_len > after_prefix)
        throw Error(prefix + "header length " + std::to_string(header_len) + " exceeds the " +
                    std::to_string(after_prefix) +
                    " bytes that follow the length prefix (truncated, or not a safetensors file)");
    const std::uint64_t data_start = 8 + header_len;
    const std::uint64_t data_size = after_prefix - header_len;

    json header;
    try {
        const auto* begin = reinterpret_cast<const char*>(map->data + 8);
        header = json::parse(begin, begin + header_len);
    } catch (const json::exception& e) {
        throw Error(prefix + "header is not valid JSON: " + e.what());
    }
    if (!header.is_object()) throw Error(prefix + "header is not a JSON object");

    struct Range {
        std::uint64_t begin, end;
        std::string name;
    };
    std::vector<Range> ranges;  // of the tensors holding at least one byte
    for (const auto& [key, val] : header.items()) {
        if (key == "__metadata__") {
            if (!val.is_object()) throw Error(prefix + "\"__metadata__\" is not a JSON object");
            for (const auto& [mk, mv] : val.items()) {
                if (!mv.is_string())
                    throw Error(prefix + "\"__metadata__\" key '" + mk + "': expected a string value, found " +
                                mv.type_name());
                metadata.emplace(mk, mv.get<std::string>());
            }
            continue;
        }
        const std::string where = prefix + "tensor '" + key + "': ";
        if (!val.is_object()) throw Error(where + "expected a JSON object, found " + val.type_name());

        TensorInfo ti;
        ti.name = key;
        ti.file = file.string();

        const auto dt = val.find("dtype");
        if (dt == val.end()) throw Error(where + "missing \"dtype\"");
        if (!dt->is_string()) throw Error(where + "\"dtype\" is not a string");
        ti.dtype_str = dt->get<std::string>();
        if (const auto known = dtype_from_name(ti.dtype_str)) {
            ti.dtype = *known;
            ti.supported = true;
        }

        const auto sh = val.find("shape");
        if (sh == val.end()) throw Error(where + "missing \"shape\"");
        if (!sh->is_array()) throw Error(where + "\"shape\" is not an array");
        for (const json& d : *sh) {
            std::uint64_t u = 0;
            if (!json_u64(d, u) || u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
                throw Error(where + "\"shape\" " + sh->dump() + " holds something other than a non-negative integer");
            ti.shape.push_back(static_cast<std::int64_t>(u));
        }
        const auto numel = checked_numel(ti.shape);
        if (!numel) throw Error(where + "shape " + shape_str(ti.shape) + " has too many elements");

        const auto off = val.find("data_offsets");
        if (off == val.end()) throw Error(where + "missing \"data_offsets\"");
        std::uint64_t begin = 0, end = 0;
        if (!off->is_array() || off->size() != 2 || !json_u64((*off)[0], begin) ||
            !json_u64((*off)[1], end))
            throw Error(where + "\"data_offsets\" must be [begin, end] of non-negative integers, found " +
                        off->dump());
        if (begin > end)
            throw Error(where + "data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                        "]: begin is after end");
        if (end > data_size)
            throw Error(where + "data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                        "] reach past the end of the data section (" + std::to_string(data_size) +
                        " bytes; file truncated?)");
        const unsigned bits = dtype_bits(ti.dtype_str);
        if (bits != 0) {
            const std::uint64_t expected_bits = *numel * bits;  // numel < 2^63, bits <= 64: may wrap
            const bool overflow = *numel != 0 && expected_bits / bits != *numel;
            if (overflow || expected_bits % 8 != 0 || expected_bits / 8 != end - begin)
                throw Error(where + "data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                            "] span " + std::to_string(end - begin) + " bytes, but dtype " + ti.dtype_str +
                            " with shape " + shape_str(ti.shape) + " needs " +
                            (overflow ? std::string("more than 2^61")
                                      : std::to_string(expected_bits / 8) +
                                            (expected_bits % 8 ? " and a fraction" : "")) +
                            " bytes");
        }
        ti.offset = data_start + begin;
        ti.nbytes = end - begin;
        if (end > begin) ranges.push_back(Range{begin, end, key});
        entries.insert_or_assign(key, Entry{std::move(ti), map});
    }

    // Two tensors sharing bytes means a corrupt header (writers lay tensors out back to back).
    std::sort(ranges.begin(), ranges.end(), [](const Range& a, const Range& b) { return a.begin < b.begin; });
    for (std::size_t i = 1; i < ranges.size(); ++i) {
        const Range& a = ranges[i - 1];
        const Range& b = ranges[i];
        if (b.begin < a.end)
            throw Error(prefix + "tensors '" + a.name + "' (data_offsets [" + std::to_string(a.begin) + ", " +
                        std::to_string(a.end) + "]) and '" + b.name + "' (data_offsets [" +
                        std::to_string(b.begin) + ", " + std::to_string(b.end) + "]) overlap");
    }
}

SafetensorsReader SafetensorsReader::open_file(const fs::path& file) {
    SafetensorsReader r;
    r.source_ = file.string();
    load_file(file, r.entries_, r.metadata_);
    return r;
}

SafetensorsReader SafetensorsReader::open_dir(const fs::path& dir) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec))
        throw Error("safetensors checkpoint " + qpath(dir) + ": not a directory");
    const fs::path single = dir / kSingleFile;
    if (fs::exists(single, ec)) return open_file(single);

    const fs::path index = dir / kIndexFile;
    if (!fs::exists(index, ec))
        throw Error("safetensors checkpoint " + qpath(dir) + ": found neither " + std::string(kSingleFile) +
                    " nor " + std::string(kIndexFile));
    const std::string prefix = "safetensors index " + qpath(index) + ": ";
    json j;
    try {
        j = json::parse(read_text_file(index));
    } catch (const json::exception& e) {
        throw Error(prefix + "not valid JSON: " + e.what());
    }
    if (!j.is_object()) throw Error(prefix + "not a JSON object");
    const auto wm = j.find("weight_map");
    if (wm == j.end()) throw Error(prefix + "missing \"weight_map\"");
    if (!wm->is_object()) throw Error(prefix + "\"weight_map\" is not a JSON object");

    std::map<std::string, std::vector<std::string>> by_shard;
    for (const auto& [name, shard] : wm->items()) {
        if (!shard.is_string())
            throw Error(prefix + "tensor '" + name + "': expected a shard file name, found " + shard.type_name());
        const std::string s = shard.get<std::string>();
        // A file in the checkpoint folder itself: no absolute path, no folder, no "..", so an index
        // cannot make the loader read files outside the model it names.
        if (s.empty() || s == "." || s == ".." || s.find('/') != std::string::npos || s.find('\\') != std::string::npos)
            throw Error(prefix + "tensor '" + name + "': shard name '" + s +
                        "' must be a file name in the checkpoint directory (no folders, no ..)");
        by_shard[s].push_back(name);
    }

    SafetensorsReader r;
    r.source_ = dir.string();
    for (const auto& [shard, names] : by_shard) {
        const fs::path shard_path = dir / shard;
        if (!fs::exists(shard_path, ec))
            throw Error(prefix + "tensor '" + names.front() + "' is mapped to shard '" + shard +
                        "', which does not exist (" + shard_path.string() + ")");
        std::map<std::string, Entry> shard_entries;
        std::map<std::string, std::string> shard_meta;
        load_file(shard_path, shard_entries, shard_meta);
        for (const std::string& name : names) {
            auto it = shard_entries.find(name);
            if (it == shard_entries.end())
                throw Error(prefix + "tensor '" + name + "' is mapped to shard '" + shard +
                            "', but " + shard_path.string() + " does not contain it");
            r.entries_.insert_or_assign(name, std::move(it->second));
        }
        for (auto& [k, v] : shard_meta) r.metadata_.emplace(k, std::move(v));
    }
    return r;
}

std::vector<std::string> SafetensorsReader::names() const {
    std::vector<std::string> out;
    out.reserve(entries_.size());
    for (const auto& [name, e] : entries_) out.push_back(name);
    return out;
}

std::size_t SafetensorsReader::size() const { return entries_.size(); }

bool SafetensorsReader::contains(const std::string& name) const { return entries_.count(name) != 0; }

const SafetensorsReader::Entry& SafetensorsReader::entry(const std::string& name) const {
    const auto it = entries_.find(name);
    if (it == entries_.end())
        throw Error("safetensors: no tensor '" + name + "' in " +
                    (source_.empty() ? std::string("an empty reader") : qpath(source_)));
    return it->second;
}

const TensorInfo& SafetensorsReader::info(const std::string& name) const { return entry(name).info; }

std::span<const std::byte> SafetensorsReader::raw(const std::string& name) const {
    const Entry& e = entry(name);
    return {e.map->data + e.info.offset, static_cast<std::size_t>(e.info.nbytes)};
}

void SafetensorsReader::read_into(const std::string& name, DType dst_dtype, void* dst,
                                  std::size_t count) const {
    const Entry& e = entry(name);
    const TensorInfo& ti = e.info;
    const std::string where = "safetensors file " + qpath(ti.file) + ": tensor '" + name + "': ";
    if (!ti.supported)
        throw Error(where + "dtype " + ti.dtype_str +
                    " is not supported (expected one of F32, F64, F16, BF16, I32, I64)");
    const auto numel = static_cast<std::uint64_t>(ti.numel());
    if (count != numel)
        throw Error(where + "has " + std::to_string(numel) + " elements (shape " + shape_str(ti.shape) +
                    "), but the destination holds " + std::to_string(count));
    if (count == 0) return;
    if (dst == nullptr) throw Error(where + "destination pointer is null");

    const std::byte* src = e.map->data + ti.offset;
    if (ti.nbytes >= (std::uint64_t{1} << 20)) {  // large read: ask the kernel to read ahead
        const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
        const auto lo = reinterpret_cast<std::uintptr_t>(src) & ~(page - 1);
        const auto hi = reinterpret_cast<std::uintptr_t>(src) + ti.nbytes;
        ::madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_WILLNEED);
    }
    if (dst_dtype == ti.dtype) {
        std::memcpy(dst, src, static_cast<std::size_t>(ti.nbytes));
    } else if (dst_dtype == DType::F32) {
        convert_to(ti.dtype, src, static_cast<float*>(dst), count);
    } else if (dst_dtype == DType::F64) {
        convert_to(ti.dtype, src, static_cast<double*>(dst), count);
    } else {
        throw Error(where + "cannot convert " + ti.dtype_str + " to " + std::string(dtype_name(dst_dtype)) +
                    " (destinations: F32, F64, or the tensor's own dtype)");
    }
}

std::vector<float> SafetensorsReader::read_f32(const std::string& name) const {
    const TensorInfo& ti = info(name);
    // An unsupported dtype's shape is not checked against its bytes on open: refuse it before
    // sizing the buffer from that shape.
    if (!ti.supported) read_into(name, DType::F32, nullptr, static_cast<std::size_t>(ti.numel()));
    std::vector<float> out(static_cast<std::size_t>(ti.numel()));
    read_into(name, DType::F32, out.data(), out.size());
    return out;
}

const std::map<std::string, std::string>& SafetensorsReader::metadata() const { return metadata_; }

void write_safetensors(const fs::path& file, const std::vector<TensorRecord>& tensors,
                       const std::map<std::string, std::string>& metadata) {
    StagedFile staged = stage_safetensors(file, tensors, metadata);
    staged.commit();
    sync_dir(file.parent_path());
}

void write_checkpoint_tensors(const fs::path& dir, const std::vector<TensorRecord>& tensors,
                              std::size_t max_shard_bytes) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) throw Error("cannot create checkpoint directory " + qpath(dir) + ": " + ec.message());

    const fs::path single = dir / kSingleFile;
    const fs::path index = dir / kIndexFile;
    const std::map<std::string, std::string> metadata{{"format", "pt"}};
    const std::set<std::string> old_shards = existing_shards(dir);

    std::vector<std::uint64_t> sizes;
    std::uint64_t total = 0;
    for (const TensorRecord& t : tensors) {
        sizes.push_back(record_bytes(t, single));
        total += sizes.back();
    }

    if (max_shard_bytes == 0 || total <= max_shard_bytes) {
        write_safetensors(single, tensors, metadata);
        // The new single file takes precedence in open_dir; drop the old sharded layout.
        fs::remove(index, ec);
        for (const std::string& s : old_shards) fs::remove(dir / s, ec);
        return;
    }

    // Greedy split keeping the given order; a tensor bigger than the limit gets a shard of its own.
    std::vector<std::vector<TensorRecord>> groups;
    std::uint64_t current = 0;
    for (std::size_t i = 0; i < tensors.size(); ++i) {
        if (groups.empty() || (!groups.back().empty() && current + sizes[i] > max_shard_bytes)) {
            groups.emplace_back();
            current = 0;
        }
        groups.back().push_back(tensors[i]);
        current += sizes[i];
    }
    const std::size_t n = groups.size();
    if (n > 99999) throw Error("cannot write checkpoint " + qpath(dir) + ": more than 99999 shards");

    auto shard_name = [n](std::size_t i) {
        char buf[64];
        std::snprintf(buf, sizeof buf, "model-%05zu-of-%05zu.safetensors", i + 1, n);
        return std::string(buf);
    };

    // Stage every file first, then rename them all, so that the window in which the directory
    // mixes old and new files is as short as possible.
    std::vector<StagedFile> staged;
    staged.reserve(n + 1);
    nlohmann::ordered_json idx = nlohmann::ordered_json::object();
    idx["metadata"] = nlohmann::ordered_json::object();
    idx["metadata"]["total_size"] = total;
    json weight_map = json::object();  // sorted by tensor name, as HF writes it
    std::set<std::string> new_shards;
    for (std::size_t i = 0; i < n; ++i) {
        const std::string name = shard_name(i);
        new_shards.insert(name);
        for (const TensorRecord& t : groups[i]) weight_map[t.name] = name;
        staged.push_back(stage_safetensors(dir / name, groups[i], metadata));
    }
    idx["weight_map"] = std::move(weight_map);
    const std::string idx_text = idx.dump(2) + "\n";
    StagedFile idx_file(index);
    idx_file.write(idx_text.data(), idx_text.size());
    idx_file.finish();

    for (StagedFile& s : staged) s.commit();
    idx_file.commit();
    sync_dir(dir);

    // A stale single file would shadow the index in open_dir; stale shards are just clutter.
    fs::remove(single, ec);
    for (const std::string& s : old_shards)
        if (new_shards.count(s) == 0) fs::remove(dir / s, ec);
}

}  // namespace meft
