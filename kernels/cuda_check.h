// cuda_check.h — CUDA and cuBLAS status codes turned into meft::Error with the call that failed.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <string>

#include "core/error.h"

namespace meft::cuda {

[[noreturn]] inline void throw_cuda(cudaError_t e, const char* what, const char* file, int line) {
    cudaGetLastError();  // clear a non-sticky error so the next call does not report it again
    throw Error(std::string("CUDA error in ") + what + ": " + cudaGetErrorString(e) + " (" + file + ":" +
                std::to_string(line) + ")");
}
[[noreturn]] inline void throw_cublas(cublasStatus_t s, const char* what, const char* file, int line) {
    throw Error(std::string("cuBLAS error in ") + what + ": " + cublasGetStatusString(s) + " (" + file + ":" +
                std::to_string(line) + ")");
}

}  // namespace meft::cuda

#define MEFT_CUDA(call)                                                               \
    do {                                                                              \
        const cudaError_t meft_e_ = (call);                                           \
        if (meft_e_ != cudaSuccess) ::meft::cuda::throw_cuda(meft_e_, #call, __FILE__, __LINE__); \
    } while (0)

#define MEFT_CUBLAS(call)                                                                      \
    do {                                                                                       \
        const cublasStatus_t meft_s_ = (call);                                                 \
        if (meft_s_ != CUBLAS_STATUS_SUCCESS) ::meft::cuda::throw_cublas(meft_s_, #call, __FILE__, __LINE__); \
    } while (0)

// After a kernel launch: a bad launch configuration shows up here; a fault inside the kernel at
// the next synchronising call (a download, synchronize()).
#define MEFT_LAUNCHED(kernel)                                                              \
    do {                                                                                   \
        const cudaError_t meft_e_ = cudaGetLastError();                                    \
        if (meft_e_ != cudaSuccess) ::meft::cuda::throw_cuda(meft_e_, kernel, __FILE__, __LINE__); \
    } while (0)
