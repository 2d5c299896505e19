// test_support.h — small helpers shared by the GoogleTest suites.
#pragma once
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
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
