// scratch.h — a growable device buffer for an op's temporaries (attention's dropped
// probabilities, column-sum partials, pointer arrays, bf16 operand copies).
//
// Temporaries live only during one op and are not activations kept for backward, so they are
// not in the engine's arenas (the CPU backend keeps its per-thread workspaces outside them too);
// bytes() reports what a Scratch holds. Growing frees the old buffer, which cudaFree orders after
// the kernels already queued on it.
#pragma once
#include <cstddef>

namespace meft::cuda {

class Scratch {
public:
    Scratch() = default;
    ~Scratch();
    Scratch(const Scratch&) = delete;
    Scratch& operator=(const Scratch&) = delete;

    // At least `bytes` of device memory, 256-byte aligned; the contents are undefined.
    void* get(std::size_t bytes);
    template <typename T> T* get(std::size_t count) { return static_cast<T*>(get(count * sizeof(T))); }
    std::size_t bytes() const { return size_; }

private:
    void* data_ = nullptr;
    std::size_t size_ = 0;
};

}  // namespace meft::cuda
