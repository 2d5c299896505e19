// error.h — the engine's one exception type.
// The engine never calls exit(): every failure a user can cause (bad file, bad key, bad shape)
// is thrown as meft::Error with a message that names the file, tensor, key or line involved.
#pragma once
#include <stdexcept>
#include <string>
#include <vector>

namespace meft {

class Error : public std::runtime_error {
public:
    explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// A value a MEFT fixed-point stream cannot hold (backend.h: |value| < 2^23): the run diverged.
// Backends throw it with the value; the reversible encoder adds the layer and the coupling, the
// trainer the step and what to change.
class StreamRangeError : public Error {
public:
    StreamRangeError(const std::string& message, double value) : Error(message), value_(value) {}
    double value() const { return value_; }  // NaN when the backend cannot tell which value

private:
    double value_;
};

// Memory ran out: the message says what was being allocated, how many bytes, and how much the
// host or device has (never a bare std::bad_alloc).
class OutOfMemoryError : public Error {
public:
    using Error::Error;
};

// For messages: "a, b or c"; with quote "\"": "\"a\", \"b\" or \"c\"".
inline std::string listed(const std::vector<std::string>& names, const char* quote = "") {
    std::string s;
    for (std::size_t i = 0; i < names.size(); ++i)
        s += (i == 0 ? "" : i + 1 == names.size() ? " or " : ", ") + std::string(quote) + names[i] + quote;
    return s;
}

// Internal invariant check: a failure here is a bug in the engine, not bad user input.
#define MEFT_CHECK(cond, msg)                                                              \
    do {                                                                                   \
        if (!(cond))                                                                       \
            throw ::meft::Error(std::string("internal check failed: ") + (msg) + " (" +    \
                                __FILE__ + ":" + std::to_string(__LINE__) + ")");          \
    } while (0)

}  // namespace meft
