// file_io.h — writing small files so that a crash or a full disk never leaves half a file:
// the text goes to a temporary file beside the target, which is then renamed over it.
#pragma once
#include <filesystem>
#include <string_view>

namespace meft {

// Creates the parent directory if needed. Throws Error naming the file on failure.
void write_file_atomically(const std::filesystem::path& file, std::string_view content);

}  // namespace meft
