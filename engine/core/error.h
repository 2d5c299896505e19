// error.h — the engine's one exception type.
// The engine never calls exit(): every failure a user can cause (bad file, bad key, bad shape)
// is thrown as meft::Error with a message that names the file, tensor, key or line involved.
#pragma once
#include <stdexcept>
#include <string>

namespace meft {

class Error : public std::runtime_error {
public:
    explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// Internal invariant check: a failure here is a bug in the engine, not bad user input.
#define MEFT_CHECK(cond, msg)                                                              \
    do {                                                                                   \
        if (!(cond))                                                                       \
            throw ::meft::Error(std::string("internal check failed: ") + (msg) + " (" +    \
                                __FILE__ + ":" + std::to_string(__LINE__) + ")");          \
    } while (0)

}  // namespace meft
