// test_support.h — small helpers shared by the GoogleTest suites.
#pragma once
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "core/error.h"

namespace meft::test {

// The message of the meft::Error that f() throws; a test failure if it throws nothing.
template <typename F> std::string error_of(F&& f) {
    try {
        f();
    } catch (const Error& e) {
        return e.what();
    }
    ADD_FAILURE() << "expected meft::Error, nothing was thrown";
    return {};
}

// Raw bytes in and out of a file, and a little-endian u64 (safetensors' header-length prefix).
inline void write_bytes(const std::filesystem::path& p, const std::string& bytes) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    ASSERT_TRUE(out.good()) << p;
}

inline std::string read_bytes(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

inline std::string u64_le(std::uint64_t n) {
    std::string s(8, '\0');
    for (std::size_t i = 0; i < 8; ++i) s[i] = static_cast<char>((n >> (8 * i)) & 0xff);
    return s;
}

// A fixture with a fresh, empty temporary directory `dir_` per test, removed afterwards.
class TempDirTest : public ::testing::Test {
protected:
    void SetUp() override {
        static int counter = 0;
        dir_ = std::filesystem::temp_directory_path() /
               ("meft_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
        std::filesystem::remove_all(dir_);
        std::filesystem::create_directories(dir_);
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }

    std::filesystem::path dir_;
};

// Skips the calling test, loudly, when a folder of ../shared is not there.
#define MEFT_REQUIRE_DIR(dir, what)                                                                  \
    do {                                                                                             \
        if (!std::filesystem::is_directory(dir)) {                                                   \
            std::fprintf(stderr, "\n*** SKIPPED: %s not found; %s ***\n", (dir).string().c_str(), what); \
            GTEST_SKIP() << "shared data missing: " << (dir);                                        \
        }                                                                                            \
    } while (0)

}  // namespace meft::test
