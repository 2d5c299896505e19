// cuda_backend.h — the CUDA implementation of meft::Backend (made by the plugin entry points).
#pragma once
#include <memory>

#include "core/backend.h"
#include "gemm_precision.h"

namespace meft::cuda {

struct CudaBackendOptions {
    int device = 0;
    GemmPrecision precision = GemmPrecision::Float32;
};

std::unique_ptr<Backend> make_cuda_backend(const CudaBackendOptions& options);

}  // namespace meft::cuda
