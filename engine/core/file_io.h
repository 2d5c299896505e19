// file_io.h — the one durable writer for every file a run writes (results.json, config.json,
// safetensors checkpoints and models, predictions): the bytes go to a temporary file with a unique
// name beside the target, are fsync'ed, and the file is renamed over the target, then the folder
// is fsync'ed. A crash, a kill or a full disk leaves the old file or the new one, never half of
// one; two processes writing the same target never share a temporary file.
#pragma once
#include <filesystem>
#include <string_view>

namespace meft {

// A file written under a temporary name (".<name>.tmp.<pid>.<n>") next to its destination and
// renamed into place by commit(). Destroyed uncommitted, it removes the temporary file. Errors
// are meft::Error naming the destination, the temporary file and the system's reason.
class DurableFile {
public:
    explicit DurableFile(std::filesystem::path destination);
    DurableFile(DurableFile&& o) noexcept;
    DurableFile(const DurableFile&) = delete;
    DurableFile& operator=(const DurableFile&) = delete;
    DurableFile& operator=(DurableFile&&) = delete;
    ~DurableFile();

    void write(const void* data, std::size_t n);
    void finish();  // fsync and close the temporary file; call before commit()
    void commit();  // rename it over the destination (the caller syncs the folder: sync_dir)
    const std::filesystem::path& destination() const { return final_; }

private:
    std::filesystem::path final_, tmp_;
    int fd_ = -1;
    bool done_ = false;
};

// Makes renames in `dir` durable (fsync of the folder); best effort: some filesystems refuse it.
void sync_dir(const std::filesystem::path& dir);

// The whole cycle for one small file: creates the parent folder if needed, writes, fsyncs,
// renames, syncs the folder. Throws Error naming the file on failure.
void write_file_atomically(const std::filesystem::path& file, std::string_view content);

// The prefix of the temporary files DurableFile uses for `destination` (for clean-up of files a
// killed process left): ".<name>.tmp."
std::string temporary_prefix(const std::filesystem::path& destination);

}  // namespace meft
