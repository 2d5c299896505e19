#include "core/file_io.h"

#include <fstream>
#include <system_error>

#include "core/error.h"

namespace meft {

void write_file_atomically(const std::filesystem::path& file, std::string_view content) {
    std::error_code ec;
    if (file.has_parent_path()) std::filesystem::create_directories(file.parent_path(), ec);
    if (ec) throw Error(file.string() + ": cannot create directory " + file.parent_path().string() + ": " + ec.message());
    const std::filesystem::path tmp = file.string() + ".tmp";
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        if (!out) throw Error(file.string() + ": cannot write");
        out.write(content.data(), static_cast<std::streamsize>(content.size()));
        out.flush();
        if (!out) {
            std::filesystem::remove(tmp, ec);
            throw Error(file.string() + ": write failed (disk full?)");
        }
    }
    std::filesystem::rename(tmp, file, ec);
    if (ec) throw Error(file.string() + ": cannot replace: " + ec.message());
}

}  // namespace meft
