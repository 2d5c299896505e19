#include "core/file_io.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <system_error>
#include <utility>

#include "core/error.h"

namespace meft {

namespace fs = std::filesystem;

namespace {
std::string quoted(const fs::path& p) { return "'" + p.string() + "'"; }
std::string reason(int err) { return std::strerror(err); }
}  // namespace

// Appended rather than "." + name: GCC 12 at -O3 reports a false -Wrestrict (overlapping memcpy)
// for a string literal plus a temporary string.
std::string temporary_prefix(const fs::path& destination) {
    return std::string(".").append(destination.filename().string()).append(".tmp.");
}

DurableFile::DurableFile(fs::path destination) : final_(std::move(destination)) {
    static std::atomic<unsigned> counter{0};
    const fs::path dir = final_.parent_path();
    for (int attempt = 0;; ++attempt) {
        const std::string tmp_name =
            temporary_prefix(final_) + std::to_string(::getpid()) + "." + std::to_string(counter.fetch_add(1));
        tmp_ = dir.empty() ? fs::path(tmp_name) : dir / tmp_name;
        fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd_ >= 0) break;
        const int err = errno;
        if (err != EEXIST || attempt > 100)
            throw Error("cannot write " + quoted(final_) + ": cannot create temporary file " + quoted(tmp_) + ": " +
                        reason(err));
    }
}

DurableFile::DurableFile(DurableFile&& o) noexcept
    : final_(std::move(o.final_)), tmp_(std::move(o.tmp_)), fd_(std::exchange(o.fd_, -1)),
      done_(std::exchange(o.done_, true)) {}

DurableFile::~DurableFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!done_) ::unlink(tmp_.c_str());
}

void DurableFile::write(const void* data, std::size_t n) {
    const auto* p = static_cast<const char*>(data);
    while (n > 0) {
        const std::size_t chunk = std::min<std::size_t>(n, std::size_t{1} << 30);
        const ssize_t w = ::write(fd_, p, chunk);
        if (w < 0) {
            const int err = errno;
            if (err == EINTR) continue;
            throw Error("cannot write " + quoted(final_) + " (temporary " + quoted(tmp_) + "): " + reason(err));
        }
        p += w;
        n -= static_cast<std::size_t>(w);
    }
}

void DurableFile::finish() {
    if (::fsync(fd_) != 0) {
        const int err = errno;
        throw Error("cannot write " + quoted(final_) + ": fsync of temporary " + quoted(tmp_) + " failed: " + reason(err));
    }
    const int fd = std::exchange(fd_, -1);
    if (::close(fd) != 0) {
        const int err = errno;
        throw Error("cannot write " + quoted(final_) + ": close of temporary " + quoted(tmp_) + " failed: " + reason(err));
    }
}

void DurableFile::commit() {
    if (::rename(tmp_.c_str(), final_.c_str()) != 0) {
        const int err = errno;
        throw Error("cannot write " + quoted(final_) + ": renaming temporary " + quoted(tmp_) +
                    " into place failed: " + reason(err));
    }
    done_ = true;
}

void sync_dir(const fs::path& dir) {
    const int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    ::fsync(fd);
    ::close(fd);
}

void write_file_atomically(const fs::path& file, std::string_view content) {
    std::error_code ec;
    if (file.has_parent_path()) fs::create_directories(file.parent_path(), ec);
    if (ec) throw Error(file.string() + ": cannot create directory " + file.parent_path().string() + ": " + ec.message());
    DurableFile out(file);
    out.write(content.data(), content.size());
    out.finish();
    out.commit();
    sync_dir(file.parent_path());
}

}  // namespace meft
