#include "scratch.h"

#include "cuda_check.h"

namespace meft::cuda {

Scratch::~Scratch() {
    if (data_) cudaFree(data_);
}

void* Scratch::get(std::size_t bytes) {
    if (bytes <= size_) return data_;
    if (data_) MEFT_CUDA(cudaFree(data_));
    data_ = nullptr;
    size_ = 0;
    const std::size_t rounded = (bytes + (1u << 20) - 1) & ~std::size_t((1u << 20) - 1);  // whole MiB
    MEFT_CUDA(cudaMalloc(&data_, rounded));
    size_ = rounded;
    return data_;
}

}  // namespace meft::cuda
