// plugin_entry.cpp — the plugin's C entry points (engine/core/cuda_plugin.h). They never throw:
// every failure becomes a reason string the engine shows to the user.
#include <cuda_runtime.h>

#include <cstdio>
#include <exception>
#include <string>

#include "core/cuda_plugin.h"
#include "cuda_backend.h"

namespace {

void write_reason(char* buf, std::size_t len, const std::string& text) {
    if (buf && len) std::snprintf(buf, len, "%s", text.c_str());
}

}  // namespace

extern "C" __attribute__((visibility("default"))) unsigned meft_cuda_abi_version(void) { return MEFT_CUDA_PLUGIN_ABI; }

// Any error (no driver: cudaErrorInsufficientDriver; no device: cudaErrorNoDevice) means none.
extern "C" __attribute__((visibility("default"))) int meft_cuda_probe(char* why, std::size_t why_len) {
    int count = 0;  // cudaGetDeviceCount leaves this untouched on error
    const cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
        cudaGetLastError();  // clear the error state
        write_reason(why, why_len, std::string("the CUDA runtime found no usable device: ") + cudaGetErrorString(e));
        return 0;
    }
    if (count == 0) write_reason(why, why_len, "the CUDA runtime reports 0 devices");
    return count;
}

extern "C" __attribute__((visibility("default"))) meft::Backend* meft_cuda_create_backend(
    const MeftCudaOptions* options, char* error, std::size_t error_len) {
    try {
        meft::cuda::CudaBackendOptions o;
        if (options) {
            o.device = options->device;
            o.precision = options->bf16_gemm ? meft::cuda::GemmPrecision::BF16
                          : options->tf32    ? meft::cuda::GemmPrecision::TF32
                                             : meft::cuda::GemmPrecision::Float32;
        }
        int count = 0;
        if (cudaGetDeviceCount(&count) != cudaSuccess || o.device < 0 || o.device >= count) {
            cudaGetLastError();
            write_reason(error, error_len,
                         "CUDA device " + std::to_string(o.device) + " does not exist (" + std::to_string(count) +
                             " device(s) found)");
            return nullptr;
        }
        std::unique_ptr<meft::Backend> backend = meft::cuda::make_cuda_backend(o);
        backend->synchronize();
        return backend.release();
    } catch (const std::exception& e) {
        write_reason(error, error_len, e.what());
    } catch (...) {
        write_reason(error, error_len, "unknown error while creating the CUDA backend");
    }
    return nullptr;
}
