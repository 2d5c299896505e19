// safetensors.h — reading and writing Hugging Face .safetensors checkpoints.
//
// File layout: an 8-byte little-endian u64 N, then N bytes of UTF-8 JSON header mapping each
// tensor name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to the first
// byte after the header) plus an optional "__metadata__" object of string -> string, then the
// tensor data, little-endian, row-major, contiguous.
//
// Reading memory-maps each file (read-only); the mappings are shared by every copy of a reader
// and released when the last copy goes away. Every failure a user can cause (a truncated or
// malformed file, offsets outside the data section or overlapping another tensor's, a missing
// tensor, a wrong element count) throws meft::Error naming the file and the tensor or key
// involved. Offsets are checked without overflow for any u64 value. A dtype the engine does not
// know still opens (the tensor may never be read); reading it is an Error.
//
// Writing goes to a temporary file in the destination directory that is fsync'ed and then renamed
// over the destination, so an interrupted write never leaves a half-written file behind.
#pragma once
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/dtype.h"

namespace meft {

// The DType a safetensors dtype string names ("F32", "BF16", ...), or nullopt for dtypes the
// engine does not handle ("U8", "BOOL", "F8_E4M3", ...).
std::optional<DType> dtype_from_name(std::string_view name);

struct TensorInfo {
    std::string name;
    DType dtype = DType::F32;         // meaningful only when `supported` is true
    std::vector<std::int64_t> shape;  // empty for a scalar
    std::string file;                 // the .safetensors file holding the data
    std::string dtype_str;            // the dtype exactly as spelled in the header
    bool supported = false;           // dtype_str names one of meft::DType
    std::uint64_t offset = 0;         // absolute byte offset of the data within `file`
    std::uint64_t nbytes = 0;         // size of the data in bytes

    std::int64_t numel() const;       // product of shape (1 for a scalar)
};

namespace detail {
struct MappedFile;  // a read-only memory mapping of one file (defined in safetensors.cpp)
}

class SafetensorsReader {
public:
    SafetensorsReader();  // an empty reader holding no tensors

    // One .safetensors file.
    static SafetensorsReader open_file(const std::filesystem::path& file);
    // dir/model.safetensors if it exists, else dir/model.safetensors.index.json and the shards it
    // names. Throws if neither exists.
    static SafetensorsReader open_dir(const std::filesystem::path& dir);

    std::vector<std::string> names() const;  // sorted
    std::size_t size() const;                // number of tensors
    bool contains(const std::string& name) const;
    const TensorInfo& info(const std::string& name) const;  // throws Error if absent

    // Copies tensor `name` into dst (count elements of dst_dtype), converting on the way:
    //   dst F32 or F64  <- F32, F64, F16, BF16, I32, I64
    //   dst == source dtype (any DType) is a plain copy.
    // count must equal the tensor's element count. Other combinations throw Error.
    void read_into(const std::string& name, DType dst_dtype, void* dst, std::size_t count) const;
    std::vector<float> read_f32(const std::string& name) const;  // convenience over read_into

    // The tensor's bytes as stored in the file (dtype info(name).dtype_str, little-endian), valid
    // while any copy of this reader is alive. Not necessarily aligned.
    std::span<const std::byte> raw(const std::string& name) const;

    // The "__metadata__" object of the file. For a sharded checkpoint: the union over shards
    // (on a conflicting key the shard whose file name sorts first wins).
    const std::map<std::string, std::string>& metadata() const;

    // The file or directory this reader was opened from.
    const std::string& source() const { return source_; }

private:
    struct Entry {
        TensorInfo info;
        std::shared_ptr<const detail::MappedFile> map;
    };
    const Entry& entry(const std::string& name) const;
    static void load_file(const std::filesystem::path& file, std::map<std::string, Entry>& entries,
                          std::map<std::string, std::string>& metadata);

    std::map<std::string, Entry> entries_;
    std::map<std::string, std::string> metadata_;
    std::string source_;
};

// One tensor to write; `data` holds numel(shape) elements of `dtype`, little-endian row-major.
struct TensorRecord {
    std::string name;
    DType dtype = DType::F32;
    std::vector<std::int64_t> shape;
    const void* data = nullptr;
};

// Writes one .safetensors file: tensors' data in the order given with consecutive offsets, the
// header padded with spaces to a multiple of 8 bytes. `metadata` becomes "__metadata__" (omitted
// when empty). Names must be unique, non-empty and not "__metadata__".
void write_safetensors(const std::filesystem::path& file, const std::vector<TensorRecord>& tensors,
                       const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

// Writes a checkpoint into dir (created if needed): dir/model.safetensors, or, when the tensors'
// total size exceeds max_shard_bytes (0 = never shard), HF-style shards
// model-00001-of-0000N.safetensors (tensors kept in order, a new shard started whenever the next
// tensor would overflow the current one) plus model.safetensors.index.json. Files left in dir by
// an earlier write in the other layout (model.safetensors / index and model-*-of-*.safetensors
// shards it lists) are removed after the new files are in place, so open_dir sees the new data.
void write_checkpoint_tensors(const std::filesystem::path& dir,
                              const std::vector<TensorRecord>& tensors,
                              std::size_t max_shard_bytes = 0);

}  // namespace meft
